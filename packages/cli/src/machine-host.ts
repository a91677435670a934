import {
  type Driver,
  type DriverContext,
  type DriverDescriptor,
  type JsonValue,
  MemoryDataStore,
  MemoryJournal,
  type ProgressEvent,
  parseFlags,
  secretValues,
} from '@machine/driver-core';
import type { CommandContext } from './context.ts';
import { valuesByFlagName } from './driver-flags.ts';
import { useStoreRateBudget } from './rate-budget-host.ts';
import type { MachineRecord, Store } from './store.ts';

/** A stored machine with its driver built from the stored config. */
export interface OpenMachine {
  readonly record: MachineRecord;
  readonly descriptor: DriverDescriptor;
  readonly driver: Driver;
  /** The driver's full config (secrets from the environment included); never stored. */
  readonly config: Record<string, unknown>;
  /** Secret values, to keep out of messages. */
  readonly secrets: string[];
}

/**
 * The context a driver gets: a journal and a data store that write config.json on each change,
 * so a process killed mid-create leaves the record of what it made; its requests draw from the
 * store's shared rate budget (rate-budget-host.ts).
 */
export function persistentContext(store: Store, record: MachineRecord, onProgress?: (event: ProgressEvent) => void): DriverContext {
  // The driver's requests draw from the store's shared rate budget (every process and host on the store).
  useStoreRateBudget(store, record, { onProgress });
  const journal = new MemoryJournal(record.journal, async (entries) => {
    record.journal = [...entries];
    await store.write(record);
  });
  const data = new MemoryDataStore(record.data, async (next: Readonly<Record<string, JsonValue>>) => {
    record.data = { ...next };
    await store.write(record);
  });
  return {
    machineName: record.name,
    machineDir: store.machineDir(record.name),
    journal,
    data,
    ...(record.storeId === undefined ? {} : { storeId: record.storeId }),
    ...(onProgress === undefined ? {} : { onProgress }),
  };
}

/**
 * Parses a stored config again: the stored values, then the flags the simulator fills (for a
 * machine made with `--sim`), then the environment, where credentials come from: they are never
 * stored. Throws InvalidConfigError naming each missing credential.
 */
export function configFromRecord(
  descriptor: DriverDescriptor,
  record: MachineRecord,
  env: Readonly<Record<string, string | undefined>>,
  simValues: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  // The simulator's values replace only the flags it filled at create (older records: all of them).
  const fromSim = record.sim !== true ? {} : record.simFlags === undefined ? simValues : Object.fromEntries(Object.entries(simValues).filter(([flag]) => record.simFlags?.includes(flag)));
  const values = { ...valuesByFlagName(descriptor.flags, record.config), ...fromSim };
  return parseFlags(descriptor.flags, values, { env }) as Record<string, unknown>;
}

/** {@link configFromRecord}, starting the simulator for a simulated machine when it is not running. */
export async function storedConfig(ctx: CommandContext, descriptor: DriverDescriptor, record: MachineRecord): Promise<Record<string, unknown>> {
  let simValues: Record<string, unknown> = {};
  if (record.sim === true) {
    const { simFlagValues } = await import('./sim-mode.ts');
    simValues = await simFlagValues(ctx, descriptor, { start: true });
  }
  return configFromRecord(descriptor, record, ctx.io.env, simValues);
}

/** Reads a machine and builds its driver from the stored config. */
export async function openMachine(ctx: CommandContext, name: string, onProgress?: (event: ProgressEvent) => void): Promise<OpenMachine> {
  const record = await ctx.store.open(name);
  return openRecord(ctx, record, onProgress);
}

/** Builds the driver of a record already read. */
export async function openRecord(ctx: CommandContext, record: MachineRecord, onProgress?: (event: ProgressEvent) => void): Promise<OpenMachine> {
  const descriptor = await ctx.registry.load(record.driver);
  const config = await storedConfig(ctx, descriptor, record);
  const driver = descriptor.createDriver({ config, context: persistentContext(ctx.store, record, onProgress) });
  return { record, descriptor, driver, config, secrets: secretValues(descriptor.flags, config) };
}
