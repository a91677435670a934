import { findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { createDigitalOceanDescriptor } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { startMockDigitalOceanApi } from './test-support/mock-digitalocean-api.ts';

// The conformance suite through the real dots client against the loopback mock API in this package.
runConformanceSuite('digitalocean (loopback mock API)', async () => {
  const mock = await startMockDigitalOceanApi();
  return {
    descriptor: createDigitalOceanDescriptor({ timings: fastTimings }),
    validFlags: {
      'digitalocean-access-token': mock.token,
      'digitalocean-api-url': mock.url,
      'digitalocean-ssh-port': mock.sshPort,
      'digitalocean-firewall': true,
      'digitalocean-wait-timeout': 10,
    },
    invalidFlags: { 'digitalocean-region': 'New York', 'digitalocean-ssh-port': 'twenty-two', 'digitalocean-allowed-cidr': '10.0.0.0/99' },
    leaks: () => mock.leaks(),
    apiCalls: () => mock.requests.length,
    failNextCreate: () => mock.fault({ route: 'POST /v2/firewalls', status: 500, body: { id: 'server_error', message: 'Server Error' } }),
    deleteOutside: async (_driver, context) => {
      const entry = findEntry(context.journal, 'droplet');
      if (entry !== undefined) mock.droplets.delete(Number(entry.id));
    },
    close: () => mock.close(),
  };
});
