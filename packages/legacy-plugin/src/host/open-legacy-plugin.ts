import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { type DriverDescriptor, type FlagDefinition, guardDriver } from '@machine/driver-core';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { fromMcnFlags, type McnFlag } from '../protocol/driver-rpc-types.ts';
import { LegacyPluginDriver } from './legacy-plugin-driver.ts';
import { PluginSession } from './plugin-session.ts';

/** The file name prefix docker-machine looks for. */
export const legacyPluginPrefix = 'docker-machine-driver-';

/** Options of {@link openLegacyPlugin}. */
export interface OpenLegacyPluginOptions {
  /** The driver's name (default: the file name without `docker-machine-driver-`). */
  readonly name?: string;
  /** The plugin's environment (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** libmachine's StorePath sent to the plugin (default: the folder above `machines/NAME`). */
  readonly storePath?: string;
  /** The plugin's stderr lines, for --debug output. */
  readonly onDebug?: (line: string) => void;
  /** Called with each plugin process's pid (tests, diagnostics). */
  readonly onLaunch?: (pid: number) => void;
  /** How long a plugin may take to print its address, ms (default 10000, as libmachine). */
  readonly startTimeout?: number;
  /** Heartbeat period, ms (default 5000, as libmachine). */
  readonly heartbeatInterval?: number;
}

/** A descriptor for a plugin binary, with what the plugin declared. */
export interface LegacyPluginDescriptor extends DriverDescriptor<Record<string, unknown>> {
  readonly legacyPlugin: {
    /** The binary. */
    readonly path: string;
    /** The flags as GetCreateFlags gave them. */
    readonly mcnFlags: readonly McnFlag[];
  };
}

/** What hosts should say in `drivers ls` and `rm` about a plugin driver. */
export const legacyPluginJournalNotice =
  "machine's resource journal cannot see inside a docker-machine plugin: what it made is known only to the plugin, and rm relies on the plugin's own Remove";

/** True for a descriptor made by {@link openLegacyPlugin}. */
export function isLegacyPluginDescriptor(descriptor: unknown): descriptor is LegacyPluginDescriptor {
  if (typeof descriptor !== 'object' || descriptor === null) return false;
  const candidate = (descriptor as Partial<LegacyPluginDescriptor>).legacyPlugin;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.path === 'string';
}

/** Flags whose values are credentials by their name: kept out of the machine record. */
const secretFlagName = /token|secret|password|passwd|api-?key|access-?key|credential/i;

/** A plugin's create flag as a driver-core flag: keyed by its own name, Usage as help, defaults as declared. */
export function flagFromMcnFlag(flag: McnFlag): FlagDefinition {
  const definition: { -readonly [K in keyof FlagDefinition]: FlagDefinition[K] } = {
    name: flag.name,
    key: flag.name,
    type: flag.kind,
    description: flag.usage === '' ? flag.name : flag.usage,
  };
  if (flag.envVar !== '') definition.envVar = flag.envVar;
  if (flag.kind === 'string' && typeof flag.value === 'string' && flag.value !== '') definition.default = flag.value;
  if (flag.kind === 'int' && typeof flag.value === 'number') definition.default = flag.value;
  if (flag.kind === 'string[]' && Array.isArray(flag.value) && flag.value.length > 0) definition.default = [...flag.value];
  if (secretFlagName.test(flag.name)) definition.secret = true;
  return definition;
}

/**
 * Turns a `docker-machine-driver-NAME` binary into a driver-core descriptor: runs the plugin once
 * for GetCreateFlags (then closes and reaps it); `createDriver` gives a {@link LegacyPluginDriver}
 * that runs the plugin once per operation. Rejects with LegacyProtocolError when the binary is
 * not a working plugin.
 */
export async function openLegacyPlugin(path: string, options: OpenLegacyPluginOptions = {}): Promise<LegacyPluginDescriptor> {
  const file = basename(path).replace(/\.exe$/i, '');
  const name = options.name ?? (file.startsWith(legacyPluginPrefix) ? file.slice(legacyPluginPrefix.length) : file);
  const sessionOptions = {
    driverName: name,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.startTimeout === undefined ? {} : { startTimeout: options.startTimeout }),
    ...(options.heartbeatInterval === undefined ? {} : { heartbeatInterval: options.heartbeatInterval }),
    ...(options.onLaunch === undefined ? {} : { onLaunch: options.onLaunch }),
    ...(options.onDebug === undefined ? {} : { onStderr: options.onDebug }),
  };
  const session = await PluginSession.open(path, sessionOptions);
  let mcnFlags: McnFlag[];
  try {
    mcnFlags = fromMcnFlags((await session.call('GetCreateFlags')).value);
  } catch (error) {
    throw LegacyProtocolError.isInstance(error) ? error : new LegacyProtocolError(`the plugin ${path} did not give its create flags: ${(error as Error).message}`, { cause: error });
  } finally {
    await session.close();
  }
  const flags = mcnFlags.map(flagFromMcnFlag);
  return {
    name,
    specificationVersion: 'v1',
    description: `docker-machine plugin ${path}`,
    flags,
    legacyPlugin: { path, mcnFlags },
    createDriver: ({ config, context }) =>
      guardDriver(
        new LegacyPluginDriver({
          ...sessionOptions,
          path,
          flags,
          config,
          context,
          ...(options.storePath === undefined ? {} : { storePath: options.storePath }),
          ...(options.onDebug === undefined ? {} : { onDebug: options.onDebug }),
        }),
      ),
  };
}

/** A plugin binary found on disk. */
export interface FoundLegacyPlugin {
  readonly name: string;
  readonly path: string;
  /** The folder it was found in. */
  readonly source: string;
}

/** The folders searched, in order: MACHINE_DRIVER_PATH, then PATH. */
export function legacyPluginSearchPath(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  return [...(env.MACHINE_DRIVER_PATH ?? '').split(delimiter), ...(env.PATH ?? '').split(delimiter)].filter((dir) => dir !== '');
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, process.platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `docker-machine-driver-NAME` on MACHINE_DRIVER_PATH, then PATH (as exec.LookPath), or undefined. */
export async function findLegacyPlugin(name: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<FoundLegacyPlugin | undefined> {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) return undefined;
  const suffixes = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of legacyPluginSearchPath(env)) {
    for (const suffix of suffixes) {
      const path = join(dir, `${legacyPluginPrefix}${name}${suffix}`);
      if (await isExecutableFile(path)) return { name, path, source: dir };
    }
  }
  return undefined;
}

/** Every plugin binary on MACHINE_DRIVER_PATH and PATH, the first of each name, sorted by name. */
export async function listLegacyPlugins(env: Readonly<Record<string, string | undefined>> = process.env): Promise<FoundLegacyPlugin[]> {
  const found = new Map<string, FoundLegacyPlugin>();
  for (const dir of legacyPluginSearchPath(env)) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const entry of entries.sort()) {
      if (!entry.startsWith(legacyPluginPrefix)) continue;
      const name = entry.slice(legacyPluginPrefix.length).replace(/\.(exe|cmd)$/i, '');
      if (name === '' || found.has(name)) continue;
      const path = join(dir, entry);
      if (await isExecutableFile(path)) found.set(name, { name, path, source: dir });
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}
