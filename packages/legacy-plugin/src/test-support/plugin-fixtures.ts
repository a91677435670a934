import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLegacyPluginBin } from '../plugin/plugin-bin.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** A temporary folder, removed by `dispose`. */
export async function tempDir(prefix: string): Promise<{ path: string; dispose(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

/**
 * The environment a TS plugin binary needs in tests: this Node first on PATH (its
 * `#!/usr/bin/env node` line) and the `@machine/source` condition, so it runs the TypeScript
 * sources directly.
 */
export function tsPluginEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('VITEST') && key !== 'NODE_OPTIONS') env[key] = value;
  return {
    ...env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    NODE_OPTIONS: '--conditions=@machine/source --no-warnings',
    ...extra,
  };
}

/** Writes `docker-machine-driver-<name>` serving a driver module of this package's sources (default: the toy driver). */
export function writeTsPlugin(dir: string, driverName = 'toy', driverModule = join(here, 'toy-driver.ts')): Promise<string> {
  return writeLegacyPluginBin(dir, { driverName, driverModule, serveModule: join(here, '..', 'plugin', 'index.ts') });
}

/** Writes a shell script plugin (for launch failures: junk on stdout, early exit, silence). */
export async function writeShellPlugin(dir: string, name: string, body: string, mode = 0o755): Promise<string> {
  const path = join(dir, `docker-machine-driver-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, mode);
  return path;
}

/** True while a process with this pid exists (a reaped child does not). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
