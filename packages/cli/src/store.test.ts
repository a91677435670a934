import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockHolder, lockMachine, lockPath } from './lock.ts';
import { atomicWrite, type MachineRecord, MachineStore, sortNames, storagePath } from './store.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'machine-store-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function record(name: string, patch: Partial<MachineRecord> = {}): MachineRecord {
  return { version: 1, name, driver: 'fake', status: 'ready', createdAt: '2026-01-01T00:00:00.000Z', config: {}, journal: [], data: {}, ...patch };
}

describe('storage path', () => {
  it('is --storage-path, then MACHINE_STORAGE_PATH, then ~/.machine', () => {
    expect(storagePath('/opt/m', { MACHINE_STORAGE_PATH: '/env/m' })).toBe('/opt/m');
    expect(storagePath(undefined, { MACHINE_STORAGE_PATH: '/env/m' })).toBe('/env/m');
    expect(storagePath(undefined, { HOME: '/home/u' })).toBe('/home/u/.machine');
  });
});

describe('MachineStore', () => {
  it('writes config.json 0600 atomically, applying the writes of one machine in order', async () => {
    const store = new MachineStore(root);
    const machine = record('m1');
    await store.create(machine);
    const writes = Array.from({ length: 20 }, (_, index) => store.write({ ...machine, data: { step: index } }));
    await Promise.all(writes);
    const saved = JSON.parse(await readFile(store.configPath('m1'), 'utf8'));
    expect(saved.data).toEqual({ step: 19 });
    expect((await stat(store.configPath('m1'))).mode & 0o777).toBe(0o600);
    expect((await stat(store.machineDir('m1'))).mode & 0o777).toBe(0o700);
    expect(await readdir(store.machineDir('m1'))).toEqual(['config.json']);
  });

  it('never rewrites the file in place, and cleans up its temp file when the rename fails', async () => {
    const path = join(root, 'config.json');
    await atomicWrite(path, 'old');
    const before = (await stat(path)).ino;
    await atomicWrite(path, 'new');
    // A new inode: the old file was replaced whole by a rename, never truncated and rewritten,
    // so a crash at any point leaves either the old or the new content.
    expect((await stat(path)).ino).not.toBe(before);
    expect(await readFile(path, 'utf8')).toBe('new');
    const blocked = join(root, 'blocked');
    await mkdir(join(blocked, 'inside'), { recursive: true });
    await expect(atomicWrite(blocked, 'x')).rejects.toThrow();
    expect((await readdir(root)).sort()).toEqual(['blocked', 'config.json']);
  });

  it('lists machine folders naturally sorted, ignoring dot folders and folders with invalid names', async () => {
    const store = new MachineStore(root);
    for (const name of ['m10', 'm2', 'm1']) await store.create(record(name));
    for (const planted of ['M1', '.trash', 'a.b']) await mkdir(join(store.machinesDir, planted));
    await expect(store.create(record('.trash'))).rejects.toThrow('machine name: ".trash" may contain only a-z, 0-9 and "-"');
    expect(await store.list()).toEqual(['m1', 'm2', 'm10']);
    expect(sortNames(['b', 'a10', 'a9'])).toEqual(['a9', 'a10', 'b']);
  });

  it('reports a missing machine and a corrupt config.json differently', async () => {
    const store = new MachineStore(root);
    await expect(store.read('nope')).rejects.toThrow('Docker machine "nope" does not exist');
    await store.create(record('bad'));
    await writeFile(store.configPath('bad'), '{"driver": 1}');
    await expect(store.read('bad')).rejects.toThrow('config.json of machine "bad" is corrupt (no driver or config)');
  });
});

describe('machine locks', () => {
  it('is exclusive while held and free after release', async () => {
    const lock = await lockMachine(root, 'm1');
    expect(await lockHolder(root, 'm1')).toBe(process.pid);
    await expect(lockMachine(root, 'm1')).rejects.toThrow('(this one) is working on it');
    await lock.release();
    expect(await lockHolder(root, 'm1')).toBeUndefined();
    await (await lockMachine(root, 'm1')).release();
  });

  it('takes over a stale lock whose process is gone, and refuses a live one', async () => {
    await lockMachine(root, 'warm').then((lock) => lock.release());
    await writeFile(lockPath(root, 'stale'), '999999');
    const lock = await lockMachine(root, 'stale');
    expect(await readFile(lockPath(root, 'stale'), 'utf8')).toBe(String(process.pid));
    await lock.release();
    await writeFile(lockPath(root, 'live'), String(process.ppid));
    await expect(lockMachine(root, 'live')).rejects.toThrow(`machine "live" is busy: process ${process.ppid} is working on it`);
  });

  it('does not take over a lock file another process has created but not written its pid to yet', async () => {
    // The old open-then-write lock left such a file for a moment: reading no pid, a second process
    // took it for stale, deleted it and took the lock too (seen with four concurrent processes).
    await mkdir(join(root, 'locks'), { recursive: true });
    await writeFile(lockPath(root, 'fresh'), '');
    await expect(lockMachine(root, 'fresh')).rejects.toThrow('stays without a process id');
    expect(await readFile(lockPath(root, 'fresh'), 'utf8')).toBe('');
    // One left empty long ago by a crash is stale.
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(lockPath(root, 'fresh'), longAgo, longAgo);
    const lock = await lockMachine(root, 'fresh');
    expect(await readFile(lockPath(root, 'fresh'), 'utf8')).toBe(String(process.pid));
    await lock.release();
    expect((await readdir(join(root, 'locks'))).filter((entry) => entry.startsWith('fresh'))).toEqual([]);
  });
});
