import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DriverDescriptor } from '@machine/driver-core';
import { CliError } from './cli-error.ts';
import type { CliIO } from './io.ts';

/** One copy of a driver found by discovery. */
export interface InstalledDriver {
  name: string;
  packageName: string;
  version: string;
  /** Where it was found: `MACHINE_DRIVER_PATH`, `drivers` (STORAGE/drivers), `cli` (beside the CLI), `built-in` (injected). */
  source: DriverSource;
  /** The package folder (empty for built-in). */
  dir: string;
  /** The `@machine/driver-core` range it was built for (its peer dependency), when it says. */
  coreRange?: string;
  /** The copy `create -d NAME` uses: the first in lookup order. */
  wins: boolean;
}

/** Where drivers are looked up, in this order. */
export type DriverSource = 'built-in' | 'MACHINE_DRIVER_PATH' | 'drivers' | 'cli' | 'docker-machine plugin';

/** The npm package names a driver called `name` may have, in lookup order. */
export function driverPackageNames(name: string): string[] {
  return [`@machine/driver-${name}`, `machine-driver-${name}`];
}

const driverPackagePattern = /^(?:@machine\/driver-|machine-driver-)(.+)$/;

/** A package name that is a driver's (the spec package `@machine/driver-core` is not). */
function driverNameOf(packageName: string): string | undefined {
  if (packageName === '@machine/driver-core') return undefined;
  return driverPackagePattern.exec(packageName)?.[1];
}

/** A folder of packages to search, and which source it stands for. */
interface SearchFolder {
  source: Exclude<DriverSource, 'built-in'>;
  /** A `node_modules` folder. */
  dir: string;
}

/**
 * Finds and loads driver descriptors by name, lazily: a driver package is imported only when a
 * command needs that driver, and its SDK only when the driver makes a client. Lookup order:
 * MACHINE_DRIVER_PATH (each entry an install prefix or a `node_modules` folder), then
 * `STORAGE/drivers` (where `machine drivers install` puts them), then packages beside the CLI (its
 * own `node_modules`, and the folders above it: a global or local install). A driver the user
 * installed therefore wins over a copy beside the CLI. A driver built for another driver-core
 * than this CLI's is refused with both versions and the command that fixes it.
 */
export class DriverRegistry {
  readonly #io: CliIO;
  readonly #storageRoot: string | undefined;
  readonly #loaded = new Map<string, Promise<DriverDescriptor>>();

  constructor(io: CliIO, storageRoot?: string) {
    this.#io = io;
    this.#storageRoot = storageRoot;
  }

