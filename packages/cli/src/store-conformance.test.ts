import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RateBucket, type RateBudgetEvent, SharedRateBudget } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockPath } from './lock.ts';
import { PostgresStore } from './postgres-store.ts';
import { type MachineRecord, MachineStore, type Store } from './store.ts';
import { startTestPostgres, type TestPostgres } from './test-support/postgres.ts';

/**
 * One conformance suite for both stores (issue 20): records with journals and intents, locks
 * (exclusive across store instances — hosts —, a crashed holder's lock released), concurrent
 * writers, a crash mid-write, files shared between hosts, and secrets.
 */

const storeKey = 'store-key-for-the-conformance-suite-0123456789';
let postgres: TestPostgres;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-store-conformance-'));
  postgres = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

function record(name: string, patch: Partial<MachineRecord> = {}): MachineRecord {
  return {
    version: 1,
    name,
    driver: 'fake',
    status: 'creating',
    createdAt: '2026-12-07T00:00:00.000Z',
    config: { region: 'local-1' },
    journal: [
      { kind: 'ssh-key', id: '123', preExisting: false, recordedAt: '2026-12-07T00:00:01.000Z', state: 'made', meta: { token: 'aa11bb22' } },
      { kind: 'droplet', id: 'cc33dd44', preExisting: false, recordedAt: '2026-12-07T00:00:02.000Z', state: 'intended', meta: { token: 'cc33dd44', name } },
    ],
    data: { region: 'local-1' },
    ...patch,
  } as MachineRecord;
}

/** A "host": its own local storage path, sharing the backend. */
type HostFactory = (env?: Record<string, string | undefined>) => Promise<Store>;

/**
 * Runs `body` in a child process (another "host" process) with `store`, a store of the same
 * backend as the test's: the folder at `root`, or PostgreSQL at `url` with a local path of its own.
 * `body` is a module's code using `store` and `driverCore`; what it prints is returned.
 */
