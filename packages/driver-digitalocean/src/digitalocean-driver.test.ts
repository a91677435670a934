import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryContext, InvalidConfigError, MachineError, ProviderError, parseFlags, SSHError, State } from '@machine/driver-core';
import { generateSSHKeyPair, writeSSHKeyPair } from '@machine/driver-core/keys';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { createDigitalOceanDescriptor, type DigitalOceanTimings } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { type MockDigitalOceanApi, startMockDigitalOceanApi } from './test-support/mock-digitalocean-api.ts';

// The driver through the real dots client against the loopback mock API (test-support/).
describe('digitalocean driver against the mock API', () => {
  let api: MockDigitalOceanApi;
  let root: string;
  let counter = 0;

  beforeAll(async () => {
    api = await startMockDigitalOceanApi();
    root = await mkdtemp(join(tmpdir(), 'do-unit-'));
  });
  afterAll(async () => {
    await api.close();
    await rm(root, { recursive: true, force: true });
  });
  afterEach(() => {
    api.options.actionOutcome = {};
    api.options.actionPolls = 1;
    expect(api.leaks()).toEqual([]);
  });

  const machine = (flags: Record<string, unknown> = {}, timings: Partial<DigitalOceanTimings> = {}) => {
    counter += 1;
    const name = `unit-${counter}`;
    const context = createMemoryContext(name, join(root, name));
    const descriptor = createDigitalOceanDescriptor({ timings: { ...fastTimings, ...timings } });
    const config = parseFlags(
      descriptor.flags,
      {
        'digitalocean-access-token': api.token,
        'digitalocean-api-url': api.url,
        'digitalocean-ssh-port': api.sshPort,
        'digitalocean-wait-timeout': 5,
        ...flags,
      },
      { env: {} },
    ) as DigitalOceanConfig;
    return { driver: descriptor.createDriver({ config, context }), context, name };
  };

  it('sends the droplet request with the flags, the uploaded key and the machine tags', async () => {
    const { driver, name } = machine({
      'digitalocean-region': 'ams3',
      'digitalocean-ipv6': true,
      'digitalocean-backups': true,
      'digitalocean-monitoring': true,
      'digitalocean-private-networking': true,
      'digitalocean-vpc-uuid': '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
      'digitalocean-tags': 'a,b',
    });
    await driver.create();
    const droplet = [...api.droplets.values()].find((candidate) => candidate.name === name);
    const key = [...api.keys.values()].find((candidate) => candidate.name.startsWith(`machine.${name}.`));
    expect(droplet?.body).toMatchObject({
      name,
      region: 'ams3',
      size: 's-1vcpu-1gb',
      image: 'ubuntu-24-04-x64',
      ipv6: true,
      backups: true,
      monitoring: true,
      private_networking: true,
      vpc_uuid: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
      ssh_keys: [String(key?.id)],
      tags: ['machine', `machine-${name}`, 'managed-by:machine', 'a', 'b'],
    });
    await driver.remove();
  });

  it('creates a firewall that opens SSH, 2376 and --open-port to the allowed CIDRs, attached by droplet id, all outbound allowed', async () => {
    const { driver, context } = machine({
      'digitalocean-firewall': true,
      'digitalocean-allowed-cidr': '203.0.113.0/24',
      'digitalocean-open-port': '8080,53/udp',
    });
    await driver.create();
    const dropletId = Number(context.journal.entries().find((entry) => entry.kind === 'droplet')?.id);
    const [firewall] = [...api.firewalls.values()];
    expect(firewall?.body.droplet_ids).toEqual([dropletId]);
    expect(firewall?.body.inbound_rules).toEqual([
      { protocol: 'tcp', ports: String(api.sshPort), sources: { addresses: ['203.0.113.0/24'] } },
      { protocol: 'tcp', ports: '2376', sources: { addresses: ['203.0.113.0/24'] } },
      { protocol: 'tcp', ports: '8080', sources: { addresses: ['203.0.113.0/24'] } },
      { protocol: 'udp', ports: '53', sources: { addresses: ['203.0.113.0/24'] } },
    ]);
    expect(firewall?.body.outbound_rules).toHaveLength(3);
    await driver.remove();
    expect(api.firewalls.size).toBe(0);
  });

  it('uses an existing key by fingerprint, never uploads or deletes it', async () => {
    const keyPair = generateSSHKeyPair();
    const keyPath = await writeSSHKeyPair(join(root, 'user-keys'), keyPair, 'id_user');
    const seeded = api.seedKey(keyPair.publicKey);
    const { driver, context } = machine({ 'digitalocean-ssh-key-fingerprint': keyPair.md5Fingerprint, 'digitalocean-ssh-key-path': keyPath });
    const before = api.keys.size;
    await driver.create();
    expect(api.keys.size).toBe(before);
    expect(driver.getSSHKeyPath()).toBe(keyPath);
    expect(context.journal.entries().find((entry) => entry.kind === 'ssh-key')).toMatchObject({ id: String(seeded.id), preExisting: true });
    await driver.remove();
    expect(api.keys.has(seeded.id)).toBe(true);
    api.keys.delete(seeded.id);
  });

  it('rejects a key path whose fingerprint does not match, and a key path without a fingerprint, before any API call', async () => {
    const keyPair = generateSSHKeyPair();
    const keyPath = await writeSSHKeyPair(join(root, 'user-keys-2'), keyPair, 'id_user');
    const calls = api.requests.length;
    const wrong = machine({ 'digitalocean-ssh-key-fingerprint': `00${keyPair.md5Fingerprint.slice(2)}`, 'digitalocean-ssh-key-path': keyPath });
    await expect(wrong.driver.create()).rejects.toBeInstanceOf(InvalidConfigError);
    const pathOnly = machine({ 'digitalocean-ssh-key-path': keyPath });
    await expect(pathOnly.driver.create()).rejects.toThrow(/needs --digitalocean-ssh-key-fingerprint/);
    const noUserData = machine({ 'digitalocean-userdata': join(root, 'missing.yaml') });
    await expect(noUserData.driver.create()).rejects.toThrow(/--digitalocean-userdata: cannot read/);
    // The requests themselves, so a failure names the call that should not have been made.
    expect(api.requests.slice(calls)).toEqual([]);
  });

  it('stop falls back to power_off when the graceful shutdown does not finish', async () => {
    const { driver } = machine({}, { shutdownTimeoutMs: 100 });
    await driver.create();
    api.options.actionOutcome = { shutdown: 'never' };
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    const types = [...api.actions.values()].map((action) => action.type);
    expect(types.slice(-2)).toEqual(['shutdown', 'power_off']);
    await driver.remove();
  });

  it('restart falls back to power_cycle when the reboot errors', async () => {
    const { driver } = machine();
    await driver.create();
    api.options.actionOutcome = { reboot: 'errored' };
    await driver.restart();
    expect(await driver.getState()).toBe(State.Running);
    expect([...api.actions.values()].map((action) => action.type).slice(-2)).toEqual(['reboot', 'power_cycle']);
    await driver.remove();
  });

  it('kill fails loudly when the power_off action errors', async () => {
    const { driver } = machine();
    await driver.create();
    api.options.actionOutcome = { power_off: 'errored' };
    await expect(driver.kill()).rejects.toThrow(/ended with status "errored"/);
    await driver.remove();
  });

  it('reports Stopping while its shutdown is in progress', async () => {
    const { driver } = machine({}, { shutdownTimeoutMs: 400 });
    await driver.create();
    api.options.actionOutcome = { shutdown: 'never' };
    const stopping = driver.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await driver.getState()).toBe(State.Stopping);
    await stopping;
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.remove();
  });

  it('waits until ratelimit-reset on a 429, and gives up at once when the reset is far away', async () => {
    const { driver, context } = machine();
    await driver.create();
    const id = context.journal.entries().find((entry) => entry.kind === 'droplet')?.id;
    const soon = String(Math.ceil(Date.now() / 1000) + 1);
    api.fault({ route: 'GET /v2/droplets/:id', status: 429, headers: { 'ratelimit-reset': soon, 'ratelimit-remaining': '0' }, times: 2 });
    const before = api.requests.length;
    expect(await driver.getState()).toBe(State.Running);
    expect(api.requests.slice(before)).toEqual([`GET /v2/droplets/${id}`, `GET /v2/droplets/${id}`, `GET /v2/droplets/${id}`]);

    const later = String(Math.ceil(Date.now() / 1000) + 3600);
    api.fault({ route: 'GET /v2/droplets/:id', status: 429, headers: { 'ratelimit-reset': later }, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' } });
    const start = api.requests.length;
    const error = await driver.getState().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).statusCode).toBe(429);
    expect((error as Error).message).toContain(new Date(Number(later) * 1000).toISOString());
    expect(api.requests.length - start).toBe(1);
    await driver.remove();
  });

  it('never repeats a droplet POST: a droplet hidden behind a 5xx answer is found by its tags and create carries on with it', async () => {
    api.fault({ route: 'POST /v2/droplets', status: 500, afterApplying: true, body: { id: 'server_error', message: 'Server Error' } });
    const { driver, context, name } = machine();
    const before = api.requests.length;
    await driver.create();
    const requests = api.requests.slice(before);
    expect(requests.filter((request) => request === 'POST /v2/droplets')).toHaveLength(1);
    expect(requests.some((request) => request.startsWith('GET /v2/droplets?') && request.includes(`tag_name=machine-${name}`))).toBe(true);
    const droplets = [...api.droplets.values()].filter((droplet) => droplet.name === name);
    expect(droplets).toHaveLength(1);
    expect(context.journal.entries().map((entry) => [entry.kind, entry.id, entry.state])).toEqual([
      ['ssh-key', expect.any(String), 'made'],
      ['droplet', String(droplets[0]?.id), 'made'],
    ]);
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
  });

  it.each([
    ['POST /v2/account/keys', 'GET /v2/account/keys?page=1&per_page=200'],
    ['POST /v2/firewalls', 'GET /v2/firewalls?page=1&per_page=200'],
  ])('a lost answer to %s: the resource is found by its unique name, create carries on, remove deletes it', async (route, lookup) => {
    api.fault({ route, status: 502, afterApplying: true, body: { id: 'bad_gateway', message: 'Bad Gateway' } });
    const { driver, context } = machine({ 'digitalocean-firewall': true });
    const before = api.requests.length;
    await driver.create();
    expect(api.requests.slice(before)).toContain(lookup);
    expect(api.requests.slice(before).filter((request) => request === route)).toHaveLength(1);
    expect(context.journal.entries().map((entry) => entry.kind)).toEqual(['ssh-key', 'droplet', 'firewall']);
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
  });

  it('rejects user data over 64 KiB before any API call', async () => {
    const path = join(root, 'big-user-data.yaml');
    await writeFile(path, 'x'.repeat(64 * 1024 + 1));
    const before = api.requests.length;
    const { driver } = machine({ 'digitalocean-userdata': path });
    await expect(driver.create()).rejects.toThrow(/64 KiB/);
    expect(api.requests.length).toBe(before);
  });

  it('sends the user data file as is', async () => {
    const path = join(root, 'user-data.yaml');
    await writeFile(path, '#cloud-config\npackages: [htop]\n');
    const { driver, name } = machine({ 'digitalocean-userdata': path });
    await driver.create();
    expect([...api.droplets.values()].find((droplet) => droplet.name === name)?.body.user_data).toBe('#cloud-config\npackages: [htop]\n');
    await driver.remove();
  });

  describe('boot user data and host key (provisioning)', () => {
    const hostCloudConfig = '#cloud-config\nssh_deletekeys: true\n';
    const userDataOf = (name: string) => [...api.droplets.values()].find((droplet) => droplet.name === name)?.body.user_data;

    it('sends the host cloud-config and the user file as one MIME multipart, host part first', async () => {
      const path = join(root, 'user-data-both.sh');
      await writeFile(path, '#!/bin/sh\necho user\n');
      const { driver, name } = machine({ 'digitalocean-userdata': path });
      await driver.create({ boot: { userData: hostCloudConfig } });
      const sent = String(userDataOf(name));
      expect(sent).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
      const hostAt = sent.indexOf('Content-Type: text/cloud-config');
      const userAt = sent.indexOf('Content-Type: text/x-shellscript');
      expect(hostAt).toBeGreaterThan(0);
      expect(userAt).toBeGreaterThan(hostAt);
      expect(sent).toContain('ssh_deletekeys: true');
      expect(sent).toContain('echo user');
      await driver.remove();
    });

    it('sends the host cloud-config alone, unchanged, without a user file', async () => {
      const { driver, name } = machine();
      await driver.create({ boot: { userData: hostCloudConfig } });
      expect(userDataOf(name)).toBe(hostCloudConfig);
      await driver.remove();
    });

    it('rejects combined user data over 64 KiB before any API call', async () => {
      const path = join(root, 'user-data-half.yaml');
      await writeFile(path, `#cloud-config\n#${'x'.repeat(40 * 1024)}\n`);
      const before = api.requests.length;
      const { driver } = machine({ 'digitalocean-userdata': path });
      const error = await driver.create({ boot: { userData: `${hostCloudConfig}#${'y'.repeat(30 * 1024)}\n` } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message).toMatch(/^user data: the provisioning cloud-config plus .* is \d+ bytes, over DigitalOcean's 64 KiB user-data limit$/);
      expect(api.requests.length).toBe(before);
    });

    it('pins the given host key fingerprint and stores it', async () => {
      const { driver, context } = machine();
      await driver.create({ boot: { userData: hostCloudConfig, hostKeyFingerprint: api.ssh.hostKeyFingerprint } });
      expect(context.data.read().hostKeyFingerprint).toBe(api.ssh.hostKeyFingerprint);
      await driver.remove();
    });

    it('fails create with an SSHError on another host key and deletes what it made', async () => {
      const { driver, context } = machine({ 'digitalocean-firewall': true });
      const error = await driver
        .create({ boot: { userData: hostCloudConfig, hostKeyFingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SSHError);
      expect((error as SSHError).failure).toBe('host-key');
      expect(context.journal.entries()).toEqual([]);
      expect(api.leaks()).toEqual([]);
    });
  });

  it('remove tolerates resources deleted outside the tool (404)', async () => {
    const { driver, context } = machine({ 'digitalocean-firewall': true });
    await driver.create();
    api.droplets.clear();
    api.firewalls.clear();
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
  });

  it('re-creating a name works while an old key of that name is left over', async () => {
    const first = machine();
    await first.driver.create();
    const leftover = [...api.keys.values()].find((key) => key.name.startsWith(`machine.${first.name}.`));
    const second = createDigitalOceanDescriptor({ timings: fastTimings }).createDriver({
      config: parseFlags(
        createDigitalOceanDescriptor().flags,
        { 'digitalocean-access-token': api.token, 'digitalocean-api-url': api.url, 'digitalocean-ssh-port': api.sshPort },
        { env: {} },
      ) as DigitalOceanConfig,
      context: createMemoryContext(first.name, join(root, `${first.name}-again`)),
    });
    await second.create();
    const names = [...api.keys.values()].filter((key) => key.name.startsWith(`machine.${first.name}.`)).map((key) => key.name);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    expect(names).toContain(leftover?.name);
    await second.remove();
    await first.driver.remove();
  });

  it('getIP and getURL use the recorded address without an API call', async () => {
    const { driver } = machine();
    await driver.create();
    const before = api.requests.length;
    expect(await driver.getIP()).toBe('127.0.0.1');
    expect(await driver.getURL()).toBe('tcp://127.0.0.1:2376');
    expect(await driver.getSSHPort()).toBe(api.sshPort);
    expect(driver.getSSHUsername()).toBe('root');
    expect(api.requests.length).toBe(before);
    await driver.remove();
    await expect(driver.getIP()).rejects.toSatisfy((error: unknown) => MachineError.isInstance(error) && error.code === 'NOT_FOUND');
  });

  it('refuses to create a machine that already has a droplet', async () => {
    const { driver } = machine();
    await driver.create();
    await expect(driver.create()).rejects.toThrow(/already has droplet/);
    await driver.remove();
  });
});
