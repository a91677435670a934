import { randomBytes } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readFileSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { assertValidMachineName, type JournalEntry, type JsonValue, machineNameProblem, type RateBucketStore } from '@machine/driver-core';
import { atomicWrite } from './atomic-write.ts';
import { CliError, machineExists, machineNotFound } from './cli-error.ts';
import { lockHolder, lockMachine } from './lock.ts';
import { FileRateBucketStore } from './rate-budget-file-store.ts';

/** What `config.json` holds for one machine. Never a credential. */
export interface MachineRecord {
  /** Format version of this file. */
  version: 1;
  name: string;
  /** The driver's name, e.g. `digitalocean`. */
  driver: string;
  /** `creating` from before the first API call until create finished; `failed` when it did not. */
  status: 'creating' | 'ready' | 'failed';
  /** ISO time the record was made. */
  createdAt: string;
  /** The driver's parsed config, by key, without the flags marked `secret`. */
  config: Record<string, unknown>;
  /** How to reach the machine over SSH, recorded once create finished. */
  ssh?: {
    user: string;
    port: number;
    keyPath: string;
    /** `SHA256:…` of the host key seen at create, pinned for later connections. */
    hostKeyFingerprint?: string;
    /** The host key as `type base64`, for the per-machine OpenSSH known_hosts. */
    hostKey?: string;
  };
  /** Every cloud resource the driver made, persisted as it records them. */
  journal: JournalEntry[];
  /** The driver's own data store. */
  data: Record<string, JsonValue>;
  /** Created against the bundled cloud simulator (`--sim`). */
  sim?: boolean;
  /**
   * The driver flags the simulator filled at create (its API URL, fake token, SSH port): later
   * commands take these from the running simulator again; every other recorded flag (one the user
   * gave, like `--google-project`) stays as recorded.
   */
  simFlags?: string[];
  /** Why create failed, when it did. */
  error?: string;
  /** The Docker engine the CLI provisioned on the machine (absent for drivers without SSH, like `none`). */
  provision?: ProvisionRecord;
  /**
   * The store id the machine was made under (drivers tag what they make `managed-by: machine-<id>`):
   * kept with the machine so its resources are found by the same tag for its whole life.
   */
  storeId?: string;
}

/** What `config.json` keeps about the machine's Docker engine. */
export interface ProvisionRecord {
  /** The engine options of create (`--engine-*`, `--tls-san`), reused by `machine provision`. */
  engine: StoredEngineOptions;
  /** The SANs of the server certificate installed on the machine (to notice an IP change). */
  serverCertSans: string[];
  /** The port dockerd listens on with TLS (`--engine-port`). */
  dockerPort: number;
  /** `provisioned`; `failed` (the machine is kept, `ls` shows Error); `skipped` (`--no-provision`). */
  state: 'provisioned' | 'failed' | 'skipped';
  /** The one-line error of a failed provisioning. */
  error?: string;
  /** The engine version `GET /version` answered at the end of provisioning. */
  dockerVersion?: string;
}

/** The engine options as stored (the shape of `@machine/provision`'s EngineOptions). */
export interface StoredEngineOptions {
  port: number;
  [option: string]: unknown;
}

/** The storage root: `--storage-path`, then `MACHINE_STORAGE_PATH`, then `~/.machine`. */
export function storagePath(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (option !== undefined && option !== '') return option;
  const fromEnv = env.MACHINE_STORAGE_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return join(env.HOME ?? env.USERPROFILE ?? homedir(), '.machine');
}

/** One collator for every sort: `localeCompare` with options builds one per comparison (90 ms of CPU for 1,000 names). */
const naturalOrder = new Intl.Collator('en', { numeric: true });

/** Machine names, natural-sorted by lower-cased name (like the reference's `ls`). */
export function sortNames(names: readonly string[]): string[] {
  return names
    .map((name) => ({ name, key: name.toLowerCase() }))
    .sort((a, b) => naturalOrder.compare(a.key, b.key))
    .map(({ name }) => name);
}

/** A held lock of one machine (the file store's pid file, PostgreSQL's advisory lock). */
export interface StoreLock {
  release(): Promise<void>;
}

/**
 * Where machines are kept: the folder store (default) or PostgreSQL (`MACHINE_STORE=postgres://…`).
 * Both keep records (with journals and driver data), per-machine locks, the CA and client
 * certificate, SSH keys and known hosts; `root` is always the local storage path (simulator state,
 * installed drivers), and `machineDir(name)` a local folder holding the machine's files while a
 * command runs.
 */
