import { defineFlags, flag, InvalidConfigError } from '@machine/driver-core';
import { isIP } from 'node:net';
import { engineOptProblem, engineOptStandsAlone } from './engine-opts.ts';

/** How the Docker engine is installed and configured on a machine (the reference's EngineOptions, trimmed). */
export interface EngineOptions {
  /** The install script, run with `sh` (default https://get.docker.com). */
  installUrl: string;
  /** The TLS port dockerd listens on (default 2376). */
  port: number;
  /** `key=value` dockerd options, written to daemon.json (see `daemonConfig`). */
  opts: string[];
  /** `KEY=VALUE` environment variables for dockerd (systemd `Environment=`). */
  env: string[];
  insecureRegistries: string[];
  registryMirrors: string[];
  /** `key=value` engine labels. */
  labels: string[];
  storageDriver?: string;
  /** Extra names and IPs for the server certificate. */
  tlsSans: string[];
  /** Make a bare machine: no engine, no certificates. */
  noProvision: boolean;
}

/** The default install script, as the reference. */
export const defaultInstallUrl = 'https://get.docker.com';
/** The default TLS port of a machine's engine. */
export const defaultEnginePort = 2376;

/**
 * Host-level `create` flags (no driver prefix), declared like driver flags so the CLI parses,
 * validates and documents them the same way. Names, env vars and defaults are the reference's.
 */
export const provisionFlags = defineFlags([
  flag({
    name: 'engine-install-url',
    key: 'engineInstallUrl',
    type: 'string',
    envVar: 'MACHINE_DOCKER_INSTALL_URL',
    default: defaultInstallUrl,
    description: 'URL of the script that installs Docker Engine on the machine',
    validate: (value: string) => installUrlProblem(value),
  }),
  flag({
    name: 'engine-port',
    key: 'enginePort',
    type: 'int',
    default: defaultEnginePort,
    min: 1,
    max: 65535,
    description: 'TCP port the Docker engine listens on with TLS',
  }),
  flag({
    name: 'engine-opt',
    key: 'engineOpt',
    type: 'string[]',
    description: 'dockerd option as key=value, written to daemon.json (repeatable), e.g. log-driver=journald',
    validate: (values: string[]) => firstProblem(joinContinuations(values, engineOptStandsAlone), engineOptProblem),
  }),
  flag({
    name: 'engine-env',
    key: 'engineEnv',
    type: 'string[]',
    description: 'environment variable KEY=VALUE for dockerd (repeatable)',
    validate: (values: string[]) => firstProblem(joinContinuations(values), engineEnvProblem),
  }),
  flag({
    name: 'engine-insecure-registry',
    key: 'engineInsecureRegistry',
    type: 'string[]',
    description: 'registry the engine may reach without TLS verification (repeatable)',
    validate: (values: string[]) => firstProblem(values, (value) => (/\s/.test(value) ? `"${value}" contains a space` : undefined)),
  }),
  flag({
    name: 'engine-registry-mirror',
    key: 'engineRegistryMirror',
    type: 'string[]',
    envVar: 'ENGINE_REGISTRY_MIRROR',
    description: 'registry mirror URL for the engine (repeatable)',
    validate: (values: string[]) => firstProblem(values, (value) => (/^https?:\/\/\S+$/.test(value) ? undefined : `"${value}" is not an http(s) URL`)),
  }),
  flag({
    name: 'engine-label',
    key: 'engineLabel',
    type: 'string[]',
    description: 'engine label key=value (repeatable)',
    validate: (values: string[]) => firstProblem(joinContinuations(values), labelProblem),
  }),
  flag({
    name: 'engine-storage-driver',
    key: 'engineStorageDriver',
    type: 'string',
    description: 'storage driver of the engine (the engine picks overlay2 when unset)',
    validate: (value: string) => (/^[a-z0-9_-]+$/i.test(value) ? undefined : `"${value}" is not a storage driver name`),
  }),
  flag({
    name: 'tls-san',
    key: 'tlsSan',
    type: 'string[]',
    description: 'extra IP or DNS name for the engine certificate (repeatable)',
    validate: (values: string[]) => firstProblem(values, sanProblem),
  }),
  flag({
    name: 'no-provision',
    key: 'noProvision',
    type: 'bool',
    description: 'create a bare machine: no Docker Engine, no certificates',
  }),
]);

/**
 * The engine options from `parseFlags(provisionFlags, …)` output (keyed by flag key: `enginePort`,
 * `engineOpt`, …). Missing keys take the flag defaults; values are checked again, so a hand-written
 * object gets the same one-line errors.
 */
