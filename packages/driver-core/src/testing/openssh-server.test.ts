import { describe, expect, it } from 'vitest';
import { SSHError } from '../errors/ssh-error.ts';
import { generateSSHKeyPair } from '../keys.ts';
import { probeTcp, runSSH, type SSHTarget } from '../ssh.ts';
import { openSSHServerUnavailable, type RunningOpenSSHServer, startOpenSSHServer } from './openssh-server.ts';

const unavailable = openSSHServerUnavailable();

function targetOf(server: RunningOpenSSHServer, overrides: Partial<SSHTarget> = {}): SSHTarget {
  return { host: server.host, port: server.port, username: server.username, privateKey: server.clientKey?.privateKey ?? '', ...overrides };
}

async function withServer(use: (server: RunningOpenSSHServer) => Promise<void>, options: Parameters<typeof startOpenSSHServer>[0] = {}) {
  const server = await startOpenSSHServer(options);
  try {
    await use(server);
  } finally {
    await server.close();
  }
}

describe.skipIf(unavailable !== undefined)('startOpenSSHServer (a real OpenSSH sshd)', () => {
  it('runs commands through the forced-command wrapper and records them', async () => {
    await withServer(async (server) => {
      expect(server.listening).toBe(true);
      const result = await runSSH(targetOf(server), 'echo hello; exit 3');
      expect(result).toMatchObject({ code: 3, stdout: 'hello\n', hostKeyFingerprint: server.hostKeyFingerprint });
      expect(await server.commands()).toEqual(['echo hello; exit 3']);
      expect(await server.powerEvents()).toEqual([]);
    });
  });

  it('fakes sudo poweroff: recorded, not run, and the port refuses until start()', async () => {
    await withServer(async (server) => {
      expect((await runSSH(targetOf(server), 'sudo poweroff')).code).toBe(0);
      expect(await server.powerEvents()).toEqual(['poweroff']);
      await expect(probeTcp(server.host, server.port, 1000)).rejects.toBeInstanceOf(SSHError);
      expect(server.listening).toBe(false);
      await server.start();
      expect((await runSSH(targetOf(server, { hostKeyFingerprint: server.hostKeyFingerprint }), 'exit 0')).code).toBe(0);
    });
  });

  it('fakes sudo reboot: the port refuses for a moment, then the same host key answers again', async () => {
    await withServer(
      async (server) => {
        const port = server.port;
        expect((await runSSH(targetOf(server), 'sudo reboot')).code).toBe(0);
        await expect(probeTcp(server.host, port, 1000)).rejects.toBeInstanceOf(SSHError);
        await server.waitUntilListening();
        expect(server.port).toBe(port);
        const result = await runSSH(targetOf(server, { hostKeyFingerprint: server.hostKeyFingerprint }), 'echo up');
        expect(result.stdout).toBe('up\n');
        expect(await server.powerEvents()).toEqual(['reboot']);
      },
      { rebootDowntimeMs: 200 },
    );
  });

  it('can fake a user without passwordless sudo', async () => {
    await withServer(
      async (server) => {
        const result = await runSSH(targetOf(server), 'sudo poweroff');
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('sudo: a password is required');
        expect(await server.powerEvents()).toEqual([]);
        expect(server.listening).toBe(true);
        expect((await runSSH(targetOf(server), 'exit 0')).code).toBe(0);
      },
      { sudoRequiresPassword: true },
    );
  });

  it('accepts only the authorized keys, and setAuthorizedKeys changes them', async () => {
    await withServer(async (server) => {
      const other = generateSSHKeyPair();
      const refused = await runSSH(targetOf(server, { privateKey: other.privateKey }), 'exit 0').catch((error: unknown) => error);
      expect((refused as SSHError).failure).toBe('auth');
      await server.setAuthorizedKeys([other.publicKey]);
      expect((await runSSH(targetOf(server, { privateKey: other.privateKey }), 'exit 0')).code).toBe(0);
      const old = await runSSH(targetOf(server), 'exit 0').catch((error: unknown) => error);
      expect((old as SSHError).failure).toBe('auth');
    });
  });

  it('can start a second server on the same port with the same or another host key', async () => {
    await withServer(async (first) => {
      await first.stop();
      const keys = first.clientKey === undefined ? [] : [first.clientKey.publicKey];
      await withServer(
        async (impostor) => {
          expect(impostor.port).toBe(first.port);
          expect(impostor.hostKeyFingerprint).not.toBe(first.hostKeyFingerprint);
          const result = await runSSH(targetOf(impostor, { privateKey: first.clientKey?.privateKey ?? '' }), 'exit 0');
          expect(result.hostKeyFingerprint).toBe(impostor.hostKeyFingerprint);
        },
        { port: first.port, authorizedKeys: keys },
      );
      await withServer(
        async (twin) => {
          expect(twin.hostKeyFingerprint).toBe(first.hostKeyFingerprint);
          const result = await runSSH(targetOf(twin, { privateKey: first.clientKey?.privateKey ?? '' }), 'exit 0');
          expect(result.hostKeyFingerprint).toBe(first.hostKeyFingerprint);
        },
        { port: first.port, authorizedKeys: keys, hostKey: first.hostKey },
      );
    });
  });
});
