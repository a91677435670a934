import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DriverDescriptor } from '@machine/driver-core';
import { CliError } from './cli-error.ts';
import type { CliIO } from './io.ts';

/** A driver found by discovery. */
export interface InstalledDriver {
  name: string;
  packageName: string;
  version: string;
  /** Where it was found: `cli` (the CLI's dependencies), a MACHINE_DRIVER_PATH folder, or `built-in` (injected). */
  source: string;
}

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

/**
 * Finds and loads driver descriptors by name, lazily: a driver package is imported only when a
 * command needs that driver, and its SDK only when the driver makes a client.
 */
export class DriverRegistry {
  readonly #io: CliIO;
  readonly #loaded = new Map<string, Promise<DriverDescriptor>>();

  constructor(io: CliIO) {
    this.#io = io;
  }

  /** The folders of MACHINE_DRIVER_PATH. */
  get searchPath(): string[] {
    return (this.#io.env.MACHINE_DRIVER_PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  }

  /** Loads the descriptor of driver `name`; a clear CliError when it is missing or not a driver. */
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
    // The CLI's own dependencies first, then each MACHINE_DRIVER_PATH folder in order.
    for (const packageName of driverPackageNames(name)) {
      const fromCli = await importOwnDependency(packageName);
      if (fromCli !== undefined) return checkDescriptor(defaultExport(fromCli), packageName, name);
    }
    for (const dir of this.searchPath) {
      for (const packageName of driverPackageNames(name)) {
        const entry = await packageEntry(join(dir, packageName));
        if (entry !== undefined) return checkDescriptor(defaultExport(await import(pathToFileURL(entry).href)), packageName, name);
      }
    }
    const where = this.searchPath.length === 0 ? 'the CLI\'s dependencies (set MACHINE_DRIVER_PATH to add folders)' : `the CLI's dependencies and ${this.searchPath.join(delimiter)}`;
    throw new CliError(`Driver "${name}" not found: no package ${driverPackageNames(name).join(' or ')} in ${where}. \`machine drivers\` lists the installed drivers.`);
  }

  /** Every installed driver, without importing any. */
  async list(): Promise<InstalledDriver[]> {
    const found = new Map<string, InstalledDriver>();
    for (const name of Object.keys(this.#io.drivers ?? {})) {
      found.set(name, { name, packageName: `(built in)`, version: '', source: 'built-in' });
    }
    const ownPackage = await readJson(new URL('../package.json', import.meta.url));
    const ownDependencies = Object.keys((ownPackage?.dependencies as Record<string, string> | undefined) ?? {});
    for (const packageName of ownDependencies) {
      const name = driverNameOf(packageName);
      if (name === undefined || found.has(name)) continue;
      const manifest = await readJson(await ownDependencyManifest(packageName));
      if (manifest !== undefined) found.set(name, { name, packageName, version: String(manifest.version ?? ''), source: 'cli' });
    }
    for (const dir of this.searchPath) {
      for (const packageName of await packagesIn(dir)) {
        const name = driverNameOf(packageName);
        if (name === undefined || found.has(name)) continue;
        const manifest = await readJson(join(dir, packageName, 'package.json'));
        if (manifest !== undefined) found.set(name, { name, packageName, version: String(manifest.version ?? ''), source: dir });
      }
    }
    return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
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

/** Imports one of the CLI's own dependencies, or undefined when it is not installed. */
async function importOwnDependency(packageName: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(packageName)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(`'${packageName}'`)) return undefined;
    // Under vite (the tests), a missing package is reported as "Failed to load/resolve …".
    if (/Failed to (?:load|resolve)/.test(String((error as Error).message)) && String((error as Error).message).includes(packageName)) return undefined;
    throw new CliError(`could not load driver package ${packageName}: ${(error as Error).message}`, 1, { cause: error });
  }
}

/** The manifest of one of the CLI's dependencies, looked up like Node does: node_modules folders upwards. */
async function ownDependencyManifest(packageName: string): Promise<string> {
  let dir = fileURLToPath(new URL('..', import.meta.url));
  for (;;) {
    const candidate = join(dir, 'node_modules', packageName, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return candidate;
    dir = parent;
  }
}

/** The ESM entry file of the package in `dir`, from its `exports` (import/default) or `main`. */
async function packageEntry(dir: string): Promise<string | undefined> {
  const manifest = await readJson(join(dir, 'package.json'));
  if (manifest === undefined) return undefined;
  const root = typeof manifest.exports === 'object' && manifest.exports !== null && '.' in manifest.exports ? (manifest.exports as Record<string, unknown>)['.'] : manifest.exports;
  const target = pickExport(root) ?? (typeof manifest.main === 'string' ? manifest.main : 'index.js');
  return join(dir, target);
}

function pickExport(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return undefined;
  const conditions = value as Record<string, unknown>;
  for (const condition of ['import', 'node', 'default']) {
    const picked = pickExport(conditions[condition]);
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