export function engineOptionsFrom(values: Record<string, unknown>): EngineOptions {
  const problems: { flag: string; message: string }[] = [];
  const text = (key: string, flagName: string, fallback: string): string => {
    const value = values[key];
    if (value === undefined) return fallback;
    if (typeof value === 'string') return value;
    problems.push({ flag: flagName, message: `expects a string, got ${typeof value}` });
    return fallback;
  };
  const list = (key: string, flagName: string): string[] => {
    const value = values[key];
    if (value === undefined) return [];
    if (typeof value === 'string') return value === '' ? [] : [value];
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.filter((item) => item !== '');
    problems.push({ flag: flagName, message: 'expects a list of strings' });
    return [];
  };
  const installUrl = text('engineInstallUrl', 'engine-install-url', defaultInstallUrl);
  const portValue = values.enginePort ?? defaultEnginePort;
  const port = typeof portValue === 'string' && /^\d+$/.test(portValue) ? Number(portValue) : portValue;
  const storageDriver = text('engineStorageDriver', 'engine-storage-driver', '');
  const engine: EngineOptions = {
    installUrl,
    port: typeof port === 'number' ? port : Number.NaN,
    opts: joinContinuations(list('engineOpt', 'engine-opt'), engineOptStandsAlone),
    env: joinContinuations(list('engineEnv', 'engine-env')),
    insecureRegistries: list('engineInsecureRegistry', 'engine-insecure-registry'),
    registryMirrors: list('engineRegistryMirror', 'engine-registry-mirror'),
    labels: joinContinuations(list('engineLabel', 'engine-label')),
    tlsSans: list('tlsSan', 'tls-san'),
    noProvision: values.noProvision === true || values.noProvision === 'true',
  };
  if (storageDriver !== '') engine.storageDriver = storageDriver;
  if (!Number.isInteger(engine.port) || engine.port < 1 || engine.port > 65535) {
    problems.push({ flag: 'engine-port', message: `must be a whole number from 1 to 65535, got ${String(portValue)}` });
  }
  const checks: [string, string | undefined][] = [
    ['engine-install-url', installUrlProblem(installUrl)],
    ['engine-opt', firstProblem(engine.opts, engineOptProblem)],
    ['engine-env', firstProblem(engine.env, engineEnvProblem)],
    ['engine-label', firstProblem(engine.labels, labelProblem)],
    ['tls-san', firstProblem(engine.tlsSans, sanProblem)],
  ];
  for (const [flagName, message] of checks) if (message !== undefined) problems.push({ flag: flagName, message });
  if (problems.length > 0) throw new InvalidConfigError(problems, { operation: 'config' });
  return engine;
}

/**
 * The flag parser splits list values on commas; a piece that cannot stand alone (no `=`, and for
 * `--engine-opt` not a bare boolean option) belongs to the previous one: `NO_PROXY=a,b` stays whole.
 */
function joinContinuations(values: readonly string[], standsAlone: (value: string) => boolean = (value) => value.includes('=')): string[] {
  const joined: string[] = [];
  for (const value of values) {
    const previous = joined.at(-1);
    if (previous !== undefined && !standsAlone(value)) joined[joined.length - 1] = `${previous},${value}`;
    else joined.push(value);
  }
  return joined;
}

function firstProblem(values: readonly string[], check: (value: string) => string | undefined): string | undefined {
  for (const value of values) {
    const problem = check(value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function installUrlProblem(value: string): string | undefined {
  if (!/^https?:\/\/[^\s'"\\`$]+$/.test(value)) return `"${withoutCredentials(value)}" is not an http(s) URL without quotes or spaces`;
  return undefined;
}

/** A URL for messages: `user:password@` (a private mirror's credentials) shown as `***@`. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/i, '$1***@');
}

/** Problems with an `--engine-env` entry: it becomes a systemd `Environment="KEY=VALUE"` line. */
function engineEnvProblem(value: string): string | undefined {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(value);
  if (match === null) return `"${value}" is not KEY=VALUE (KEY: letters, digits, _)`;
  if (/[\n\r\0]/.test(match[2] ?? '')) return `the value of ${match[1]} contains a line break`;
  return undefined;
}

function labelProblem(value: string): string | undefined {
  if (!/^[^=\s]+=.*$/s.test(value)) return `"${value}" is not key=value`;
  if (/[\n\r\0]/.test(value)) return `"${value.split('=')[0]}" contains a line break`;
  return undefined;
}

function sanProblem(value: string): string | undefined {
  const name = value.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(name) !== 0) return undefined;
  if (/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(name) && name.length <= 253) return undefined;
  return `"${value}" is neither an IP address nor a DNS name`;
}
