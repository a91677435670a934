/** Values shaped like credentials, replaced whole. */
const credentialPatterns: readonly RegExp[] = [
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, // AWS access key ids
  /\bdo[opr]_v1_[a-f0-9]{64}\b/g, // DigitalOcean tokens
  /\bya29\.[\w.-]+/g, // Google OAuth access tokens
  /\b(?:Bearer|Basic)\s+[\w.~+/=-]{8,}/gi, // Authorization header values
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

/** `name=value` / `"name": "value"` pairs whose value is a credential: the name stays, the value goes. */
const credentialAssignment =
  /\b(aws_secret_access_key|secret_?access_?key|client_?secret|access_?token|session_?token|password)(["']?\s*[:=]\s*["']?)[^\s"',&]+/gi;

/** Replaces the given secrets and anything shaped like a credential with `[REDACTED]`. */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  }
  for (const pattern of credentialPatterns) out = out.replace(pattern, '[REDACTED]');
  return out.replace(credentialAssignment, (_match, name: string, separator: string) => `${name}${separator}[REDACTED]`);
}
