import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

/**
 * The machine's SSH host key, made on the host and handed to cloud-init (`ssh_keys`), so the very
 * first SSH connection can verify it. `@machine/driver-core/keys` has the same encoding, but it loads
 * ssh2 when imported and this function must stay synchronous and cheap to import.
 */

/** An ed25519 SSH host key in OpenSSH formats. */
export interface MachineHostKey {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` (openssh-key-v1, unencrypted). Never log it. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Generates an ed25519 host key with Node's crypto. */
export function generateHostKey(comment = 'machine'): MachineHostKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const publicBytes = Buffer.from(jwk.x ?? '', 'base64url');
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  if (publicBytes.length !== 32 || seed.length !== 32) throw new Error('ed25519 key export returned unexpected lengths');
  const blob = sshStrings('ssh-ed25519', publicBytes);
  return {
    privateKey: opensshPrivateKey(publicBytes, seed, comment),
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}

/** The unencrypted `openssh-key-v1` container for one ed25519 key (PROTOCOL.key in OpenSSH). */
function opensshPrivateKey(publicBytes: Buffer, seed: Buffer, comment: string): string {
  const check = randomBytes(4);
  const body = Buffer.concat([check, check, sshStrings('ssh-ed25519', publicBytes, Buffer.concat([seed, publicBytes]), comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (body.length % 8)) % 8 }, (_, index) => index + 1));
  const container = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshStrings('none', 'none', ''),
    uint32(1),
    sshStrings(sshStrings('ssh-ed25519', publicBytes)),
    sshStrings(Buffer.concat([body, padding])),
  ]);
  const lines = container.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function sshStrings(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((part) => {
    const data = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    return Buffer.concat([uint32(data.length), data]);
  }));
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}
