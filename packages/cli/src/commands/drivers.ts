import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { cliCorePackageDir, DriverRegistry, driverPackageNames } from '../driver-registry.ts';
import { writeLine } from '../io.ts';
import { alignColumns } from '../template.ts';

/**
 * `machine drivers [ls|install|update|remove]`. Installed drivers live in `STORAGE/drivers`, an npm
 * prefix of their own managed with the user's npm (no package manager written here). Drivers are
 * installed with `--legacy-peer-deps` — their `@machine/driver-core` peer is this CLI's own copy,
 * linked into the prefix, so one process never holds two copies — and with `--ignore-scripts`
 * unless `--allow-scripts` (the first-party drivers need no install script: ssh2 falls back to
 * Node's crypto without its optional native add-on).
 */

const simulatorPackage = '@machine/cloud-sim';

/** `machine drivers` / `machine drivers ls`: every copy found, where, and which one `create -d` uses. */
export async function listDriversCommand(ctx: CommandContext): Promise<number> {
  const drivers = await ctx.registry.list();
  const prefix = ctx.registry.driversPrefix;
  if (drivers.length === 0) {
    writeLine(ctx.io.stdout, 'No drivers installed. `machine drivers install NAME` installs one (e.g. digitalocean, amazonec2, google, azure, virtualbox).');
  } else {
    const rows = drivers.map((driver) =>
      [driver.name, driver.version || '-', driver.packageName, driver.source === 'MACHINE_DRIVER_PATH' ? driver.dir.replace(/[/\\][^/\\]+$/, '').replace(/[/\\]@machine$/, '') : driver.source === 'docker-machine plugin' ? `docker-machine plugin ${driver.dir}` : driver.source, driver.wins ? 'yes' : 'no (shadowed)'].join('\t'),
    );
    writeLine(ctx.io.stdout, alignColumns(['NAME\tVERSION\tPACKAGE\tFROM\tUSED', ...rows]));
    if (drivers.some((driver) => driver.source === 'docker-machine plugin')) {
      const { legacyPluginJournalNotice } = await import('@machine/legacy-plugin');
      writeLine(ctx.io.stdout, `docker-machine plugins (FROM "docker-machine plugin") are run over docker-machine's plugin protocol; ${legacyPluginJournalNotice}.`);
    }
  }
  writeLine(ctx.io.stdout, `Lookup order: MACHINE_DRIVER_PATH, then drivers (${prefix ?? 'STORAGE/drivers'}), then cli (installed beside the machine CLI), then docker-machine-driver-NAME plugins on MACHINE_DRIVER_PATH and PATH.`);
  return ExitCode.ok;
}

/** `machine drivers install SPEC…`. */
export async function installDriversCommand(ctx: CommandContext, specs: readonly string[], options: { allowScripts: boolean }): Promise<number> {
  const prefix = await ensurePrefix(ctx);
  const npmSpecs = specs.map((spec) => npmSpec(spec));
  const before = await prefixDependencies(prefix);
  writeLine(ctx.io.stdout, `Installing ${npmSpecs.join(' ')} into ${prefix}...`);
  await runNpm(ctx, ['install', ...npmFlags(prefix, options), ...npmSpecs]);
  await linkCore(prefix);
  const after = await prefixDependencies(prefix);
  const installed = Object.keys(after).filter((name) => before[name] !== after[name] || npmSpecs.some((spec) => spec === name || spec.startsWith(`${name}@`)));
  await checkInstalled(ctx, prefix, installed);
  for (const packageName of installed) {
    const version = await installedVersion(prefix, packageName);
    const driver = driverNameFromPackage(packageName);
    writeLine(ctx.io.stdout, `Installed ${driver === undefined ? packageName : `${driver} ${version} (${packageName})`}${driver === undefined ? ` ${version}` : ''}.`);
  }
  if (!options.allowScripts) writeLine(ctx.io.stdout, 'Install scripts were not run (npm --ignore-scripts); `--allow-scripts` runs them.');
  return ExitCode.ok;
}

/** `machine drivers update [NAME…]`: all drivers of STORAGE/drivers without names. */
export async function updateDriversCommand(ctx: CommandContext, names: readonly string[], options: { allowScripts: boolean }): Promise<number> {
  const prefix = await ensurePrefix(ctx);
  const packages = await installedPackages(ctx, prefix, names);
  await runNpm(ctx, ['update', ...npmFlags(prefix, options), ...packages]);
  await linkCore(prefix);
  await checkInstalled(ctx, prefix, packages.length === 0 ? Object.keys(await prefixDependencies(prefix)) : packages);
  for (const packageName of packages.length === 0 ? Object.keys(await prefixDependencies(prefix)) : packages) {
    writeLine(ctx.io.stdout, `${packageName} is at ${await installedVersion(prefix, packageName)}.`);
  }
  return ExitCode.ok;
}

/** `machine drivers remove NAME…`: only what STORAGE/drivers holds. */
export async function removeDriversCommand(ctx: CommandContext, names: readonly string[]): Promise<number> {
  const prefix = await ensurePrefix(ctx);
  const packages = await installedPackages(ctx, prefix, names);
  await runNpm(ctx, ['uninstall', ...npmFlags(prefix, { allowScripts: false }), ...packages]);
  await linkCore(prefix);
  for (const packageName of packages) writeLine(ctx.io.stdout, `Removed ${packageName} from ${prefix}.`);
  return ExitCode.ok;
}

/**
 * What npm installs for a user's spec: `NAME[@VERSION]` → `@machine/driver-NAME`, `cloud-sim` →
 * `@machine/cloud-sim`, `@scope/pkg` and `machine-driver-x` as given, a tarball or folder path as
 * an absolute path. Anything else is refused before npm runs.
 */
