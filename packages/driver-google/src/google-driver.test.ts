import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthError,
  CancelledError,
  createMemoryContext,
  type Driver,
  InvalidConfigError,
  NotFoundError,
  parseFlags,
  ProviderError,
  QuotaError,
  SSHError,
  State,
  TimeoutError,
} from '@machine/driver-core';
import { type RunningSSHServer, startSSHServer } from '@machine/driver-core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import google, { googleFlags } from './index.ts';
import { googleError, MemoryCompute } from './testing/memory-compute.ts';

let root: string;
let compute: MemoryCompute;
let server: RunningSSHServer;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-google-'));
  server = await startSSHServer({ authorizedKeys: () => compute.authorizedKeys(), username: 'docker-user' });
});
afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  compute = new MemoryCompute();
});

function machine(flags: Record<string, unknown> = {}, name = `web-${++counter}`) {
  const context = createMemoryContext(name, join(root, name));
  const config = parseFlags(googleFlags, { 'google-project': 'my-project', 'google-ssh-port': server.port, 'google-wait-timeout': 5, ...flags }, { env: {} });
  const driver: Driver = google.createDriver({ config, context, client: compute.clients() });
  return { driver, context };
}

describe('google driver with an in-memory Compute Engine', () => {
  it('creates: firewall rule, then the instance with its key in ssh-keys metadata; SSH works; data holds IP and host key', async () => {
    const { driver, context } = machine({ 'google-open-port': '8080,53/udp', 'google-tags': 'web', 'google-labels': 'team=infra', 'google-spot': true });
    await driver.create();

    expect(compute.calls).toEqual([
      'firewalls.get',
      'firewalls.insert',
      'instances.insert',
      'instances.get',
      // then SSH; no further API calls
    ]);
    const rule = compute.firewalls.get('docker-machines');
    expect(rule?.targetTags).toEqual(['docker-machine']);
    expect(rule?.sourceRanges).toEqual(['0.0.0.0/0']);
    expect(rule?.allowed).toEqual([
      { IPProtocol: 'tcp', ports: [String(server.port), '2376', '8080'] },
      { IPProtocol: 'udp', ports: ['53'] },
    ]);
    const instance = compute.instances.get(`us-central1-a/${context.machineName}`);
    const metadata = Object.fromEntries((instance?.metadata?.items ?? []).map((item) => [item.key, item.value]));
    expect(metadata['ssh-keys']).toMatch(/^docker-user:ssh-ed25519 AAAA\S+ docker-user$/);
    expect(metadata['block-project-ssh-keys']).toBe('true');
    expect(metadata.sshKeys).toBeUndefined();
    expect(instance?.tags?.items).toEqual(['docker-machine', 'web']);
    expect(instance?.labels).toEqual({ team: 'infra' });
    expect(instance?.scheduling).toMatchObject({ provisioningModel: 'SPOT', instanceTerminationAction: 'STOP' });
    expect(instance?.machineType).toBe('zones/us-central1-a/machineTypes/e2-small');
    expect(instance?.disks?.[0]?.initializeParams).toMatchObject({
      sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64',
      diskType: 'zones/us-central1-a/diskTypes/pd-balanced',
      diskSizeGb: 10,
    });
    expect(instance?.disks?.[0]?.autoDelete).toBe(true);
    expect(compute.requestIds).toHaveLength(2);

    expect(context.journal.entries().map((entry) => [entry.kind, entry.id, entry.preExisting])).toEqual([
      ['firewall', 'docker-machines', false],
      ['instance', context.machineName, false],
    ]);
    expect(context.data.read()).toMatchObject({ ip: '127.0.0.1', hostKeyFingerprint: server.hostKeyFingerprint });
    expect((await stat(driver.getSSHKeyPath())).mode & 0o777).toBe(0o600);
    expect(await driver.getState()).toBe(State.Running);
    expect(await driver.getURL()).toBe('tcp://127.0.0.1:2376');
  });

  it('waits on zone and global operations until DONE', async () => {
    compute.waitsPerOperation = 3;
    const { driver } = machine();
    await driver.create();
    expect(compute.count('globalOperations.wait')).toBe(3);
    expect(compute.count('zoneOperations.wait')).toBe(3);
  });

  it('rejects a name that does not start with a letter before any API call', async () => {
    const { driver } = machine({}, '1web');
    await expect(driver.create()).rejects.toThrow(/must start with a lower-case letter/);
    await expect(driver.preCreateCheck()).rejects.toBeInstanceOf(InvalidConfigError);
    expect(compute.calls).toEqual([]);
  });

  it('rejects --google-preemptible with --google-spot before any API call', async () => {
    const { driver } = machine({ 'google-preemptible': true, 'google-spot': true });
    await expect(driver.create()).rejects.toBeInstanceOf(InvalidConfigError);
    expect(compute.calls).toEqual([]);
  });

  it('preCreateCheck refuses an existing instance unless --google-use-existing', async () => {
    const first = machine({}, 'taken');
    await first.driver.create();
    await expect(machine({}, 'taken').driver.preCreateCheck()).rejects.toThrow(/--google-use-existing/);
    await expect(machine({ 'google-use-existing': true }, 'missing').driver.preCreateCheck()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('preCreateCheck names the flag when the project or the zone does not exist', async () => {
    compute.failNext('instances.get', googleError(404, "The resource 'projects/my-project' was not found"));
    await expect(machine().driver.preCreateCheck()).rejects.toThrow(/--google-project: project "my-project" was not found/);
    compute.failNext('instances.get', googleError(404, "The resource 'projects/my-project/zones/us-central1-a' was not found", 'gaxios'));
    await expect(machine().driver.preCreateCheck()).rejects.toThrow(/--google-zone: zone "us-central1-a" does not exist/);
  });

  it('a failed insert operation (does not throw in the SDK) becomes a QuotaError and cleans up the rule it made', async () => {
    compute.failOperation('instances.insert', 'QUOTA_EXCEEDED', "Quota 'CPUS' exceeded. Limit: 8.0 in region us-central1.");
    const { driver, context } = machine();
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuotaError);
    expect((error as Error).message).toContain("Quota 'CPUS' exceeded");
    expect(context.journal.entries()).toEqual([]);
    expect(compute.firewalls.size).toBe(0);
    expect(compute.instances.size).toBe(0);
  });

  it('any other operation error is a ProviderError with the operation name as request id', async () => {
    compute.failOperation('instances.insert', 'ZONE_RESOURCE_POOL_EXHAUSTED_X', 'no capacity');
    compute.failOperation('instances.insert', 'INVALID_FIELD_VALUE', 'bad machine type');
    const { driver } = machine();
    await expect(machine().driver.create()).rejects.toBeInstanceOf(ProviderError);
    const error = (await driver.create().catch((caught: unknown) => caught)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.providerCode).toBe('INVALID_FIELD_VALUE');
    expect(error.requestId).toMatch(/^operation-/);
  });

  it('a failure at each create step leaves nothing behind', async () => {
    for (const step of ['firewalls.get', 'firewalls.insert', 'instances.insert', 'instances.get']) {
      compute = new MemoryCompute();
      compute.failNext(step, googleError(400, `injected failure of ${step}`));
      const { driver, context } = machine();
      await expect(driver.create(), step).rejects.toBeInstanceOf(ProviderError);
      expect(context.journal.entries(), step).toEqual([]);
      expect(compute.instances.size, step).toBe(0);
      expect(compute.firewalls.size, step).toBe(0);
    }
  });

  it('an instance that never runs times out, and create cleans up', async () => {
    compute.neverRuns = true;
    const { driver, context } = machine({ 'google-wait-timeout': 1 });
    await expect(driver.create()).rejects.toBeInstanceOf(TimeoutError);
    expect(context.journal.entries()).toEqual([]);
    expect(compute.instances.size).toBe(0);
  });

  it('an aborted create cleans up and rejects with CancelledError', async () => {
    compute.waitsPerOperation = 1_000_000;
    const { driver, context } = machine();
    const controller = new AbortController();
    const created = driver.create({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(created).rejects.toBeInstanceOf(CancelledError);
    expect(context.journal.entries().filter((entry) => !entry.preExisting)).toEqual([]);
  });

  it('retries throttling and 503 with the same requestId, then succeeds', async () => {
    compute.failNext('instances.insert', googleError(429, 'Rate Limit Exceeded', 'gaxios', 'rateLimitExceeded'));
    compute.failNext('instances.insert', googleError(503, 'backend unavailable'));
    const { driver } = machine();
    await driver.create();
    expect(compute.count('instances.insert')).toBe(3);
    const insertIds = compute.requestIds.slice(1);
    expect(new Set(insertIds).size).toBe(1);
  });

  it('waits out throttling for the retry budget, not a few attempts (rate quotas are per minute), then gives up with a retryable ProviderError', async () => {
    compute.failNext('firewalls.get', googleError(429, 'Rate Limit Exceeded', 'google'), 4);
    const { driver } = machine();
    await driver.create(); // four refusals: more than the 3 attempts, inside the budget
    await driver.remove();
    compute.failNext('firewalls.get', googleError(429, 'Rate Limit Exceeded', 'google'), 100_000);
    const error = (await machine().driver.create().catch((caught: unknown) => caught)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.statusCode).toBe(429);
    expect(error.isRetryable).toBe(true);
    expect(compute.count('firewalls.get')).toBeGreaterThan(4 + 3);
  });

  it.each(['google', 'gaxios'] as const)('maps %s-shaped errors: 404 NotFound, 401 Auth, 403 quota, 403 permission', async (shape) => {
    const { driver } = machine();
    await driver.create();
    compute.failNext('instances.get', googleError(401, 'Request had invalid authentication credentials.', shape));
    await expect(driver.getState()).rejects.toBeInstanceOf(AuthError);
    compute.failNext('instances.get', googleError(403, "Quota 'CPUS' exceeded.", shape, 'quotaExceeded'));
    await expect(driver.getState()).rejects.toBeInstanceOf(QuotaError);
    compute.failNext('instances.get', googleError(403, "Required 'compute.instances.get' permission", shape, 'forbidden'));
    await expect(driver.getState()).rejects.toThrow(/Compute Instance Admin/);
    compute.failNext('instances.get', googleError(404, 'The resource was not found', shape));
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a missing Application Default Credential is one AuthError naming every place looked', async () => {
    compute.failNext(
      'firewalls.get',
      new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.'),
    );
    const error = (await machine().driver.create().catch((caught: unknown) => caught)) as AuthError;
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain('GOOGLE_APPLICATION_CREDENTIALS');
    expect(error.message).toContain('gcloud auth application-default login');
    expect(error.message).toContain('metadata server');
  });

  it('stop, kill (no graceful shutdown), start and restart (reset) wait for the state', async () => {
    const { driver } = machine();
    await driver.create();
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    await expect(driver.getIP()).rejects.toThrow(/not running/);
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    await driver.restart();
    expect(compute.count('instances.reset')).toBe(1);
    await driver.kill();
    expect(await driver.getState()).toBe(State.Stopped);
    expect(compute.count('instances.stop')).toBe(2);
  });

  it('a preempted machine reports Stopped with the reason', async () => {
    const events: string[] = [];
    const name = `pre-${++counter}`;
    const context = createMemoryContext(name, join(root, name), (event) => events.push(event.message));
    const config = parseFlags(googleFlags, { 'google-project': 'my-project', 'google-ssh-port': server.port, 'google-preemptible': true }, { env: {} });
    const driver = google.createDriver({ config, context, client: compute.clients() });
    await driver.create();
    const instance = compute.instances.get(`us-central1-a/${name}`);
    if (instance === undefined) throw new Error('no instance');
    instance.status = 'TERMINATED'; // Compute Engine preempted it
    expect(await driver.getState()).toBe(State.Stopped);
    expect(String(context.data.read().stateReason)).toMatch(/preempted the preemptible instance/);
    expect(events.some((event) => event.includes('preempted'))).toBe(true);
  });

  it('removes the instance and the rule; keeps the rule while another machine carries the tag', async () => {
    const a = machine();
    const b = machine();
    await a.driver.create();
    await b.driver.create();
    expect(b.context.journal.entries()[0]).toMatchObject({ kind: 'firewall', preExisting: false });
    await a.driver.remove();
    expect(compute.firewalls.has('docker-machines')).toBe(true);
    await b.driver.remove();
    expect(compute.firewalls.size).toBe(0);
    expect(compute.instances.size).toBe(0);
    await b.driver.remove();
    await expect(b.driver.getState()).rejects.toBeInstanceOf(NotFoundError);
  });

  it('never deletes a rule it did not make, and widens it only with what is missing', async () => {
    compute.firewalls.set('docker-machines', {
      name: 'docker-machines',
      network: 'projects/my-project/global/networks/default',
      allowed: [{ IPProtocol: 'tcp', ports: ['2376'] }],
      sourceRanges: ['0.0.0.0/0'],
      targetTags: ['docker-machine'],
    });
    const { driver, context } = machine();
    await driver.create();
    expect(compute.count('firewalls.patch')).toBe(1);
    expect(compute.firewalls.get('docker-machines')?.allowed).toEqual([{ IPProtocol: 'tcp', ports: ['2376', String(server.port)] }]);
    expect(context.journal.entries()[0]).toMatchObject({ kind: 'firewall', preExisting: true });
    await driver.remove();
    expect(compute.firewalls.has('docker-machines')).toBe(true);
  });

  it('uses one rule per network', async () => {
    const { driver } = machine({ 'google-network': 'prod-net', 'google-subnetwork': 'prod-sub' });
    await driver.create();
    const rule = compute.firewalls.get('docker-machines-prod-net');
    expect(rule?.network).toBe('projects/my-project/global/networks/prod-net');
    const instance = [...compute.instances.values()][0];
    expect(instance?.networkInterfaces?.[0]?.subnetwork).toBe('projects/my-project/regions/us-central1/subnetworks/prod-sub');
    await driver.remove();
  });

  it('--google-use-existing merges its key into ssh-keys by fingerprint, keeps other keys, and remove takes only its own key and tag away', async () => {
    const name = `old-${++counter}`;
    compute.instances.set(`us-central1-a/${name}`, {
      name,
      status: 'RUNNING',
      networkInterfaces: [{ network: 'projects/my-project/global/networks/default', networkIP: '10.0.0.9', accessConfigs: [{ natIP: '127.0.0.1' }] }],
      metadata: {
        fingerprint: 'fp-0',
        items: [
          { key: 'ssh-keys', value: 'alice:ssh-ed25519 AAAAalice alice\nbob:ssh-rsa AAAAbob bob' },
          { key: 'startup-script', value: 'echo hi' },
        ],
      },
      tags: { items: ['http-server'], fingerprint: 't-0' },
    });
    compute.failNext('instances.setMetadata', googleError(412, 'Supplied fingerprint does not match current metadata fingerprint.'));
    const { driver, context } = machine({ 'google-use-existing': true }, name);
    await driver.create();
    const instance = compute.instances.get(`us-central1-a/${name}`);
    const items = Object.fromEntries((instance?.metadata?.items ?? []).map((item) => [item.key, item.value]));
    expect(items['startup-script']).toBe('echo hi');
    const lines = (items['ssh-keys'] ?? '').split('\n');
    expect(lines.slice(0, 2)).toEqual(['alice:ssh-ed25519 AAAAalice alice', 'bob:ssh-rsa AAAAbob bob']);
    expect(lines[2]).toMatch(/^docker-user:ssh-ed25519 /);
    expect(instance?.tags?.items).toEqual(['http-server', 'docker-machine']);
    expect(compute.count('instances.insert')).toBe(0);
    expect(compute.count('instances.setMetadata')).toBe(2);

    await driver.remove();
    const after = compute.instances.get(`us-central1-a/${name}`);
    expect(after).toBeDefined();
    const afterItems = Object.fromEntries((after?.metadata?.items ?? []).map((item) => [item.key, item.value]));
    expect(afterItems['ssh-keys']).toBe('alice:ssh-ed25519 AAAAalice alice\nbob:ssh-rsa AAAAbob bob');
    expect(after?.tags?.items).toEqual(['http-server']);
    expect(compute.firewalls.size).toBe(0);
    expect(context.journal.entries()).toEqual([]);
  });

  it('resolves --google-address by name in the zone region and uses internal IPs when asked', async () => {
    compute.addresses.set('us-central1/web-ip', '127.0.0.1');
    const { driver } = machine({ 'google-address': 'web-ip' });
    await driver.create();
    const instance = [...compute.instances.values()][0];
    expect(compute.count('addresses.get')).toBe(1);
    expect(instance?.networkInterfaces?.[0]?.accessConfigs?.[0]).toMatchObject({ type: 'ONE_TO_ONE_NAT' });
    await driver.remove();

    compute.ip = '127.0.0.9'; // nothing listens there: SSH must go to the internal address
    const internal = machine({ 'google-use-internal-ip-only': true });
    await internal.driver.create();
    const internalInstance = [...compute.instances.values()][0];
    expect(internalInstance?.networkInterfaces?.[0]?.accessConfigs).toEqual([]);
    expect(await internal.driver.getIP()).toBe('127.0.0.1');
    await internal.driver.remove();
  });

  describe('boot user data and host key (provisioning)', () => {
    const hostCloudConfig = '#cloud-config\nssh_deletekeys: true\n';
    const userDataOf = (name: string) =>
      (compute.instances.get(`us-central1-a/${name}`)?.metadata?.items ?? []).find((item) => item.key === 'user-data')?.value ?? undefined;

    it('puts the host cloud-config and --google-userdata in the user-data metadata as one MIME multipart, host part first', async () => {
      const path = join(root, 'user-data-both.sh');
      await writeFile(path, '#!/bin/sh\necho user\n');
      const { driver, context } = machine({ 'google-userdata': path });
      await driver.create({ boot: { userData: hostCloudConfig } });
      const sent = String(userDataOf(context.machineName));
      expect(sent).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
      const hostAt = sent.indexOf('Content-Type: text/cloud-config');
      expect(hostAt).toBeGreaterThan(0);
      expect(sent.indexOf('Content-Type: text/x-shellscript')).toBeGreaterThan(hostAt);
      expect(sent).toContain('ssh_deletekeys: true');
      expect(sent).toContain('echo user');
      await driver.remove();
    });

    it('puts the host cloud-config alone, unchanged, without --google-userdata; the file alone without boot user data; nothing without either', async () => {
      const host = machine();
      await host.driver.create({ boot: { userData: hostCloudConfig } });
      expect(userDataOf(host.context.machineName)).toBe(hostCloudConfig);
      await host.driver.remove();
      const path = join(root, 'user-data-only.yaml');
      await writeFile(path, '#cloud-config\npackages: [htop]\n');
      const own = machine({ 'google-userdata': path });
      await own.driver.create();
      expect(userDataOf(own.context.machineName)).toBe('#cloud-config\npackages: [htop]\n');
      await own.driver.remove();
      const bare = machine();
      await bare.driver.create();
      expect(userDataOf(bare.context.machineName)).toBeUndefined();
      await bare.driver.remove();
    });

    it('refuses user data over 256 KiB, an unreadable --google-userdata, and user data with --google-use-existing, before any API call', async () => {
      const path = join(root, 'user-data-200k.yaml');
      await writeFile(path, `#cloud-config\n#${'x'.repeat(200 * 1024)}\n`);
      const big = machine({ 'google-userdata': path });
      const error = await big.driver.create({ boot: { userData: `${hostCloudConfig}#${'y'.repeat(60 * 1024)}\n` } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message).toMatch(/^user data: the provisioning cloud-config plus .* is \d+ bytes, over Compute Engine's 256 KiB limit for a metadata value$/);
      await expect(machine({ 'google-userdata': join(root, 'missing.yaml') }).driver.create()).rejects.toThrow(/^--google-userdata: cannot read .*ENOENT/);
      await expect(machine({ 'google-use-existing': true }).driver.create({ boot: { userData: hostCloudConfig } })).rejects.toThrow(
        /^--google-use-existing: an existing instance does not run new user data/,
      );
      expect(compute.calls).toEqual([]);
    });

    it('pins the given host key fingerprint and stores it', async () => {
      const { driver, context } = machine();
      await driver.create({ boot: { userData: hostCloudConfig, hostKeyFingerprint: server.hostKeyFingerprint } });
      expect(context.data.read().hostKeyFingerprint).toBe(server.hostKeyFingerprint);
      await driver.remove();
    });

    it('another host key fails create with an SSHError, and what create made is deleted', async () => {
      const { driver, context } = machine();
      const error = await driver
        .create({ boot: { userData: hostCloudConfig, hostKeyFingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SSHError);
      expect((error as SSHError).failure).toBe('host-key');
      expect(context.journal.entries()).toEqual([]);
      expect(compute.instances.size).toBe(0);
      expect(compute.firewalls.size).toBe(0);
    });
  });
});
