import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { CancelledError, type ProgressEvent, SSHError } from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { certificateSans, type ClientCertificates, ensureClientCertificates, issueServerCertificate, type ServerCertificate, serverCertificateSans } from './certificates.ts';
import { daemonJson, systemdDropIn } from './daemon-config.ts';
import { dockerApi, dockerUrl, dockerVersion } from './docker-api.ts';
import { type EngineOptions, engineOptionsFrom } from './engine-options.ts';
import { installServerCertificate, provisionDocker } from './provision-docker.ts';
import { ProvisionError } from './provision-error.ts';
import { type FakeGuest, type FakeGuestOptions, startFakeGuest } from './test-support/fake-guest.ts';

const scratch = mkdtempSync(join(tmpdir(), 'provision-ssh-'));
let client: ClientCertificates;
let server: ServerCertificate;
const guests: FakeGuest[] = [];

beforeAll(async () => {
  client = await ensureClientCertificates(join(scratch, 'certs'));
  server = await issueServerCertificate(client, { sans: serverCertificateSans({ ips: ['127.0.0.1'] }), commonName: 'web1' });
});
afterEach(async () => {
  await Promise.all(guests.splice(0).map((guest) => guest.close()));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A guest, and engine options whose port is the guest's free docker port. With cloud-init done, the files cloud-init writes are in place. */
async function guest(options: FakeGuestOptions = {}, flags: Record<string, unknown> = {}): Promise<{ guest: FakeGuest; engine: EngineOptions }> {
  const started = await startFakeGuest(options);
  guests.push(started);
  const engine = engineOptionsFrom({ enginePort: started.dockerPort, engineLabel: ['env=test'], ...flags });
  if ((options.cloudInit ?? 'done') === 'done' && options.dockerInstalled) {
    started.fs.mkdir('/etc/docker', { recursive: true });
    started.fs.mkdir('/etc/systemd/system/docker.service.d', { recursive: true });
    started.fs.writeFile('/etc/docker/daemon.json', daemonJson(engine));
    started.fs.writeFile('/etc/systemd/system/docker.service.d/10-machine.conf', systemdDropIn(engine));
  }
  return { guest: started, engine };
}

async function provisionError(promise: Promise<unknown>): Promise<ProvisionError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ProvisionError.isInstance(error), String(error)).toBe(true);
  return error as ProvisionError;
}

