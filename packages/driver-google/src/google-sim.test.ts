import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GoogleOptions, type GoogleRealism, type Sim, startSim } from '@machine/cloud-sim';
import {
  AuthError,
  CapacityError,
  createMemoryContext,
  findEntry,
  NotFoundError,
  parseFlags,
  ProviderError,
  QuotaError,
  SSHError,
  State,
  TimeoutError,
} from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { hostKeyCloudConfig } from '@machine/driver-core/testing';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ComputeClients, createComputeClients } from './google-clients.ts';
import { parseEndpoint } from './google-flags.ts';
import google, { googleFlags } from './index.ts';

const project = 'sim-project-1';

function fakeAuth(token = 'sim-token'): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: token, expiry_date: Date.now() + 3600_000 });
  return auth;
}

/** Real `@google-cloud/compute` clients (REST transport, fake auth) pointed at the simulator. */
function simClients(sim: Sim, token?: string): Promise<ComputeClients> {
  return createComputeClients({
    endpoint: parseEndpoint(sim.endpoints.google ?? ''),
    authClient: fakeAuth(token),
    projectId: project,
    retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 20, budgetMs: 2000 },
    pollIntervalMs: 10,
  });
}

function simFlags(sim: Sim, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'google-project': project,
    'google-endpoint': sim.endpoints.google,
    'google-ssh-port': sim.sshPort,
    'google-open-port': ['8080', '53/udp'],
    'google-wait-timeout': 10,
    ...extra,
  };
}

let conformanceSim: Sim;

/** The conformance suite through the real client library (REST, fake OAuth2Client) against the simulator. */
runConformanceSuite('google (cloud-sim, google-cloud-compute REST)', async () => {
  conformanceSim = await startSim({ providers: ['google'] });
  const client = await simClients(conformanceSim);
  return {
    descriptor: google,
    client,
    validFlags: simFlags(conformanceSim),
    invalidFlags: { 'google-project': project, 'google-zone': 'moon-1', 'google-disk-size': 'big', 'google-tags': 'Not A Tag' },
    leaks: () => conformanceSim.leaks().map((leak) => `${leak.kind} ${leak.id} ${leak.name}`),
    apiCalls: () => conformanceSim.requestLog.total,
    loseNextReply: (operation, reply) => {
      conformanceSim.faults.add({ provider: 'google', operation, reply });
    },
    callCount: (operation) => conformanceSim.requestLog.count(operation, 'google'),
    // After the firewall rule exists, the insert operation fails (quota) and create must clean up.
    failNextCreate: () => void conformanceSim.faults.add({ provider: 'google', operation: 'instances.insert', error: 'quota' }),
    deleteOutside: async (driver) => {
      await client.instances.delete({ project, zone: 'us-central1-a', instance: driver.machineName });
    },
    close: () => conformanceSim.close(),
  };
}, { killPoints: ['firewalls.insert', 'instances.insert'] });

