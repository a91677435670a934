import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSHError } from './errors/ssh-error.ts';
import { generateSSHKeyPair } from './keys.ts';
import { runSSH, type SSHTarget, waitForSSH } from './ssh.ts';
import { openSSHServerUnavailable, type RunningOpenSSHServer, startOpenSSHServer } from './testing/openssh-server.ts';

// The same checks as ssh.test.ts, but against OpenSSH's sshd instead of our own ssh2 server.
const unavailable = openSSHServerUnavailable();

describe.skipIf(unavailable !== undefined)('runSSH and waitForSSH against a real OpenSSH sshd', () => {
  let server: RunningOpenSSHServer;
  const target = (overrides: Partial<SSHTarget> = {}): SSHTarget => ({
    host: server.host,
    port: server.port,
    username: server.username,
    privateKey: server.clientKey?.privateKey ?? '',
    ...overrides,
  });

  beforeAll(async () => {
    server = await startOpenSSHServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('runs a command: stdout, stderr, exit code, stdin and the host key', async () => {
    const result = await runSSH(target(), 'echo out; echo err >&2; exit 7');
    expect(result).toEqual({
      code: 7,
      stdout: 'out\n',
      stderr: 'err\n',
      hostKeyFingerprint: server.hostKeyFingerprint,
      hostKey: server.hostKey.publicKey.split(' ').slice(0, 2).join(' '),
    });
    expect((await runSSH(target(), 'cat', { stdin: 'piped' })).stdout).toBe('piped');
    expect((await runSSH(target(), 'uname -s')).stdout.trim()).not.toBe('');
  });

  it('classifies a wrong key and a wrong user as auth failures', async () => {
    const wrongKey = await runSSH(target({ privateKey: generateSSHKeyPair().privateKey }), 'exit 0').catch((error: unknown) => error);
    expect(wrongKey).toBeInstanceOf(SSHError);
    expect((wrongKey as SSHError).failure).toBe('auth');
    const wrongUser = await runSSH(target({ username: 'machine-no-such-user' }), 'exit 0').catch((error: unknown) => error);
    expect((wrongUser as SSHError).failure).toBe('auth');
  });

  it('refuses a host key that differs from the pinned one and accepts the right one', async () => {
    const error = await runSSH(target({ hostKeyFingerprint: 'SHA256:not-this-one' }), 'exit 0').catch((caught: unknown) => caught);
    expect((error as SSHError).failure).toBe('host-key');
    expect((error as Error).message).toContain(`got ${server.hostKeyFingerprint}`);
    expect((await runSSH(target({ hostKeyFingerprint: server.hostKeyFingerprint }), 'exit 0')).code).toBe(0);
  });

  it('waitForSSH returns the fingerprint ssh-keygen would print for the host key', async () => {
    expect(await waitForSSH(target(), { timeout: 10_000 })).toBe(server.hostKeyFingerprint);
  });

  it('waitForSSH waits for an sshd that is down, then answers', async () => {
    const later = await startOpenSSHServer();
    try {
      await later.stop();
      setTimeout(() => void later.start(), 300);
      const fingerprint = await waitForSSH(
        { host: later.host, port: later.port, username: later.username, privateKey: later.clientKey?.privateKey ?? '' },
        { interval: 50, timeout: 10_000 },
      );
      expect(fingerprint).toBe(later.hostKeyFingerprint);
    } finally {
      await later.close();
    }
  });

  it('waitForSSH retries while the key is not installed yet, and fails fast when told not to', async () => {
    const key = generateSSHKeyPair();
    await expect(waitForSSH(target({ privateKey: key.privateKey }), { retryAuth: false, timeout: 10_000 })).rejects.toMatchObject({
      failure: 'auth',
    });
    setTimeout(() => void server.setAuthorizedKeys([key.publicKey, server.clientKey?.publicKey ?? '']), 300);
    expect(await waitForSSH(target({ privateKey: key.privateKey }), { interval: 50, timeout: 10_000 })).toBe(server.hostKeyFingerprint);
  });
});
