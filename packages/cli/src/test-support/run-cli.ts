import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DriverDescriptor } from '@machine/driver-core';
import { createFakeCloud, type FakeCloud, fakeDriverDescriptor } from '@machine/driver-core/testing';
import type { CliIO } from '../io.ts';
import { main } from '../main.ts';

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
  close(): Promise<void>;
}

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
    close: async () => {
      await cloud.close();
      await rm(storage, { recursive: true, force: true });
    },
  };
}