  /** The folders of MACHINE_DRIVER_PATH, as given. */
  get searchPath(): string[] {
    return (this.#io.env.MACHINE_DRIVER_PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  }

  /** `STORAGE/drivers`: the npm prefix `machine drivers install` manages. */
  get driversPrefix(): string | undefined {
    return this.#storageRoot === undefined ? undefined : join(this.#storageRoot, 'drivers');
  }

  /** Every folder searched, in lookup order. */
  #folders(): SearchFolder[] {
    const folders: SearchFolder[] = [];
    for (const entry of this.searchPath) {
      // An install prefix (has node_modules) or a node_modules folder itself.
      folders.push({ source: 'MACHINE_DRIVER_PATH', dir: existsSync(join(entry, 'node_modules')) ? join(entry, 'node_modules') : entry });
    }
    const prefix = this.driversPrefix;
    if (prefix !== undefined) folders.push({ source: 'drivers', dir: join(prefix, 'node_modules') });
    for (const dir of besideTheCli()) folders.push({ source: 'cli', dir });
    return folders;
  }

  /** Loads the descriptor of driver `name`; a clear CliError when it is missing, incompatible or not a driver. */
  load(name: string): Promise<DriverDescriptor> {
    let loading = this.#loaded.get(name);
    if (loading === undefined) {
      loading = this.#load(name);
      this.#loaded.set(name, loading);
    }
    return loading;
  }

  async #load(name: string): Promise<DriverDescriptor> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new CliError(`Driver "${name}" not found: driver names are lower-case letters, digits and "-"`);
    const injected = this.#io.drivers?.[name];
    if (injected !== undefined) return checkDescriptor(typeof injected === 'function' ? await injected() : injected, `driver "${name}"`, name);
    const found = await this.#find(name);
    if (found === undefined) {
      // No npm driver of that name: a docker-machine plugin binary (docker-machine-driver-NAME) on
      // MACHINE_DRIVER_PATH or PATH, driven over its Go net/rpc protocol.
      const legacy = await import('@machine/legacy-plugin');
      const plugin = await legacy.findLegacyPlugin(name, this.#io.env);
      if (plugin !== undefined) {
        return legacy.openLegacyPlugin(plugin.path, { name, env: this.#io.env }).catch((error: unknown) => {
          throw new CliError(`docker-machine plugin ${plugin.path} does not work: ${(error as Error).message}`, 1, { cause: error });
        }) as Promise<DriverDescriptor>;
      }
      throw new CliError(
        `Driver "${name}" not found: no package ${driverPackageNames(name).join(' or ')} in ${this.#folders().map((folder) => folder.dir).join(delimiter)}. ` +
          `\`machine drivers install ${name}\` installs it (a docker-machine plugin docker-machine-driver-${name} on PATH works too); \`machine drivers ls\` lists the installed drivers.`,
      );
    }
    await checkCompatible(found);
    const entry = await packageEntry(found.dir);
    if (entry === undefined) throw new CliError(`${found.packageName} in ${found.dir} has no entry file; reinstall it with \`machine drivers install ${name}\``);
    return checkDescriptor(defaultExport((await import(pathToFileURL(entry).href)) as Record<string, unknown>), found.packageName, name);
  }

  /** The winning copy of driver `name`, or undefined. */
  async #find(name: string): Promise<InstalledDriver | undefined> {
    for (const folder of this.#folders()) {
      for (const packageName of driverPackageNames(name)) {
        const copy = await describeCopy(folder, packageName, name);
        if (copy !== undefined) return { ...copy, wins: true };
      }
    }
    return undefined;
  }

