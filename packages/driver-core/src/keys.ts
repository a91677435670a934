import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidConfigError } from './errors/invalid-config-error.ts';

/** Key algorithms: ed25519 by default; RSA where a provider still needs it. */
export type KeyType = 'ed25519' | 'rsa';

/** An SSH key pair in OpenSSH formats. */
export interface SSHKeyPair {
  readonly type: KeyType;
  /** Private key: `openssh-key-v1` for ed25519, PKCS#1 PEM for RSA. Never log it. */
  readonly privateKey: string;
  /** Public key line: `ssh-ed25519 AAAA… comment`. */
  readonly publicKey: string;
  /** `SHA256:…` fingerprint, as `ssh-keygen -l` prints it. */
  readonly sha256Fingerprint: string;
  /** Colon-separated MD5 fingerprint, as DigitalOcean and older tools print it. */
  readonly md5Fingerprint: string;
}

/** Generates a key pair with Node's crypto. `comment` ends the public key line. */
export function generateSSHKeyPair(options: { type?: KeyType; bits?: number; comment?: string } = {}): SSHKeyPair {
  const type = options.type ?? 'ed25519';
  const comment = options.comment ?? 'machine';
  if (type === 'rsa') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: options.bits ?? 4096 });
    const jwk = publicKey.export({ format: 'jwk' });
    const blob = sshString('ssh-rsa', mpint(fromBase64Url(jwk.e)), mpint(fromBase64Url(jwk.n)));
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    return pair('rsa', pem, 'ssh-rsa', blob, comment);
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = fromBase64Url(jwk.x);
  const seed = fromBase64Url(jwk.d);
  const blob = sshString('ssh-ed25519', pub);
  return pair('ed25519', opensshEd25519(pub, seed, comment), 'ssh-ed25519', blob, comment);
}

/** Writes `<dir>/<basename>` (0600) and `<dir>/<basename>.pub` (0644); returns the private key path. */
export async function writeSSHKeyPair(dir: string, keyPair: SSHKeyPair, basename = `id_${keyPair.type}`): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, basename);
  await writeFile(path, keyPair.privateKey, { mode: 0o600 });
  await chmod(path, 0o600); // the file may have existed with wider permissions
  await writeFile(`${path}.pub`, `${keyPair.publicKey}\n`, { mode: 0o644 });
  return path;
}

/** A user-supplied key, loaded and checked. */
export interface LoadedSSHKey {
  readonly path: string;
  readonly privateKey: string;
  /** Public key line derived from the private key. */
  readonly publicKey: string;
  readonly sha256Fingerprint: string;
  readonly md5Fingerprint: string;
}

/**
 * Loads a private key the user points at (OpenSSH, PKCS#1 or PKCS#8 PEM). Throws InvalidConfigError
 * naming `flag` when the file is missing, unreadable, not a key, passphrase-protected, or readable by
 * others.
 */
export async function loadSSHPrivateKey(path: string, flag = 'ssh-key'): Promise<LoadedSSHKey> {
  const fail = (message: string): never => {
    throw new InvalidConfigError([{ flag, message }], { operation: 'config' });
  };
  let text = '';
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) fail(`${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (InvalidConfigError.isInstance(error)) throw error;
    fail(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  // ssh2 is loaded here, not at import, so key generation stays cheap to import.
  const { default: ssh2 } = await import('ssh2');
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    fail(encrypted ? `${path} is protected by a passphrase; use an ssh-agent or a key without one` : `${path} is not an SSH private key`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error || !key.isPrivateKey()) return fail(`${path} is not an SSH private key`);
  const blob = key.getPublicSSH();
  return {
    path,
    privateKey: text,
    publicKey: `${key.type} ${blob.toString('base64')}`,
    sha256Fingerprint: sha256Fingerprint(blob),
    md5Fingerprint: md5Fingerprint(blob),
  };
}

/** Parses a public key line (`type base64 [comment]`) into its wire blob; throws on a malformed line. */
export function parsePublicKeyLine(line: string): { type: string; blob: Buffer } {
  const [type, data] = line.trim().split(/\s+/);
  if (type === undefined || data === undefined) throw new Error('not an OpenSSH public key line');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) throw new Error('not an OpenSSH public key line: the key is not base64');
  const blob = Buffer.from(data, 'base64');
  const fields = sshStringFields(blob);
  if (fields === undefined || fields.length < 2) throw new Error('not an OpenSSH public key line: the key blob is malformed');
  const blobType = fields[0]?.toString('latin1');
  if (blobType !== type) throw new Error(`not an OpenSSH public key line: the line says ${type} but the key is ${blobType}`);
  if (type === 'ssh-ed25519' && (fields.length !== 2 || fields[1]?.length !== 32)) throw new Error('not an OpenSSH public key line: an ed25519 key has 32 bytes');
  return { type, blob };
}

/** The length-prefixed strings of an SSH wire blob, or undefined when a length runs past the end. */
function sshStringFields(blob: Buffer): Buffer[] | undefined {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) return undefined;
    const length = blob.readUInt32BE(offset);
    if (offset + 4 + length > blob.length) return undefined;
    fields.push(blob.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return fields;
}

/** `SHA256:…` fingerprint of a public key wire blob. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** `aa:bb:…` MD5 fingerprint of a public key wire blob. */
export function md5Fingerprint(blob: Buffer): string {
  return (createHash('md5').update(blob).digest('hex').match(/../g) ?? []).join(':');
}

function pair(type: KeyType, privateKey: string, algorithm: string, blob: Buffer, comment: string): SSHKeyPair {
  return {
    type,
    privateKey,
    publicKey: `${algorithm} ${blob.toString('base64')} ${comment}`,
    sha256Fingerprint: sha256Fingerprint(blob),
    md5Fingerprint: md5Fingerprint(blob),
  };
}

/** The `openssh-key-v1` container (unencrypted) for one ed25519 key. */
function opensshEd25519(pub: Buffer, seed: Buffer, comment: string): string {
  const check = randomBytes(4);
  const body = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519', pub, Buffer.concat([seed, pub]), comment),
  ]);
  const padLength = (8 - (body.length % 8)) % 8;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, index) => index + 1));
  const container = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none', 'none', ''),
    uint32(1),
    sshString(sshString('ssh-ed25519', pub)),
    sshString(Buffer.concat([body, padding])),
  ]);
  const lines = container.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function sshString(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    parts.map((part) => {
      const data = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
      return Buffer.concat([uint32(data.length), data]);
    }),
  );
}

function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

function mpint(data: Buffer): Buffer {
  let start = 0;
  while (start < data.length - 1 && data[start] === 0) start++;
  const trimmed = data.subarray(start);
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

function fromBase64Url(value: string | undefined): Buffer {
  if (value === undefined) throw new Error('key export is missing a component');
  return Buffer.from(value, 'base64url');
}
