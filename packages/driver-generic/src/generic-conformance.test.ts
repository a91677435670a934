import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { writeSSHKeyPair } from '@machine/driver-core/keys';
import { openSSHServerUnavailable, startOpenSSHServer } from '@machine/driver-core/testing';
import { describe } from 'vitest';
import genericDriver from './index.ts';

const unavailable = openSSHServerUnavailable();

describe.skipIf(unavailable !== undefined)('generic against a real OpenSSH sshd', () => {
  runConformanceSuite(
    'generic',
    async () => {
      const server = await startOpenSSHServer();
      const dir = await mkdtemp(join(tmpdir(), 'generic-conformance-'));
      if (server.clientKey === undefined) throw new Error('the fixture generated no client key');
      const keyPath = await writeSSHKeyPair(dir, server.clientKey, 'id_ed25519');
      return {
        descriptor: genericDriver,
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
        close: async () => {
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
    },
  );
});