export function npmSpec(spec: string): string {
  const looksLikePath = spec.startsWith('.') || spec.startsWith('/') || spec.includes('\\') || /\.(tgz|tar\.gz)$/.test(spec) || isAbsolute(spec);
  if (looksLikePath) {
    const path = resolve(spec);
    if (!existsSync(path)) throw new CliError(`${spec}: no such tarball or folder`);
    return path;
  }
  const match = /^(@[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*|[a-z0-9][a-z0-9._-]*)(?:@([^@\s]+))?$/.exec(spec);
  if (match === null) throw new CliError(`"${spec}" is not a driver name, npm package name or tarball path (e.g. amazonec2, amazonec2@0.2.0, machine-driver-x, ./driver.tgz)`);
  const [, name = '', version] = match;
  const packageName = name.startsWith('@') || name.startsWith('machine-driver-') ? name : name === 'cloud-sim' ? simulatorPackage : (driverPackageNames(name)[0] as string);
  return version === undefined ? packageName : `${packageName}@${version}`;
}

function npmFlags(prefix: string, options: { allowScripts: boolean }): string[] {
  return ['--prefix', prefix, '--no-audit', '--no-fund', '--legacy-peer-deps', '--loglevel=error', ...(options.allowScripts ? [] : ['--ignore-scripts'])];
}

/** STORAGE/drivers with its own package.json, so npm treats it as a project of its own. */
async function ensurePrefix(ctx: CommandContext): Promise<string> {
  const prefix = ctx.registry.driversPrefix;
  if (prefix === undefined) throw new CliError('no storage path: drivers are installed into STORAGE/drivers');
  await mkdir(prefix, { recursive: true, mode: 0o700 });
  const manifest = join(prefix, 'package.json');
  if (!existsSync(manifest)) {
    await writeFile(manifest, `${JSON.stringify({ name: 'machine-drivers', private: true, description: 'Drivers installed by `machine drivers install`', dependencies: {} }, null, 2)}\n`);
  }
  return prefix;
}

/** Links this CLI's `@machine/driver-core` into the prefix, where the drivers' imports of it resolve. */
async function linkCore(prefix: string): Promise<void> {
  const link = join(prefix, 'node_modules', '@machine', 'driver-core');
  const target = await cliCorePackageDir();
  await mkdir(join(prefix, 'node_modules', '@machine'), { recursive: true });
  const existing = await lstat(link).catch(() => undefined);
  if (existing !== undefined) await rm(link, { recursive: true, force: true });
  await symlink(target, link, 'junction');
}

async function prefixDependencies(prefix: string): Promise<Record<string, string>> {
  try {
    const manifest = JSON.parse(await readFile(join(prefix, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    return manifest.dependencies ?? {};
  } catch {
    return {};
  }
}

async function installedVersion(prefix: string, packageName: string): Promise<string> {
  try {
    return String((JSON.parse(await readFile(join(prefix, 'node_modules', packageName, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '?');
  } catch {
    return '?';
  }
}

function driverNameFromPackage(packageName: string): string | undefined {
  return /^(?:@machine\/driver-|machine-driver-)(.+)$/.exec(packageName)?.[1];
}

/** The packages of STORAGE/drivers the names mean (driver names, `cloud-sim` or package names). */
async function installedPackages(ctx: CommandContext, prefix: string, names: readonly string[]): Promise<string[]> {
  const dependencies = Object.keys(await prefixDependencies(prefix));
  return names.map((name) => {
    const candidates = name.startsWith('@') || name.startsWith('machine-driver-') ? [name] : name === 'cloud-sim' ? [simulatorPackage] : driverPackageNames(name);
    const found = candidates.find((candidate) => dependencies.includes(candidate));
    if (found === undefined) {
      throw new CliError(`"${name}" is not installed in ${prefix} (\`machine drivers ls\` shows where each driver comes from; only drivers installed with \`machine drivers install\` are managed here)`);
    }
    ctx.debugLog(`drivers: ${name} is ${found}`);
    return found;
  });
}

/** Loads each installed driver package (a fresh registry), so a package that is not a usable driver is removed again and named. */
async function checkInstalled(ctx: CommandContext, prefix: string, packages: readonly string[]): Promise<void> {
  const registry = new DriverRegistry({ ...ctx.io, env: { ...ctx.io.env, MACHINE_DRIVER_PATH: prefix }, drivers: {} });
  for (const packageName of packages) {
    const driver = driverNameFromPackage(packageName);
    if (driver === undefined) continue;
    try {
      await registry.load(driver);
    } catch (error) {
      await runNpm(ctx, ['uninstall', ...npmFlags(prefix, { allowScripts: false }), packageName]).catch(() => {});
      await linkCore(prefix);
      throw new CliError(`${packageName} was not kept: ${(error as Error).message}`, ExitCode.error, { cause: error });
    }
  }
}

/** Runs the user's npm; its failure is one line with npm's own last error line. */
function runNpm(ctx: CommandContext, args: readonly string[]): Promise<void> {
  const windows = process.platform === 'win32';
  const command = windows ? 'npm.cmd' : 'npm';
  ctx.debugLog(`drivers: ${command} ${args.join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    execFile(command, [...args], { env: ctx.io.env as NodeJS.ProcessEnv, shell: windows, maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error === null) {
        resolvePromise();
        return;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new CliError('npm was not found on PATH: drivers are installed with npm (it comes with Node.js)'));
        return;
      }
      const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
      const last = lines.filter((line) => /npm (?:ERR!|error)/.test(line)).slice(0, 3).join(' / ') || lines.at(-1) || error.message;
      reject(new CliError(`npm ${args[0]} failed: ${last}`, ExitCode.error, { cause: error }));
    });
  });
}
