import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from './errors/cancelled-error.ts';
import { SSHError } from './errors/ssh-error.ts';
import { TimeoutError } from './errors/timeout-error.ts';
import { generateSSHKeyPair } from './keys.ts';
import { probeTcp, runSSH, waitForSSH, waitForSSHHostKey } from './ssh.ts';
import { type RunningSSHServer, startSSHServer } from './testing/ssh-server.ts';

const key = generateSSHKeyPair();
let server: RunningSSHServer;

beforeAll(async () => {
  server = await startSSHServer({ authorizedKeys: [key.publicKey], username: 'ubuntu' });
});
afterAll(async () => {
  await server.close();
});

function target(overrides: Partial<Parameters<typeof runSSH>[0]> = {}) {
  return { host: server.host, port: server.port, username: 'ubuntu', privateKey: key.privateKey, ...overrides };
}

/** A TCP server that accepts connections and never says anything. */
async function silentServer(): Promise<{ server: Server; port: number }> {
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server: silent, port: address.port };
}

async function closedPort(): Promise<number> {
  const { server: temporary, port } = await silentServer();
  await new Promise<void>((resolve) => temporary.close(() => resolve()));
  return port;
}

describe('runSSH over a real ssh2 handshake', () => {
  it('runs a command and returns its output, exit code and the host key', async () => {
    const result = await runSSH(target(), 'echo hello');
    expect(result).toMatchObject({ code: 0, stdout: 'hello\n', hostKeyFingerprint: server.hostKeyFingerprint });
    expect((await runSSH(target(), 'exit 3')).code).toBe(3);
    expect((await runSSH(target(), 'no-such-command')).stderr).toContain('not found');
  });

  it('refuses a wrong key and a wrong user as auth failures', async () => {
    const wrongKey = await runSSH(target({ privateKey: generateSSHKeyPair().privateKey }), 'exit 0').catch((e: unknown) => e);
    expect(wrongKey).toBeInstanceOf(SSHError);
    expect((wrongKey as SSHError).failure).toBe('auth');
    expect((wrongKey as Error).message).toMatch(/refused the key \(check the SSH user and key\)/);
    const wrongUser = await runSSH(target({ username: 'root' }), 'exit 0').catch((e: unknown) => e);
    expect((wrongUser as SSHError).failure).toBe('auth');
  });

  it('refuses a host whose key differs from the pinned one', async () => {
    const error = await runSSH(target({ hostKeyFingerprint: 'SHA256:somethingelse' }), 'exit 0').catch((e: unknown) => e);
    expect((error as SSHError).failure).toBe('host-key');
    expect((error as Error).message).toContain(`got ${server.hostKeyFingerprint}`);
    expect((await runSSH(target({ hostKeyFingerprint: server.hostKeyFingerprint }), 'exit 0')).code).toBe(0);
  });

  it('classifies a closed port as refused', async () => {
    const error = await runSSH(target({ port: await closedPort() }), 'exit 0').catch((e: unknown) => e);
    expect((error as SSHError).failure).toBe('refused');
  });

  it('gives up on a port that never speaks SSH within the ready timeout', async () => {
    const { server: silent, port } = await silentServer();
    try {
      const started = Date.now();
      const error = await runSSH(target({ port, readyTimeout: 300 }), 'exit 0').catch((e: unknown) => e);
      expect((error as SSHError).failure).toBe('handshake');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      silent.close();
    }
  });
});

describe('waitForSSH', () => {
  it('waits for the TCP port, then a handshake, and returns the host key fingerprint', async () => {
    const events: string[] = [];
    const fingerprint = await waitForSSH(target(), { onProgress: (event) => events.push(event.phase) });
    expect(fingerprint).toBe(server.hostKeyFingerprint);
    expect(events).toEqual(['start', 'done']);
  });

  it('waitForSSHHostKey also gives the key itself as `type base64`, the one the fingerprint names', async () => {
    const hostKey = generateSSHKeyPair({ comment: 'host' });
    const pinnedServer = await startSSHServer({ authorizedKeys: [key.publicKey], username: 'ubuntu', hostKey: hostKey.privateKey });
    try {
      const seen = await waitForSSHHostKey({ ...target(), port: pinnedServer.port });
      expect(seen).toEqual({ fingerprint: hostKey.sha256Fingerprint, hostKey: hostKey.publicKey.split(' ').slice(0, 2).join(' ') });
    } finally {
      await pinnedServer.close();
    }
  });

  it('keeps trying while the port is closed, and succeeds once a server appears', async () => {
    const port = await closedPort();
    const later = new Promise<RunningSSHServer>((resolve) => {
      setTimeout(() => resolve(startSSHServer({ authorizedKeys: [key.publicKey], port })), 300);
    });
    const fingerprint = await waitForSSH(target({ port }), { interval: 50, timeout: 10_000 });
    const lateServer = await later;
    expect(fingerprint).toBe(lateServer.hostKeyFingerprint);
    await lateServer.close();
  });

  it('times out with a typed error naming the address', async () => {
    const port = await closedPort();
    const error = await waitForSSH(target({ port, machine: 'web1' }), { interval: 20, timeout: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain(`SSH on 127.0.0.1:${port}`);
    expect((error as Error).message).toContain('machine "web1"');
  });

  it('fails fast on a host key mismatch instead of waiting', async () => {
    const started = Date.now();
    await expect(waitForSSH(target({ hostKeyFingerprint: 'SHA256:x' }), { timeout: 10_000 })).rejects.toBeInstanceOf(SSHError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(waitForSSH(target({ port: await closedPort() }), { signal: controller.signal, interval: 20 })).rejects.toBeInstanceOf(
      CancelledError,
    );
  });

  it('probeTcp resolves on an open port', async () => {
    await expect(probeTcp(server.host, server.port)).resolves.toBeUndefined();
  });
});