function inChildProcess(target: { root: string } | { url: string; root: string }, body: string): Promise<string> {
  const source = (file: string) => JSON.stringify(new URL(file, import.meta.url).href);
  const open =
    'url' in target
      ? `const { PostgresStore } = await import(${source('./postgres-store.ts')}); const store = new PostgresStore(${JSON.stringify(target.url)}, ${JSON.stringify(target.root)}, {});`
      : `const { MachineStore } = await import(${source('./store.ts')}); const store = new MachineStore(${JSON.stringify(target.root)});`;
  const code = `${open}\nconst driverCore = await import('@machine/driver-core');\ntry {\n${body}\n} finally { await store.close(); }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', code], { cwd: join(import.meta.dirname, '..'), timeout: 120_000 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`child process failed: ${error.message}\n${stderr}`)),
    );
  });
}

/** Adds one to a counter kept in a bucket's `tokens`: what the atomicity test counts. */
const increment = '(state, now) => ({ state: { tokens: (state?.tokens ?? 0) + 1, at: now, blockedUntil: 0, factor: 1 }, result: undefined })';

const backends: [string, () => HostFactory][] = [
  [
    'file',
    () => {
      const shared = join(work, `file-${Math.random().toString(16).slice(2)}`);
      return async () => new MachineStore(shared);
    },
  ],
  [
    'postgres',
    () => {
      const database = postgres.url;
      return async (env = { MACHINE_STORE_KEY: storeKey }) => new PostgresStore(database, await mkdtemp(join(work, 'host-')), env);
    },
  ],
];

describe.each(backends)('the %s store', (kind, backend) => {
  let host: HostFactory;
  const opened: Store[] = [];
  const newHost = async (env?: Record<string, string | undefined>) => {
    const store = await host(env);
    opened.push(store);
    return store;
  };
  beforeAll(() => {
    host = backend();
  });
  afterAll(async () => {
    for (const store of opened) await store.close();
  });

  it('keeps records with their journal (intents included) and data; list, exists, remove', async () => {
    const store = await newHost();
    await store.create(record('alpha'));
    await store.create(record('beta', { status: 'ready' }));
    await expect(store.create(record('alpha'))).rejects.toThrow('Docker machine "alpha" already exists');
    expect(await store.list()).toEqual(['alpha', 'beta']);
    const read = await store.read('alpha');
    expect(read.journal).toEqual(record('alpha').journal);
    expect(read.data).toEqual({ region: 'local-1' });
    await store.write({ ...read, status: 'ready', data: { region: 'local-1', dropletId: 7 } });
    const other = await newHost();
    expect(await other.read('alpha')).toMatchObject({ status: 'ready', data: { dropletId: 7 } });
    await store.remove('beta');
    expect(await other.exists('beta')).toBe(false);
    await expect(other.read('beta')).rejects.toThrow('Docker machine "beta" does not exist');
    expect(await other.storeId()).toBe(await store.storeId());
    await expect(store.read('../x')).rejects.toThrow('machine name: "../x" may contain only');
  });

  it('one lock holder at a time across hosts; the lock is free again on release', async () => {
    const a = await newHost();
    const b = await newHost();
    await a.create(record('locked'));
    const held = await a.lock('locked');
    await expect(b.lock('locked')).rejects.toThrow(/machine "locked" is busy: .*process \d+/);
    await expect(b.lock('locked', { whenBusy: () => new Error('taken') })).rejects.toThrow('taken');
    expect(await b.lockHolder('locked')).toMatch(/process \d+/);
    await held.release();
    expect(await b.lockHolder('locked')).toBeUndefined();
    const again = await b.lock('locked');
    await again.release();
  });

  it("a crashed holder's lock is released", async () => {
    const a = await newHost();
    const b = await newHost();
    await a.create(record('crashed'));
    if (kind === 'file') {
      await mkdir(join(a.root, 'locks'), { recursive: true });
      await writeFile(lockPath(a.root, 'crashed'), String(2 ** 22 + 12345)); // a pid that is not alive
    } else {
      await a.lock('crashed');
      // The holder's connection dies with its process: the database releases the lock.
      await postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'machine process%' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')");
    }
    const taken = await b.lock('crashed');
    await taken.release();
  });

  it('concurrent writers never corrupt a record: the last complete write wins', async () => {
    const hosts = await Promise.all([newHost(), newHost(), newHost()]);
    await hosts[0]?.create(record('busy'));
    const base = await hosts[0]?.read('busy');
    await Promise.all(
      Array.from({ length: 30 }, (_, index) => (hosts[index % 3] as Store).write({ ...(base as MachineRecord), data: { writer: index, filler: 'x'.repeat(2000) } })),
    );
    const final = await hosts[1]?.read('busy');
    expect(typeof final?.data.writer).toBe('number');
    expect(final?.data.filler).toBe('x'.repeat(2000));
    expect(final?.journal).toEqual(record('busy').journal);
  });

  it('a crash mid-write leaves the previous record intact', async () => {
    const store = await newHost();
    await store.create(record('midway', { status: 'ready' }));
    if (kind === 'file') {
      // What a process killed between writing the temp file and the rename leaves.
      await writeFile(join(store.root, 'machines', 'midway', 'config.json.tmp-99999-deadbeef'), '{"truncated":');
    } else {
      // A transaction that never commits (its backend is killed mid-way).
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: postgres.url, application_name: 'crashing writer' });
      client.on('error', () => {});
      await client.connect();
      await client.query('BEGIN');
      await client.query(`UPDATE machine_records SET record = '{"truncated": true}' WHERE name = 'midway'`);
      await postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'crashing writer'");
      await client.end().catch(() => {});
    }
    expect(await (await newHost()).read('midway')).toMatchObject({ name: 'midway', status: 'ready', driver: 'fake' });
  });

  it("a machine's files (SSH key, known hosts) written on one host are there, 0600, on another", async () => {
    const a = await newHost();
    await a.create(record('files'));
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nconformance-secret-key-material\n-----END OPENSSH PRIVATE KEY-----\n';
    await writeFile(join(a.machineDir('files'), 'id_ed25519'), key, { mode: 0o600 });
    await writeFile(join(a.machineDir('files'), 'known_hosts'), 'machine-files ssh-ed25519 AAAA\n', { mode: 0o600 });
    await a.write(await a.read('files'));
    const b = await newHost();
    await b.open('files');
    expect(await readFile(join(b.machineDir('files'), 'id_ed25519'), 'utf8')).toBe(key);
    expect((await stat(join(b.machineDir('files'), 'id_ed25519'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(b.machineDir('files'), 'known_hosts'), 'utf8')).toBe('machine-files ssh-ed25519 AAAA\n');
    // The CA and client certificate are shared the same way.
    await a.withCerts(async (dir) => writeFile(join(dir, 'ca-key.pem'), 'conformance-ca-private-key\n', { mode: 0o600 }));
    expect(await readFile(join(await b.certsDir(), 'ca-key.pem'), 'utf8')).toBe('conformance-ca-private-key\n');
  });

  it('rate buckets: a new bucket starts full, then its requests wait for their slots', async () => {
    const store = await newHost();
    const seen: (number | undefined)[] = [];
    await store.rateBuckets().update('conformance:new', (state, now) => {
      seen.push(state?.tokens);
      return { state: { tokens: 1, at: now, blockedUntil: 0, factor: 1 }, result: undefined };
    });
    expect(seen).toEqual([undefined]);
    const events: RateBudgetEvent[] = [];
    const budget = new SharedRateBudget(store.rateBuckets(), { onEvent: (event) => events.push(event) });
    const bucket: RateBucket = { key: 'conformance:full', limit: { burst: 3, perSecond: 0.01 } };
    for (let index = 0; index < 3; index++) await budget.take(bucket);
    expect(events).toEqual([]);
    const aborted = new AbortController();
    const fourth = budget.take(bucket, aborted.signal);
    await expect.poll(() => events.length).toBe(1);
    aborted.abort();
    await expect(fourth).rejects.toThrow('cancelled');
    expect(events[0]).toMatchObject({ kind: 'wait', bucket });
    expect(events[0]?.ms).toBeGreaterThan(50_000); // 100 s a token at 0.01 a second, minus the time passed
  });

  it('rate buckets are atomic under concurrent updates from several processes (4 × 200 increments = 800)', { timeout: 180_000 }, async () => {
    const store = await newHost();
    const target = kind === 'file' ? { root: store.root } : { url: postgres.url, root: await mkdtemp(join(work, 'host-')) };
    const body = `const buckets = store.rateBuckets(); for (let i = 0; i < 200; i++) await buckets.update('conformance:counter', ${increment});`;
    // Each child process also races its own updates (8 at a time), as a command's parallel creates do.
    const racing = `const buckets = store.rateBuckets(); await Promise.all(Array.from({ length: 8 }, async () => { for (let i = 0; i < 25; i++) await buckets.update('conformance:counter', ${increment}); }));`;
    await Promise.all([inChildProcess(target, body), inChildProcess(target, body), inChildProcess(target, racing), inChildProcess(target, racing)]);
    const counted = await store.rateBuckets().update('conformance:counter', (state) => ({ state: state as NonNullable<typeof state>, result: state?.tokens }));
    expect(counted).toBe(800);
  });

  it('two SharedRateBudgets in separate processes on one store share one budget: the second waits', { timeout: 120_000 }, async () => {
    const store = await newHost();
    const bucket: RateBucket = { key: 'conformance:shared', limit: { burst: 2, perSecond: 0.01 } };
    const events: RateBudgetEvent[] = [];
    const first = new SharedRateBudget(store.rateBuckets(), { onEvent: (event) => events.push(event) });
    await first.take(bucket);
    await first.take(bucket);
    expect(events).toEqual([]); // the burst was there for this process
    const target = kind === 'file' ? { root: store.root } : { url: postgres.url, root: await mkdtemp(join(work, 'host-')) };
    const output = await inChildProcess(
      target,
      `const aborted = new AbortController();
       const budget = new driverCore.SharedRateBudget(store.rateBuckets(), { onEvent: (event) => { console.log(JSON.stringify(event)); aborted.abort(); } });
       await budget.take(${JSON.stringify(bucket)}, aborted.signal).catch((error) => console.log(JSON.stringify({ ended: error.message })));`,
    );
    const [waited, ended] = output.trim().split('\n').map((line) => JSON.parse(line) as { kind?: string; ms?: number; ended?: string });
    expect(waited).toMatchObject({ kind: 'wait' });
    expect(waited?.ms).toBeGreaterThan(50_000); // the slot after the first process's two: 100 s a token
    expect(ended?.ended).toMatch(/cancelled/);
  });

  if (kind === 'postgres') {
    it('keeps no secret in clear in the database, and needs MACHINE_STORE_KEY for them (one line), the right one', async () => {
      const dump = await postgres.dump();
      expect(dump).toContain('machine_records');
      for (const secret of ['conformance-secret-key-material', 'OPENSSH PRIVATE KEY', 'conformance-ca-private-key', 'machine-store-key-check', storeKey]) expect(dump).not.toContain(secret);
      const keyless = await newHost({});
      expect((await keyless.read('files')).name).toBe('files'); // records need no key
      await expect(keyless.open('files')).rejects.toThrow('this store keeps SSH keys and certificates encrypted: set MACHINE_STORE_KEY');
      const wrong = await newHost({ MACHINE_STORE_KEY: 'another-key-that-is-long-enough' });
      await expect(wrong.open('files')).rejects.toThrow('MACHINE_STORE_KEY does not open the key check in this store');
      const keyFile = join(work, 'store.key');
      await writeFile(keyFile, `${storeKey}\n`, { mode: 0o600 });
      const fromFile = await newHost({ MACHINE_STORE_KEY: keyFile });
      await fromFile.open('files');
      expect(await readdir(fromFile.machineDir('files'))).toEqual(['id_ed25519', 'known_hosts']);
    });

    it('holds at most 16 machine locks (a connection each) at once per process: the next waits its turn', async () => {
      const store = await newHost();
      const held = await Promise.all(Array.from({ length: 16 }, (_, index) => store.lock(`slot-${index}`)));
      let seventeenth = false;
      const next = store.lock('slot-16').then((lock) => {
        seventeenth = true;
        return lock;
      });
      expect(await store.lockHolder('slot-15')).toMatch(/process \d+/); // a round trip to the database
      expect(seventeenth).toBe(false);
      expect(await store.lockHolder('slot-16')).toBeUndefined();
      await held[0]?.release();
      const lock = await next;
      expect(await store.lockHolder('slot-16')).toMatch(/process \d+/);
      for (const each of [lock, ...held]) await each.release();
    });

    it('leaves no clear copy behind after close', async () => {
      const store = await newHost();
      await store.open('files');
      const dir = store.machineDir('files');
      await store.close();
      await expect(stat(dir)).rejects.toThrow();
    });
  }
});
