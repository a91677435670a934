import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertValidMachineName, type RateBucketStore } from '@machine/driver-core';
import type pg from 'pg';
import { CliError, machineExists, machineNotFound } from './cli-error.ts';
import { processAlive } from './lock.ts';
import { PostgresRateBucketStore } from './rate-budget-postgres-store.ts';
import { type MachineRecord, parseRecord, type Store, type StoreLock, sortNames } from './store.ts';
import { missingStoreKey, StoreCipher } from './store-cipher.ts';

/** Machine locks (a connection each) one process holds at once; more wait for a turn. */
const maxMachineLocks = 16;
/** A file larger than this stays on the host that made it (a VirtualBox disk is no shared secret). */
const maxSharedFileBytes = 1024 * 1024;
/** The files of a machine that are the record itself, not a file to share. */
const recordFiles = new Set(['config.json']);

/**
 * The machine store in PostgreSQL (`MACHINE_STORE=postgres://…` or `--store`), shared by several
 * hosts. Records (journals with their intents, driver data) are rows; every file of a machine folder
 * (SSH keys, known hosts, certificate copies) and the store's CA and client certificate are
 * AES-256-GCM ciphertext under `MACHINE_STORE_KEY`. While a command runs, a machine's files live in a
 * private folder of this process under the local storage path (0700, files 0600), removed when the
 * command ends (and, after a crash, by the next command). Locks are PostgreSQL advisory locks held
 * on a connection of their own: a crashed holder's lock is released by the database. The schema is
 * versioned with node-pg-migrate (MIT), applied on first use under its advisory lock.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly root: string;
  readonly #url: string;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #work: string;
  #ready: Promise<{ pool: pg.Pool; storeId: string; salt: string }> | undefined;
  #cipher: Promise<StoreCipher | undefined> | undefined;
  /** Per machine (or '' for the certificates): path → mac of the content in the database. */
  readonly #synced = new Map<string, Map<string, string>>();
  readonly #pending = new Map<string, Promise<void>>();
  #certsLoaded = false;
  #rateBuckets: PostgresRateBucketStore | undefined;
  readonly #lockSlots = new Slots(maxMachineLocks);

  constructor(url: string, root: string, env: Readonly<Record<string, string | undefined>>) {
    this.#url = url;
    this.root = root;
    this.#env = env;
    this.#work = join(root, '.work', `${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /** The connection string without its password, for messages. */
  get displayUrl(): string {
    return this.#url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  }

  #db(): Promise<{ pool: pg.Pool; storeId: string; salt: string }> {
    this.#ready ??= this.#connect();
    return this.#ready;
  }

  async #connect(): Promise<{ pool: pg.Pool; storeId: string; salt: string }> {
    const { default: pgModule } = await import('pg');
    const pool = new pgModule.Pool({ connectionString: this.#url, max: 8, application_name: applicationName() });
    pool.on('error', () => {}); // an idle client that lost its server: the next query says so
    try {
      const client = await pool.connect();
      try {
        const { runner } = await import('node-pg-migrate');
        await runner({
          dbClient: client,
          dir: fileURLToPath(new URL('../migrations', import.meta.url)),
          direction: 'up',
          migrationsTable: 'machine_store_migrations',
          advisoryLockMode: 'wait',
          singleTransaction: true,
          log: () => {},
        });
        const defaults = [
          ['store-id', Array.from(randomBytes(12), (byte) => 'abcdefghijklmnopqrstuvwxyz0123456789'[byte % 36]).join('')],
          ['kdf-salt', randomBytes(16).toString('hex')],
        ];
        for (const [key, value] of defaults) await client.query('INSERT INTO machine_store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
        const meta = new Map((await client.query<{ key: string; value: string }>('SELECT key, value FROM machine_store_meta')).rows.map((row) => [row.key, row.value]));
        await this.#removeStaleWork();
        return { pool, storeId: meta.get('store-id') as string, salt: meta.get('kdf-salt') as string };
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      if (error instanceof CliError) throw error;
      throw new CliError(`cannot use the machine store at ${this.displayUrl}: ${(error as Error).message}`, 1, { cause: error });
    }
  }

  /** The store's cipher; checks the key against the store's key check (set by the first writer). */
  #cipherOrUndefined(): Promise<StoreCipher | undefined> {
    this.#cipher ??= (async () => {
      const { pool, salt } = await this.#db();
      const cipher = await StoreCipher.fromEnv(this.#env, salt);
      if (cipher === undefined) return undefined;
      const check = Buffer.from('machine-store-key-check');
      const inserted = await pool.query('INSERT INTO machine_store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', ['key-check', cipher.encrypt(check).toString('base64')]);
      if (inserted.rowCount === 0) {
        const stored = await pool.query<{ value: string }>('SELECT value FROM machine_store_meta WHERE key = $1', ['key-check']);
        cipher.decrypt(Buffer.from(stored.rows[0]?.value ?? '', 'base64'), 'the key check');
      }
      return cipher;
    })();
    return this.#cipher;
  }

  async #requireCipher(): Promise<StoreCipher> {
    const cipher = await this.#cipherOrUndefined();
    if (cipher === undefined) throw missingStoreKey();
    return cipher;
  }

  machineDir(name: string): string {
    assertValidMachineName(name);
    return join(this.#work, 'machines', name);
  }

  async list(): Promise<string[]> {
    const { pool } = await this.#db();
    return sortNames((await pool.query<{ name: string }>('SELECT name FROM machine_records')).rows.map((row) => row.name));
  }

  async exists(name: string): Promise<boolean> {
    assertValidMachineName(name);
    const { pool } = await this.#db();
    return ((await pool.query('SELECT 1 FROM machine_records WHERE name = $1', [name])).rowCount ?? 0) > 0;
  }

  async read(name: string): Promise<MachineRecord> {
    assertValidMachineName(name);
    const { pool } = await this.#db();
    const row = (await pool.query<{ record: unknown }>('SELECT record FROM machine_records WHERE name = $1', [name])).rows[0];
    if (row === undefined) throw machineNotFound(name);
    return parseRecord(name, JSON.stringify(row.record), `${this.displayUrl} (machine_records ${name})`);
  }

  async open(name: string): Promise<MachineRecord> {
    const record = await this.read(name);
    await this.#materialize(name, this.machineDir(name));
    return record;
  }

  /** Writes the files stored for `owner` ('' = certificates) into `dir`, decrypted, 0600. */
  async #materialize(owner: string, dir: string): Promise<void> {
    const { pool } = await this.#db();
    const rows = (await pool.query<{ path: string; content: Buffer }>('SELECT path, content FROM machine_files WHERE machine = $1', [owner])).rows;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const synced = new Map<string, string>();
    if (rows.length > 0) {
      const cipher = await this.#requireCipher();
      for (const row of rows) {
        const plain = cipher.decrypt(row.content, `${owner === '' ? 'the certificates' : `machine "${owner}"`}'s ${row.path}`);
        const target = join(dir, row.path);
        await mkdir(join(target, '..'), { recursive: true, mode: 0o700 });
        await writeFile(target, plain, { mode: 0o600 });
        synced.set(row.path, cipher.mac(plain));
      }
    }
    this.#synced.set(owner, synced);
  }

  async create(record: MachineRecord): Promise<void> {
    const { pool } = await this.#db();
    const inserted = await pool.query('INSERT INTO machine_records (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [record.name, JSON.stringify(record)]);
    if (inserted.rowCount === 0) throw machineExists(record.name);
    await mkdir(this.machineDir(record.name), { recursive: true, mode: 0o700 });
    this.#synced.set(record.name, new Map());
  }

  write(record: MachineRecord): Promise<void> {
    const previous = this.#pending.get(record.name) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.#write(record));
    this.#pending.set(record.name, next);
    return next;
  }

  /** The record and the machine's changed files in one transaction. */
  async #write(record: MachineRecord): Promise<void> {
    const changes = await this.#fileChanges(record.name, this.machineDir(record.name));
    await this.#transaction(async (client) => {
      const updated = await client.query('UPDATE machine_records SET record = $2, updated_at = now() WHERE name = $1', [record.name, JSON.stringify(record)]);
      if (updated.rowCount === 0) throw machineNotFound(record.name);
      await applyFileChanges(client, record.name, changes);
    });
    this.#remember(record.name, changes);
  }

  /** Runs `work` in one transaction on a pooled connection: committed when it returns, rolled back when it throws. */
  async #transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const { pool } = await this.#db();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** What changed in `dir` since it was loaded or last written: files to upsert (encrypted) and to delete. */
  async #fileChanges(owner: string, dir: string): Promise<FileChanges> {
    const synced = this.#synced.get(owner);
    const local = await readFiles(dir);
    const changes: FileChanges = { upsert: [], remove: [] };
    if (synced === undefined) return changes; // never opened here: nothing of it is local
    let cipher: StoreCipher | undefined;
    for (const [path, plain] of local) {
      if (owner !== '' && recordFiles.has(path)) continue;
      cipher ??= await this.#requireCipher();
      const mac = cipher.mac(plain);
      if (synced.get(path) !== mac) changes.upsert.push({ path, content: cipher.encrypt(plain), mac });
    }
    for (const path of synced.keys()) if (!local.has(path)) changes.remove.push(path);
    return changes;
  }

  #remember(owner: string, changes: FileChanges): void {
    const synced = this.#synced.get(owner) ?? new Map<string, string>();
    for (const file of changes.upsert) synced.set(file.path, file.mac);
    for (const path of changes.remove) synced.delete(path);
    this.#synced.set(owner, synced);
  }

  async remove(name: string): Promise<void> {
    assertValidMachineName(name);
    await (this.#pending.get(name) ?? Promise.resolve()).catch(() => {});
    await this.#transaction(async (client) => {
      await client.query('DELETE FROM machine_files WHERE machine = $1', [name]);
      await client.query('DELETE FROM machine_records WHERE name = $1', [name]);
    });
    this.#synced.delete(name);
    await rm(this.machineDir(name), { recursive: true, force: true });
  }

  async storeId(): Promise<string> {
    return (await this.#db()).storeId;
  }

  /** Rows of `machine_rate_buckets` on the store's pool, timed by the database's clock. */
  rateBuckets(): RateBucketStore {
    this.#rateBuckets ??= new PostgresRateBucketStore(async () => (await this.#db()).pool);
    return this.#rateBuckets;
  }

  /**
   * Each held machine lock is a connection of its own: at most {@link maxMachineLocks} at once per
   * process, so `rm` of 300 machines takes them in turns instead of opening 300 connections at once
   * (PostgreSQL refuses past `max_connections`, 100 by default; a unix socket's backlog answers EAGAIN).
   */
  async lock(name: string, options: { whenBusy?: (holder: string) => Error } = {}): Promise<StoreLock> {
    assertValidMachineName(name);
    await this.#lockSlots.acquire();
    let held: StoreLock | undefined;
    try {
      held = await this.#advisoryLock(`machine:${name}`, 'try');
    } finally {
      if (held === undefined) this.#lockSlots.release();
    }
    if (held !== undefined) {
      const lock = held;
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          try {
            await lock.release();
          } finally {
            this.#lockSlots.release();
          }
        },
      };
    }
    const holder = (await this.lockHolder(name)) ?? 'another process';
    throw options.whenBusy?.(holder) ?? new CliError(`machine "${name}" is busy: ${holder} is working on it`);
  }

  async lockHolder(name: string): Promise<string | undefined> {
    const { pool } = await this.#db();
    // pg_locks shows a two-int4 advisory key as classid/objid (oids, so unsigned), objsubid 2.
    const [high, low] = lockKeyParts(`machine:${name}`).map((part) => part >>> 0);
    const row = (
      await pool.query<{ application_name: string }>(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 2",
        [String(high), String(low)],
      )
    ).rows[0];
    return row === undefined ? undefined : row.application_name.replace(/^machine /, '') || 'another process';
  }

  /** An advisory lock on a connection of its own (`try`: undefined when taken; `wait`: blocks). */
  async #advisoryLock(key: string, mode: 'try' | 'wait'): Promise<StoreLock | undefined> {
    await this.#db();
    const { default: pgModule } = await import('pg');
    const client = new pgModule.Client({ connectionString: this.#url, application_name: applicationName() });
    client.on('error', () => {});
    await client.connect();
    const [high, low] = lockKeyParts(key);
    const sql = mode === 'try' ? 'SELECT pg_try_advisory_lock($1::int, $2::int) AS locked' : 'SELECT pg_advisory_lock($1::int, $2::int) IS NULL AS locked';
    const locked = (await client.query<{ locked: boolean }>(sql, [high, low])).rows[0]?.locked === true;
    if (!locked) {
      await client.end().catch(() => {});
      return undefined;
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await client.query('SELECT pg_advisory_unlock($1::int, $2::int)', [high, low]).catch(() => {});
        await client.end().catch(() => {});
      },
    };
  }

  async withCerts<T>(work: (dir: string) => Promise<T>): Promise<T> {
    // One host at a time makes or changes the CA: the others wait, then use what it stored.
    const lock = await this.#advisoryLock('certs', 'wait');
    try {
      const dir = join(this.#work, 'certs');
      await this.#materialize('', dir);
      this.#certsLoaded = true;
      const result = await work(dir);
      const changes = await this.#fileChanges('', dir);
      await this.#transaction((client) => applyFileChanges(client, '', changes));
      this.#remember('', changes);
      return result;
    } finally {
      await lock?.release();
    }
  }

  async certsDir(): Promise<string> {
    const dir = join(this.#work, 'certs');
    if (!this.#certsLoaded) {
      await this.#materialize('', dir);
      this.#certsLoaded = true;
    }
    return dir;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pending.values()].map((pending) => pending.catch(() => {})));
    await rm(this.#work, { recursive: true, force: true });
    const ready = this.#ready;
    this.#ready = undefined;
    if (ready !== undefined) await ready.then(({ pool }) => pool.end(), () => {});
  }

  /** Removes the private folders of processes that died before their close (crashes). */
  async #removeStaleWork(): Promise<void> {
    const base = join(this.root, '.work');
    for (const entry of await readdir(base).catch(() => [])) {
      const pid = Number(entry.split('-')[0]);
      if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) await rm(join(base, entry), { recursive: true, force: true });
    }
  }
}

