import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { writeSSHKeyPair } from '@machine/driver-core/keys';
import { openSSHServerUnavailable, startOpenSSHServer } from '@machine/driver-core/testing';
import { describe } from 'vitest';
import { guardDriver, sleep } from '@machine/driver-core';
import genericDriver, { GenericDriver, type GenericDriverConfig } from './index.ts';

const unavailable = openSSHServerUnavailable();

// The generic driver with test timings: polls every 50 ms instead of every second (a real host's
// reboot takes a minute; the fixture's takes 300 ms), so the chaos cycles fit the CI budget.
const generic = {
  ...genericDriver,
  createDriver: ({ config, context }: { config: GenericDriverConfig; context: Parameters<typeof genericDriver.createDriver>[0]['context'] }) =>
    guardDriver(new GenericDriver(config, context, { timeouts: { pollInterval: 50, waitTimeout: 10_000 } })),
};

describe.skipIf(unavailable !== undefined)('generic against a real OpenSSH sshd', () => {
  runConformanceSuite(
    'generic',
    async () => {
      const server = await startOpenSSHServer();
      const dir = await mkdtemp(join(tmpdir(), 'generic-conformance-'));
      if (server.clientKey === undefined) throw new Error('the fixture generated no client key');
      const keyPath = await writeSSHKeyPair(dir, server.clientKey, 'id_ed25519');
      let outages: Promise<void> = Promise.resolve();
      let cancelled = false;
      return {
        descriptor: generic,
        validFlags: {
          'generic-ip-address': server.host,
          'generic-ssh-port': server.port,
          'generic-ssh-user': server.username,
          'generic-ssh-key': keyPath,
        },
        invalidFlags: { 'generic-ip-address': server.host, 'generic-ssh-port': 'not-a-port' },
        // generic makes nothing on the host: the only resource is the local key copy, which the
        // suite checks through the journal. Every SSH command counts as an API call.
        leaks: () => [],
        apiCalls: async () => (await server.commands()).length,
        // The only fault a host can have: sshd goes away for a while (an outage) and comes back.
        chaos: {
          faults: ['outage'],
          // A faked reboot of the real sshd takes 2-5 s through the driver: at most two per cycle.
          maxSteps: 2,
          // Outages run one after another (sshd cannot stop while it starts): each waits
          // `afterMs`, stops sshd, and starts it again `durationMs` later.
          inject: (fault) => {
            outages = outages.then(async () => {
              if (cancelled) return;
              await sleep(fault.afterMs);
              if (cancelled) return;
              await server.stop();
              await sleep(fault.durationMs);
              await server.start();
            });
          },
          clearFaults: async () => {
            cancelled = true;
            await outages;
            await server.start(); // no-op when it listens
            cancelled = false;
          },
        },
        close: async () => {
          cancelled = true;
          await outages;
          await server.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    {
      // No power control: Start is a typed error, and Stop/Kill (`sudo poweroff`) would leave the
      // host off for the rest of the lifecycle test. They are tested in generic-driver.test.ts.
      start: false,
      stop: false,
      kill: false,
      restart: true,
      // Nothing on the host can make create fail half-way, or delete the host behind the driver.
      failCreate: false,
      deleteOutside: false,
      abortCreate: true,
      // create → restart (in a random count) → remove, with sshd outages at random moments.
      chaosCycles: 4,
    },
  );
});
