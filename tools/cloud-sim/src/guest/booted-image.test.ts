import { createServer } from 'node:net';
import { combineUserData } from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH, type SSHTarget, waitForSSH, withSSHClient } from '@machine/driver-core/ssh';
import type ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SimInstance } from '../core/store.ts';
import { type Sim, type SimOptions, startSim } from '../sim.ts';
import { createCA, issue, type TestCA, type TestLeaf, tlsGet } from './test-certificates.test-helpers.ts';

// The simulator as "the booted image": cloud-init applies the provisioner's #cloud-config (host
// key, files, engine install), the emulated shell answers the provisioning commands of
// /work/notes/provision-contract.md, and dockerd serves the Docker API over mutual TLS.

let sim: Sim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const login = generateSSHKeyPair({ comment: 'machine-user' });
const INSTALL = "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sh /tmp/install-docker.sh";

function daemonJson(port: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    hosts: ['unix:///var/run/docker.sock', `tcp://0.0.0.0:${port}`],
    tls: true,
    tlsverify: true,
    tlscacert: '/etc/docker/ca.pem',
    tlscert: '/etc/docker/server.pem',
    tlskey: '/etc/docker/server-key.pem',
    ...extra,
  });
}

const DROP_IN = '[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\nEnvironment=HTTP_PROXY=http://proxy.example:3128\n';

/** The provisioner's cloud-config (contract "Guest contract"). */
function cloudConfig(options: { port: number; hostKey?: ReturnType<typeof generateSSHKeyPair>; labels?: string[]; dropIn?: string }): string {
  const config: Record<string, unknown> = {};
  if (options.hostKey !== undefined) {
    config.ssh_deletekeys = true;
    config.ssh_keys = { ed25519_private: options.hostKey.privateKey, ed25519_public: options.hostKey.publicKey };
  }
  config.write_files = [
    { path: '/etc/docker/daemon.json', content: daemonJson(options.port, options.labels === undefined ? {} : { labels: options.labels }), permissions: '0644' },
    { path: '/etc/systemd/system/docker.service.d/10-machine.conf', content: options.dropIn ?? DROP_IN, permissions: '0644' },
  ];
  config.runcmd = [['sh', '-c', INSTALL], ['systemctl', 'daemon-reload'], ['systemctl', 'enable', 'docker']];
  return `#cloud-config\n${stringify(config)}`;
}

async function boot(options: SimOptions, name: string, userData?: string): Promise<{ sim: Sim; instance: SimInstance; target: SSHTarget }> {
  const started = sim ?? (await startSim({ providers: [], delays: { pendingMs: 5, stoppingMs: 5, cloudInitMs: 5 }, ...options }));
  sim = started;
  const { instance, running } = started.lifecycle.launch({ provider: 'test', kind: 'vm', id: `i-${name}`, name, authorizedKeys: [login.publicKey], ...(userData === undefined ? {} : { userData }) });
  expect(await running).toBe(true);
  return { sim: started, instance, target: { host: instance.publicIp, port: started.sshPort, username: 'ubuntu', privateKey: login.privateKey } };
}

function call<T>(run: (done: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value as T))));
}

/** Step 2 of the contract: SFTP to /tmp/machine-provision/, then `sudo install` into /etc/docker. */
async function uploadCertificates(target: SSHTarget, files: { ca: string; cert: string; key: string }, extra: Record<string, string> = {}, extraInstall = ''): Promise<void> {
  await withSSHClient(target, undefined, async (client) => {
    const sftp = await call<ssh2.SFTPWrapper>((done) => client.sftp(done));
    await call((done) => sftp.mkdir('/tmp/machine-provision', done));
    for (const [name, content] of Object.entries({ 'ca.pem': files.ca, 'server.pem': files.cert, 'server-key.pem': files.key, ...extra })) {
      await call((done) => sftp.writeFile(`/tmp/machine-provision/${name}`, content, done));
    }
  });
  const installed = await runSSH(
    target,
    `sudo mkdir -p /etc/docker /etc/systemd/system/docker.service.d && sudo install -m 0644 /tmp/machine-provision/ca.pem /tmp/machine-provision/server.pem /etc/docker/ && sudo install -m 0600 /tmp/machine-provision/server-key.pem /etc/docker/${extraInstall} && rm -rf /tmp/machine-provision`,
  );
  expect(installed).toMatchObject({ code: 0, stderr: '' });
}

