import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from './test-support/postgres.ts';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/**
 * `machine store migrate`: folder → PostgreSQL → folder, with every machine usable on the other
 * side (ls, ssh with the migrated key, rm through the migrated journal), the source untouched.
 */
let postgres: TestPostgres;
let cli: CliHarness;
let work: string;
const key = 'migrate-test-store-key-0123456789abcdef';

beforeAll(async () => {
  postgres = await startTestPostgres();
  cli = await cliHarness();
  work = await mkdtemp(join(tmpdir(), 'machine-migrate-'));
}, 120_000);
afterAll(async () => {
  await cli?.close();
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('machine store migrate', { timeout: 120_000 }, () => {
  it('copies every machine to PostgreSQL and back, verified; both copies work; the source is unchanged', async () => {
    for (const name of ['m1', 'm2']) expect((await cli.run(['create', '-d', 'fake', '--no-provision', name])).code).toBe(0);
    const sourceRecord = await readFile(join(cli.storage, 'machines', 'm1', 'config.json'), 'utf8');
    const env = { MACHINE_STORE_KEY: key };

    const migrated = await cli.run(['store', 'migrate', '--to', postgres.url], { env });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/^Copied 2 machine\(s\) \(\d+ file\(s\)\) and the CA and client certificate \(\d+ file\(s\)\) to postgresql:\/\/.*; 0 were there already\. Every record and file reads back the same\. The source store is unchanged\.\n$/);
    expect(await readFile(join(cli.storage, 'machines', 'm1', 'config.json'), 'utf8')).toBe(sourceRecord);
    // Again: nothing to copy, nothing changes.
    expect((await cli.run(['store', 'migrate', '--to', postgres.url], { env })).stdout).toContain('Copied 0 machine(s)');

    const pg = ['--store', postgres.url];
    expect(await cli.run([...pg, 'ls', '-q'], { env })).toMatchObject({ code: 0, stdout: 'm1\nm2\n' });
    // The SSH key and pinned host key came along (encrypted), so ssh works from the shared store.
    expect(await cli.run([...pg, '--native-ssh', 'ssh', 'm1', '--', 'echo', 'from-postgres'], { env })).toMatchObject({ code: 0, stdout: 'from-postgres\n' });
    // Without the key: records are readable, secrets are not.
    expect((await cli.run([...pg, 'ls', '-q'])).stdout).toBe('m1\nm2\n');
    const keyless = await cli.run([...pg, '--native-ssh', 'ssh', 'm1', '--', 'true']);
    expect(keyless).toMatchObject({ code: 1, stderr: 'this store keeps SSH keys and certificates encrypted: set MACHINE_STORE_KEY (the key, or the path of a file holding it) to use them\n' });

    // And back to a folder.
    const back = join(work, 'back');
    const returned = await cli.run([...pg, 'store', 'migrate', '--to', back], { env });
    expect(returned.code, returned.stderr).toBe(0);
    expect(await cli.run(['-s', back, 'ls', '-q'])).toMatchObject({ stdout: 'm1\nm2\n' });
    expect(JSON.parse(await readFile(join(back, 'machines', 'm1', 'config.json'), 'utf8'))).toEqual(JSON.parse(sourceRecord));
    expect(await cli.run(['-s', back, '--native-ssh', 'ssh', 'm2', '--', 'echo', 'from-folder'])).toMatchObject({ code: 0, stdout: 'from-folder\n' });

    // rm through the migrated journal deletes the cloud resources.
    expect((await cli.run([...pg, 'rm', '-y', 'm1', 'm2'], { env })).code).toBe(0);
    expect(cli.cloud.leaks()).toEqual([]);
    expect((await cli.run([...pg, 'ls', '-q'], { env })).stdout).toBe('');
  });

  it('refuses a target that has another machine of the same name, copying nothing', async () => {
    const other = await cliHarness({ cloud: cli.cloud });
    try {
      expect((await other.run(['create', '-d', 'fake', '--no-provision', 'dup'])).code).toBe(0);
      expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'dup'])).code).toBe(0);
      expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'solo'])).code).toBe(0);
      const refused = await cli.run(['store', 'migrate', '--to', other.storage]);
      expect(refused).toMatchObject({ code: 1, stderr: 'the target already has other machines named dup; nothing was copied (remove them there, or migrate to an empty store)\n' });
      expect((await other.run(['ls', '-q'])).stdout).toBe('dup\n');
      for (const harness of [cli, other]) expect((await harness.run(['rm', '-y', ...(harness === cli ? ['dup', 'solo'] : ['dup'])])).code).toBe(0);
    } finally {
      await other.close();
    }
  });
});
