import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError } from './cli-error.ts';

/** A held lock; `release` removes the lock file. */
export interface MachineLock {
  release(): Promise<void>;
}

/** The lock file of one machine: outside the machine folder, so `rm` can delete that folder while holding it. */
export function lockPath(root: string, name: string): string {
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

/**
 * Takes a machine's exclusive lock: a file created with O_EXCL holding our pid. A lock whose
 * process is gone is stale and taken over; a live one is an error naming the pid.
 */
export async function lockMachine(root: string, name: string): Promise<MachineLock> {
  const path = lockPath(root, name);
  await mkdir(join(root, 'locks'), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => {});
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await lockHolder(root, name);
      if (holder !== undefined && holder !== process.pid) {
        throw new CliError(`machine "${name}" is busy: process ${holder} is working on it (lock ${path})`);
      }
      if (holder === process.pid) throw new CliError(`machine "${name}" is already locked by this process`);
      await unlink(path).catch(() => {}); // stale: its process is gone
    }
  }
  throw new CliError(`could not lock machine "${name}" (${path})`);
}
