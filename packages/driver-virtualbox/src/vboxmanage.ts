import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { InvalidConfigError } from '@machine/driver-core';

/** What one VBoxManage run printed. */
export interface VBoxManageOutput {
  stdout: string;
  stderr: string;
}

/**
 * Runs VBoxManage with an argument array (never through a shell). The driver's injectable
 * "client": tests and embedders may pass their own.
 */
export interface VBoxManageRunner {
  run(args: readonly string[]): Promise<VBoxManageOutput>;
}

/** VBoxManage exited non-zero (or could not be run). */
export class VBoxManageError extends Error {
  readonly args: readonly string[];
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  /** The OS error code when VBoxManage could not be started (ENOENT, EACCES). */
  readonly spawnCode: string | undefined;
  /** Set when the run was killed for taking longer than this many ms. */
  readonly timedOutMs: number | undefined;

  constructor(args: readonly string[], output: { stdout: string; stderr: string; exitCode?: number; spawnCode?: string; timedOutMs?: number }) {
    const detail =
      output.timedOutMs !== undefined
        ? `did not finish within ${output.timedOutMs / 1000} s`
        : (firstErrorLine(output.stderr) ?? (output.spawnCode === undefined ? `exit code ${output.exitCode ?? '?'}` : output.spawnCode));
    super(`VBoxManage ${args[0] ?? ''} failed: ${detail}`);
    this.name = 'VBoxManageError';
    this.args = args;
    this.stdout = output.stdout;
    this.stderr = output.stderr;
    this.exitCode = output.exitCode;
    this.spawnCode = output.spawnCode;
    this.timedOutMs = output.timedOutMs;
  }
}

/** How long one VBoxManage run may take before it is killed, ms: a hung VBoxSVC must not hang machine. */
export interface VBoxManageTimeouts {
  /** Disk commands (clonemedium, modifymedium, closemedium, unregistervm) copy or delete gigabytes. */
  media: number;
  /** Every other command (they answer in seconds). */
  other: number;
}

/** Production limits: an hour for disk commands, five minutes for the rest. */
export const defaultVBoxManageTimeouts: VBoxManageTimeouts = { media: 60 * 60_000, other: 5 * 60_000 };

const mediaCommands = new Set(['clonemedium', 'clonehd', 'modifymedium', 'modifyhd', 'closemedium', 'unregistervm']);

/** The time limit of one VBoxManage run. */
export function vboxManageTimeout(args: readonly string[], timeouts: VBoxManageTimeouts = defaultVBoxManageTimeouts): number {
  return mediaCommands.has(args[0] ?? '') ? timeouts.media : timeouts.other;
}

/** The first `VBoxManage: error:` line without its prefix (the useful one), else the first line. */
export function firstErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^\d+%/.test(line));
  const error = lines.find((line) => /^VBoxManage(?:\.exe)?: error:/.test(line) && !/error: Details:|error: Context:/.test(line));
  const chosen = error ?? lines[0];
  return chosen?.replace(/^VBoxManage(?:\.exe)?: error:\s*/, '');
}

/**
 * The runner used in production: `execFile(path, args)` with a generous output buffer, killed
 * (SIGKILL: a client stuck in a call to VBoxSVC may not heed SIGTERM) after its time limit.
 */
export function execFileRunner(path: string, timeouts: VBoxManageTimeouts = defaultVBoxManageTimeouts): VBoxManageRunner {
  return {
    run: (args) =>
      new Promise((resolve, reject) => {
        const timeout = vboxManageTimeout(args, timeouts);
        execFile(path, [...args], { maxBuffer: 16 * 1024 * 1024, windowsHide: true, encoding: 'utf8', timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
          if (error === null) {
            resolve({ stdout, stderr });
            return;
          }
          const code = (error as NodeJS.ErrnoException).code;
          const killedForTime = (error as { killed?: boolean }).killed === true;
          reject(
            new VBoxManageError(args, {
              stdout: stdout ?? '',
              stderr: stderr ?? '',
              ...(typeof code === 'number' ? { exitCode: code } : {}),
              ...(typeof code === 'string' ? { spawnCode: code } : {}),
              ...(killedForTime ? { timedOutMs: timeout } : {}),
            }),
          );
        });
      }),
  };
}

/** Where {@link locateVBoxManage} looks, in order. */
export interface LocateOptions {
  /** `--virtualbox-vboxmanage-path` (or its env var `VBOX_MANAGE_PATH`, already merged by parseFlags). */
  explicitPath?: string | undefined;
  env?: Readonly<Record<string, string | undefined>>;
  platform?: NodeJS.Platform;
}