  /** Every copy of every installed driver, without importing any; the copy that wins is marked. */
  async list(): Promise<InstalledDriver[]> {
    const copies: InstalledDriver[] = [];
    const winners = new Set<string>();
    const add = (copy: Omit<InstalledDriver, 'wins'>) => {
      const wins = !winners.has(copy.name);
      winners.add(copy.name);
      copies.push({ ...copy, wins });
    };
    for (const name of Object.keys(this.#io.drivers ?? {})) add({ name, packageName: '(built in)', version: '', source: 'built-in', dir: '' });
    const seenDirs = new Set<string>();
    for (const folder of this.#folders()) {
      for (const packageName of await packagesIn(folder.dir)) {
        const name = driverNameOf(packageName);
        if (name === undefined) continue;
        const copy = await describeCopy(folder, packageName, name);
        if (copy === undefined) continue;
        // The same package reached twice (a folder both on MACHINE_DRIVER_PATH and beside the CLI) is one copy.
        const real = await realpath(copy.dir).catch(() => copy.dir);
        if (seenDirs.has(real)) continue;
        seenDirs.add(real);
        add(copy);
      }
    }
    // docker-machine plugin binaries come after every npm driver in lookup order.
    const { listLegacyPlugins } = await import('@machine/legacy-plugin');
    for (const plugin of await listLegacyPlugins(this.#io.env)) add({ name: plugin.name, packageName: `docker-machine-driver-${plugin.name}`, version: '', source: 'docker-machine plugin', dir: plugin.path });
    return copies.sort((a, b) => a.name.localeCompare(b.name) || Number(b.wins) - Number(a.wins));
  }
}

/** The `node_modules` folders beside the CLI: its own, then each one above it (a global or local install). */
function besideTheCli(): string[] {
  const folders: string[] = [];
  let dir = fileURLToPath(new URL('..', import.meta.url));
  for (;;) {
    const candidate = dir.endsWith(`${join('/', 'node_modules')}`) ? dir : join(dir, 'node_modules');
    if (!folders.includes(candidate) && existsSync(candidate)) folders.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) return folders;
    dir = parent;
  }
}

async function describeCopy(folder: SearchFolder, packageName: string, name: string): Promise<Omit<InstalledDriver, 'wins'> | undefined> {
  const dir = join(folder.dir, packageName);
  const manifest = await readJson(join(dir, 'package.json'));
  if (manifest === undefined || manifest.name !== packageName) return undefined;
  const peers = (manifest.peerDependencies ?? manifest.dependencies) as Record<string, string> | undefined;
  const coreRange = peers?.['@machine/driver-core'];
  return {
    name,
    packageName,
    version: String(manifest.version ?? ''),
    source: folder.source,
    dir,
    ...(typeof coreRange === 'string' && !coreRange.startsWith('workspace:') ? { coreRange } : {}),
  };
}

/** This CLI's `@machine/driver-core` version (the copy every driver shares). */
export async function cliCoreVersion(): Promise<string> {
  const dir = await cliCorePackageDir();
  return String((await readJson(join(dir, 'package.json')))?.version ?? '0.0.0');
}

/** The folder of the `@machine/driver-core` package this CLI loads. */
export async function cliCorePackageDir(): Promise<string> {
  let dir = dirname(createRequire(import.meta.url).resolve('@machine/driver-core'));
  for (;;) {
    const manifest = await readJson(join(dir, 'package.json'));
    if (manifest?.name === '@machine/driver-core') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new CliError('cannot find the @machine/driver-core package of this CLI');
    dir = parent;
  }
}

/** Refuses a driver built for a driver-core range this CLI's copy does not satisfy. */
async function checkCompatible(copy: Omit<InstalledDriver, 'wins'>): Promise<void> {
  if (copy.coreRange === undefined) return;
  const core = await cliCoreVersion();
  const { default: semver } = await import('semver');
  if (semver.satisfies(core, copy.coreRange, { includePrerelease: true })) return;
  throw new CliError(
    `driver "${copy.name}" (${copy.packageName} ${copy.version}, ${copy.source === 'cli' ? 'beside the CLI' : copy.dir}) was built for @machine/driver-core ${copy.coreRange}, ` +
      `but this machine CLI has ${core}: \`machine drivers install ${copy.name}\` installs a matching version (or update the CLI)`,
  );
}

function defaultExport(module: Record<string, unknown>): unknown {
  return module.default ?? module.driver;
}

async function checkDescriptor(value: unknown, what: string, name: string): Promise<DriverDescriptor> {
  const { driverDescriptorProblem } = await import('@machine/driver-core');
  const problem = driverDescriptorProblem(value);
  if (problem !== undefined) throw new CliError(`${what} does not export a valid machine driver: ${problem}`);
  const descriptor = value as DriverDescriptor;
  if (descriptor.name !== name) throw new CliError(`${what} does not export a valid machine driver: it is named "${descriptor.name}", not "${name}"`);
  return descriptor;
}

/** The ESM entry file of the package in `dir`, from its `exports` (import/default) or `main`. */
async function packageEntry(dir: string): Promise<string | undefined> {
  const manifest = await readJson(join(dir, 'package.json'));
  if (manifest === undefined) return undefined;
  const root = typeof manifest.exports === 'object' && manifest.exports !== null && '.' in manifest.exports ? (manifest.exports as Record<string, unknown>)['.'] : manifest.exports;
  const target = pickExport(root, sourceConditions()) ?? (typeof manifest.main === 'string' ? manifest.main : 'index.js');
  return join(dir, target);
}

/** The export conditions this process resolves with: the sources of a workspace package when the CLI itself runs from its sources. */
function sourceConditions(): string[] {
  return import.meta.url.endsWith('.ts') ? ['@machine/source', 'import', 'node', 'default'] : ['import', 'node', 'default'];
}

function pickExport(value: unknown, conditions: readonly string[]): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return undefined;
  const map = value as Record<string, unknown>;
  for (const condition of conditions) {
    const picked = pickExport(map[condition], conditions);
    if (picked !== undefined) return picked;
  }
  return undefined;
}

async function packagesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
    if (entry.name.startsWith('@')) {
      const scoped = await readdir(join(dir, entry.name)).catch(() => []);
      names.push(...scoped.map((child) => `${entry.name}/${child}`));
    } else names.push(entry.name);
  }
  return names;
}

async function readJson(path: string | URL): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