export interface Store {
  readonly kind: 'file' | 'postgres';
  /** The local storage path. */
  readonly root: string;
  machineDir(name: string): string;
  list(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /** The record only (no files): what ls needs. */
  read(name: string): Promise<MachineRecord>;
  /** The record, with the machine's files available in `machineDir(name)`: what SSH, provisioning and drivers need. */
  open(name: string): Promise<MachineRecord>;
  create(record: MachineRecord): Promise<void>;
  /** Writes the record, and the machine's files (PostgreSQL), atomically. */
  write(record: MachineRecord): Promise<void>;
  remove(name: string): Promise<void>;
  storeId(): Promise<string>;
  /** The machine's exclusive lock; a live holder is `whenBusy`'s error or "busy". */
  lock(name: string, options?: { whenBusy?: (holder: string) => Error }): Promise<StoreLock>;
  /** Who holds the machine's lock (`process 123`), or undefined. */
  lockHolder(name: string): Promise<string | undefined>;
  /** A local folder with the CA and client certificate (made by `work` when it needs to); kept in the store afterwards. */
  withCerts<T>(work: (dir: string) => Promise<T>): Promise<T>;
  /** The local folder of the CA and client certificate, for reading them. */
  certsDir(): Promise<string>;
  /**
   * The shared rate buckets of this store (driver-core's `SharedRateBudget` draws from them): every
   * process and host using the store shares one token bucket per provider-account-region.
   */
  rateBuckets(): RateBucketStore;
  /** Ends the command's use of the store (PostgreSQL: flushes, removes local copies of secrets, closes connections). */
  close(): Promise<void>;
}

/**
 * The machines on disk under `ROOT/machines/NAME/config.json`. Writes are atomic (temp file in the
 * same folder, then rename) and 0600, and the writes of one machine are applied in order.
 */
export class MachineStore implements Store {
  readonly kind = 'file' as const;
  readonly root: string;
  readonly #pending = new Map<string, Promise<void>>();
  #rateBuckets: FileRateBucketStore | undefined;

  constructor(root: string) {
    this.root = root;
  }

  /** One JSON file per bucket under `ROOT/rate-budgets`, changed under its lock file. */
  rateBuckets(): RateBucketStore {
    this.#rateBuckets ??= new FileRateBucketStore(this.root);
    return this.#rateBuckets;
  }

  get machinesDir(): string {
    return join(this.root, 'machines');
  }

  /**
   * The machine's folder. Every path of the store is built here from a name checked first, so a
   * name like `..`, `/etc` or `a/b` never becomes a path: it is refused with the one-line error
   * `create` gives (InvalidConfigError, input `machine name`).
   */
  machineDir(name: string): string {
    assertValidMachineName(name);
    return join(this.machinesDir, name);
  }

  configPath(name: string): string {
    return join(this.machineDir(name), 'config.json');
  }

  /**
   * The machine's folder when it is a real folder of the store; undefined when there is none.
   * A symbolic link planted at `machines/NAME` (or anything but a folder) is refused, so nothing
   * outside the store is read, written or deleted through it. A synchronous lstat: `read` of 1,000
   * records makes 1,000, cheaper than as many thread-pool round trips.
   */
  #existingDir(name: string): string | undefined {
    const dir = this.machineDir(name);
    let stats: ReturnType<typeof lstatSync>;
    try {
      stats = lstatSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (!stats.isDirectory()) {
      const what = stats.isSymbolicLink() ? 'a symbolic link' : 'not a folder';
      throw new CliError(`${dir} is ${what}; machine "${name}" is refused (a machine folder must be a real folder inside the store: remove it by hand)`);
    }
    return dir;
  }

  /**
   * This store's id: 12 random lowercase letters and digits in `ROOT/store-id`, made on first use
   * (the first writer wins when several commands make it at once). Drivers tag what they make with
   * it, so `machine sweep` of one store never touches another store's resources on one account.
   */
  async storeId(): Promise<string> {
    const path = join(this.root, 'store-id');
    const existing = await readStoreId(path);
    if (existing !== undefined) return existing;
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const fresh = Array.from(randomBytes(12), (byte) => storeIdAlphabet[byte % storeIdAlphabet.length]).join('');
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(`${fresh}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      return fresh;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // Another command made it first; it may still be writing it.
    for (let attempt = 0; attempt < 50; attempt++) {
      const written = await readStoreId(path);
      if (written !== undefined) return written;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new CliError(`${path} is not a store id (12 lowercase letters and digits); remove it to make a new one`);
  }

  /** Names of the stored machines: real sub-folders with a valid machine name (links are never followed). */
  async list(): Promise<string[]> {
    try {
      const entries = await readdir(this.machinesDir, { withFileTypes: true });
      return sortNames(entries.filter((entry) => entry.isDirectory() && machineNameProblem(entry.name) === undefined).map((entry) => entry.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  /** True when the machine's folder exists (a planted link or an invalid name throws instead). */
  async exists(name: string): Promise<boolean> {
    return this.#existingDir(name) !== undefined;
  }

  /** Reads a machine; a missing machine or a config.json that does not parse is a CliError. */
  async read(name: string): Promise<MachineRecord> {
    const dir = this.#existingDir(name);
    if (dir === undefined) throw machineNotFound(name);
    const path = this.configPath(name);
    let text: string;
    try {
      // O_NOFOLLOW: a config.json planted as a link is not read through. Read at once, not through
      // the thread pool: a record is a few KiB, and `ls` of 1,000 spends less in 1,000 blocking
      // reads than in the 3,000 round trips of open, read and close (about 50 ms less CPU).
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new CliError(`machine "${name}" has no config.json in ${dir}; \`machine rm -f ${name}\` drops it`);
      if (code === 'ELOOP') throw new CliError(`${path} is a symbolic link; machine "${name}" is refused (remove it by hand)`);
      throw error;
    }
    return parseRecord(name, text, path);
  }

