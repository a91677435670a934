import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SimInstance, type Sim, startSim } from '@machine/cloud-sim';
import { combineUserData } from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import type { SSHTarget } from '@machine/driver-core/ssh';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { certificateSans, type ClientCertificates, ensureClientCertificates, issueServerCertificate, serverCertificateSans } from './certificates.ts';
import { buildCloudConfig } from './cloud-config.ts';
import { dockerApi, dockerUrl, dockerVersion } from './docker-api.ts';
import { DockerApiError } from './docker-api-error.ts';
import { type EngineOptions, engineOptionsFrom } from './engine-options.ts';
import { generateHostKey, type MachineHostKey } from './host-key.ts';
import { installServerCertificate, provisionDocker, upgradeDocker } from './provision-docker.ts';
import { ProvisionError } from './provision-error.ts';

// End to end on tools/cloud-sim's "booted image": cloud-init applies buildCloudConfig's user data
// (host key, daemon.json, drop-in, engine install), the emulated shell runs the provisioning
// commands, and the emulated dockerd serves the uploaded certificates with mutual TLS.

const login = generateSSHKeyPair({ comment: 'machine-user' });
const scratch = mkdtempSync(join(tmpdir(), 'provision-sim-'));
let client: ClientCertificates;
let sim: Sim | undefined;

