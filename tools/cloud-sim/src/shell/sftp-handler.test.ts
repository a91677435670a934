import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH, withSSHClient } from '@machine/driver-core/ssh';
import type ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../sim.ts';

let sim: Sim | undefined;
let directory: string | undefined;
afterEach(async () => {
  await sim?.close();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

function call<T>(run: (done: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value as T))));
}

describe('SFTP over the instance filesystem', () => {
  it('fastPut/fastGet, readdir, stat, mkdir, rename and remove see the same files as the shell', async () => {
    sim = await startSim({ providers: [], delays: { pendingMs: 5 } });
    const key = generateSSHKeyPair();
    const { instance, running } = sim.lifecycle.launch({ provider: 'test', kind: 'vm', id: 'i-1', name: 'files', authorizedKeys: [key.publicKey] });
    await running;
    directory = await mkdtemp(join(tmpdir(), 'cloud-sim-sftp-'));
    const local = join(directory, 'payload.bin');
    const payload = Buffer.alloc(200_000, 7);
    payload.write('header');
    await writeFile(local, payload);
    const target = { host: instance.publicIp, port: sim.sshPort, username: 'ubuntu', privateKey: key.privateKey };

    await withSSHClient(target, undefined, async (client) => {
      const sftp = await call<ssh2.SFTPWrapper>((done) => client.sftp(done));
      await call((done) => sftp.fastPut(local, 'payload.bin', done)); // relative: the user's home
      await call((done) => sftp.mkdir('/srv/app', done));
      await call((done) => sftp.rename('payload.bin', '/srv/app/payload.bin', done));
      const names = await call<ssh2.FileEntryWithStats[]>((done) => sftp.readdir('/srv/app', done));
      expect(names.map((entry) => [entry.filename, entry.attrs.size])).toEqual([['payload.bin', 200_000]]);
      const stats = await call<ssh2.Stats>((done) => sftp.stat('/srv/app', done));
      expect(stats.isDirectory()).toBe(true);
      await call((done) => sftp.fastGet('/srv/app/payload.bin', join(directory!, 'back.bin'), done));
      const missing = await call((done) => sftp.stat('/nope', done)).catch((error: { code?: number }) => error.code);
      expect(missing).toBe(2); // NO_SUCH_FILE
    });
    expect((await readFile(join(directory, 'back.bin'))).equals(payload)).toBe(true);
    expect(instance.filesystem.readFile('/srv/app/payload.bin').subarray(0, 6).toString()).toBe('header');
    const listing = await runSSH(target, 'ls -l /srv/app');
    expect(listing.stdout).toMatch(/-rw-r--r-- 1 root root 200000 .* payload\.bin\n$/);
  });
});