  /** The folder store keeps files in the machine's folder: reading the record is enough. */
  open(name: string): Promise<MachineRecord> {
    return this.read(name);
  }

  lock(name: string, options: { whenBusy?: (holder: string) => Error } = {}): Promise<StoreLock> {
    const { whenBusy } = options;
    return lockMachine(this.root, name, whenBusy === undefined ? {} : { whenBusy: (pid) => whenBusy(`process ${pid}`) });
  }

  async lockHolder(name: string): Promise<string | undefined> {
    const pid = await lockHolder(this.root, name);
    return pid === undefined ? undefined : `process ${pid}`;
  }

  async withCerts<T>(work: (dir: string) => Promise<T>): Promise<T> {
    const dir = join(this.root, 'certs');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return work(dir);
  }

  async certsDir(): Promise<string> {
    return join(this.root, 'certs');
  }

  async close(): Promise<void> {
    await Promise.all(this.#pending.values()).catch(() => {});
  }

  /** Creates the machine's folder (0700, never through a link) and writes its first record. */
  async create(record: MachineRecord): Promise<void> {
    const existing = this.#existingDir(record.name);
    if (existing !== undefined && (await lstat(join(existing, 'config.json')).catch(() => undefined)) !== undefined) throw machineExists(record.name);
    if (existing === undefined) {
      await mkdir(this.machinesDir, { recursive: true, mode: 0o700 });
      await mkdir(this.machineDir(record.name), { mode: 0o700 });
    }
    await this.write(record);
  }

  /** Writes a record atomically; a crash mid-write leaves the previous file intact. */
  write(record: MachineRecord): Promise<void> {
    const text = `${JSON.stringify(record, null, 4)}\n`;
    const previous = this.#pending.get(record.name) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        if (this.#existingDir(record.name) === undefined) throw machineNotFound(record.name);
        await atomicWrite(this.configPath(record.name), text);
      });
    this.#pending.set(record.name, next);
    return next;
  }

  /** Deletes the machine's folder and everything in it (a planted link is refused, never followed). */
  async remove(name: string): Promise<void> {
    await (this.#pending.get(name) ?? Promise.resolve()).catch(() => {});
    const dir = this.#existingDir(name);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

const storeIdAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

async function readStoreId(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return /^[a-z0-9]{1,32}$/.test(text) ? text : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export { atomicWrite } from './atomic-write.ts';

export function parseRecord(name: string, text: string, path: string): MachineRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(`config.json of machine "${name}" is corrupt (${(error as Error).message}): ${path}; \`machine rm -f ${name}\` drops it`);
  }
  const record = value as Partial<MachineRecord> | null;
  if (typeof record !== 'object' || record === null || typeof record.driver !== 'string' || typeof record.config !== 'object') {
    throw new CliError(`config.json of machine "${name}" is corrupt (no driver or config): ${path}; \`machine rm -f ${name}\` drops it`);
  }
  return {
    version: 1,
    name,
    driver: record.driver,
    status: record.status ?? 'ready',
    createdAt: record.createdAt ?? '',
    config: record.config ?? {},
    journal: Array.isArray(record.journal) ? record.journal : [],
    data: record.data ?? {},
    ...(record.ssh === undefined ? {} : { ssh: record.ssh }),
    ...(record.sim === true ? { sim: true } : {}),
    ...(Array.isArray(record.simFlags) ? { simFlags: record.simFlags.map(String) } : {}),
    ...(record.error === undefined ? {} : { error: record.error }),
    ...(record.provision === undefined ? {} : { provision: record.provision }),
    ...(typeof record.storeId === 'string' ? { storeId: record.storeId } : {}),
  };
}