beforeAll(async () => {
  client = await ensureClientCertificates(join(scratch, 'certs'));
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Booted {
  sim: Sim;
  instance: SimInstance;
  engine: EngineOptions;
  hostKey: MachineHostKey;
  ssh: SSHTarget;
}

/** Starts a simulator and boots one machine, with the provisioner's cloud-config unless `cloudInit` is false. */
async function boot(name: string, options: { cloudInit?: boolean; userScript?: string; faults?: (sim: Sim) => void; flags?: Record<string, unknown> } = {}): Promise<Booted> {
  const started = await startSim({ providers: [], delays: { pendingMs: 5, stoppingMs: 5, cloudInitMs: 5 } });
  sim = started;
  options.faults?.(started);
  const engine = engineOptionsFrom({ enginePort: started.dockerPort, engineLabel: ['env=sim'], ...options.flags });
  const hostKey = generateHostKey();
  const userData = options.cloudInit === false ? undefined : combineUserData([buildCloudConfig({ engine, hostKey }), options.userScript]);
  const { instance, running } = started.lifecycle.launch({
    provider: 'test',
    kind: 'vm',
    id: `i-${name}`,
    name,
    authorizedKeys: [login.publicKey],
    ...(userData === undefined ? {} : { userData }),
  });
  expect(await running).toBe(true);
  const ssh: SSHTarget = {
    host: instance.publicIp,
    port: started.sshPort,
    username: 'ubuntu',
    privateKey: login.privateKey,
    machine: name,
    ...(userData === undefined ? {} : { hostKeyFingerprint: hostKey.fingerprint }),
  };
  return { sim: started, instance, engine, hostKey, ssh };
}

async function serverFor(ip: string, engine: EngineOptions) {
  return issueServerCertificate(client, { sans: serverCertificateSans({ ips: [ip], tlsSans: engine.tlsSans }), commonName: 'web1' });
}

describe('provisioning on the simulator', () => {
  it('cloud-init installs the engine (the user\'s own script merged in), the certificates are pushed, the engine answers over mutual TLS', async () => {
    const { instance, engine, ssh } = await boot('web1', { userScript: '#!/bin/sh\necho "user script ran"\n' });
    const server = await serverFor(instance.publicIp, engine);
    const steps: string[] = [];
    const result = await provisionDocker(
      { ssh, dockerHost: instance.publicIp },
      { engine, client, server, cloudInit: true, onProgress: (event) => event.phase === 'done' && steps.push(event.step) },
    );
    expect(result).toEqual({ dockerVersion: '27.3.1' });
    expect(steps).toEqual(['cloud-init', 'upload-certificates', 'restart-docker', 'wait-docker', 'docker-version']);
    expect(instance.filesystem.readFile('/var/log/cloud-init-output.log').toString()).toContain('user script ran');
    expect(instance.filesystem.exists('/tmp/machine-provision')).toBe(false);
    expect(instance.filesystem.stat('/etc/docker/server-key.pem').mode & 0o777).toBe(0o600);
    const url = dockerUrl(instance.publicIp, engine.port);
    const info = await dockerApi(url, client, '/info');
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body)).toMatchObject({ Labels: ['env=sim'] });
  });

  it('a failing engine install is a ProvisionError at cloud-init with the cloud-init log tail', async () => {
    const { instance, engine, ssh } = await boot('web1', { faults: (started) => started.faults.engineInstallFails({ name: 'web1' }) });
    const error = await provisionDocker({ ssh, dockerHost: instance.publicIp }, { engine, client, server: await serverFor(instance.publicIp, engine), cloudInit: true }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(ProvisionError.isInstance(error), String(error)).toBe(true);
    const failure = error as ProvisionError;
    expect(failure.step).toBe('cloud-init');
    expect(failure.message).toMatch(/^provisioning web1 failed at cloud-init: cloud-init reported "error" and Docker Engine is not installed: E: Unable to locate package /);
    expect(failure.message).not.toContain('\n');
    expect(failure.logTail.some((line) => line.includes('E: Unable to locate package docker-ce'))).toBe(true);
    expect(failure.logTail.length).toBeLessThanOrEqual(20);
  });

  it('generic path (no user data): the engine is installed over SSH and the files uploaded', async () => {
    const { instance, engine, ssh } = await boot('web1', { cloudInit: false, flags: { engineEnv: ['HTTP_PROXY=http://proxy.example:3128'] } });
    const result = await provisionDocker(
      { ssh, dockerHost: instance.publicIp },
      { engine, client, server: await serverFor(instance.publicIp, engine), cloudInit: false },
    );
    expect(result.dockerVersion).toBe('27.3.1');
    expect(instance.filesystem.readFile('/etc/systemd/system/docker.service.d/10-machine.conf').toString()).toContain('Environment="HTTP_PROXY=http://proxy.example:3128"');
    expect(JSON.parse(instance.filesystem.readFile('/etc/docker/daemon.json').toString())).toMatchObject({ labels: ['env=sim'], tlsverify: true });
  });

  it('after an IP change the old certificate is refused; installServerCertificate with the new SAN fixes it', async () => {
    const { sim: started, instance, engine, ssh } = await boot('web1', { faults: (s) => s.faults.ipChangesOnStart({ name: 'web1' }) });
    const oldIp = instance.publicIp;
    await provisionDocker({ ssh, dockerHost: oldIp }, { engine, client, server: await serverFor(oldIp, engine), cloudInit: true });
    expect(await started.lifecycle.stop(instance)).toBe(true);
    expect(await started.lifecycle.start(instance)).toBe(true);
    const newIp = instance.publicIp;
    expect(newIp).not.toBe(oldIp);
    const newUrl = dockerUrl(newIp, engine.port);

    const stale = await dockerVersion(newUrl, client, { machine: 'web1' }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(DockerApiError.isInstance(stale) && stale.failure).toBe('tls');
    expect((stale as Error).message).toContain('machine regenerate-certs web1');

    const renewed = await serverFor(newIp, engine);
    expect(certificateSans(renewed.certPem)).toContain(newIp);
    await installServerCertificate({ ssh: { ...ssh, host: newIp }, dockerHost: newIp }, { engine, client, server: renewed });
    expect(await dockerVersion(newUrl, client)).toBe('27.3.1');
    expect(instance.filesystem.readFile('/etc/docker/server.pem').toString()).toBe(renewed.certPem);
  });

  it('the host key from the cloud-config is the one the machine presents; any other pin is refused', async () => {
    const { instance, engine, ssh } = await boot('web1');
    const other = generateHostKey();
    const error = await provisionDocker(
      { ssh: { ...ssh, hostKeyFingerprint: other.fingerprint }, dockerHost: instance.publicIp },
      { engine, client, server: await serverFor(instance.publicIp, engine), cloudInit: true },
    ).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(ProvisionError.isInstance(error) && error.step).toBe('connect');
    expect((error as Error).message).toContain('the host key of');
    // With the right pin (the fixture's ssh target) it works.
    await expect(provisionDocker({ ssh, dockerHost: instance.publicIp }, { engine, client, server: await serverFor(instance.publicIp, engine), cloudInit: true })).resolves.toEqual({
      dockerVersion: '27.3.1',
    });
  });

  it('upgradeDocker: apt-get --only-upgrade of Docker\'s packages, restart with the same TLS files, _ping, the new version', async () => {
    const { instance, engine, ssh } = await boot('web1');
    const server = await serverFor(instance.publicIp, engine);
    await provisionDocker({ ssh, dockerHost: instance.publicIp }, { engine, client, server, cloudInit: true });
    const tlsFiles = ['/etc/docker/server.pem', '/etc/docker/server-key.pem', '/etc/docker/ca.pem', '/etc/docker/daemon.json'].map((path) => instance.filesystem.readFile(path).toString());
    const steps: string[] = [];
    const result = await upgradeDocker({ ssh, dockerHost: instance.publicIp }, { engine, client, onProgress: (event) => event.phase === 'start' && steps.push(`${event.step}: ${event.message}`) });
    expect(result).toEqual({ dockerVersion: '28.0.1', previousVersion: '27.3.1', method: 'apt-get' });
    expect(steps[0]).toBe('upgrade-engine: upgrading Docker Engine 27.3.1 with apt-get');
    expect(steps.map((step) => step.split(':')[0])).toEqual(['upgrade-engine', 'restart-docker', 'wait-docker', 'docker-version']);
    expect(await dockerVersion(dockerUrl(instance.publicIp, engine.port), client)).toBe('28.0.1');
    expect(['/etc/docker/server.pem', '/etc/docker/server-key.pem', '/etc/docker/ca.pem', '/etc/docker/daemon.json'].map((path) => instance.filesystem.readFile(path).toString())).toEqual(tlsFiles);
    // Nothing newer: a second upgrade keeps the version.
    expect((await upgradeDocker({ ssh, dockerHost: instance.publicIp }, { engine, client })).dockerVersion).toBe('28.0.1');
  });

  it('upgradeDocker runs a custom --engine-install-url again; a failing one is a ProvisionError at upgrade-engine with its output', async () => {
    const { instance, engine, ssh } = await boot('web1', { cloudInit: false });
    await provisionDocker({ ssh, dockerHost: instance.publicIp }, { engine, client, server: await serverFor(instance.publicIp, engine), cloudInit: false });
    const custom = { ...engine, installUrl: 'https://test.docker.com' };
    expect(await upgradeDocker({ ssh, dockerHost: instance.publicIp }, { engine: custom, client })).toMatchObject({ dockerVersion: '28.0.1', method: 'install-script' });
    const unreachable = { ...engine, installUrl: 'https://installer.example.invalid/docker.sh' };
    const error = await upgradeDocker({ ssh, dockerHost: instance.publicIp }, { engine: unreachable, client }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(ProvisionError.isInstance(error) && error.step).toBe('upgrade-engine');
    expect((error as Error).message).toBe('provisioning web1 failed at upgrade-engine: the install script exited with 6: curl: (6) Could not resolve host: installer.example.invalid (check --engine-install-url (https://installer.example.invalid/docker.sh) and that the machine can reach it)');
  });
});
