import { SSHError } from '@machine/driver-core';
import { ProvisionError } from '@machine/provision';
import { startSSHServer } from '@machine/driver-core/testing';
import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.ts';
import { explainHostKeyError, presentedHostKey } from './ssh-target.ts';

describe('host key helpers', () => {
  it('turns a host-key SSHError into one line that says how to accept the new key; other errors pass through', () => {
    const mismatch = new SSHError('the host key of 10.0.0.5:22 changed: expected SHA256:old, got SHA256:new', { failure: 'host-key', machine: 'web1' });
    const explained = explainHostKeyError(mismatch, 'web1');
    expect(explained).toBeInstanceOf(CliError);
    expect((explained as CliError).message).toBe(
      'the SSH host key of machine "web1" changed (recorded SHA256:old, presented SHA256:new): refusing to connect, someone may be intercepting the connection; ' +
        'if you know why it changed (e.g. the machine was rebuilt), check SHA256:new out of band (the provider\'s console) and run "machine trust-host-key web1 --fingerprint SHA256:new"',
    );
    // provisionDocker reports a key that changed between the SSH wait and its own connection as a ProvisionError at `connect`.
    const wrapped = new ProvisionError(mismatch.detail, { machine: 'web1', step: 'connect', cause: mismatch });
    expect((explainHostKeyError(wrapped, 'web1') as Error).message).toBe((explained as CliError).message);
    const auth = new SSHError('root@10.0.0.5:22 refused the key', { failure: 'auth' });
    expect(explainHostKeyError(auth, 'web1')).toBe(auth);
  });

  it('reads the host key a server presents without logging in', async () => {
    let logins = 0;
    // authorizedKeys is asked at each login attempt: it must never be.
    const server = await startSSHServer({
      authorizedKeys: () => {
        logins++;
        return [];
      },
    });
    try {
      const presented = await presentedHostKey('127.0.0.1', server.port);
      expect(presented.fingerprint).toBe(server.hostKeyFingerprint);
      expect(presented.key).toMatch(/^ssh-ed25519 AAAA/);
      expect(logins).toBe(0);
    } finally {
      await server.close();
    }
  });
});
