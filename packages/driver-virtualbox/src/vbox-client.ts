import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidConfigError, NotFoundError, sleep, TimeoutError, throwIfAborted } from '@machine/driver-core';
import { parseMachineReadable, parseVmList, type VBoxManageRunner, VBoxManageError } from './vboxmanage.ts';
import { isSessionLocked, mapVBoxManageError } from './virtualbox-errors.ts';
import type { VirtualBoxTimings } from './virtualbox-timings.ts';

/**
 * What the driver and its resource kinds run VBoxManage through (the resource model's client):
 * typed errors, locked-session retries, and the host-wide host-only lock.
 */
export interface VBoxClient {
  /** The machine folder (VMs live in `<machineDir>/<name>`); unset for sweep. */
  readonly machineDir?: string;
  /** Runs VBoxManage; retries a locked session a few times; rejects with a typed error. */
  vbox(args: readonly string[], operation: string): Promise<string>;
  /** `showvminfo --machinereadable`. */
  info(uuid: string, operation: string): Promise<Map<string, string>>;
  /** Runs `body` holding `<cache>/hostonly.lock` (see {@link withHostOnlyLock}). */
  withHostOnlyLock<T>(signal: AbortSignal | undefined, body: () => Promise<T>): Promise<T>;
  /** The VMs with a host-only adapter (or host-only network) on `name`. */
  interfaceUsers(name: string, operation: string): Promise<{ uuid: string; name: string }[]>;
  /** Unregisters a medium (deleting a disk through VirtualBox) and removes the file; a medium already gone is fine. */
  closeMedium(type: 'disk' | 'dvd', path: string, deleteThroughVBox: boolean, operation: string): Promise<void>;
}

/** Options of {@link createVBoxClient}. */
export interface VBoxClientOptions {
  /** The runner (located on first use). */
  runner(): Promise<VBoxManageRunner>;
  /** The machine named in errors. */
  machine: string;
  timings: Pick<VirtualBoxTimings, 'lockRetries' | 'lockRetryDelay' | 'lockStaleAfter'>;
  /** Folder of `hostonly.lock`. */
  lockDir: string;
  machineDir?: string;
}

export function createVBoxClient(options: VBoxClientOptions): VBoxClient {
  const { machine, timings } = options;
  const client: VBoxClient = {
    ...(options.machineDir === undefined ? {} : { machineDir: options.machineDir }),
    async vbox(args, operation) {
      const runner = await options.runner().catch((error: unknown) => {
        // The lookup does not know which machine or operation it serves.
        if (InvalidConfigError.isInstance(error)) throw new InvalidConfigError(error.issues, { machine, operation });
        throw error;
      });
      for (let attempt = 0; ; attempt++) {
        try {
          return (await runner.run(args)).stdout;
        } catch (error) {
          if (isSessionLocked(error) && attempt < timings.lockRetries) {
            await sleep(timings.lockRetryDelay * (attempt + 1));
            continue;
          }
          throw mapVBoxManageError(error, { machine, operation });
        }
      }
    },
    async info(uuid, operation) {
      return parseMachineReadable(await client.vbox(['showvminfo', uuid, '--machinereadable'], operation));
    },
    withHostOnlyLock: (signal, body) => withHostOnlyLock({ dir: options.lockDir, owner: machine, staleAfter: timings.lockStaleAfter, signal }, body),
    async interfaceUsers(name, operation) {
      const users: { uuid: string; name: string }[] = [];
      for (const vm of parseVmList(await client.vbox(['list', 'vms'], operation))) {
        let info: Map<string, string>;
        try {
          info = await client.info(vm.uuid, operation);
        } catch (error) {
          if (NotFoundError.isInstance(error)) continue;
          throw error;
        }
        if ([...info].some(([key, value]) => /^(?:hostonlyadapter|hostonly-network)\d+$/.test(key) && value === name)) users.push(vm);
      }
      return users;
    },
    async closeMedium(type, path, deleteThroughVBox, operation) {
      try {
        await client.vbox(['closemedium', type, path, ...(deleteThroughVBox ? ['--delete'] : [])], operation);
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        if (!(cause instanceof VBoxManageError) || !isMissingMedium(cause.stderr)) throw error;
      }
      await rm(path, { force: true });
    },
  };
  return client;
}

function isMissingMedium(stderr: string): boolean {
  return /VERR_FILE_NOT_FOUND|VBOX_E_OBJECT_NOT_FOUND|Could not find file for the medium|Could not find (?:a|an) (?:hard disk|medium|DVD)|does not exist/i.test(stderr);
}

/**
 * Runs `body` holding `<dir>/hostonly.lock` (an exclusive-create file), so two machines created
 * at once do not both make a host-only interface for the same range. The holder touches the file
 * while it works (a Windows `hostonlyif create`, or an in-use check over many VMs, can take longer
 * than the stale limit), so only a lock nobody refreshed for `staleAfter` ms is taken to be left
 * over from a killed process; and the holder deletes the file only while it is still its own.
 */
export async function withHostOnlyLock<T>(
  lock: { dir: string; owner: string; staleAfter: number; signal?: AbortSignal | undefined },
  body: () => Promise<T>,
): Promise<T> {
  await mkdir(lock.dir, { recursive: true });
  const path = join(lock.dir, 'hostonly.lock');
  const token = `${process.pid} ${lock.owner} ${randomUUID()}\n`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    throwIfAborted(lock.signal);
    try {
      await writeFile(path, token, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > lock.staleAfter) await rm(path, { force: true });
      else if (Date.now() > deadline) throw new TimeoutError(`${path} is still held by another machine process`, { machine: lock.owner, hint: `delete ${path} if no machine command is running` });
      else await sleep(50 + Math.random() * 100);
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, lock.staleAfter / 4);
  heartbeat.unref();
  try {
    return await body();
  } finally {
    clearInterval(heartbeat);
    if ((await readFile(path, 'utf8').catch(() => undefined)) === token) await rm(path, { force: true });
  }
}