describe('provisionDocker over SSH', () => {
  it('a failed install into /etc leaves no uploaded server key in /tmp/machine-provision', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true, installIntoEtcFails: true });
    const error = await provisionError(installServerCertificate({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server }));
    expect(error.step).toBe('upload-certificates');
    expect(error.message).toMatch(/^provisioning \S+ failed at upload-certificates: `sudo install` of the uploaded files into \/etc exited with 1: install: cannot create regular file '\/etc\/docker\/': Read-only file system$/);
    expect(machine.fs.exists('/tmp/machine-provision')).toBe(false);
    expect(machine.commands.at(-1)).toBe('rm -rf /tmp/machine-provision');
  });

  it('cloud-init machine: waits for cloud-init, uploads the certificates, restarts dockerd and returns the engine version', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true });
    const events: ProgressEvent[] = [];
    const result = await provisionDocker(
      { ssh: machine.ssh, dockerHost: '127.0.0.1' },
      { engine, client, server, cloudInit: true, onProgress: (event) => events.push(event) },
    );
    expect(result).toEqual({ dockerVersion: '27.3.1' });
    expect(machine.commands).toEqual([
      'cloud-init status --wait',
      'rm -rf /tmp/machine-provision',
      'sudo mkdir -p /etc/docker /etc/systemd/system/docker.service.d && sudo install -m 0644 /tmp/machine-provision/ca.pem /tmp/machine-provision/server.pem /etc/docker/ && sudo install -m 0600 /tmp/machine-provision/server-key.pem /etc/docker/ && rm -rf /tmp/machine-provision',
      'sudo systemctl daemon-reload && sudo systemctl restart docker',
    ]);
    expect(machine.fs.readFile('/etc/docker/server-key.pem').toString()).toBe(server.keyPem);
    expect(machine.fs.stat('/etc/docker/server-key.pem').mode & 0o777).toBe(0o600);
    expect(machine.fs.readFile('/etc/docker/server.pem').toString()).toBe(server.certPem);
    expect(machine.fs.readFile('/etc/docker/ca.pem').toString()).toBe(await readFile(client.caCertPath, 'utf8'));
    expect(machine.fs.exists('/tmp/machine-provision')).toBe(false);
    expect(events.filter((event) => event.phase === 'done').map((event) => event.step)).toEqual([
      'cloud-init',
      'upload-certificates',
      'restart-docker',
      'wait-docker',
      'docker-version',
    ]);
    const url = dockerUrl('127.0.0.1', engine.port);
    expect(await dockerVersion(url, client)).toBe('27.3.1');
    expect(await dockerApi(url, client, '/nope')).toEqual({ status: 404, body: '{"message":"page not found"}' });
  });

  it('a failed engine install under cloud-init is one ProvisionError at cloud-init with the log tail', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'error' });
    const error = await provisionError(provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true }));
    expect(error.step).toBe('cloud-init');
    expect(error.machine).toBe('web1');
    expect(error.message).toMatch(/^provisioning web1 failed at cloud-init: cloud-init reported "error" and Docker Engine is not installed: /);
    expect(error.message).not.toContain('\n');
    expect(error.logTail).toContain('E: Unable to locate package docker-ce');
    expect(error.logTail.at(-1)).toContain('Cloud-init v. 24.4 finished');
    expect(machine.commands).toEqual(['cloud-init status --wait', 'command -v docker', 'sudo tail -n 20 /var/log/cloud-init-output.log']);
  });

  it('generic host (cloudInit: false): installs the engine over SSH and uploads daemon.json and the drop-in too', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'absent' }, { engineEnv: ['HTTP_PROXY=http://proxy:3128'] });
    const result = await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: false });
    expect(result.dockerVersion).toBe('27.3.1');
    expect(machine.commands.slice(0, 2)).toEqual(['command -v docker', "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sudo sh /tmp/install-docker.sh"]);
    expect(machine.commands[3]).toContain('sudo install -m 0644 /tmp/machine-provision/daemon.json /etc/docker/ && sudo install -m 0644 /tmp/machine-provision/10-machine.conf /etc/systemd/system/docker.service.d/');
    expect(JSON.parse(machine.fs.readFile('/etc/docker/daemon.json').toString())).toMatchObject({ labels: ['env=test'], tlsverify: true });
    expect(machine.fs.readFile('/etc/systemd/system/docker.service.d/10-machine.conf').toString()).toContain('Environment="HTTP_PROXY=http://proxy:3128"');
  });

  it('generic host with Docker already installed skips the install script', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'absent', dockerInstalled: true });
    await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: false });
    expect(machine.commands.some((command) => command.includes('install-docker.sh'))).toBe(false);
  });

  it('a failing install script over SSH is a ProvisionError at install-engine with its output', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'absent', installFails: true });
    const error = await provisionError(provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: false }));
    expect(error.step).toBe('install-engine');
    expect(error.message).toBe(
      'provisioning web1 failed at install-engine: the install script exited with 100: E: Unable to locate package docker-ce-cli (check --engine-install-url (https://get.docker.com) and that the machine can reach it)',
    );
    expect(error.logTail).toContain('E: Unable to locate package docker-ce');
  });

  it('credentials in --engine-install-url (a private mirror) appear in no message or progress event', async () => {
    const secretUrl = 'https://deploy:s3cret-token@mirror.example/install.sh';
    const { guest: machine, engine } = await guest({ cloudInit: 'absent', installFails: true }, { engineInstallUrl: secretUrl });
    const events: ProgressEvent[] = [];
    const error = await provisionError(
      provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: false, onProgress: (event) => events.push(event) }),
    );
    // The machine still downloads from the real URL.
    expect(machine.commands.some((command) => command.startsWith(`curl -fsSL '${secretUrl}' -o /tmp/install-docker.sh && `))).toBe(true);
    expect(error.message).toContain('check --engine-install-url (https://***@mirror.example/install.sh)');
    const shown = [error.message, ...events.map((event) => event.message)].join('\n');
    expect(shown).toContain('installing Docker Engine from https://***@mirror.example/install.sh');
    expect(shown).not.toContain('s3cret-token');
    expect(() => engineOptionsFrom({ engineInstallUrl: 'https://deploy:s3cret-token@mirror.example/a b.sh' })).toThrow('"https://***@mirror.example/a b.sh" is not an http(s) URL');
  });

  it('an image without cloud-init falls back to the SSH install', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'absent' });
    const events: ProgressEvent[] = [];
    const result = await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true, onProgress: (event) => events.push(event) });
    expect(result.dockerVersion).toBe('27.3.1');
    expect(events.some((event) => event.phase === 'info' && event.message.includes('no cloud-init'))).toBe(true);
    expect(machine.fs.exists('/etc/docker/daemon.json')).toBe(true);
  });

  it('cloud-init still running is polled until done', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'running', dockerInstalled: true });
    machine.fs.mkdir('/etc/docker', { recursive: true });
    machine.fs.writeFile('/etc/docker/daemon.json', daemonJson(engine));
    await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true });
    expect(machine.commands.filter((command) => command === 'cloud-init status --wait')).toHaveLength(2);
  });

  it('a connection dropped during the cloud-init wait is reopened and provisioning starts over', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true, dropConnectionDuringCloudInit: true });
    const events: ProgressEvent[] = [];
    const result = await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true, onProgress: (event) => events.push(event) });
    expect(result.dockerVersion).toBe('27.3.1');
    expect(events.some((event) => event.phase === 'info' && event.step === 'cloud-init' && event.message.includes('reconnecting'))).toBe(true);
    expect(machine.commands.filter((command) => command === 'cloud-init status --wait')).toHaveLength(2);
  });

  it('a cloud-init too old for `status` is a ProvisionError at cloud-init that says what to do', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'ancient', dockerInstalled: true });
    const error = await provisionError(provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true }));
    expect(error.step).toBe('cloud-init');
    expect(error.message).toContain("`cloud-init status --wait` exited with 2: /usr/bin/cloud-init: error: argument subcommand: invalid choice: 'status'");
    expect(error.hint).toContain('generic host');
  });

  it('restart without an installed engine fails at restart-docker with systemd\'s message', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: false });
    const error = await provisionError(provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true }));
    expect(error.step).toBe('restart-docker');
    expect(error.message).toContain('systemctl restart docker exited with 5: Failed to restart docker.service: Unit docker.service not found.');
    expect(error.logTail[0]).toBe('Failed to restart docker.service: Unit docker.service not found.');
    expect(error.logTail.at(-1)).toContain('Cloud-init v. 24.4 finished');
  });

  it('a restart that systemd rate-limited is retried after reset-failed', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true, restartRateLimited: true });
    await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true });
    expect(machine.commands).toContain('sudo systemctl reset-failed docker && sudo systemctl daemon-reload && sudo systemctl restart docker');
    expect(machine.dockerStarts).toBe(1);
  });

  it('root logins run the commands without sudo', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true, username: 'root' });
    await provisionDocker({ ssh: machine.ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true });
    expect(machine.commands.some((command) => command.includes('sudo'))).toBe(false);
  });

  it('a host key other than the pinned one fails at connect, before any command', async () => {
    const { guest: machine, engine } = await guest({ dockerInstalled: true });
    const ssh = { ...machine.ssh, hostKeyFingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
    const error = await provisionError(provisionDocker({ ssh, dockerHost: '127.0.0.1' }, { engine, client, server, cloudInit: true }));
    expect(error.step).toBe('connect');
    expect(error.message).toContain('the host key of 127.0.0.1');
    expect(SSHError.isInstance(error.cause) && error.cause.failure).toBe('host-key');
    expect(machine.commands).toEqual([]);
  });

  it('abort rejects with CancelledError; the deadline with a retryable ProvisionError', async () => {
    const { guest: machine, engine } = await guest({ dockerInstalled: true });
    const controller = new AbortController();
    const aborted = provisionDocker(
      { ssh: machine.ssh, dockerHost: '127.0.0.1' },
      { engine, client, server, cloudInit: true, signal: controller.signal, onProgress: (event) => event.step === 'upload-certificates' && controller.abort() },
    );
    await expect(aborted).rejects.toSatisfy((error: unknown) => CancelledError.isInstance(error));
    expect(machine.commands.some((command) => command.includes('systemctl'))).toBe(false);

    const { guest: stuck, engine: stuckEngine } = await guest({ cloudInit: 'stuck' });
    const error = await provisionError(provisionDocker({ ssh: stuck.ssh, dockerHost: '127.0.0.1' }, { engine: stuckEngine, client, server, cloudInit: true, timeoutMs: 300 }));
    expect(error.step).toBe('cloud-init');
    expect(error.isRetryable).toBe(true);
    expect(error.message).toBe('provisioning web1 failed at cloud-init: gave up after 0.3 s (timeoutMs)');
  });
});

describe('installServerCertificate', () => {
  it('pushes a certificate with a new SAN; the engine then serves it', async () => {
    const { guest: machine, engine } = await guest({ cloudInit: 'done', dockerInstalled: true });
    const target = { ssh: machine.ssh, dockerHost: '127.0.0.1' };
    await provisionDocker(target, { engine, client, server, cloudInit: true });
    const renewed = await issueServerCertificate(client, { sans: serverCertificateSans({ ips: ['127.0.0.1'], tlsSans: ['docker.example.com'] }), commonName: 'web1' });
    await installServerCertificate(target, { engine, client, server: renewed });
    expect(machine.dockerStarts).toBe(2);
    const served = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: engine.port, rejectUnauthorized: false, cert: machine.fs.readFile('/etc/docker/server.pem'), key: renewed.keyPem }, () => {
        resolve(socket.getPeerX509Certificate()?.toString() ?? '');
        socket.destroy();
      });
      socket.on('error', reject);
    });
    expect(certificateSans(served)).toEqual(['127.0.0.1', 'docker.example.com', 'localhost']);
    expect(machine.commands.at(-1)).toBe('sudo systemctl daemon-reload && sudo systemctl restart docker');
  });
});
