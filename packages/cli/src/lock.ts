import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertValidMachineName } from '@machine/driver-core';
import { CliError } from './cli-error.ts';

/** A held lock; `release` removes the lock file. */
export interface MachineLock {
  release(): Promise<void>;
}

/** The lock file of one machine: outside the machine folder, so `rm` can delete that folder while holding it. */
export function lockPath(root: string, name: string): string {
  assertValidMachineName(name); // a name never becomes a path before it is checked
  return join(root, 'locks', `${name}.lock`);
}

/** True when a process with this pid is alive. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding a machine's lock, when that process is alive. */
export async function lockHolder(root: string, name: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(lockPath(root, name), 'utf8'), 10);
    return processAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid younger than this is still being written (by an older CLI); older, it is stale. */
const unwrittenLockGraceMs = 10_000;

/**
 * Takes a machine's exclusive lock (see {@link lockFile}); a live holder is an error naming the pid,
 * or `whenBusy`'s error.
 */
export async function lockMachine(root: string, name: string, options: { whenBusy?: (pid: number) => Error } = {}): Promise<MachineLock> {
  const path = lockPath(root, name);
  return lockFile(path, {
    whenBusy: (pid) => {
      if (options.whenBusy !== undefined) return options.whenBusy(pid);
      if (pid === process.pid) return new CliError(`machine "${name}" is busy: process ${pid} (this one) is working on it (lock ${path})`);
      return new CliError(`machine "${name}" is busy: process ${pid} is working on it (lock ${path})`);
    },
    stuck: () => new CliError(`could not lock machine "${name}": ${path} stays without a process id; remove it if no machine command is running`),
  });
}

/** How {@link lockFile} treats a lock another live process holds. */
export interface LockFileOptions {
  /** The error when a live process (possibly this one) holds the lock and `waitMs` is over. */
  whenBusy: (pid: number) => Error;
  /** The error when the lock file stays without a process id. */
  stuck: () => Error;
  /** How long to wait for a live holder to release it before `whenBusy` (default 0: fail at once). */
  waitMs?: number;
}

/**
 * Takes an exclusive lock: a file holding our pid, made complete in a temporary file and
 * hard-linked into place (atomic, fails when it exists), so another process never reads a lock file
 * without its pid and takes it for stale. A lock whose process is gone is stale and taken over; a
 * live one is waited for up to `waitMs`, then `whenBusy`'s error.
 */
export async function lockFile(path: string, options: LockFileOptions): Promise<MachineLock> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + (options.waitMs ?? 0);
  // Tries that found a lock without a live holder (released meanwhile, being written, stale).
  let unsettled = 0;
  for (;;) {
    if (await createLockFile(path)) {
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => {});
        },
      };
    }
    const content = await readFile(path, 'utf8').catch(() => undefined);
    const pid = content !== undefined && /^\d+$/.test(content.trim()) ? Number(content.trim()) : undefined;
    if (pid !== undefined && (pid === process.pid || processAlive(pid))) {
      if (Date.now() >= deadline) throw options.whenBusy(pid);
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    if (++unsettled > 50) throw options.stuck();
    if (content === undefined) continue; // released meanwhile
    if (pid === undefined) {
      const age = await stat(path).then((info) => Date.now() - info.mtimeMs, () => 0);
      if (age < unwrittenLockGraceMs) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
    }
    await removeStaleLock(path, content);
  }
}

/** Creates the lock file with our pid in one step; false when it exists. */
async function createLockFile(path: string): Promise<boolean> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temporary, String(process.pid), { mode: 0o600 });
  try {
    await link(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

/**
 * Removes a stale lock file whose content was `staleContent`. It is first renamed aside (atomic):
 * when another process replaced it in between, the renamed file is its live lock, which is put back.
 */
async function removeStaleLock(path: string, staleContent: string): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return; // gone already
  }
  const content = await readFile(aside, 'utf8').catch(() => staleContent);
  if (content !== staleContent) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}
