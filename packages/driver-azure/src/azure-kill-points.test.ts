import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import { type DriverContext, type JournalEntry, type JsonValue, MemoryDataStore, MemoryJournal, parseFlags } from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClients } from './azure-clients.ts';
import type { AzureConfig } from './azure-flags.ts';
import { createAzureDescriptor } from './index.ts';
import { azureLeaks, fastTimings, type SimProcess, simClients, simFlags, simProcesses, startAzureSim } from './testing/sim-harness.ts';

// Kill points and sweep through the real @azure/arm-* clients against cloud-sim's realistic Azure.

const descriptor = createAzureDescriptor({ timings: fastTimings });
let root: string;
let counter = 0;
const sims: Sim[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-azure-kill-'));
});
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A new subscription (unregistered providers); the role-assignment window is off so every run sends the same requests. */
async function fresh(): Promise<{ sim: Sim; client: AzureClients; processes: () => SimProcess }> {
  const sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0 } } });
  sims.push(sim);
  return { sim, client: await simClients(sim), processes: await simProcesses(sim) };
}

/**
 * A machine whose journal and data persist like the CLI's record; `kill()` kills the driver's
 * process (its later journal writes never reach the record, it never calls Azure again) and opens
 * a fresh one from the record.
 */
function persistedMachine({ sim, processes }: { sim: Sim; processes: () => SimProcess }, storeId?: string) {
  counter += 1;
  const machineName = `kp-${counter}`;
  const config = parseFlags(descriptor.flags, simFlags(sim), { env: {} }) as AzureConfig;
  let generation = 0;
  let journalRecord: readonly JournalEntry[] = [];
  let dataRecord: Readonly<Record<string, JsonValue>> = {};
  let running: SimProcess | undefined;
  const open = () => {
    const mine = generation;
    running = processes();
    const context: DriverContext & { journal: MemoryJournal } = {
      machineName,
      machineDir: join(root, machineName),
      journal: new MemoryJournal(journalRecord, async (entries) => {
        if (mine === generation) journalRecord = entries;
      }),
      data: new MemoryDataStore(dataRecord, async (data) => {
        if (mine === generation) dataRecord = data;
      }),
      ...(storeId === undefined ? {} : { storeId }),
    };
    return { driver: descriptor.createDriver({ config, context, client: running.clients }), context };
  };
  return {
    ...open(),
    config,
    record: () => journalRecord,
    kill: () => {
      generation += 1;
      running?.kill();
      return open();
    },
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The mutating requests the simulator carried out (refused ones, e.g. before registration, made nothing), with each one's position among all calls of its operation. */
const mutating = (sim: Sim) => {
  const seen = new Map<string, number>();
  return sim.requestLog.entries('azure').flatMap((entry) => {
    const nth = (seen.get(entry.operation) ?? 0) + 1;
    seen.set(entry.operation, nth);
    return (entry.method === 'PUT' || entry.method === 'POST') && entry.status < 400 ? [{ operation: entry.operation, nth }] : [];
  });
};

describe('azure: nothing leaks, whatever kills create', () => {
  it('a create killed at each of its committed requests (the answer never came): a fresh driver from the record leaves nothing', async () => {
    // The committed requests of one create on a new subscription, in order.
    const reference = await fresh();
    const first = persistedMachine(reference);
    await first.driver.create();
    const requests = mutating(reference.sim);
    await first.driver.remove();
    // Registering Network starts Compute's registration too (in the background): two registrations, then the resource PUTs in order.
    expect(requests.filter((request) => request.operation === 'providers.register')).toHaveLength(2);
    expect(requests.map((request) => request.operation).filter((operation) => operation !== 'providers.register')).toEqual([
      'resourceGroups.createOrUpdate',
      'networkSecurityGroups.createOrUpdate',
      'virtualNetworks.createOrUpdate',
      'subnets.createOrUpdate',
      'publicIPAddresses.createOrUpdate',
      'networkInterfaces.createOrUpdate',
      'virtualMachines.createOrUpdate',
    ]);

    let tried = 0;
    let clean = 0;
    for (const [index, { operation, nth }] of requests.entries()) {
      const subscription = await fresh(); // the same new subscription every time
      const { sim } = subscription;
      const machine = persistedMachine(subscription);
      sim.faults.add({ provider: 'azure', operation, reply: 'hold', nth });
      void machine.driver.create().catch(() => undefined); // killed: its answer never comes
      await until(() => sim.requestLog.count(operation, 'azure') >= nth, `${operation} #${nth}`);
      tried += 1;
      const revived = machine.kill();
      await revived.driver.remove();
      const leaks = azureLeaks(sim);
      expect(leaks, `kill at request ${index + 1} (${operation} #${nth})`).toEqual([]);
      expect(revived.context.journal.entries()).toEqual([]);
      if (leaks.length === 0) clean += 1;
    }
    console.info(`azure kill points: ${tried} tried, ${clean} clean (${requests.map((request) => `${request.operation} #${request.nth}`).join(', ')})`);
    expect(clean).toBe(tried);
    expect(tried).toBe(9);
  });

  it('sweep finds what a killed create left after its record was deleted by hand, and never touches a claimed or another store’s resource', async () => {
    const subscription = await fresh();
    const { sim, client } = subscription;
    const kept = persistedMachine(subscription, 'store1');
    await kept.driver.create();
    const other = persistedMachine(subscription, 'store2');
    await other.driver.create();
    const lost = persistedMachine(subscription, 'store1');
    const before = sim.requestLog.count('networkInterfaces.createOrUpdate');
    sim.faults.add({ provider: 'azure', operation: 'networkInterfaces.createOrUpdate', reply: 'hold' });
    void lost.driver.create().catch(() => undefined);
    await until(() => sim.requestLog.count('networkInterfaces.createOrUpdate') > before, 'the NIC create');
    lost.kill(); // ... and its record is deleted by hand: nothing claims what it made

    const request = { config: kept.config, client, storeId: 'store1', claimed: [...kept.record()] };
    const listed = await descriptor.sweep?.(request);
    const lostName = lost.context.machineName;
    expect(listed?.resources.map((resource) => [resource.kind, resource.name, resource.status]).sort()).toEqual([
      ['network-interface', `${lostName}-nic`, 'found'],
      ['network-security-group', `${lostName}-firewall`, 'found'],
      ['public-ip', `${lostName}-ip`, 'found'],
    ]);
    expect(listed?.resources.every((resource) => resource.machineName === lostName && (resource.ageMs ?? -1) >= 0)).toBe(true);
    const swept = await descriptor.sweep?.({ ...request, delete: true });
    expect(swept?.resources.map((resource) => resource.status)).toEqual(['deleted', 'deleted', 'deleted']);
    expect(azureLeaks(sim).filter((leak) => leak.includes(lostName))).toEqual([]);
    expect(azureLeaks(sim).filter((leak) => leak.startsWith('virtualMachine '))).toHaveLength(2);

    await other.driver.remove();
    await kept.driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });
});