async function certificates(ip: string): Promise<{ ca: TestCA; server: TestLeaf; client: TestLeaf }> {
  const ca = await createCA();
  return { ca, server: await issue(ca, { commonName: 'web1', ips: [ip] }), client: await issue(ca, { commonName: 'machine-client', client: true }) };
}

describe('booted image: cloud-init', () => {
  it('serves SSH with the ssh_keys host key from the cloud-config (pinned fingerprint matches)', async () => {
    const hostKey = generateSSHKeyPair({ comment: 'machine' });
    const { instance, target } = await boot({}, 'pinned', cloudConfig({ port: 2376, hostKey }));
    expect(instance.attributes.userData).toContain('ed25519_private');
    const fingerprint = await waitForSSH(target, { timeout: 5_000 });
    expect(fingerprint).toBe(hostKey.sha256Fingerprint);
    const pinned = await runSSH({ ...target, hostKeyFingerprint: hostKey.sha256Fingerprint }, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
    expect(pinned.stdout).toBe(`${hostKey.publicKey}\n`);
    expect(instance.filesystem.stat('/etc/ssh/ssh_host_ed25519_key').mode).toBe(0o600);
    // A replaced host key (an impostor, a reinstall) is refused by the pinned client.
    const impostor = generateSSHKeyPair({ comment: 'impostor' });
    await sim!.ssh.replaceHostKey(instance, impostor.privateKey);
    await expect(runSSH({ ...target, hostKeyFingerprint: hostKey.sha256Fingerprint }, 'true')).rejects.toThrow(/host key/i);
    expect((await runSSH(target, 'true')).hostKeyFingerprint).toBe(impostor.sha256Fingerprint);
    // Another instance without ssh_keys has a different, generated key: pinning refuses it.
    const other = await boot({}, 'unpinned');
    await expect(runSSH({ ...other.target, hostKeyFingerprint: hostKey.sha256Fingerprint }, 'true')).rejects.toThrow(/host key/i);
  });

  it('writes write_files, runs the engine runcmd (log lines, /usr/bin/docker) and reports status done', async () => {
    const { instance, target } = await boot({}, 'files', cloudConfig({ port: 2376 }));
    const waited = await runSSH(target, 'cloud-init status --wait');
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/(^|\n)status: done\n$/);
    expect(JSON.parse(instance.filesystem.readFile('/etc/docker/daemon.json').toString())).toMatchObject({ tlsverify: true, hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2376'] });
    expect(instance.filesystem.stat('/etc/docker/daemon.json').mode).toBe(0o644);
    expect(instance.filesystem.readFile('/etc/systemd/system/docker.service.d/10-machine.conf').toString()).toBe(DROP_IN);
    expect((await runSSH(target, 'command -v docker')).stdout).toBe('/usr/bin/docker\n');
    expect((await runSSH(target, 'test -x /usr/bin/dockerd && echo yes')).stdout).toBe('yes\n');
    const log = (await runSSH(target, 'sudo tail -n 100 /var/log/cloud-init-output.log')).stdout;
    expect(log).toContain("Cloud-init v. 24.4-0ubuntu1~24.04.2 running 'modules:final'");
    expect(log).toContain('# Executing docker install script');
    expect(log).toMatch(/Cloud-init v\. \S+ finished at .* Datasource DataSourceNoCloud/);
    expect(log).not.toContain('WARNING');
    expect((await runSSH(target, 'cloud-init status --long')).stdout).toContain('errors: []');
    expect(instance.filesystem.exists('/var/lib/cloud/instance/boot-finished')).toBe(true);
    expect((await runSSH(target, 'systemctl is-enabled docker')).stdout).toBe('enabled\n');
    // The package's postinst tried to start dockerd before the certificates were there.
    expect((await runSSH(target, 'systemctl is-active docker')).code).toBe(3);
    expect((await runSSH(target, 'journalctl -u docker --no-pager')).stdout).toContain('open /etc/docker/server.pem: no such file or directory');
  });

  it('applies every part of MIME multipart user data, nested archives too, with the user script before runcmd', async () => {
    const userScript = '#!/bin/sh\necho "from the user" > /root/user-script.txt\n';
    const extraConfig = '#cloud-config\nwrite_files:\n  - path: /opt/app/env\n    content: "A=1\\n"\n    permissions: 0600\n    owner: ubuntu:ubuntu\n';
    const inner = combineUserData([extraConfig, userScript])!;
    const userData = combineUserData([cloudConfig({ port: 2376 }), inner])!;
    expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
    const { instance, target } = await boot({}, 'multipart', userData);
    expect((await runSSH(target, 'cloud-init status --wait')).code).toBe(0);
    expect(instance.filesystem.readFile('/root/user-script.txt').toString()).toBe('from the user\n');
    const env = instance.filesystem.stat('/opt/app/env');
    expect(env).toMatchObject({ mode: 0o600, uid: 1000 });
    expect(instance.filesystem.exists('/etc/docker/daemon.json')).toBe(true);
    expect(instance.filesystem.exists('/usr/bin/docker')).toBe(true);
  });

  it('without user data: status done at once, no docker, systemctl says the unit does not exist', async () => {
    const { target } = await boot({}, 'bare');
    expect(await runSSH(target, 'cloud-init status')).toMatchObject({ code: 0, stdout: 'status: done\n' });
    expect((await runSSH(target, 'command -v docker')).code).toBe(1);
    expect(await runSSH(target, 'sudo systemctl daemon-reload && sudo systemctl restart docker')).toMatchObject({
      code: 5,
      stderr: 'Failed to restart docker.service: Unit docker.service not found.\n',
    });
    expect(await runSSH(target, 'docker version')).toMatchObject({ code: 127, stderr: 'sh: 1: docker: not found\n' });
  });

  it('engineInstallFails: the install fails, cloud-init status --wait exits 1 and the log tail says why', async () => {
    const { target, instance } = await boot({ faults: [{ instance: 'engineInstallFails', name: 'broken' }] }, 'broken', cloudConfig({ port: 2376 }));
    expect(instance.faults.has('engineInstallFails')).toBe(true);
    const status = await runSSH(target, 'cloud-init status --wait');
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/(^|\n)status: error\n$/);
    const tail = await runSSH(target, 'sudo tail -n 20 /var/log/cloud-init-output.log');
    expect(tail.stdout).toContain('E: Unable to locate package docker-ce');
    expect(tail.stdout).toContain('Failed running /var/lib/cloud/instance/scripts/runcmd');
    expect(tail.stdout).toContain('Failed to run module scripts_user');
    expect((await runSSH(target, 'cloud-init status --long')).stdout).toContain('(scripts_user) Failed to run module scripts_user');
    expect((await runSSH(target, 'sudo systemctl restart docker')).code).toBe(5);
    // The same fault hits the generic (no cloud-init) path over SSH.
    const generic = await runSSH(target, "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sudo sh /tmp/install-docker.sh");
    expect(generic.code).toBe(100);
    expect(generic.stderr).toContain('E: Unable to locate package docker-ce');
  });
});

describe('booted image: dockerd over mutual TLS', () => {
  it('after the certificates are uploaded and docker restarted, serves /_ping, /version, /info only to clients of the CA', async () => {
    sim = await startSim({ providers: [], delays: { pendingMs: 5, stoppingMs: 5, cloudInitMs: 5 } });
    const port = sim.dockerPort;
    const { instance, target } = await boot({}, 'docker', cloudConfig({ port, labels: ['env=test', 'team=core'] }));
    expect((await runSSH(target, 'cloud-init status --wait')).code).toBe(0);
    const { ca, server, client } = await certificates(instance.publicIp);
    await uploadCertificates(target, { ca: ca.certPem, cert: server.certPem, key: server.keyPem });
    expect(instance.filesystem.stat('/etc/docker/server-key.pem').mode).toBe(0o600);
    expect(instance.filesystem.stat('/etc/docker/ca.pem').mode).toBe(0o644);
    expect(instance.filesystem.exists('/tmp/machine-provision')).toBe(false);
    expect(await runSSH(target, 'sudo systemctl daemon-reload && sudo systemctl restart docker')).toMatchObject({ code: 0, stderr: '' });
    expect((await runSSH(target, 'systemctl is-active docker')).stdout).toBe('active\n');

    const base = `https://${instance.publicIp}:${port}`;
    expect(await tlsGet(`${base}/_ping`, { ca: ca.certPem, client })).toEqual({ status: 200, body: 'OK' });
    expect(await tlsGet(`${base}/v1.47/_ping`, { ca: ca.certPem, client })).toEqual({ status: 200, body: 'OK' });
    const version = JSON.parse((await tlsGet(`${base}/version`, { ca: ca.certPem, client })).body) as Record<string, unknown>;
    expect(version).toMatchObject({ Version: '27.3.1', ApiVersion: '1.47', MinAPIVersion: '1.24', Os: 'linux', Arch: 'amd64', KernelVersion: '6.8.0-45-generic' });
    const info = JSON.parse((await tlsGet(`${base}/info`, { ca: ca.certPem, client })).body) as Record<string, unknown>;
    expect(info).toMatchObject({ Name: 'docker', Labels: ['env=test', 'team=core'] });
    expect(await tlsGet(`${base}/plugins`, { ca: ca.certPem, client })).toEqual({ status: 404, body: '{"message":"page not found"}\n' });
    expect(await tlsGet(`${base}/containers/json`, { ca: ca.certPem, client })).toEqual({ status: 200, body: '[]\n' });

    // No client certificate, or one from another CA: refused during the TLS handshake.
    await expect(tlsGet(`${base}/_ping`, { ca: ca.certPem })).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i);
    const stranger = await createCA('someone-else');
    const strangerClient = await issue(stranger, { commonName: 'intruder', client: true });
    await expect(tlsGet(`${base}/_ping`, { ca: ca.certPem, client: strangerClient })).rejects.toThrow(/unknown ca|certificate|socket hang up|ECONNRESET/i);

    // docker in the shell talks to it too.
    expect((await runSSH(target, 'docker version --format "{{.Server.Version}}"')).stdout).toBe('27.3.1\n');

    // It stops with the machine and comes back at boot (the unit is enabled).
    expect(await sim.lifecycle.stop(instance)).toBe(true);
    await expect(tlsGet(`${base}/_ping`, { ca: ca.certPem, client })).rejects.toThrow(/ECONNREFUSED/);
    expect(await sim.lifecycle.start(instance)).toBe(true);
    expect(await tlsGet(`${base}/_ping`, { ca: ca.certPem, client })).toEqual({ status: 200, body: 'OK' });
    expect(await sim.lifecycle.terminate(instance)).toBe(true);
    await expect(tlsGet(`${base}/_ping`, { ca: ca.certPem, client })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses to start like dockerd does when the drop-in keeps -H and daemon.json has hosts', async () => {
    const conflicting = '[Service]\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n';
    const { instance, target } = await boot({}, 'conflict', cloudConfig({ port: 2376, dropIn: conflicting }));
    expect((await runSSH(target, 'cloud-init status --wait')).code).toBe(0);
    const { ca, server } = await certificates(instance.publicIp);
    await uploadCertificates(target, { ca: ca.certPem, cert: server.certPem, key: server.keyPem });
    const restart = await runSSH(target, 'sudo systemctl daemon-reload && sudo systemctl restart docker');
    expect(restart.code).toBe(1);
    expect(restart.stderr).toContain('Job for docker.service failed');
    const journal = await runSSH(target, 'sudo journalctl -u docker -n 5 --no-pager');
    expect(journal.stdout).toContain('the following directives are specified both as a flag and in the configuration file: hosts');
  });

  it('the generic path over SSH: install script, files through SFTP and install, restart', async () => {
    sim = await startSim({ providers: [], delays: { pendingMs: 5, stoppingMs: 5 } });
    const { instance, target } = await boot({}, 'generic');
    expect((await runSSH(target, 'command -v docker || echo missing')).stdout).toBe('missing\n');
    const install = await runSSH(target, "curl -fsSL 'https://get.docker.com' -o /tmp/install-docker.sh && sudo sh /tmp/install-docker.sh");
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('# Executing docker install script');
    expect((await runSSH(target, 'command -v docker')).code).toBe(0);
    const { ca, server, client } = await certificates(instance.publicIp);
    await uploadCertificates(
      target,
      { ca: ca.certPem, cert: server.certPem, key: server.keyPem },
      { 'daemon.json': daemonJson(sim.dockerPort), '10-machine.conf': DROP_IN },
      ' && sudo install -m 0644 /tmp/machine-provision/daemon.json /etc/docker/daemon.json && sudo install -m 0644 /tmp/machine-provision/10-machine.conf /etc/systemd/system/docker.service.d/10-machine.conf',
    );
    expect(instance.filesystem.readFile('/etc/systemd/system/docker.service.d/10-machine.conf').toString()).toBe(DROP_IN);
    // Without daemon-reload systemd still uses the unit it loaded, and says so.
    const stale = await runSSH(target, 'sudo systemctl restart docker');
    expect(stale.stderr).toContain("Run 'systemctl daemon-reload' to reload units.");
    expect(await runSSH(target, 'sudo systemctl daemon-reload && sudo systemctl restart docker')).toMatchObject({ code: 0, stderr: '' });
    expect(await tlsGet(`https://${instance.publicIp}:${sim.dockerPort}/_ping`, { ca: ca.certPem, client })).toEqual({ status: 200, body: 'OK' });
  });

  it('an upgrade waits in the apt repository once the engine is installed: apt-get --only-upgrade (or the install script again) installs it and dockerd serves it', async () => {
    const started = await startSim({ providers: [], delays: { pendingMs: 5, stoppingMs: 5, cloudInitMs: 5 } });
    sim = started;
    const port = started.dockerPort;
    const { instance, target } = await boot({}, 'upgrade', cloudConfig({ port }));
    expect((await runSSH(target, 'cloud-init status --wait')).code).toBe(0);
    const { ca, server, client } = await certificates(instance.publicIp);
    await uploadCertificates(target, { ca: ca.certPem, cert: server.certPem, key: server.keyPem });
    expect((await runSSH(target, 'sudo systemctl daemon-reload && sudo systemctl restart docker')).code).toBe(0);
    const base = `https://${instance.publicIp}:${port}`;
    expect(JSON.parse((await tlsGet(`${base}/version`, { ca: ca.certPem, client })).body)).toMatchObject({ Version: '27.3.1', ApiVersion: '1.47' });

    const upgrade = await runSSH(target, 'sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --only-upgrade docker-ce docker-ce-cli containerd.io');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toContain('Unpacking docker-ce (5:28.0.1-1~ubuntu.24.04~noble) over (5:27.3.1-1~ubuntu.24.04~noble) ...');
    expect((await runSSH(target, 'sudo systemctl restart docker')).code).toBe(0);
    expect(JSON.parse((await tlsGet(`${base}/version`, { ca: ca.certPem, client })).body)).toMatchObject({ Version: '28.0.1', ApiVersion: '1.48' });
    expect((await runSSH(target, 'docker version --format "{{.Server.Version}}"')).stdout).toBe('28.0.1\n');
    // Nothing newer now: the same command is a no-op, and so is the install script.
    expect((await runSSH(target, 'sudo apt-get install -y --only-upgrade docker-ce')).stdout).toContain('docker-ce is already the newest version (5:28.0.1-1~ubuntu.24.04~noble).');
    expect((await runSSH(target, "curl -fsSL 'https://get.docker.com' -o /tmp/i.sh && sudo sh /tmp/i.sh")).code).toBe(0);
    expect((await runSSH(target, 'docker --version')).stdout).toBe('Docker version 28.0.1, build ce12230\n');

    // Containers the engine ran show in `docker ps -a` on the machine.
    const engine = started.guests.guestFor(instance).containers;
    engine.pull('busybox', 'latest');
    const container = engine.create({ Image: 'busybox', Cmd: ['echo', 'hi'] }, 'greeter');
    engine.start(container);
    expect(await engine.wait(container, 'next-exit')).toBe(0);
    const ps = await runSSH(target, 'docker ps -a');
    expect(ps.stdout).toMatch(new RegExp(`^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES\n${container.id.slice(0, 12)} +busybox +"echo hi" +.+ ago +Exited \\(0\\) .+ago +greeter\n$`));
    expect((await runSSH(target, 'docker ps')).stdout).toBe('CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n');
  });

  it('curl fails like a machine without network for unknown hosts; startSim downloads add URLs', async () => {
    const { target } = await boot({ downloads: { 'https://example.test/install.sh': '#!/bin/sh\necho custom install\nexit 3\n' } }, 'net');
    expect(await runSSH(target, "curl -fsSL 'https://releases.example.com/install.sh' -o /tmp/x.sh")).toMatchObject({
      code: 6,
      stderr: 'curl: (6) Could not resolve host: releases.example.com\n',
    });
    expect((await runSSH(target, 'curl -fsSL https://get.docker.com/nope -o /tmp/x.sh')).code).toBe(22);
    expect(await runSSH(target, "curl -fsSL 'https://example.test/install.sh' -o /tmp/custom.sh && sudo sh /tmp/custom.sh")).toMatchObject({ code: 3, stdout: 'custom install\n' });
  });
});

describe('booted image: addresses and ports', () => {
  it('ipChangesOnStart: a new 127.1.x.y after stop/start (not on reboot); SSH moves with it', async () => {
    const { instance, target, sim: started } = await boot({ faults: [{ instance: 'ipChangesOnStart' }] }, 'moving');
    const first = instance.publicIp;
    expect(await started.lifecycle.reboot(instance)).toBe(true);
    expect(instance.publicIp).toBe(first);
    await started.lifecycle.stop(instance);
    expect(await started.lifecycle.start(instance)).toBe(true);
    expect(instance.publicIp).not.toBe(first);
    expect(instance.publicIp).toMatch(/^127\.1\.\d+\.\d+$/);
    expect((await runSSH({ ...target, host: instance.publicIp }, 'hostname')).stdout).toBe('moving\n');
    await expect(runSSH({ ...target, readyTimeout: 2_000 }, 'true')).rejects.toThrow();
  });

  it('dockerPort is a reserved free port, in env() too', async () => {
    sim = await startSim({ providers: [] });
    expect(sim.dockerPort).toBeGreaterThan(0);
    expect(sim.dockerPort).not.toBe(sim.sshPort);
    expect(sim.env().CLOUD_SIM_DOCKER_PORT).toBe(String(sim.dockerPort));
    const taken = await new Promise<string | undefined>((resolve) => {
      const probe = createServer();
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
      probe.listen(sim!.dockerPort, '127.0.0.1', () => probe.close(() => resolve(undefined)));
    });
    expect(taken).toBe('EADDRINUSE');
  });
});