/** A counting semaphore: `acquire` waits for one of `size` slots, first come first served. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#free++;
    else next();
  }
}

interface FileChanges {
  upsert: { path: string; content: Buffer; mac: string }[];
  remove: string[];
}

async function applyFileChanges(client: pg.PoolClient, owner: string, changes: FileChanges): Promise<void> {
  for (const file of changes.upsert) {
    await client.query(
      'INSERT INTO machine_files (machine, path, content, sha256) VALUES ($1, $2, $3, $4) ON CONFLICT (machine, path) DO UPDATE SET content = EXCLUDED.content, sha256 = EXCLUDED.sha256',
      [owner, file.path, file.content, file.mac],
    );
  }
  if (changes.remove.length > 0) await client.query('DELETE FROM machine_files WHERE machine = $1 AND path = ANY($2)', [owner, changes.remove]);
}

/** Every regular file under `dir` up to the shared size limit, by relative path. */
async function readFiles(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true }).catch(() => [])) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      for (const [path, content] of await readFiles(dir, relative)) files.set(path, content);
    } else if (entry.isFile() && !entry.name.includes('.tmp-')) {
      const info = await stat(join(dir, relative));
      if (info.size <= maxSharedFileBytes) files.set(relative, await readFile(join(dir, relative)));
    }
  }
  return files;
}

/** An advisory lock key as PostgreSQL's two int4 parts (shown in pg_locks as classid and objid). */
function lockKeyParts(key: string): [number, number] {
  const digest = createHash('sha256').update(`machine-store:${key}`).digest();
  return [digest.readInt32BE(0), digest.readInt32BE(4)];
}

function applicationName(): string {
  return `machine process ${process.pid} on ${hostname()}`.slice(0, 63);
}

/** Whether a `--store`/`MACHINE_STORE` value names PostgreSQL. */
export function isPostgresUrl(value: string | undefined): value is string {
  return value !== undefined && /^postgres(?:ql)?:\/\//.test(value);
}
