import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Sim, type SimOptions, startSim } from '@machine/cloud-sim';
import { createMemoryContext, type Driver, type DriverContext, type MemoryDataStore, type MemoryJournal, parseFlags } from '@machine/driver-core';
import type { DigitalOceanConfig } from '../digitalocean-flags.ts';
import { createDigitalOceanDescriptor } from '../index.ts';
import { fastTimings } from './fast-timings.ts';

/** The token the simulator accepts (any token not starting with `invalid`). */
export const simToken = 'dop_v1_sim_token';

/** A simulator with only the DigitalOcean front end, fast lifecycle delays. */
export function startDigitalOceanSim(options: SimOptions = {}): Promise<Sim> {
  return startSim({ providers: ['digitalocean'], delays: { pendingMs: 20, stoppingMs: 10 }, ...options });
}

/** Raw flags that point the driver at the simulator. */
export function simFlags(sim: Sim, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'digitalocean-access-token': simToken,
    'digitalocean-api-url': sim.endpoints.digitalocean,
    'digitalocean-ssh-port': sim.sshPort,
    'digitalocean-wait-timeout': 10,
    ...extra,
  };
}

/** A temporary folder for machine directories. */
export async function machineRoot(): Promise<{ path: string; dispose(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'do-driver-'));
  return { path, dispose: () => rm(path, { recursive: true, force: true }) };
}

let counter = 0;

/** A driver for a new machine against the simulator, with its context. */
export function simMachine(
  sim: Sim,
  root: string,
  extraFlags: Record<string, unknown> = {},
): { driver: Driver; context: DriverContext & { journal: MemoryJournal; data: MemoryDataStore }; config: DigitalOceanConfig } {
  counter += 1;
  const name = `sim-${counter}-${Date.now().toString(36)}`;
  const context = createMemoryContext(name, join(root, name));
  const descriptor = createDigitalOceanDescriptor({ timings: fastTimings });
  const config = parseFlags(descriptor.flags, simFlags(sim, extraFlags), { env: {} }) as DigitalOceanConfig;
  return { driver: descriptor.createDriver({ config, context }), context, config };
}
