import type { Sim } from '@machine/cloud-sim';
import { type ProgressEvent, State } from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { machineRoot, simMachine, startDigitalOceanSim } from './test-support/sim-harness.ts';

// DigitalOcean's real-cloud windows (issue 17) met by the driver, through the real dots client
// against cloud-sim's realistic profile. Each test turns one window long enough that the driver
// must wait it out; the knobs object is read by the simulator on every call.
describe('digitalocean driver against the realistic simulator', () => {
  let sim: Sim;
  let root: { path: string; dispose(): Promise<void> };
  const knobs: Record<string, unknown> = {};

  beforeAll(async () => {
    sim = await startDigitalOceanSim({ digitalocean: knobs });
    root = await machineRoot();
  });
  afterAll(async () => {
    await sim.close();
    await root.dispose();
  });
  afterEach(async () => {
    sim.faults.clear();
    for (const key of Object.keys(knobs)) delete knobs[key];
    // A removed droplet stays readable 100 ms: remove itself waits for the 404.
    expect(sim.leaks()).toEqual([]);
  });

  const resourcesOf = (machineName: string) =>
    sim
      .leaks()
      .filter((leak) => leak.name === machineName || leak.name?.includes(`.${machineName}.`))
      .map((leak) => leak.kind)
      .sort();

  it.each([
    ['droplets.create', 'droplet'],
    ['keys.create', 'ssh key'],
  ])('item 10: the %s reply is lost and the listing shows the %s only later: create finds it there (no twin), remove deletes it', async (operation) => {
    knobs.listingLagMs = 50_000; // 500 ms scaled; the driver looks again for 1 s (fastTimings.visibilityWindowMs)
    const { driver, context } = simMachine(sim, root.path);
    const calls = sim.requestLog.count(operation);
    sim.faults.add({ provider: 'digitalocean', operation, reply: 'drop' });
    await driver.create();
    expect(resourcesOf(context.machineName)).toEqual(['droplet', 'ssh_key']);
    expect(sim.requestLog.count(operation) - calls).toBe(1);
    expect(context.journal.entries().map((entry) => entry.state ?? 'made')).toEqual(['made', 'made']);
    await driver.remove();
    expect(resourcesOf(context.machineName)).toEqual([]);
  });

  it('stop: a shutdown that completes while the droplet stays active falls back to power_off after the stop timeout', async () => {
    knobs.shutdownIgnored = {}; // every shutdown is "completed" and the droplet stays active
    const progress: ProgressEvent[] = [];
    const { driver, context } = simMachine(sim, root.path);
    await driver.create();
    const dropletId = context.data.read().dropletId;
    const actionsBefore = sim.requestLog.count('droplet_actions.create');
    (context as { onProgress?: (event: ProgressEvent) => void }).onProgress = (event) => progress.push(event);
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    expect(sim.store.getInstance('digitalocean', String(dropletId))?.state).toBe('stopped');
    expect(sim.requestLog.count('droplet_actions.create') - actionsBefore).toBe(2); // shutdown, then power_off
    expect(progress.map((event) => event.message)).toContainEqual(expect.stringMatching(/still active .* after a completed shutdown; powering off/));
    await driver.remove();
  });

  it('a power action refused with 422 "pending event" (another action runs) is sent again once the droplet accepts it', async () => {
    // Its own simulator: a droplet takes 400 ms to shut down, so the driver's power_off meets the event.
    const slow = await startDigitalOceanSim({ delays: { pendingMs: 20, stoppingMs: 400 }, digitalocean: { shutdownIgnoredAfterBootMs: 0 } });
    try {
      const { driver, context } = simMachine(slow, root.path);
      await driver.create();
      const dropletId = context.data.read().dropletId;
      const outside = await fetch(`${slow.endpoints.digitalocean}/v2/droplets/${dropletId}/actions`, {
        method: 'POST',
        headers: { authorization: 'Bearer outside', 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'shutdown' }),
      });
      expect(outside.status).toBe(201);
      await driver.kill();
      const refused = slow.requestLog.entries('digitalocean').filter((entry) => entry.operation === 'droplet_actions.create' && entry.status === 422);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(await driver.getState()).toBe(State.Stopped);
      expect(slow.store.getInstance('digitalocean', String(dropletId))?.state).toBe('stopped');
      await driver.remove();
      expect(slow.leaks()).toEqual([]);
    } finally {
      await slow.close();
    }
  });

  it('late IP: the droplet is active before its public IPv4 shows; create waits for the address and records it', async () => {
    knobs.publicIpLagMs = 50_000; // 500 ms scaled
    const { driver, context } = simMachine(sim, root.path);
    await driver.create();
    const droplet = sim.store.getInstance('digitalocean', String(context.data.read().dropletId));
    expect(context.data.read().ip).toBe(droplet?.publicIp);
    expect(await driver.getIP()).toBe(droplet?.publicIp);
    await driver.remove();
  });

  it('a status the driver does not know (one DigitalOcean may add) is State None, not an error', async () => {
    const { driver, context } = simMachine(sim, root.path);
    await driver.create();
    const droplet = sim.store.getInstance('digitalocean', String(context.data.read().dropletId));
    if (droplet === undefined) throw new Error('no droplet');
    droplet.attributes.rareStatus = 'migrating';
    expect(await driver.getState()).toBe(State.None);
    delete droplet.attributes.rareStatus;
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
  });
});
