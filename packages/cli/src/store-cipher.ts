import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { CliError } from './cli-error.ts';

/**
 * Secrets at rest in a shared store: AES-256-GCM (node:crypto) under a key derived with scrypt
 * from `MACHINE_STORE_KEY` (the key itself, or the path of a file holding it) and the store's salt.
 * A blob is `iv (12) | tag (16) | ciphertext`; a wrong key or a changed blob fails authentication.
 */
export class StoreCipher {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** The cipher for this store's salt, from `MACHINE_STORE_KEY`; undefined when it is not set. */
  static async fromEnv(env: Readonly<Record<string, string | undefined>>, salt: string): Promise<StoreCipher | undefined> {
    const secret = storeKeyMaterial(env);
    if (secret === undefined) return undefined;
    const key = await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, Buffer.from(salt, 'hex'), 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (error, derived) => (error === null ? resolve(derived) : reject(error))),
    );
    return new StoreCipher(key);
  }

  encrypt(plain: Buffer): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]);
  }

  /** The plaintext; a blob this key did not make is one CliError naming `what`. */
  decrypt(blob: Buffer, what: string): Buffer {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, blob.subarray(0, 12));
      decipher.setAuthTag(blob.subarray(12, 28));
      return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
    } catch {
      throw new CliError(`MACHINE_STORE_KEY does not open ${what} in this store (it was written with another key)`);
    }
  }

  /** A keyed digest of a plaintext, to tell whether a file changed without keeping its hash in clear. */
  mac(plain: Buffer): string {
    return createHmac('sha256', this.#key).update(plain).digest('hex');
  }
}

/** The key material of `MACHINE_STORE_KEY`: its value, or the content of the file it names. */
export function storeKeyMaterial(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const value = env.MACHINE_STORE_KEY;
  if (value === undefined || value === '') return undefined;
  if ((value.startsWith('/') || value.startsWith('.')) && existsSync(value)) {
    const fromFile = readFileSync(value, 'utf8').trim();
    if (fromFile === '') throw new CliError(`MACHINE_STORE_KEY names ${value}, which is empty`);
    return fromFile;
  }
  if (value.length < 16) throw new CliError('MACHINE_STORE_KEY is too short: use at least 16 characters (e.g. `openssl rand -hex 32`), or the path of a file holding it');
  return value;
}

/** The one line for a command that needs a secret of the store without the key. */
export function missingStoreKey(): CliError {
  return new CliError('this store keeps SSH keys and certificates encrypted: set MACHINE_STORE_KEY (the key, or the path of a file holding it) to use them');
}
