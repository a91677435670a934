import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyClientFiles, writeServerCertificate } from './provisioning.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'machine-provisioning-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('certificate files in the machine folder', () => {
  it('server-key.pem and key.pem are 0600 even when an older file was readable by others, and no temp file is left', async () => {
    for (const file of ['server-key.pem', 'key.pem']) {
      await writeFile(join(dir, file), 'old', { mode: 0o644 });
      await chmod(join(dir, file), 0o644);
    }
    await writeServerCertificate(dir, { certPem: 'CERT\n', keyPem: 'SERVER KEY\n', sans: ['localhost'] });
    expect(await readFile(join(dir, 'server-key.pem'), 'utf8')).toBe('SERVER KEY\n');
    expect(await modeOf(join(dir, 'server-key.pem'))).toBe(0o600);

    const certs = await mkdtemp(join(tmpdir(), 'machine-certs-'));
    try {
      for (const [file, text] of [['ca.pem', 'CA\n'], ['cert.pem', 'CLIENT\n'], ['key.pem', 'CLIENT KEY\n']]) {
        await writeFile(join(certs, file as string), text as string, { mode: 0o600 });
      }
      const paths = { dir: certs, caCertPath: join(certs, 'ca.pem'), caKeyPath: join(certs, 'ca-key.pem'), clientCertPath: join(certs, 'cert.pem'), clientKeyPath: join(certs, 'key.pem') };
      await copyClientFiles(paths, dir);
    } finally {
      await rm(certs, { recursive: true, force: true });
    }
    expect(await readFile(join(dir, 'key.pem'), 'utf8')).toBe('CLIENT KEY\n');
    expect(await modeOf(join(dir, 'key.pem'))).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem', 'server-key.pem', 'server.pem']);
  });
});
