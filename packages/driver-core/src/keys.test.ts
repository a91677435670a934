import { execFileSync } from 'node:child_process';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from './errors/invalid-config-error.ts';
import { generateSSHKeyPair, loadSSHPrivateKey, parsePublicKeyLine, writeSSHKeyPair } from './keys.ts';

function hasSshKeygen(): boolean {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return true;
}

describe('SSH keys', () => {
  it.each(['ed25519', 'rsa'] as const)('generates %s keys that ssh2 parses and that sign/verify', (type) => {
    const pair = generateSSHKeyPair({ type, bits: 2048, comment: 'web1' });
    const privateKey = ssh2.utils.parseKey(pair.privateKey);
    if (privateKey instanceof Error || Array.isArray(privateKey)) throw new Error('private key did not parse');
    const publicKey = ssh2.utils.parseKey(pair.publicKey);
    if (publicKey instanceof Error || Array.isArray(publicKey)) throw new Error('public key did not parse');
    expect(privateKey.getPublicSSH().equals(publicKey.getPublicSSH())).toBe(true);
    const data = Buffer.from('challenge');
    expect(publicKey.verify(data, privateKey.sign(data))).toBe(true);
    expect(pair.publicKey.endsWith(' web1')).toBe(true);
    expect(pair.sha256Fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(pair.md5Fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  });

  it('generates a different key every time', () => {
    expect(generateSSHKeyPair().publicKey).not.toBe(generateSSHKeyPair().publicKey);
  });

  it('writes the private key 0600 and the public key beside it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    const path = await writeSSHKeyPair(dir, generateSSHKeyPair());
    expect(path).toBe(join(dir, 'id_ed25519'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}.pub`)).mode & 0o777).toBe(0o644);
  });

  it.runIf(hasSshKeygen())('OpenSSH reads the ed25519 private key and derives the same public key and fingerprint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    const pair = generateSSHKeyPair({ comment: 'x' });
    const path = await writeSSHKeyPair(dir, pair);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' });
    expect(fingerprint).toContain(pair.sha256Fingerprint);
  });

  it('loads a user key and derives its public key line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    const pair = generateSSHKeyPair();
    const path = await writeSSHKeyPair(dir, pair);
    const loaded = await loadSSHPrivateKey(path);
    expect(loaded.publicKey).toBe(pair.publicKey.split(' ').slice(0, 2).join(' '));
    expect(loaded.sha256Fingerprint).toBe(pair.sha256Fingerprint);
    expect(parsePublicKeyLine(pair.publicKey).type).toBe('ssh-ed25519');
  });

  it('parses public key lines of both types and refuses malformed ones', () => {
    const rsa = generateSSHKeyPair({ type: 'rsa', bits: 2048 });
    expect(parsePublicKeyLine(rsa.publicKey).type).toBe('ssh-rsa');
    const [type, data] = generateSSHKeyPair().publicKey.split(' ') as [string, string];
    expect(parsePublicKeyLine(`${type} ${data}`).blob.length).toBe(51);
    expect(() => parsePublicKeyLine('ssh-ed25519')).toThrow(/not an OpenSSH public key line/);
    expect(() => parsePublicKeyLine('ssh-ed25519 not*base64')).toThrow(/not base64/);
    expect(() => parsePublicKeyLine(`ssh-rsa ${data}`)).toThrow(/says ssh-rsa but the key is ssh-ed25519/);
    expect(() => parsePublicKeyLine(`ssh-ed25519 ${Buffer.from(data, 'base64').subarray(0, 40).toString('base64')}`)).toThrow(/malformed/);
  });

  it('importing the keys module does not load ssh2', () => {
    const script = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
await import('./src/keys.ts');
process.stdout.write(JSON.stringify(seen));`;
    const output = execFileSync(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
    });
    expect((JSON.parse(output) as string[]).filter((url) => url.includes('ssh2'))).toEqual([]);
  });

  it('refuses missing, world-readable and non-key files with the flag name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    await expect(loadSSHPrivateKey(join(dir, 'missing'), 'generic-ssh-key')).rejects.toThrow(/--generic-ssh-key: cannot read .*ENOENT/);
    const open = join(dir, 'open');
    await writeFile(open, generateSSHKeyPair().privateKey, { mode: 0o644 });
    await expect(loadSSHPrivateKey(open)).rejects.toThrow(/readable by others .*chmod 600/);
    const junk = join(dir, 'junk');
    await writeFile(junk, 'not a key', { mode: 0o600 });
    const error = await loadSSHPrivateKey(junk).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toMatch(/is not an SSH private key/);
  });
});