/**
 * Finds VBoxManage: the flag (env `VBOX_MANAGE_PATH`), then `VBOX_MSI_INSTALL_PATH` and
 * `VBOX_INSTALL_PATH` (the Windows installer's variables; folders, `;`-separated lists allowed),
 * then every `PATH` folder, then the default install folders. A miss is one line naming them all.
 */
export async function locateVBoxManage(options: LocateOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const exe = platform === 'win32' ? 'VBoxManage.exe' : 'VBoxManage';
  if (options.explicitPath !== undefined && options.explicitPath !== '') {
    if (await isExecutable(options.explicitPath, platform)) return options.explicitPath;
    throw new InvalidConfigError(
      [{ flag: 'virtualbox-vboxmanage-path', message: `${options.explicitPath} is not an executable file (from the flag or VBOX_MANAGE_PATH)` }],
    );
  }
  const looked: string[] = ['--virtualbox-vboxmanage-path/VBOX_MANAGE_PATH (unset)'];
  const candidates: string[] = [];
  for (const variable of ['VBOX_MSI_INSTALL_PATH', 'VBOX_INSTALL_PATH']) {
    const value = env[variable];
    if (value === undefined || value === '') {
      looked.push(`${variable} (unset)`);
      continue;
    }
    looked.push(`${variable} (${value})`);
    for (const dir of value.split(platform === 'win32' ? ';' : delimiter)) if (dir !== '') candidates.push(join(dir, exe));
  }
  const pathDirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : delimiter).filter((dir) => dir !== '');
  looked.push(`PATH (${pathDirs.length} folders)`);
  for (const dir of pathDirs) candidates.push(join(dir, exe));
  const defaults =
    platform === 'darwin'
      ? ['/Applications/VirtualBox.app/Contents/MacOS/VBoxManage', '/usr/local/bin/VBoxManage']
      : platform === 'win32'
        ? [join(env.ProgramFiles ?? 'C:\\Program Files', 'Oracle', 'VirtualBox', exe)]
        : ['/usr/bin/VBoxManage', '/usr/local/bin/VBoxManage'];
  looked.push(defaults.join(', '));
  candidates.push(...defaults);
  for (const candidate of candidates) if (await isExecutable(candidate, platform)) return candidate;
  throw new InvalidConfigError(
    [
      {
        flag: 'virtualbox-vboxmanage-path',
        message: `VBoxManage not found; looked in ${looked.join(', ')}. Install VirtualBox 6.1 or newer, or pass --virtualbox-vboxmanage-path`,
      },
    ],
  );
}

async function isExecutable(path: string, platform: NodeJS.Platform): Promise<boolean> {
  try {
    await access(path, platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `7.1.4r165100`, `6.1.50_Ubuntur161033` → `{ major, minor, patch, text }`; undefined when unreadable. */
export function parseVBoxVersion(output: string): { major: number; minor: number; patch: number; text: string } | undefined {
  const lines = output.split(/\r?\n/).map((line) => line.trim());
  for (const line of lines.reverse()) {
    const match = /^(\d+)\.(\d+)\.(\d+)/.exec(line);
    if (match !== null) return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]), text: line };
  }
  return undefined;
}

/** Parses `showvminfo --machinereadable` / `getextradata` style `key="value"` lines. */
export function parseMachineReadable(output: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of output.split(/\r?\n/)) {
    const match = /^("?)([^"=]+)\1=(.*)$/.exec(line);
    if (match === null) continue;
    const key = match[2] ?? '';
    let value = (match[3] ?? '').trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    if (!values.has(key)) values.set(key, value);
  }
  return values;
}

/** Parses block lists (`list hostonlyifs`, `list hostonlynets`, `list dhcpservers`): `Key: value` lines, blank-line separated. */
export function parseBlocks(output: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = [];
  let current = new Map<string, string>();
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (current.size > 0) blocks.push(current);
      current = new Map();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    current.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  if (current.size > 0) blocks.push(current);
  return blocks;
}

/** Parses `list vms`: `"name" {uuid}` lines. */
export function parseVmList(output: string): { name: string; uuid: string }[] {
  const vms: { name: string; uuid: string }[] = [];
  for (const line of output.split(/\r?\n/)) {
    const match = /^"(.*)" \{([0-9a-fA-F-]+)\}$/.exec(line.trim());
    if (match !== null) vms.push({ name: match[1] ?? '', uuid: (match[2] ?? '').toLowerCase() });
  }
  return vms;
}
