import { chaosFaultRule, type DigitalOceanOptions, type Sim } from '@machine/cloud-sim';
import { findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { createDigitalOceanDescriptor } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { simFlags, startDigitalOceanSim } from './test-support/sim-harness.ts';

// The conformance suite through the real dots client against the cloud simulator's DigitalOcean front end.
// The conformance suite (with its seeded chaos run) through the real dots client against the
// simulator's realistic DigitalOcean front end.
runConformanceSuite('digitalocean (cloud-sim)', async () => {
  // Read by the simulator on every call: the chaos run switches behaviours per cycle.
  const knobs: DigitalOceanOptions = {};
  const sim: Sim = await startDigitalOceanSim({ digitalocean: knobs });
  const leaks = () => sim.leaks().map((leak) => `${leak.kind} ${leak.id} (${leak.name})`);
  return {
    descriptor: createDigitalOceanDescriptor({ timings: fastTimings }),
    validFlags: simFlags(sim, { 'digitalocean-firewall': true }),
    invalidFlags: { 'digitalocean-size': 'S 1VCPU', 'digitalocean-ssh-port': 70000, 'digitalocean-open-port': '80-70' },
    leaks,
    apiCalls: () => sim.requestLog.total,
    loseNextReply: (operation, reply) => {
      sim.faults.add({ provider: 'digitalocean', operation, reply });
    },
    callCount: (operation) => sim.requestLog.count(operation),
    // The firewall is the last resource create makes: by then a key and a droplet exist.
    failNextCreate: () => {
      sim.faults.add({ provider: 'digitalocean', operation: 'firewalls.create', error: 'server' });
    },
    deleteOutside: async (_driver, context) => {
      const entry = findEntry(context.journal, 'droplet');
      if (entry === undefined) throw new Error('no droplet recorded');
      const response = await fetch(`${sim.endpoints.digitalocean}/v2/droplets/${entry.id}`, {
        method: 'DELETE',
        headers: { authorization: 'Bearer outside-the-tool' },
      });
      if (response.status !== 204) throw new Error(`delete outside failed: ${response.status}`);
      // DigitalOcean keeps a deleted droplet readable a while: the suite checks the machine once it is gone.
      for (let tries = 0; sim.store.getInstance('digitalocean', entry.id)?.state !== 'terminated'; tries++) {
        if (tries > 500) throw new Error(`droplet ${entry.id} still exists after its delete`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    chaos: {
      faults: ['throttle', 'server-error', 'lost-reply', 'latency'],
      operations: ['keys.create', 'droplets.create', 'firewalls.create', 'droplet_actions.create', 'firewalls.delete', 'droplets.delete', 'keys.delete'],
      inject: (fault) => {
        sim.faults.add(chaosFaultRule('digitalocean', fault));
      },
      clearFaults: () => sim.faults.clear(),
      // Beyond the realistic defaults (on in every cycle): longer windows, or every shutdown ignored.
      behaviours: {
        shutdownIgnored: (on) => {
          if (on) knobs.shutdownIgnored = {};
          else delete knobs.shutdownIgnored;
        },
        longListingLag: (on) => {
          if (on) knobs.listingLagMs = 40_000; // 400 ms scaled
          else delete knobs.listingLagMs;
        },
        latePublicIp: (on) => {
          if (on) knobs.publicIpLagMs = 30_000;
          else delete knobs.publicIpLagMs;
        },
        longStatusLag: (on) => {
          if (on) knobs.statusLagMs = 20_000;
          else delete knobs.statusLagMs;
        },
      },
    },
    close: () => sim.close(),
  };
}, { killPoints: ['keys.create', 'droplets.create', 'firewalls.create'], chaosCycles: 15 });
