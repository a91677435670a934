import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DriverDescriptor } from '@machine/driver-core';
import { createFakeCloud, type FakeCloud, fakeDriverDescriptor } from '@machine/driver-core/testing';
import type { CliIO } from '../io.ts';
import { lockPath } from '../lock.ts';
import { main } from '../main.ts';
import { type MachineRecord, MachineStore } from '../store.ts';

/** What one in-process run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one run. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  signal?: AbortSignal;
  tty?: boolean;
}

/** A temporary storage path, a fake cloud and a runner of the CLI against both. */
export interface CliHarness {
  readonly storage: string;
  readonly cloud: FakeCloud;
  readonly drivers: Record<string, DriverDescriptor>;
  run(argv: readonly string[], options?: RunOptions): Promise<CliRun>;
  /** Stores a machine record as the CLI would (a `ready` fake-driver machine unless `patch` says otherwise). */
  storeRecord(patch: Partial<MachineRecord> & { name: string }): Promise<void>;
  /** Writes the machine's lock file as if process `pid` held it. */
  writeLock(name: string, pid: number): Promise<void>;
  close(): Promise<void>;
}

/** The fake driver's config with every default, as `create -d fake` stores it. */
export const fakeConfig = { region: 'local-1', size: 'small', sshUser: 'root', openPorts: [], allowedCidrs: [], waitTimeout: 10 };

/** Makes a harness whose `fake` driver is the reference driver bound to a fresh fake cloud. */
export async function cliHarness(options: { cloud?: FakeCloud; drivers?: Record<string, DriverDescriptor> } = {}): Promise<CliHarness> {
  const storage = await mkdtemp(join(tmpdir(), 'machine-cli-'));
  const cloud = options.cloud ?? createFakeCloud({ transitionMs: 10 });
  const drivers: Record<string, DriverDescriptor> = { fake: fakeDriverDescriptor(cloud) as unknown as DriverDescriptor, ...options.drivers };
  return {
    storage,
    cloud,
    drivers,
    run: async (argv, runOptions = {}) => {
      let stdout = '';
      let stderr = '';
      const io: CliIO = {
        stdout: { write: (chunk) => (stdout += chunk.toString()), isTTY: runOptions.tty === true },
        stderr: { write: (chunk) => (stderr += chunk.toString()), isTTY: runOptions.tty === true },
        env: { PATH: process.env.PATH, HOME: storage, MACHINE_STORAGE_PATH: storage, ...runOptions.env },
        drivers,
        ...(runOptions.stdin === undefined ? {} : { stdin: Readable.from([runOptions.stdin]) }),
        ...(runOptions.signal === undefined ? {} : { signal: runOptions.signal }),
      };
      const code = await main(argv, io);
      return { code, stdout, stderr };
    },
    storeRecord: (patch) =>
      new MachineStore(storage).create({ version: 1, driver: 'fake', status: 'ready', createdAt: new Date().toISOString(), config: fakeConfig, journal: [], data: {}, ...patch }),
    writeLock: async (name, pid) => {
      await mkdir(join(storage, 'locks'), { recursive: true });
      await writeFile(lockPath(storage, name), String(pid));
    },
    close: async () => {
      await cloud.close();
      await rm(storage, { recursive: true, force: true });
    },
  };
}
