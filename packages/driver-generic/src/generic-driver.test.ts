import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMemoryContext,
  type Driver,
  InvalidConfigError,
  NotFoundError,
  NotSupportedError,
  parseFlags,
  type ProgressEvent,
  SSHError,
  State,
  TimeoutError,
  guardDriver,
} from '@machine/driver-core';
import { generateSSHKeyPair, writeSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { openSSHServerUnavailable, type RunningOpenSSHServer, startOpenSSHServer } from '@machine/driver-core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenericDriver, type GenericDriverTimeouts } from './generic-driver.ts';
import { genericFlags } from './generic-flags.ts';
import type { CredentialSources } from './generic-ssh-credentials.ts';

const unavailable = openSSHServerUnavailable();
const fast: Partial<GenericDriverTimeouts> = { sshReadyTimeout: 3000, tcpTimeout: 1000, waitTimeout: 8000, pollInterval: 50 };

let root: string;
let home: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-generic-'));
  home = join(root, 'home');
  await mkdir(home);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Machine {
  driver: Driver;
  context: ReturnType<typeof createMemoryContext>;
  events: ProgressEvent[];
}

interface MachineOptions {
  timeouts?: Partial<GenericDriverTimeouts>;
  sources?: CredentialSources;
}

function newMachine(flags: Record<string, unknown>, options: MachineOptions = {}): Machine & { withTimeouts(timeouts: Partial<GenericDriverTimeouts>): Driver } {
  counter += 1;
  const name = `generic-${counter}`;
  const events: ProgressEvent[] = [];
  const context = createMemoryContext(name, join(root, 'machines', name), (event) => events.push(event));
  const config = parseFlags(genericFlags, { 'generic-ip-address': '127.0.0.1', ...flags }, { env: {} });
  const driverWith = (timeouts: Partial<GenericDriverTimeouts>) =>
    guardDriver(new GenericDriver(config, context, { timeouts: { ...fast, ...timeouts }, credentialSources: options.sources ?? { env: {}, homeDir: home } }));
  return { driver: driverWith(options.timeouts ?? {}), context, events, withTimeouts: driverWith };
}

async function keyFile(server: RunningOpenSSHServer, name: string): Promise<string> {
  if (server.clientKey === undefined) throw new Error('the fixture generated no client key');
  return writeSSHKeyPair(join(root, 'keys'), server.clientKey, name);
}

function flagsFor(server: RunningOpenSSHServer, keyPath: string): Record<string, unknown> {
  return { 'generic-ssh-port': server.port, 'generic-ssh-user': server.username, 'generic-ssh-key': keyPath };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

/** A TCP server that accepts connections and never says anything. */
async function silentServer(port = 0): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return { server, port: address.port, close };
}

describe.skipIf(unavailable !== undefined)('generic driver against a real OpenSSH sshd', () => {
  let server: RunningOpenSSHServer;
  let keyPath: string;

  beforeAll(async () => {
    server = await startOpenSSHServer();
    keyPath = await keyFile(server, 'shared_key');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('create checks SSH, copies the key (0600), and pins the IP and host key in the machine data', async () => {
    const { driver, context, events } = newMachine(flagsFor(server, keyPath));
    await driver.preCreateCheck();
    await driver.create();
    const copy = driver.getSSHKeyPath();
    expect(copy).toBe(join(context.machineDir, 'id_ed25519'));
    expect((await stat(copy)).mode & 0o777).toBe(0o600);
    expect(await readFile(copy, 'utf8')).toBe(server.clientKey?.privateKey);
    expect(context.data.read()).toMatchObject({ ipAddress: '127.0.0.1', sshPort: server.port, hostKeyFingerprint: server.hostKeyFingerprint });
    expect(context.journal.entries().map((entry) => entry.kind)).toEqual(['ssh-key-copy']);
    expect(events.filter((event) => event.step === 'wait-ssh').map((event) => event.phase)).toEqual(['start', 'done']);
    expect(await driver.getState()).toBe(State.Running);
    expect(await driver.getIP()).toBe('127.0.0.1');
    expect(await driver.getSSHHostname()).toBe('127.0.0.1');
    expect(await driver.getSSHPort()).toBe(server.port);
    expect(driver.getSSHUsername()).toBe(server.username);
    expect(await driver.getURL()).toBe('tcp://127.0.0.1:2376');
  });

  it('runs commands with the pinned host key and reports their exit codes', async () => {
    const { driver, context } = newMachine({ ...flagsFor(server, keyPath), 'generic-engine-port': 2377 });
    await driver.create();
    expect(await driver.getURL()).toBe('tcp://127.0.0.1:2377');
    const target = {
      host: await driver.getSSHHostname(),
      port: await driver.getSSHPort(),
      username: driver.getSSHUsername(),
      privateKey: await readFile(driver.getSSHKeyPath(), 'utf8'),
      hostKeyFingerprint: String(context.data.read().hostKeyFingerprint),
    };
    expect(await runSSH(target, 'echo hello; exit 3')).toMatchObject({ code: 3, stdout: 'hello\n' });
    expect((await runSSH(target, 'uname -a')).code).toBe(0);
    expect(await server.commands()).toEqual(expect.arrayContaining(['echo hello; exit 3', 'uname -a', 'exit 0']));
  });

  it('remove deletes only local state: the key copy and the machine data', async () => {
    const { driver, context } = newMachine(flagsFor(server, keyPath));
    await driver.create();
    const copy = driver.getSSHKeyPath();
    const commandsBefore = (await server.commands()).length;
    await driver.remove();
    await expect(stat(copy)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${copy}.pub`)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(context.journal.entries()).toEqual([]);
    expect(driver.getSSHKeyPath()).toBe('');
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
    await driver.remove();
    expect((await server.commands()).length).toBe(commandsBefore); // nothing ran on the host
    expect(server.listening).toBe(true);
  });

  it('a wrong key is a clear auth error, and the failed create leaves nothing behind', async () => {
    const stranger = await writeSSHKeyPair(join(root, 'keys'), generateSSHKeyPair(), 'stranger');
    const { driver, context } = newMachine(flagsFor(server, stranger));
    const error = await failure(driver.create());
    expect(error).toBeInstanceOf(SSHError);
    expect((error as SSHError).failure).toBe('auth');
    expect((error as Error).message).toContain(`${server.username}@127.0.0.1:${server.port} refused the key ${stranger}`);
    expect((error as Error).message).toContain('check --generic-ssh-user and --generic-ssh-key');
    expect(context.journal.entries()).toEqual([]);
    await expect(stat(join(context.machineDir, 'id_ed25519'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('create with boot.hostKeyFingerprint pins that key; boot user data is not the driver\'s job (nothing runs but the check)', async () => {
    const { driver, context } = newMachine(flagsFor(server, keyPath));
    const commandsBefore = (await server.commands()).length;
    await driver.create({ boot: { userData: '#cloud-config\nruncmd: [[touch, /tmp/never]]\n', hostKeyFingerprint: server.hostKeyFingerprint } });
    expect(context.data.read().hostKeyFingerprint).toBe(server.hostKeyFingerprint);
    expect((await server.commands()).slice(commandsBefore)).toEqual(['exit 0']);
  });

  it('create with another boot.hostKeyFingerprint fails with an SSHError and leaves nothing behind', async () => {
    const { driver, context } = newMachine(flagsFor(server, keyPath));
    const expected = generateSSHKeyPair().sha256Fingerprint;
    const error = await failure(driver.create({ boot: { hostKeyFingerprint: expected } }));
    expect(error).toBeInstanceOf(SSHError);
    expect((error as SSHError).failure).toBe('host-key');
    expect((error as Error).message).toContain(`expected ${expected}, got ${server.hostKeyFingerprint}`);
    expect(context.journal.entries()).toEqual([]);
    await expect(stat(join(context.machineDir, 'id_ed25519'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(context.data.read().hostKeyFingerprint).toBeUndefined();
  });

  it('a wrong user is a clear auth error', async () => {
    const { driver } = newMachine({ ...flagsFor(server, keyPath), 'generic-ssh-user': 'machine-no-such-user' });
    const error = await failure(driver.create());
    expect((error as SSHError).failure).toBe('auth');
    expect((error as Error).message).toContain('machine-no-such-user@127.0.0.1');
  });

  it('a port that accepts TCP but never speaks SSH times out without hanging', async () => {
    const silent = await silentServer();
    try {
      const { driver, context } = newMachine(
        { ...flagsFor(server, keyPath), 'generic-ssh-port': silent.port },
        { timeouts: { sshReadyTimeout: 300, waitTimeout: 1200 } },
      );
      const started = Date.now();
      const error = await failure(driver.create());
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as Error).message).toContain(`SSH on 127.0.0.1:${silent.port}`);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(context.journal.entries()).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  it('a closed port fails create with a timeout naming the address', async () => {
    const closed = await silentServer();
    await closed.close();
    const { driver } = newMachine({ ...flagsFor(server, keyPath), 'generic-ssh-port': closed.port }, { timeouts: { waitTimeout: 500 } });
    const error = await failure(driver.create());
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('refused the connection');
  });

  it('rejects every operation on a machine that was never created with NotFoundError', async () => {
    const { driver } = newMachine(flagsFor(server, keyPath));
    for (const run of [() => driver.getState(), () => driver.getIP(), () => driver.getURL(), () => driver.start(), () => driver.stop(), () => driver.kill(), () => driver.restart()]) {
      expect(await failure(run())).toBeInstanceOf(NotFoundError);
    }
    expect(driver.getSSHKeyPath()).toBe('');
  });
});

describe.skipIf(unavailable !== undefined)('generic driver status, power commands and host key pinning', () => {
  it('Stopped when the port refuses, Error when it answers but is not SSH, Running again when sshd is back', async () => {
    const host = await startOpenSSHServer();
    try {
      const { driver, events, withTimeouts } = newMachine(flagsFor(host, await keyFile(host, 'status_key')));
      await driver.create();
      await host.stop();
      expect(await driver.getState()).toBe(State.Stopped);
      const silent = await silentServer(host.port);
      try {
        const started = Date.now();
        expect(await withTimeouts({ sshReadyTimeout: 300 }).getState()).toBe(State.Error);
        expect(Date.now() - started).toBeLessThan(3000);
        expect(events.at(-1)).toMatchObject({ step: 'status', phase: 'info', message: expect.stringContaining('status is Error: ') });
      } finally {
        await silent.close();
      }
      await host.start();
      expect(await driver.getState()).toBe(State.Running);
    } finally {
      await host.close();
    }
  });

  it('restart runs `sudo reboot`, waits for the host to go down and come back', async () => {
    const host = await startOpenSSHServer({ rebootDowntimeMs: 400 });
    try {
      const { driver } = newMachine(flagsFor(host, await keyFile(host, 'reboot_key')));
      await driver.create();
      await driver.restart();
      expect(await host.powerEvents()).toEqual(['reboot']);
      expect(await host.commands()).toContain('sudo reboot');
      expect(host.listening).toBe(true);
      expect(await driver.getState()).toBe(State.Running);
    } finally {
      await host.close();
    }
  });

  it('stop runs `sudo poweroff` and waits for Stopped; start cannot power on; kill does the same as stop', async () => {
    const host = await startOpenSSHServer();
    try {
      const { driver } = newMachine(flagsFor(host, await keyFile(host, 'poweroff_key')));
      await driver.create();
      await driver.stop();
      expect(await host.powerEvents()).toEqual(['poweroff']);
      expect(await driver.getState()).toBe(State.Stopped);
      const startError = await failure(driver.start());
      expect(startError).toBeInstanceOf(NotSupportedError);
      expect((startError as Error).message).toContain('cannot power on 127.0.0.1');
      expect(await failure(driver.restart())).toBeInstanceOf(NotSupportedError);
      await driver.stop(); // already stopped: nothing to run
      expect(await host.powerEvents()).toEqual(['poweroff']);

      await host.start(); // powered on by someone else
      await driver.start(); // already running: nothing to do
      await driver.kill();
      expect(await host.powerEvents()).toEqual(['poweroff', 'poweroff']);
      expect(await driver.getState()).toBe(State.Stopped);
    } finally {
      await host.close();
    }
  });

  it('stop and restart fail with the command output when sudo needs a password', async () => {
    const host = await startOpenSSHServer({ sudoRequiresPassword: true });
    try {
      const { driver } = newMachine({ ...flagsFor(host, await keyFile(host, 'sudo_key')), 'generic-ssh-user': host.username });
      await driver.create();
      for (const run of [() => driver.stop(), () => driver.restart()]) {
        const error = await failure(run());
        expect(error).toBeInstanceOf(SSHError);
        expect((error as SSHError).failure).toBe('command');
        expect((error as Error).message).toMatch(/`sudo (poweroff|reboot)` exited with 1: sudo: a terminal is required/);
        expect((error as Error).message).toContain('passwordless sudo');
      }
      expect(await driver.getState()).toBe(State.Running);
    } finally {
      await host.close();
    }
  });

  it('refuses a second sshd with another host key on the same address', async () => {
    const host = await startOpenSSHServer();
    const key = await keyFile(host, 'pinning_key');
    try {
      const { driver, context } = newMachine(flagsFor(host, key));
      await driver.create();
      const pinned = String(context.data.read().hostKeyFingerprint);
      expect(pinned).toBe(host.hostKeyFingerprint);
      await host.stop();
      const impostor = await startOpenSSHServer({ port: host.port, authorizedKeys: [host.clientKey?.publicKey ?? ''] });
      try {
        expect(impostor.hostKeyFingerprint).not.toBe(pinned);
        // The host is up but presents another key: status says so (not Stopped, not a bare Error).
        const state = await failure(driver.getState());
        expect(state).toBeInstanceOf(SSHError);
        expect((state as SSHError).failure).toBe('host-key');
        expect((state as Error).message).toContain(`expected ${pinned}, got ${impostor.hostKeyFingerprint}`);
        const error = await failure(driver.restart());
        expect(error).toBeInstanceOf(SSHError);
        expect((error as SSHError).failure).toBe('host-key');
        expect((error as Error).message).toContain(`expected ${pinned}, got ${impostor.hostKeyFingerprint}`);
        const direct = await failure(
          runSSH(
            { host: '127.0.0.1', port: impostor.port, username: driver.getSSHUsername(), privateKey: await readFile(driver.getSSHKeyPath(), 'utf8'), hostKeyFingerprint: pinned },
            'echo should-not-run',
          ),
        );
        expect((direct as SSHError).failure).toBe('host-key');
        expect(await impostor.commands()).toEqual([]); // nothing ran on the impostor
        expect(await impostor.powerEvents()).toEqual([]);
      } finally {
        await impostor.close();
      }
      await host.start();
      expect(await driver.getState()).toBe(State.Running);
    } finally {
      await host.close();
    }
  });
});

describe.skipIf(unavailable !== undefined)('generic driver status when the login is refused', () => {
  it('rejects with the auth SSHError once the machine key is no longer authorized, and is Running again when it is', async () => {
    const host = await startOpenSSHServer();
    try {
      const { driver } = newMachine(flagsFor(host, await keyFile(host, 'revoked_key')));
      await driver.create();
      await host.stop();
      const locked = await startOpenSSHServer({ port: host.port, hostKey: host.hostKey, authorizedKeys: [] });
      try {
        const error = await failure(driver.getState());
        expect(error).toBeInstanceOf(SSHError);
        expect((error as SSHError).failure).toBe('auth');
      } finally {
        await locked.close();
      }
      await host.start();
      expect(await driver.getState()).toBe(State.Running);
    } finally {
      await host.close();
    }
  });
});

describe.skipIf(unavailable !== undefined)('generic driver SSH credentials', () => {
  let server: RunningOpenSSHServer;

  beforeAll(async () => {
    server = await startOpenSSHServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('uses ~/.ssh/id_ed25519 when no key is given', async () => {
    const userHome = join(root, `home-default-${Date.now()}`);
    if (server.clientKey === undefined) throw new Error('no client key');
    await writeSSHKeyPair(join(userHome, '.ssh'), server.clientKey, 'id_ed25519');
    const { driver } = newMachine({ 'generic-ssh-port': server.port, 'generic-ssh-user': server.username }, { sources: { env: {}, homeDir: userHome } });
    await driver.create();
    expect(await readFile(driver.getSSHKeyPath(), 'utf8')).toBe(server.clientKey.privateKey);
    expect(await driver.getState()).toBe(State.Running);
  });

  it('expands ~/ in --generic-ssh-key', async () => {
    if (server.clientKey === undefined) throw new Error('no client key');
    await writeSSHKeyPair(join(home, 'keys'), server.clientKey, 'tilde_key');
    const { driver } = newMachine({ 'generic-ssh-port': server.port, 'generic-ssh-user': server.username, 'generic-ssh-key': '~/keys/tilde_key' });
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
  });

  it('without a key or an ssh-agent, preCreateCheck and create fail with InvalidConfigError naming the flag', async () => {
    const { driver, context } = newMachine({ 'generic-ssh-port': server.port }, { sources: { env: {}, homeDir: join(root, 'empty-home') } });
    const error = await failure(driver.preCreateCheck());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toContain('--generic-ssh-key: no SSH key found');
    expect(await failure(driver.create())).toBeInstanceOf(InvalidConfigError);
    expect(context.journal.entries()).toEqual([]);
  });

  it('refuses a key file readable by others', async () => {
    const path = join(root, 'keys', 'open_key');
    await writeFile(path, generateSSHKeyPair().privateKey);
    await chmod(path, 0o644);
    const { driver } = newMachine({ 'generic-ssh-port': server.port, 'generic-ssh-key': path });
    const error = await failure(driver.preCreateCheck());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toContain('chmod 600');
  });

  it('logs in through an ssh-agent (SSH_AUTH_SOCK) when no key file is given', async () => {
    const socket = join(root, `agent-${Date.now()}.sock`);
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await waitForFile(socket);
      const keyPathForAgent = await keyFile(server, 'agent_key');
      await runProcess('ssh-add', [keyPathForAgent], { ...process.env, SSH_AUTH_SOCK: socket });
      const sources = { env: { SSH_AUTH_SOCK: socket }, homeDir: join(root, 'empty-home') };
      const { driver, context } = newMachine({ 'generic-ssh-port': server.port, 'generic-ssh-user': server.username }, { sources });
      await driver.create();
      expect(driver.getSSHKeyPath()).toBe('');
      expect(context.journal.entries()).toEqual([]);
      expect(context.data.read().hostKeyFingerprint).toBe(server.hostKeyFingerprint);
      expect(await driver.getState()).toBe(State.Running);

      const other = await startOpenSSHServer(); // accepts only its own generated key, not the agent's
      try {
        const { driver: refused } = newMachine({ 'generic-ssh-port': other.port, 'generic-ssh-user': other.username }, { sources });
        const error = await failure(refused.create());
        expect((error as SSHError).failure).toBe('auth');
        expect((error as Error).message).toContain('every key of the ssh-agent');
      } finally {
        await other.close();
      }
    } finally {
      agent.kill('SIGTERM');
    }
  });
});

describe('generic descriptor', () => {
  it('declares no cloud-init user data: the host provisions over SSH (ssh keeps its default, true)', async () => {
    const descriptor = (await import('./index.ts')).default;
    expect(descriptor.capabilities).toEqual({ userData: false });
  });
});

describe('generic flags', () => {
  it('has the reference names, env vars and defaults, and requires the IP address', () => {
    expect(parseFlags(genericFlags, { 'generic-ip-address': '10.0.0.5' }, { env: {} })).toEqual({
      ipAddress: '10.0.0.5',
      sshUser: 'root',
      sshKey: undefined,
      sshPort: 22,
      enginePort: 2376,
    });
    const fromEnv = parseFlags(genericFlags, {}, { env: { GENERIC_IP_ADDRESS: 'host.example', GENERIC_SSH_PORT: '2222', GENERIC_SSH_USER: 'ubuntu', GENERIC_SSH_KEY: '/k', GENERIC_ENGINE_PORT: '2377' } });
    expect(fromEnv).toEqual({ ipAddress: 'host.example', sshUser: 'ubuntu', sshKey: '/k', sshPort: 2222, enginePort: 2377 });
    expect(() => parseFlags(genericFlags, {}, { env: {} })).toThrow(/--generic-ip-address: is required: pass --generic-ip-address or set GENERIC_IP_ADDRESS/);
    expect(() => parseFlags(genericFlags, { 'generic-ip-address': 'a b' }, { env: {} })).toThrow(InvalidConfigError);
    expect(() => parseFlags(genericFlags, { 'generic-ip-address': '1.2.3.4', 'generic-ssh-port': 70000 }, { env: {} })).toThrow(/at most 65535/);
  });
});

async function waitForFile(path: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await stat(path).then(() => true, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${path} did not appear`);
}

function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${stderr}`))));
  });
}
