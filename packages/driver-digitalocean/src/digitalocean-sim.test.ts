import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import { AuthError, MachineError, NotFoundError, ProviderError, QuotaError, SSHError, State, TimeoutError } from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { hostKeyCloudConfig } from '@machine/driver-core/testing';
import { runSSH } from '@machine/driver-core/ssh';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { createDigitalOceanDescriptor } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { machineRoot, simMachine, startDigitalOceanSim } from './test-support/sim-harness.ts';

// Fault injection through the real dots client against cloud-sim's DigitalOcean front end.
describe('digitalocean driver against cloud-sim', () => {
  let sim: Sim;
  let root: { path: string; dispose(): Promise<void> };

  beforeAll(async () => {
    sim = await startDigitalOceanSim();
    root = await machineRoot();
  });
  afterAll(async () => {
    await sim.close();
    await root.dispose();
  });
  afterEach(() => {
    sim.faults.clear();
    expect(sim.leaks()).toEqual([]);
  });

  it('one create and one remove make a small, known set of API calls', async () => {
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-firewall': true });
    sim.requestLog.clear();
    await driver.create();
    const create = sim.requestLog.counts('digitalocean');
    sim.requestLog.clear();
    await driver.remove();
    const remove = sim.requestLog.counts('digitalocean');
    console.info(`API calls: create ${JSON.stringify(create)}; remove ${JSON.stringify(remove)}`);
    expect(create).toMatchObject({ 'keys.create': 1, 'droplets.create': 1, 'firewalls.create': 1 });
    expect(create['droplets.get']).toBeGreaterThanOrEqual(1);
    expect(Object.values(create).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(12);
    // The droplet's delete is asynchronous at DigitalOcean: remove reads it until it answers 404
    // (the simulator keeps it readable 100 ms, DigitalOcean's 10 s scaled).
    expect(remove).toMatchObject({ 'firewalls.delete': 1, 'droplets.delete': 1, 'keys.delete': 1 });
    expect(Object.keys(remove).sort()).toEqual(['droplets.delete', 'droplets.get', 'firewalls.delete', 'keys.delete']);
    expect(remove['droplets.get']).toBeGreaterThanOrEqual(1);
    expect(context.journal.entries()).toEqual([]);
  });

  it('tags the droplet machine, machine-<name> and managed-by, names the key <managed-by>.<machine>.<token>', async () => {
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-tags': 'team-a, env:dev' });
    await driver.create();
    const [droplet] = sim.store.listInstances('digitalocean');
    expect(droplet?.tags).toEqual(expect.arrayContaining(['machine', `machine-${context.machineName}`, 'managed-by:machine', 'team-a', 'env:dev']));
    const key = context.journal.entries().find((entry) => entry.kind === 'ssh-key');
    expect(key?.meta?.name).toMatch(new RegExp(`^machine\\.${context.machineName}\\.[0-9a-f]{8}$`));
    expect(key?.meta?.token).toBe(key?.meta?.name?.split('.')[2]);
    await driver.remove();
  });

  it('rejects a refused token with AuthError and never shows the token', async () => {
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-access-token': 'invalid-dop_v1_secret-value' });
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).not.toContain('invalid-dop_v1_secret-value');
    expect(context.journal.entries()).toEqual([]);
  });

  it('maps the droplet limit to QuotaError and deletes the uploaded key', async () => {
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.create', error: 'quota' });
    const { driver, context } = simMachine(sim, root.path);
    await expect(driver.create()).rejects.toBeInstanceOf(QuotaError);
    expect(context.journal.entries()).toEqual([]);
  });

  it('rides out throttling (429 with ratelimit-reset) and retries the call', async () => {
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.create', throttle: { times: 2, retryAfterSeconds: 0, resetSeconds: 1 } });
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.get', throttle: { times: 1, retryAfterSeconds: 0, resetSeconds: 1 } });
    const { driver } = simMachine(sim, root.path);
    sim.requestLog.clear();
    await driver.create();
    expect(sim.requestLog.count('droplets.create')).toBe(3);
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
  });

  it.each([
    ['keys.create', 'server'],
    ['droplets.create', 'server'],
    ['droplets.create', 'unavailable'],
    ['firewalls.create', 'server'],
    ['droplets.get', 'not_found'],
  ] as const)('a failure at %s (%s) cleans up everything create made', async (operation, error) => {
    sim.faults.add({ provider: 'digitalocean', operation, error, times: operation === 'droplets.get' ? 1 : 5 });
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-firewall': true });
    await expect(driver.create()).rejects.toSatisfy(MachineError.isInstance);
    expect(context.journal.entries()).toEqual([]);
  });

  it('times out when the droplet never becomes active, and cleans up', async () => {
    sim.faults.instanceNeverRuns({ provider: 'digitalocean' });
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-wait-timeout': 1 });
    await expect(driver.create()).rejects.toBeInstanceOf(TimeoutError);
    expect(context.journal.entries()).toEqual([]);
  });

  it('times out when SSH never opens, and cleans up', async () => {
    sim.faults.sshNeverOpens({ provider: 'digitalocean' });
    const { driver, context } = simMachine(sim, root.path, { 'digitalocean-wait-timeout': 1 });
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('SSH');
    expect(context.journal.entries()).toEqual([]);
  });

  it('pre-create check accepts the defaults and rejects an unknown region, size or image before create', async () => {
    const ok = simMachine(sim, root.path);
    await ok.driver.preCreateCheck();
    for (const [flag, value] of [
      ['digitalocean-region', 'xyz9'],
      ['digitalocean-size', 'm-999vcpu'],
      ['digitalocean-image', 'ubuntu-16-04-x64'],
    ] as const) {
      const { driver } = simMachine(sim, root.path, { [flag]: value });
      const error = await driver.preCreateCheck().catch((caught: unknown) => caught);
      expect((error as MachineError).code, flag).toBe('INVALID_CONFIG');
      expect((error as Error).message).toContain(flag);
    }
  });

  it('getStates answers state and address for many machines with one droplet list call', async () => {
    const a = simMachine(sim, root.path);
    const b = simMachine(sim, root.path);
    const never = simMachine(sim, root.path);
    await Promise.all([a.driver.create(), b.driver.create()]);
    await b.driver.kill();
    const descriptor = createDigitalOceanDescriptor({ timings: fastTimings });
    sim.requestLog.clear();
    const states = await descriptor.getStates?.(
      [a, b, never].map((machine) => ({ config: machine.config as DigitalOceanConfig, context: machine.context })),
    );
    expect(sim.requestLog.counts('digitalocean')).toEqual({ 'droplets.list': 1 });
    // The list answer carries each droplet's address too (ls needs no GET per machine).
    expect(states?.get(a.context.machineName)).toEqual({ state: State.Running, ip: await a.driver.getIP() });
    expect(states?.get(b.context.machineName)).toMatchObject({ state: State.Stopped });
    expect(states?.get(never.context.machineName)).toBeInstanceOf(NotFoundError);
    await Promise.all([a.driver.remove(), b.driver.remove()]);
  });

  it('start, stop and kill on a machine already in that state return without an action', async () => {
    const { driver } = simMachine(sim, root.path);
    await driver.create();
    sim.requestLog.clear();
    await driver.start();
    expect(sim.requestLog.count('droplet_actions.create')).toBe(0);
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    sim.requestLog.clear();
    await driver.stop();
    await driver.kill();
    expect(sim.requestLog.count('droplet_actions.create')).toBe(0);
    await driver.restart();
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
  });

  it('start and restart read the public address again when a power cycle moved it', async () => {
    const { driver, context } = simMachine(sim, root.path);
    sim.faults.ipChangesOnStart({ name: context.machineName });
    await driver.create();
    const first = await driver.getIP();
    await driver.stop();
    await driver.start();
    const ours = () => sim.store.listInstances('digitalocean').find((instance) => instance.name === context.machineName && instance.state !== 'terminated');
    const afterStart = ours()?.publicIp;
    expect(afterStart).not.toBe(first);
    expect(await driver.getIP()).toBe(afterStart);
    expect(await driver.getURL()).toBe(`tcp://${afterStart}:2376`);
    await driver.stop();
    await driver.restart();
    const afterRestart = ours()?.publicIp;
    expect(afterRestart).not.toBe(afterStart);
    expect(await driver.getIP()).toBe(afterRestart);
    await driver.remove();
  });

  it('a call that gets no answer in time is aborted and retried', async () => {
    const { driver, context } = simMachine(sim, root.path);
    await driver.create();
    const slow = simMachine(sim, root.path);
    // Same machine, a driver whose requests time out after 150 ms.
    const impatient = createDigitalOceanDescriptor({ timings: { ...fastTimings, retry: { ...fastTimings.retry, requestTimeoutMs: 150 } } }).createDriver({
      config: slow.config,
      context,
    });
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.get', latencyMs: 600, times: 1 });
    sim.requestLog.clear();
    const started = Date.now();
    try {
      expect(await impatient.getState()).toBe(State.Running);
      expect(Date.now() - started).toBeLessThan(550);
      // The simulator logs the abandoned call when it finally answers.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(sim.requestLog.count('droplets.get')).toBe(2);
    } finally {
      await driver.remove();
    }
  });

  it('a transient 5xx on a status read is retried, not fatal', async () => {
    const { driver } = simMachine(sim, root.path);
    await driver.create();
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.get', error: 'unavailable', times: 2 });
    expect(await driver.getState()).toBe(State.Running);
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.get', error: 'server', times: 10 });
    const error = await driver.getState().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).statusCode).toBe(500);
    expect((error as ProviderError).requestId).toBeTruthy();
    sim.faults.clear();
    await driver.remove();
  });

  describe('provisioning boot data (the simulator applies the cloud-config host key)', () => {
    it('boots with the host cloud-config plus --digitalocean-userdata, and pins the host key it installs', async () => {
      const hostKey = generateSSHKeyPair({ comment: 'host' });
      const path = join(root.path, 'user-data.sh');
      await writeFile(path, '#!/bin/sh\necho from-the-user\n');
      const { driver, context } = simMachine(sim, root.path, { 'digitalocean-userdata': path });
      await driver.create({ boot: { userData: hostKeyCloudConfig(hostKey), hostKeyFingerprint: hostKey.sha256Fingerprint } });
      const droplet = sim.store.listInstances('digitalocean').find((instance) => instance.name === context.machineName);
      const userData = String(droplet?.attributes.userData);
      expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
      expect(userData).toContain(hostKey.publicKey);
      expect(userData).toContain('echo from-the-user');
      expect(context.data.read().hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
      // Later connections pin the same key.
      const target = {
        host: await driver.getSSHHostname(),
        port: await driver.getSSHPort(),
        username: driver.getSSHUsername(),
        privateKey: await readFile(driver.getSSHKeyPath(), 'utf8'),
        hostKeyFingerprint: hostKey.sha256Fingerprint,
      };
      expect((await runSSH(target, 'exit 0')).hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
      await driver.remove();
    });

    it('a machine presenting another host key than the expected one fails create with an SSHError and leaks nothing', async () => {
      const installed = generateSSHKeyPair({ comment: 'host' });
      const expected = generateSSHKeyPair({ comment: 'host' }).sha256Fingerprint;
      const { driver, context } = simMachine(sim, root.path, { 'digitalocean-firewall': true });
      const error = await driver.create({ boot: { userData: hostKeyCloudConfig(installed), hostKeyFingerprint: expected } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SSHError);
      expect((error as SSHError).failure).toBe('host-key');
      expect((error as Error).message).toContain(`expected ${expected}, got ${installed.sha256Fingerprint}`);
      expect(context.journal.entries()).toEqual([]);
      expect(sim.leaks()).toEqual([]);
    });
  });
});