describe('google driver against the simulator (real client library)', () => {
  let sim: Sim;
  /** The front end's options: read on every call, so tests turn realism knobs; beforeEach resets them. */
  const knobs: GoogleOptions = { instanceLimit: 3, addresses: { 'us-central1/web-ip': '203.0.113.7' } };
  const realismKnobs: (keyof GoogleRealism)[] = ['stockout', 'landsTerminated', 'rareStatus', 'rateQuotas'];
  let clients: ComputeClients;
  let root: string;
  let counter = 0;

  beforeAll(async () => {
    sim = await startSim({ providers: ['google'], providerOptions: { google: knobs } });
    clients = await simClients(sim);
    root = await mkdtemp(join(tmpdir(), 'driver-google-sim-'));
  });
  afterAll(async () => {
    await sim.close();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    sim.faults.clear();
    for (const key of realismKnobs) delete knobs[key];
  });

  function machine(extra: Record<string, unknown> = {}, client: ComputeClients = clients, name = `sim-${++counter}`) {
    const context = createMemoryContext(name, join(root, name));
    const config = parseFlags(googleFlags, simFlags(sim, extra), { env: {} });
    return { driver: google.createDriver({ config, context, client }), context, name };
  }

  const leaks = () => sim.leaks().map((leak) => `${leak.kind} ${leak.name}`);

  it('one create and one remove: the API calls they make (request log)', async () => {
    sim.requestLog.clear();
    const { driver } = machine();
    await driver.create();
    const create = sim.requestLog.counts('google');
    sim.requestLog.clear();
    await driver.remove();
    const remove = sim.requestLog.counts('google');
    console.info(`create: ${JSON.stringify(create)}\nremove: ${JSON.stringify(remove)}`);
    expect(create['instances.insert']).toBe(1);
    expect(create['firewalls.insert']).toBe(1);
    expect(create['zoneOperations.wait']).toBeGreaterThanOrEqual(1);
    expect(create['globalOperations.wait']).toBeGreaterThanOrEqual(1);
    expect(remove['instances.delete']).toBe(1);
    expect(remove['firewalls.delete']).toBe(1);
    expect(leaks()).toEqual([]);
  });

  it('puts the key in ssh-keys metadata with block-project-ssh-keys, and the rule allows 22 and 2376', async () => {
    const { driver, name } = machine({ 'google-labels': 'team=infra', 'google-tags': 'web' });
    await driver.create();
    const [instance] = await clients.instances.get({ project, zone: 'us-central1-a', instance: name });
    const items = Object.fromEntries((instance.metadata?.items ?? []).map((item) => [item.key, item.value]));
    expect(items['ssh-keys']).toMatch(/^docker-user:ssh-ed25519 /);
    expect(items['block-project-ssh-keys']).toBe('true');
    expect(instance.tags?.items).toEqual(['docker-machine', 'web']);
    expect(instance.labels).toEqual({ team: 'infra' });
    const [rule] = await clients.firewalls.get({ project, firewall: 'docker-machines' });
    expect(rule.allowed?.map((entry) => ({ IPProtocol: entry.IPProtocol, ports: entry.ports }))).toEqual([
      { IPProtocol: 'tcp', ports: [String(sim.sshPort), '2376', '8080'] },
      { IPProtocol: 'udp', ports: ['53'] },
    ]);
    expect(rule.targetTags).toEqual(['docker-machine']);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a quota failure inside the insert operation (the SDK does not throw) is a QuotaError; nothing leaks', async () => {
    const created = [machine(), machine(), machine()];
    for (const { driver } of created) await driver.create();
    const fourth = machine();
    const error = await fourth.driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuotaError);
    expect((error as Error).message).toMatch(/QUOTA_EXCEEDED: Quota 'INSTANCES' exceeded/);
    expect(fourth.context.journal.entries()).toEqual([]);
    for (const { driver } of created) await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a refused token is an AuthError', async () => {
    const badClients = await createComputeClients({
      endpoint: parseEndpoint(sim.endpoints.google ?? ''),
      authClient: fakeAuth('invalid-token'),
      retry: { attempts: 1 },
    });
    const { driver, context } = machine({}, badClients);
    await expect(driver.create()).rejects.toBeInstanceOf(AuthError);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('an injected auth fault on the first call is an AuthError', async () => {
    sim.faults.add({ provider: 'google', operation: 'firewalls.get', error: 'auth' });
    await expect(machine().driver.create()).rejects.toBeInstanceOf(AuthError);
    expect(leaks()).toEqual([]);
  });

  it('an HTTP 403 quota answer is a QuotaError', async () => {
    sim.faults.add({ provider: 'google', operation: 'firewalls.insert', error: 'quota' });
    await expect(machine().driver.create()).rejects.toBeInstanceOf(QuotaError);
    expect(leaks()).toEqual([]);
  });

  it('retries throttling (429) and 503 on writes with the same requestId', async () => {
    sim.faults.add({ provider: 'google', operation: 'instances.insert', throttle: { times: 1 } });
    sim.faults.add({ provider: 'google', operation: 'instances.insert', nth: 2, error: 'unavailable' });
    sim.requestLog.clear();
    const { driver } = machine();
    await driver.create();
    const inserts = sim.requestLog.entries('google').filter((entry) => entry.operation === 'instances.insert');
    expect(inserts.map((entry) => entry.status)).toEqual([429, 503, 200]);
    const requestIds = new Set(inserts.map((entry) => new URL(entry.path, 'http://x').searchParams.get('requestId')));
    expect(requestIds.size).toBe(1);
    expect(sim.store.listInstances('google')).toHaveLength(1);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('persistent throttling is waited out for the retry budget (2 s here), then ends in a retryable ProviderError and a clean state', async () => {
    sim.faults.add({ provider: 'google', operation: 'firewalls.get', throttle: { times: 100_000 } });
    sim.requestLog.clear();
    const error = (await machine().driver.create().catch((caught: unknown) => caught)) as ProviderError;
    expect(sim.requestLog.count('firewalls.get', 'google')).toBeGreaterThan(3);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.statusCode).toBe(429);
    expect(error.isRetryable).toBe(true);
    expect(leaks()).toEqual([]);
  });

  it('a persistent 503 on a read is retried a bounded number of times by the driver alone (no library retries)', async () => {
    sim.faults.add({ provider: 'google', operation: 'firewalls.get', error: 'unavailable', times: 50 });
    sim.requestLog.clear();
    const error = (await machine().driver.create().catch((caught: unknown) => caught)) as ProviderError;
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.statusCode).toBe(503);
    expect(sim.requestLog.count('firewalls.get', 'google')).toBe(3);
    expect(leaks()).toEqual([]);
  });

  it.each([
    'firewalls.get',
    'firewalls.insert',
    'globalOperations.wait',
    'instances.insert',
    'zoneOperations.wait',
    'instances.get',
  ])('a failure at %s: create fails and leaves nothing, or carries on with what the failed call made; remove leaves nothing', async (operation) => {
    sim.faults.add({ provider: 'google', operation, error: 'server', times: 5 });
    const { driver, context } = machine();
    const outcome = await driver.create().then(
      () => 'created' as const,
      (error: unknown) => error,
    );
    // A 500 while waiting for an operation that went through is ambiguous: core finds what it made and carries on.
    expect(outcome === 'created' ? operation.endsWith('Operations.wait') : outcome instanceof ProviderError).toBe(true);
    if (outcome !== 'created') {
      expect(context.journal.entries()).toEqual([]);
      expect(leaks()).toEqual([]);
    }
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('an instance that never runs: the insert operation never finishes, create times out and cleans up', async () => {
    sim.faults.instanceNeverRuns({ provider: 'google', times: 1 });
    const { driver, context } = machine({ 'google-wait-timeout': 1 });
    await expect(driver.create()).rejects.toBeInstanceOf(TimeoutError);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('SSH that never opens times out; SSH that rejects the key fails fast enough; both clean up', async () => {
    sim.faults.sshNeverOpens({ provider: 'google', times: 1 });
    const first = machine({ 'google-wait-timeout': 1 });
    await expect(first.driver.create()).rejects.toBeInstanceOf(TimeoutError);
    expect(first.context.journal.entries()).toEqual([]);
    sim.faults.sshRejectsKey({ provider: 'google', times: 1 });
    const second = machine({ 'google-wait-timeout': 1 });
    const error = await second.driver.create().catch((caught: unknown) => caught);
    expect(error instanceof TimeoutError || error instanceof SSHError).toBe(true);
    expect(second.context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('stop, kill, start, restart go through instances.stop (noGracefulShutdown for kill), start and reset', async () => {
    const { driver } = machine();
    await driver.create();
    const firstIp = await driver.getIP();
    expect(firstIp).toMatch(/^127\./);
    sim.requestLog.clear();
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    await driver.restart();
    await driver.kill();
    expect(await driver.getState()).toBe(State.Stopped);
    const paths = sim.requestLog.entries('google').map((entry) => `${entry.method} ${entry.path}`);
    expect(paths.filter((path) => path.includes('/stop'))).toHaveLength(2);
    expect(paths.some((path) => path.includes('/stop?') && path.includes('noGracefulShutdown=true'))).toBe(true);
    expect(paths.filter((path) => path.includes('/reset'))).toHaveLength(1);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a preempted Spot machine reports Stopped with the reason', async () => {
    const { driver, context, name } = machine({ 'google-spot': true });
    await driver.create();
    const instance = sim.store.listInstances('google').find((candidate) => candidate.name === name);
    if (instance === undefined) throw new Error('instance missing');
    // What Compute Engine does to a preempted Spot VM: a power-off, status TERMINATED.
    instance.attributes.statusMessage = 'Instance was preempted.';
    await sim.lifecycle.stop(instance, { force: true });
    expect(await driver.getState()).toBe(State.Stopped);
    expect(String(context.data.read().stateReason)).toMatch(/preempted the Spot instance/);
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('--google-use-existing merges its key, keeps others, and remove leaves the instance with only its own keys', async () => {
    const owner = machine();
    await owner.driver.create();
    const zone = 'us-central1-a';
    const [before] = await clients.instances.get({ project, zone, instance: owner.name });
    const ownerKeys = before.metadata?.items?.find((item) => item.key === 'ssh-keys')?.value;
    // a second tool adopts the same instance
    const adoptContext = createMemoryContext(owner.name, join(root, `${owner.name}-adopt`));
    const config = parseFlags(googleFlags, simFlags(sim, { 'google-use-existing': true, 'google-username': 'ops' }), { env: {} });
    const adopter = google.createDriver({ config, context: adoptContext, client: clients });
    await adopter.create();
    const [during] = await clients.instances.get({ project, zone, instance: owner.name });
    const lines = (during.metadata?.items?.find((item) => item.key === 'ssh-keys')?.value ?? '').split('\n');
    expect(lines[0]).toBe(ownerKeys);
    expect(lines[1]).toMatch(/^ops:ssh-ed25519 /);
    expect(findEntry(adoptContext.journal, 'instance')?.preExisting).toBe(true);
    await adopter.remove();
    const [after] = await clients.instances.get({ project, zone, instance: owner.name });
    expect(after.metadata?.items?.find((item) => item.key === 'ssh-keys')?.value).toBe(ownerKeys);
    expect(await owner.driver.getState()).toBe(State.Running);
    await owner.driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('getStates: one instances.aggregatedList per project for many machines in several zones, state and address (external, or internal where the machine uses it), through the auth client it builds itself (placeholder token to loopback); prepare makes no call', async () => {
    const a = machine();
    const b = machine();
    const c = machine({ 'google-zone': 'europe-west1-b' });
    await a.driver.create();
    await b.driver.create();
    await c.driver.create();
    await b.driver.stop();
    const never = machine();
    const [aIp, cIp] = [await a.driver.getIP(), await c.driver.getIP()];
    const internal = machine({ 'google-use-internal-ip': true });
    await internal.context.journal.record({ kind: 'instance', id: a.name, region: 'us-central1-a' });
    const [aInstance] = await clients.instances.get({ project, zone: 'us-central1-a', instance: a.name });
    const config = (extra: Record<string, unknown> = {}) => parseFlags(googleFlags, simFlags(sim, extra), { env: {} });
    const requests = [
      ...[a, b, never].map(({ context }) => ({ context, config: config() })),
      { context: c.context, config: config({ 'google-zone': 'europe-west1-b' }) },
      { context: internal.context, config: config({ 'google-use-internal-ip': true }) },
    ];
    sim.requestLog.clear();
    await google.prepare?.(requests.map((request) => request.config));
    expect(sim.requestLog.entries('google')).toEqual([]);
    const states = await google.getStates?.(requests);
    expect(states?.get(a.name)).toEqual({ state: State.Running, ip: aIp });
    expect(states?.get(c.name)).toEqual({ state: State.Running, ip: cIp });
    expect(states?.get(internal.name)).toEqual({ state: State.Running, ip: aInstance.networkInterfaces?.[0]?.networkIP });
    expect(states?.get(internal.name)).toMatchObject({ ip: expect.stringMatching(/^10\./) });
    expect(states?.get(b.name)).toMatchObject({ state: State.Stopped });
    expect(states?.get(never.name)).toBeInstanceOf(NotFoundError);
    expect(sim.requestLog.counts('google')).toEqual({ 'instances.aggregatedList': 1 });
    // Refused or failing, the list is each machine's typed error (the REST answer maps like the client library's).
    sim.faults.add({ provider: 'google', operation: 'instances.aggregatedList', error: 'auth' });
    expect((await google.getStates?.(requests))?.get(a.name)).toBeInstanceOf(AuthError);
    sim.faults.add({ provider: 'google', operation: 'instances.aggregatedList', error: 'unavailable' });
    const unavailable = (await google.getStates?.(requests))?.get(c.name);
    expect(unavailable).toBeInstanceOf(ProviderError);
    expect((unavailable as ProviderError).message).toMatch(/503|unavailable/i);
    await a.driver.remove();
    await b.driver.remove();
    await c.driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a lost insert reply (connection closed, no HTTP status) is retried with the same requestId: one instance, no twin, no leak', async () => {
    sim.faults.add({ provider: 'google', operation: 'instances.insert', reply: 'drop' });
    sim.requestLog.clear();
    const { driver, name } = machine();
    await driver.create();
    const inserts = sim.requestLog.entries('google').filter((entry) => entry.operation === 'instances.insert');
    expect(inserts).toHaveLength(2);
    expect(new Set(inserts.map((entry) => new URL(entry.path, 'http://x').searchParams.get('requestId'))).size).toBe(1);
    expect(sim.store.listInstances('google').filter((instance) => instance.name === name)).toHaveLength(1);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('an insert whose every reply is lost: the intent journaled before the call finds the instance by name, and create carries on with it (no twin)', async () => {
    sim.faults.add({ provider: 'google', operation: 'instances.insert', reply: 'drop', times: 10 });
    const { driver, context, name } = machine();
    await driver.create();
    expect(sim.store.listInstances('google').filter((instance) => instance.name === name)).toHaveLength(1);
    expect(context.journal.entries().map((entry) => `${entry.kind} ${entry.id}`)).toContain(`instance ${name}`);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a stockout (ZONE_RESOURCE_POOL_EXHAUSTED at DONE) is a CapacityError, on insert and on start; not a quota', async () => {
    knobs.stockout = { name: 'stockout-1' };
    const error = await machine({}, clients, 'stockout-1').driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CapacityError);
    expect((error as Error).message).toMatch(/ZONE_RESOURCE_POOL_EXHAUSTED.*try another zone/);
    expect(leaks()).toEqual([]);

    const { driver, name } = machine();
    await driver.create();
    await driver.stop();
    knobs.stockout = { name, operations: ['start'] };
    expect(await driver.start().catch((caught: unknown) => caught)).toBeInstanceOf(CapacityError);
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('per-minute rate quotas on operation polling (403 rateLimitExceeded) are waited out, not fatal', async () => {
    // One poll per 600 ms window (a minute × 0.01): a create polls at least three times within one or two windows.
    knobs.rateQuotas = { limit: 1, groups: ['operationRead'] };
    sim.requestLog.clear();
    const { driver } = machine();
    await driver.create();
    expect(sim.requestLog.entries('google').some((entry) => entry.status === 403 && entry.operation.endsWith('Operations.wait'))).toBe(true);
    delete knobs.rateQuotas;
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('an instance that lands TERMINATED, or in a status the driver does not know, fails create at once with the reason, and cleans up', async () => {
    knobs.landsTerminated = { name: 'lands-off', statusMessage: 'Instance terminated by Compute Engine: host error.' };
    const off = await machine({}, clients, 'lands-off').driver.create().catch((caught: unknown) => caught);
    expect(off).toBeInstanceOf(ProviderError);
    expect(off).not.toBeInstanceOf(TimeoutError);
    expect((off as Error).message).toContain('TERMINATED instead of starting: Instance terminated by Compute Engine: host error.');

    knobs.rareStatus = { name: 'rare-1', status: 'FUTURE_STATUS' }; // the enum grows
    const rare = await machine({}, clients, 'rare-1').driver.create().catch((caught: unknown) => caught);
    expect(rare).toBeInstanceOf(ProviderError);
    expect((rare as Error).message).toContain('status FUTURE_STATUS, which this driver does not know');
    expect(leaks()).toEqual([]);
  });

  it('stop while a reset operation still runs: resourceNotReady is waited out (retry budget), then the stop goes through', async () => {
    const { driver, name } = machine();
    await driver.create();
    sim.requestLog.clear();
    const { pendingMs } = sim.lifecycle.delays;
    sim.lifecycle.delays.pendingMs = 500; // the reset operation runs half a second
    await clients.instances.reset({ project, zone: 'us-central1-a', instance: name, requestId: '0b7c6a52-4a5c-4f4e-9a7e-0c1d2e3f4a5b' });
    await driver.stop().finally(() => {
      sim.lifecycle.delays.pendingMs = pendingMs;
    });
    expect(sim.requestLog.entries('google').some((entry) => entry.operation === 'instances.stop' && entry.status === 400)).toBe(true);
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('stop/start gives a new ephemeral external IP: start records it', async () => {
    const { driver, context } = machine();
    await driver.create();
    const before = context.data.read().ip;
    await driver.stop();
    await driver.start();
    expect(context.data.read().ip).not.toBe(before);
    expect(await driver.getIP()).toBe(context.data.read().ip);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a machine deleted outside reports NotFoundError (GoogleError 404 from the REST transport)', async () => {
    const { driver, name } = machine();
    await driver.create();
    await clients.instances.delete({ project, zone: 'us-central1-a', instance: name });
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  describe('provisioning boot data (the simulator applies the cloud-config host key)', () => {
    it('boots with the host cloud-config plus --google-userdata in the user-data metadata, and pins the host key it installs', async () => {
      const hostKey = generateSSHKeyPair({ comment: 'host' });
      const path = join(root, 'user-data.sh');
      await writeFile(path, '#!/bin/sh\necho from-the-user\n');
      const { driver, context, name } = machine({ 'google-userdata': path });
      await driver.create({ boot: { userData: hostKeyCloudConfig(hostKey), hostKeyFingerprint: hostKey.sha256Fingerprint } });
      const simInstance = sim.store.listInstances('google').find((instance) => instance.name === name);
      const userData = String(simInstance?.attributes.userData);
      expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
      expect(userData).toContain(hostKey.publicKey);
      expect(userData).toContain('echo from-the-user');
      // Through the real client library: the metadata item is there as sent.
      const [instance] = await clients.instances.get({ project, zone: 'us-central1-a', instance: name });
      expect(instance.metadata?.items?.find((item) => item.key === 'user-data')?.value).toBe(userData);
      expect(context.data.read().hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
      // The guest agent is told not to make new host keys on first boot (they would replace the pinned one).
      expect(simInstance?.filesystem.readFile('/etc/default/instance_configs.cfg').toString()).toBe('[InstanceSetup]\nset_host_keys = false\n');
      await driver.remove();
      expect(leaks()).toEqual([]);
    });

    it('a machine presenting another host key than the expected one fails create with an SSHError and leaks nothing', async () => {
      const installed = generateSSHKeyPair({ comment: 'host' });
      const expected = generateSSHKeyPair({ comment: 'host' }).sha256Fingerprint;
      const { driver, context } = machine();
      const error = await driver.create({ boot: { userData: hostKeyCloudConfig(installed), hostKeyFingerprint: expected } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SSHError);
      expect((error as SSHError).failure).toBe('host-key');
      expect((error as Error).message).toContain(`expected ${expected}, got ${installed.sha256Fingerprint}`);
      expect(context.journal.entries()).toEqual([]);
      expect(leaks()).toEqual([]);
    });
  });
});

