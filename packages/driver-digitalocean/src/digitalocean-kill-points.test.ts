import type { Sim } from '@machine/cloud-sim';
import {
  CleanupError,
  type DriverContext,
  type JournalEntry,
  type JsonValue,
  MemoryDataStore,
  MemoryJournal,
  parseFlags,
} from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { createDigitalOceanDescriptor, type DigitalOceanTimings } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { machineRoot, simFlags, startDigitalOceanSim } from './test-support/sim-harness.ts';

// Kill points, lost replies, honest remove and sweep through the real dots client against cloud-sim.

let counter = 0;

/** A machine whose journal and data persist like the CLI's record; `kill()` drops the driver and opens a fresh one from the record. */
function persistedMachine(sim: Sim, root: string, options: { flags?: Record<string, unknown>; storeId?: string; timings?: Partial<DigitalOceanTimings> } = {}) {
  counter += 1;
  const machineName = `kp-${counter}-${Date.now().toString(36)}`;
  const descriptor = createDigitalOceanDescriptor({ timings: { ...fastTimings, ...options.timings } });
  const config = parseFlags(descriptor.flags, simFlags(sim, options.flags), { env: {} }) as DigitalOceanConfig;
  let generation = 0;
  let journalRecord: readonly JournalEntry[] = [];
  let dataRecord: Readonly<Record<string, JsonValue>> = {};
  const open = () => {
    const mine = generation;
    const context: DriverContext & { journal: MemoryJournal } = {
      machineName,
      machineDir: `${root}/${machineName}`,
      journal: new MemoryJournal(journalRecord, async (entries) => {
        if (mine === generation) journalRecord = entries;
      }),
      data: new MemoryDataStore(dataRecord, async (data) => {
        if (mine === generation) dataRecord = data;
      }),
      ...(options.storeId === undefined ? {} : { storeId: options.storeId }),
    };
    return { driver: descriptor.createDriver({ config, context }), context };
  };
  return {
    ...open(),
    config,
    descriptor,
    record: () => journalRecord,
    kill: () => {
      generation += 1;
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

describe('digitalocean: nothing leaks, whatever kills create', () => {
  let sim: Sim;
  let root: { path: string; dispose(): Promise<void> };

  beforeAll(async () => {
    sim = await startDigitalOceanSim();
    root = await machineRoot();
  });
  afterAll(async () => {
    await sim.close();
    await root.dispose();
  });
  afterEach(() => {
    sim.faults.clear();
  });

  it('a create killed at each of its requests (the provider committed, the answer never came): a fresh driver from the record leaves nothing', async () => {
    // The requests of one create, in order.
    const reference = persistedMachine(sim, root.path, { flags: { 'digitalocean-firewall': true } });
    const start = sim.requestLog.entries('digitalocean').length;
    await reference.driver.create();
    const requests = sim.requestLog.entries('digitalocean').slice(start).map((entry) => entry.operation);
    await reference.driver.remove();
    expect(requests.slice(0, 3)).toEqual(['keys.create', 'droplets.create', 'firewalls.create']);

    let tried = 0;
    let clean = 0;
    for (const [index, operation] of requests.entries()) {
      const nth = requests.slice(0, index + 1).filter((candidate) => candidate === operation).length;
      const machine = persistedMachine(sim, root.path, { flags: { 'digitalocean-firewall': true } });
      const before = sim.requestLog.count(operation);
      const rule = sim.faults.add({ provider: 'digitalocean', operation, nth, reply: 'hold' });
      void machine.driver.create().catch(() => undefined); // killed: its answer never comes
      await until(() => sim.requestLog.count(operation) >= before + nth, `${operation} #${nth}`);
      rule.remove();
      tried += 1;
      const fresh = machine.kill();
      await fresh.driver.remove();
      const leaks = sim.leaks().filter((leak) => leak.name === machine.context.machineName || leak.name?.includes(`.${machine.context.machineName}.`));
      expect(leaks, `kill at request ${index + 1} (${operation} #${nth})`).toEqual([]);
      expect(fresh.context.journal.entries()).toEqual([]);
      if (leaks.length === 0) clean += 1;
    }
    console.info(`digitalocean kill points: ${tried} tried, ${clean} clean (${requests.join(', ')})`);
    expect(clean).toBe(tried);
    expect(tried).toBeGreaterThanOrEqual(4);
  });

  it.each(['keys.create', 'droplets.create', 'firewalls.create'])('an answer to %s dropped with the process alive: create carries on and makes no twin', async (operation) => {
    const machine = persistedMachine(sim, root.path, { flags: { 'digitalocean-firewall': true } });
    sim.faults.add({ provider: 'digitalocean', operation, reply: 'drop' });
    await machine.driver.create();
    expect(sim.requestLog.entries('digitalocean').filter((entry) => entry.operation === operation).length).toBeGreaterThan(0);
    const mine = sim.leaks().filter((leak) => leak.name === machine.context.machineName || leak.name?.includes(`.${machine.context.machineName}.`));
    expect(mine.map((leak) => leak.kind).sort()).toEqual(['droplet', 'firewall', 'ssh_key']);
    await machine.driver.remove();
    expect(sim.leaks()).toEqual([]);
  });

  it('remove never claims success while the droplet refuses deletion: one CleanupError names it, the record keeps it, the next remove finishes', async () => {
    const machine = persistedMachine(sim, root.path, { flags: { 'digitalocean-firewall': true } });
    await machine.driver.create();
    const dropletId = machine.context.journal.entries().find((entry) => entry.kind === 'droplet')?.id;
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.delete', error: 'server', times: 20 });
    const error = await machine.driver.remove().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CleanupError);
    expect((error as CleanupError).left).toEqual([{ kind: 'droplet', id: dropletId, reason: expect.stringContaining('HTTP 500') }]);
    expect((error as Error).message).toMatch(new RegExp(`could not delete droplet ${dropletId}: `));
    expect(machine.record().map((entry) => entry.kind)).toEqual(['droplet']);
    expect(sim.leaks().map((leak) => leak.kind)).toEqual(['droplet']);
    sim.faults.clear();
    await machine.kill().driver.remove();
    expect(sim.leaks()).toEqual([]);
  });

  it('sweep finds what a killed create left after its record was deleted by hand, and never touches a claimed, another store’s or an untagged resource', async () => {
    const kept = persistedMachine(sim, root.path, { storeId: 'store1', flags: { 'digitalocean-firewall': true } });
    await kept.driver.create();
    const other = persistedMachine(sim, root.path, { storeId: 'store2' });
    await other.driver.create();
    const lost = persistedMachine(sim, root.path, { storeId: 'store1', flags: { 'digitalocean-firewall': true } });
    const before = sim.requestLog.count('firewalls.create');
    sim.faults.add({ provider: 'digitalocean', operation: 'firewalls.create', reply: 'hold' });
    void lost.driver.create().catch(() => undefined);
    await until(() => sim.requestLog.count('firewalls.create') > before, 'the firewall create');
    lost.kill(); // ... and its record is deleted by hand: nothing claims what it made
    const untagged = await fetch(`${sim.endpoints.digitalocean}/v2/droplets`, {
      method: 'POST',
      headers: { authorization: 'Bearer someone-else', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'not-ours', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: ['machine'] }),
    });
    expect(untagged.status).toBe(202);
    // DigitalOcean lists a new droplet or key a moment after making it (30 ms here); sweep looks at the listings.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const request = { config: kept.config, storeId: 'store1', claimed: [...kept.record()] };
    const listed = await kept.descriptor.sweep?.(request);
    const lostName = lost.context.machineName;
    expect(listed?.resources.map((resource) => [resource.kind, resource.status]).sort()).toEqual([
      ['droplet', 'found'],
      ['firewall', 'found'],
      ['ssh-key', 'found'],
    ]);
    expect(listed?.resources.every((resource) => resource.name === lostName || resource.name?.includes(`.${lostName}.`))).toBe(true);
    expect(listed?.resources.find((resource) => resource.kind === 'droplet')?.ageMs).toBeGreaterThanOrEqual(0);

    const swept = await kept.descriptor.sweep?.({ ...request, delete: true });
    expect(swept?.resources.map((resource) => resource.status)).toEqual(['deleted', 'deleted', 'deleted']);
    expect(sim.leaks().filter((leak) => leak.name === lostName || leak.name?.includes(`.${lostName}.`))).toEqual([]);
    expect(sim.leaks().filter((leak) => leak.kind === 'droplet').map((leak) => leak.name).sort()).toEqual(
      [kept.context.machineName, other.context.machineName, 'not-ours'].sort(),
    );

    await kept.driver.remove();
    await other.driver.remove();
    const notOurs = sim.store.listInstances('digitalocean').find((instance) => instance.name === 'not-ours');
    await fetch(`${sim.endpoints.digitalocean}/v2/droplets/${notOurs?.id}`, { method: 'DELETE', headers: { authorization: 'Bearer someone-else' } });
    await until(() => sim.store.getInstance('digitalocean', String(notOurs?.id))?.state === 'terminated', 'the deleted droplet to go');
    expect(sim.leaks()).toEqual([]);
  });
});

describe('digitalocean remove waits until a deleted droplet is gone (DigitalOcean deletes after answering 204)', () => {
  let sim: Sim;
  let root: { path: string; dispose(): Promise<void> };

  beforeAll(async () => {
    sim = await startDigitalOceanSim({ digitalocean: { dropletDeleteMs: 300 } });
    root = await machineRoot();
  });
  afterAll(async () => {
    await sim.close();
    await root.dispose();
  });

  it('remove returns only once the droplet answers 404', async () => {
    const machine = persistedMachine(sim, root.path);
    await machine.driver.create();
    await machine.driver.remove();
    expect(sim.leaks()).toEqual([]);
    expect(sim.requestLog.count('droplets.get')).toBeGreaterThan(1);
  });

  it('a droplet still there at the deadline fails remove with a CleanupError that says so; the next remove finishes', async () => {
    const machine = persistedMachine(sim, root.path, { timings: { deleteTimeoutMs: 50 } });
    await machine.driver.create();
    const error = await machine.driver.remove().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CleanupError);
    expect((error as CleanupError).left[0]).toMatchObject({ kind: 'droplet', reason: expect.stringMatching(/still exists .* after its delete was accepted/) });
    expect(machine.record().map((entry) => entry.kind)).toEqual(['droplet']);
    await new Promise((resolve) => setTimeout(resolve, 350));
    await machine.driver.remove();
    expect(sim.leaks()).toEqual([]);
  });
});
