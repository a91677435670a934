import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import {
  AuthError,
  CleanupError,
  createMemoryContext,
  type Driver,
  InvalidConfigError,
  MachineError,
  NotFoundError,
  parseFlags,
  ProviderError,
  QuotaError,
  type RawFlagValues,
  SSHError,
  State,
  TimeoutError,
} from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { hostKeyCloudConfig } from '@machine/driver-core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClients } from './azure-clients.ts';
import { azureFlags, createAzureDescriptor } from './index.ts';
import { azureLeaks, fakeCredential, fastTimings, simClients, simFlags, startAzureSim } from './testing/sim-harness.ts';

const azure = createAzureDescriptor({ timings: fastTimings });

let sim: Sim;
let client: AzureClients;
let root: string;
let counter = 0;

beforeAll(async () => {
  sim = await startAzureSim();
  client = await simClients(sim);
  root = await mkdtemp(join(tmpdir(), 'driver-azure-sim-'));
});
afterAll(async () => {
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});
afterEach(() => {
  sim.faults.clear();
});

function machine(extra: RawFlagValues = {}, options: { client?: AzureClients; name?: string } = {}) {
  counter++;
  const name = options.name ?? `az-${counter}`;
  const context = createMemoryContext(name, join(root, `${name}-${counter}`));
  const config = parseFlags(azureFlags, simFlags(sim, extra), { env: {} });
  const driver: Driver = azure.createDriver({ config, context, client: options.client ?? client });
  return { driver, context };
}

describe('azure driver against cloud-sim (real SDK)', () => {
  it('makes, in order, only the pieces it needs, and remove deletes them in reverse', async () => {
    sim.requestLog.clear();
    const { driver, context } = machine({ 'azure-open-port': ['8080'] });
    await driver.create();
    const createCalls = sim.requestLog.counts('azure');
    // A new subscription first registers Compute and Network (the refused PUTs are retried after).
    const writes = sim.requestLog
      .entries('azure')
      .filter((entry) => entry.method === 'PUT' && entry.status < 400)
      .map((entry) => entry.operation);
    expect(writes).toEqual([
      'resourceGroups.createOrUpdate',
      'networkSecurityGroups.createOrUpdate',
      'virtualNetworks.createOrUpdate',
      'subnets.createOrUpdate',
      'publicIPAddresses.createOrUpdate',
      'networkInterfaces.createOrUpdate',
      'virtualMachines.createOrUpdate',
    ]);
    expect(context.journal.entries().map((entry) => entry.kind)).toEqual([
      'resource-group',
      'network-security-group',
      'virtual-network',
      'subnet',
      'public-ip',
      'network-interface',
      'os-disk',
      'virtual-machine',
    ]);
    expect(context.data.read().hostKeyFingerprint).toMatch(/^SHA256:/);
    expect(await driver.getState()).toBe(State.Running);

    // The NSG has the reference's rules: SSH 100, Docker 300, user ports from 1000.
    const nsg = await client.network.networkSecurityGroups.get('docker-machine', `${driver.machineName}-firewall`);
    expect(nsg.securityRules?.map((rule) => [rule.name, rule.priority, rule.destinationPortRange, rule.sourceAddressPrefix])).toEqual([
      ['SSHAllowAny', 100, String(sim.sshPort), '*'],
      ['DockerAllowAny', 300, '2376', '*'],
      ['Port8080-tcpAllowAny', 1000, '8080', '*'],
    ]);
    // The VM: SSH key only, managed OS disk.
    const vm = await client.compute.virtualMachines.get('docker-machine', driver.machineName);
    expect(vm.osProfile?.linuxConfiguration?.disablePasswordAuthentication).toBe(true);
    expect(vm.osProfile?.linuxConfiguration?.ssh?.publicKeys?.[0]?.keyData).toMatch(/^ssh-ed25519 /);
    expect(vm.storageProfile?.osDisk?.managedDisk?.storageAccountType).toBe('Standard_LRS');
    expect(vm.storageProfile?.imageReference).toMatchObject({ publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' });

    sim.requestLog.clear();
    await driver.remove();
    const removeCalls = sim.requestLog.counts('azure');
    // In-use refusals (an NSG or public IP just after its NIC went) are retried; the accepted deletes, in order:
    const deletes = sim.requestLog
      .entries('azure')
      .filter((entry) => entry.method === 'DELETE' && entry.status < 400)
      .map((entry) => entry.operation);
    expect(deletes).toEqual([
      'virtualMachines.delete',
      'disks.delete',
      'networkInterfaces.delete',
      'publicIPAddresses.delete',
      'subnets.delete',
      'virtualNetworks.delete',
      'networkSecurityGroups.delete',
      'resourceGroups.delete',
    ]);
    expect(azureLeaks(sim)).toEqual([]);
    // For the closing report.
    console.log(`API calls, one create: ${JSON.stringify(createCalls)}`);
    console.log(`API calls, one remove: ${JSON.stringify(removeCalls)}`);
  });

  it('reuses a resource group, vnet and subnet it did not make, and never deletes them', async () => {
    await client.resources.resourceGroups.createOrUpdate('shared-rg', { location: 'westus2' });
    await client.network.virtualNetworks.createOrUpdate('shared-rg', 'shared-vnet', { location: 'westus2', addressSpace: { addressPrefixes: ['10.5.0.0/16'] } }, { updateIntervalInMs: 5 });
    await client.network.subnets.createOrUpdate('shared-rg', 'shared-vnet', 'apps', { addressPrefix: '10.5.1.0/24' }, { updateIntervalInMs: 5 });
    const { driver, context } = machine({ 'azure-resource-group': 'shared-rg', 'azure-vnet': 'shared-rg:shared-vnet', 'azure-subnet': 'apps' });
    sim.requestLog.clear();
    await driver.create();
    expect(sim.requestLog.count('resourceGroups.createOrUpdate')).toBe(0);
    expect(sim.requestLog.count('virtualNetworks.createOrUpdate')).toBe(0);
    expect(sim.requestLog.count('subnets.createOrUpdate')).toBe(0);
    expect(context.journal.entries().filter((entry) => entry.preExisting).map((entry) => entry.kind)).toEqual(['resource-group', 'virtual-network', 'subnet']);
    await driver.remove();
    expect(azureLeaks(sim).sort()).toEqual(['resourceGroups shared-rg', 'subnets apps', 'virtualNetworks shared-vnet']);
    await client.resources.resourceGroups.delete('shared-rg', { updateIntervalInMs: 5 });
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('keeps a shared network another machine still uses, and deletes it with the last machine', async () => {
    const first = machine();
    const second = machine();
    await first.driver.create();
    await second.driver.create();
    await first.driver.remove();
    expect(azureLeaks(sim).some((leak) => leak.startsWith('virtualNetworks '))).toBe(true);
    await second.driver.remove();
    // The second machine found the group and network already there, tagged by the first machine's create.
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('uses an existing NSG given by --azure-nsg and never deletes it', async () => {
    await client.resources.resourceGroups.createOrUpdate('nsg-rg', { location: 'westus2' });
    const nsg = await client.network.networkSecurityGroups.createOrUpdate('nsg-rg', 'team-nsg', { location: 'westus2', securityRules: [] }, { updateIntervalInMs: 5 });
    const { driver, context } = machine({ 'azure-nsg': nsg.id });
    sim.requestLog.clear();
    await driver.create();
    expect(context.journal.entries().find((entry) => entry.kind === 'network-security-group')).toMatchObject({ preExisting: true });
    expect(sim.requestLog.count('networkSecurityGroups.createOrUpdate')).toBe(0);
    const nic = await client.network.networkInterfaces.get('docker-machine', `${driver.machineName}-nic`);
    expect(nic.networkSecurityGroup?.id).toBe(nsg.id);
    await driver.remove();
    expect(azureLeaks(sim).sort()).toEqual(['networkSecurityGroups team-nsg', 'resourceGroups nsg-rg']);
    await client.resources.resourceGroups.delete('nsg-rg', { updateIntervalInMs: 5 });
  });

  it('makes and then deletes an availability set when asked', async () => {
    const { driver, context } = machine({ 'azure-availability-set': 'web-as' });
    await driver.create();
    const set = await client.compute.availabilitySets.get('docker-machine', 'web-as');
    expect(set.virtualMachines?.length).toBe(1);
    expect(context.journal.entries().map((entry) => entry.kind)).toContain('availability-set');
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('stop powers off then deallocates; kill skips the shutdown; start and restart run the VM', async () => {
    const { driver } = machine();
    await driver.create();
    sim.requestLog.clear();
    await driver.stop();
    expect(sim.requestLog.entries('azure').filter((entry) => entry.method === 'POST').map((entry) => entry.operation)).toEqual([
      'virtualMachines.powerOff',
      'virtualMachines.deallocate',
    ]);
    const view = await client.compute.virtualMachines.instanceView('docker-machine', driver.machineName);
    expect(view.statuses?.map((status) => status.code)).toContain('PowerState/deallocated');
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    sim.requestLog.clear();
    await driver.kill();
    const kill = sim.requestLog.entries('azure').find((entry) => entry.operation === 'virtualMachines.powerOff');
    expect(kill?.path).toContain('skipShutdown=true');
    expect(sim.requestLog.count('virtualMachines.deallocate')).toBe(0);
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.start();
    await driver.restart();
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('--azure-stop-deallocate=false only powers off', async () => {
    const { driver } = machine({ 'azure-stop-deallocate': false });
    await driver.create();
    sim.requestLog.clear();
    await driver.stop();
    expect(sim.requestLog.count('virtualMachines.deallocate')).toBe(0);
    const view = await client.compute.virtualMachines.instanceView('docker-machine', driver.machineName);
    expect(view.statuses?.map((status) => status.code)).toContain('PowerState/stopped');
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('makes no public IP with --azure-no-public-ip (and, on loopback, cannot reach the private address: cleaned up)', async () => {
    const { driver, context } = machine({ 'azure-no-public-ip': true, 'azure-wait-timeout': 1 });
    // SSH to a private 192.168.x address cannot work on loopback: create fails at the SSH wait and cleans up.
    await expect(driver.create()).rejects.toSatisfy(MachineError.isInstance);
    expect(sim.requestLog.count('publicIPAddresses.createOrUpdate')).toBe(0);
    expect(context.journal.entries()).toEqual([]);
    expect(azureLeaks(sim)).toEqual([]);
  });

  describe('fault injection', () => {
    it('maps an auth error to AuthError and makes nothing', async () => {
      sim.faults.add({ provider: 'azure', operation: '*', error: 'auth', times: 100 });
      const { driver, context } = machine();
      const error = await driver.create().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AuthError);
      expect((error as Error).message).toContain('AuthorizationFailed');
      sim.faults.clear();
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('an invalid token is an AuthError', async () => {
      const badClient = await simClients(sim, fakeCredential('invalid-token'));
      const { driver } = machine({}, { client: badClient });
      await expect(driver.create()).rejects.toBeInstanceOf(AuthError);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('maps a quota error on the VM to QuotaError and removes everything made before it', async () => {
      sim.faults.add({ provider: 'azure', operation: 'virtualMachines.createOrUpdate', error: 'quota' });
      const { driver, context } = machine();
      await expect(driver.create()).rejects.toBeInstanceOf(QuotaError);
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('retries throttling (429 with Retry-After) through the SDK and succeeds', async () => {
      sim.faults.add({ provider: 'azure', operation: 'networkInterfaces.createOrUpdate', throttle: { times: 2, retryAfterSeconds: 0 } });
      sim.faults.add({ provider: 'azure', operation: 'virtualMachines.instanceView', throttle: { times: 1, retryAfterSeconds: 0 } });
      const { driver } = machine();
      await driver.create();
      const nicPuts = sim.requestLog.entries('azure').filter((entry) => entry.operation === 'networkInterfaces.createOrUpdate').slice(-3);
      expect(nicPuts.map((entry) => entry.status)).toEqual([429, 429, 201]);
      expect(await driver.getState()).toBe(State.Running);
      await driver.remove();
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('retries a transient 5xx through the SDK', async () => {
      sim.faults.add({ provider: 'azure', operation: 'virtualNetworks.createOrUpdate', error: 'unavailable' });
      const { driver } = machine();
      await driver.create();
      await driver.remove();
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('a persistent 5xx ends as a retryable ProviderError with the request id', async () => {
      sim.faults.add({ provider: 'azure', operation: 'publicIPAddresses.createOrUpdate', error: 'server', times: 10 });
      const { driver } = machine();
      const error = (await driver.create().catch((caught: unknown) => caught)) as ProviderError;
      expect(error).toBeInstanceOf(ProviderError);
      expect(error.statusCode).toBe(500);
      expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(error.isRetryable).toBe(true);
      expect(azureLeaks(sim)).toEqual([]);
    });

    const steps = [
      'resourceGroups.createOrUpdate',
      'networkSecurityGroups.createOrUpdate',
      'virtualNetworks.createOrUpdate',
      'subnets.createOrUpdate',
      'publicIPAddresses.createOrUpdate',
      'networkInterfaces.createOrUpdate',
      'virtualMachines.createOrUpdate',
    ];
    it.each(steps)('a failure at %s leaves nothing behind', async (operation) => {
      sim.faults.add({ provider: 'azure', operation, error: 'not_found' });
      const { driver, context } = machine();
      await expect(driver.create()).rejects.toSatisfy(MachineError.isInstance);
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('a poll that fails after Azure accepted the PUT: the driver finds what it made by name and carries on, and remove leaves nothing', async () => {
      sim.faults.add({ provider: 'azure', operation: 'operations.get', error: 'not_found', nth: 4 });
      const { driver, context } = machine();
      await driver.create();
      expect(context.journal.entries().filter((entry) => entry.state === 'intended')).toEqual([]);
      await driver.remove();
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('a VM that never runs ends in TimeoutError after --azure-wait-timeout, and is cleaned up', async () => {
      sim.faults.instanceNeverRuns({ provider: 'azure', times: 1 });
      const { driver, context } = machine({ 'azure-wait-timeout': 1 });
      const error = await driver.create().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as Error).message).toContain('virtual machine');
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('SSH that never opens ends in an SSH or timeout error, and is cleaned up', async () => {
      sim.faults.sshNeverOpens({ provider: 'azure', times: 1 });
      const { driver, context } = machine({ 'azure-wait-timeout': 1 });
      const error = await driver.create().catch((caught: unknown) => caught);
      expect(error instanceof TimeoutError || error instanceof SSHError).toBe(true);
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });

    it('a failed cleanup is reported on the original error and remove finishes it later', async () => {
      sim.faults.add({ provider: 'azure', operation: 'virtualMachines.createOrUpdate', error: 'quota' });
      sim.faults.add({ provider: 'azure', operation: 'networkInterfaces.delete', error: 'server', times: 4 });
      const { driver, context } = machine();
      const error = (await driver.create().catch((caught: unknown) => caught)) as QuotaError & { cleanupError?: unknown };
      expect(error).toBeInstanceOf(QuotaError);
      expect(error.cleanupError).toBeInstanceOf(CleanupError);
      expect(context.journal.entries().length).toBeGreaterThan(0);
      await driver.remove();
      expect(context.journal.entries()).toEqual([]);
      expect(azureLeaks(sim)).toEqual([]);
    });
  });

  it('getStates answers state and address for many machines with one virtualMachines.listAll and one publicIPAddresses.listAll (networkInterfaces.listAll for private addresses); prepare makes no call', async () => {
    const first = machine();
    const second = machine();
    const never = machine();
    await first.driver.create();
    await second.driver.create();
    await second.driver.stop();
    const firstIp = await first.driver.getIP();
    const config = parseFlags(azureFlags, simFlags(sim), { env: {} });
    const privateConfig = parseFlags(azureFlags, simFlags(sim, { 'azure-use-private-ip': true }), { env: {} });
    // The same VM seen by a record that uses its private address.
    counter++;
    const privately = createMemoryContext(`private-${counter}`, join(root, `private-${counter}`));
    for (const entry of first.context.journal.entries()) await privately.journal.record(entry);
    const privateIp = await azure.createDriver({ config: privateConfig, context: privately }).getIP();
    expect(privateIp).toMatch(/^192\.168\./);
    sim.requestLog.clear();
    await azure.prepare?.([config, privateConfig]);
    expect(sim.requestLog.entries('azure')).toEqual([]);
    const states = await azure.getStates?.([
      { config, context: first.context },
      { config, context: second.context },
      { config, context: never.context },
      { config: privateConfig, context: privately },
    ]);
    expect(states?.get(first.context.machineName)).toEqual({ state: State.Running, ip: firstIp });
    expect(states?.get(privately.machineName)).toEqual({ state: State.Running, ip: privateIp });
    // The driver deallocates on stop; its Standard static address stays.
    expect(states?.get(second.context.machineName)).toMatchObject({ state: State.Stopped });
    expect(states?.get(never.context.machineName)).toBeInstanceOf(NotFoundError);
    // One listing of each answered (a principal new to this simulator is refused a few times first).
    expect(sim.requestLog.entries('azure').filter((entry) => entry.status < 400).map((entry) => entry.operation).sort()).toEqual(['networkInterfaces.listAll', 'publicIPAddresses.listAll', 'virtualMachines.listAll']);
    // A failed address list leaves the addresses out, not the states; a refused VM list is each machine's AuthError.
    const requests = [{ config, context: first.context }];
    sim.faults.add({ provider: 'azure', operation: 'publicIPAddresses.listAll', error: 'not_found' });
    expect((await azure.getStates?.(requests))?.get(first.context.machineName)).toEqual({ state: State.Running });
    // (AuthorizationFailed is retried while a role assignment may be propagating: 1.5 s here; the refusal outlasts it.)
    sim.faults.add({ provider: 'azure', operation: 'virtualMachines.listAll', error: 'auth', times: 10_000 });
    expect((await azure.getStates?.(requests))?.get(first.context.machineName)).toBeInstanceOf(AuthError);
    sim.faults.clear();
    await first.driver.remove();
    await second.driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('works through the descriptor\'s own SDK clients with only --azure-endpoint (https rewrite, placeholder token)', async () => {
    counter++;
    const context = createMemoryContext(`plain-${counter}`, join(root, `plain-${counter}`));
    const config = parseFlags(azureFlags, simFlags(sim), { env: {} });
    const driver = azure.createDriver({ config, context });
    sim.requestLog.clear();
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
    // Only the existence checks of the group and network answer 404, besides what a principal new
    // to this simulator meets (403 while its role assignment propagates); no write is refused.
    const failures = sim.requestLog.entries('azure').filter((entry) => entry.status >= 400 && entry.status !== 403);
    expect(failures.map((entry) => `${entry.operation} ${entry.status}`)).toEqual(['resourceGroups.get 404', 'virtualNetworks.get 404', 'subnets.get 404']);
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });

  it('rejects a VM name that already exists before making anything', async () => {
    const { driver } = machine({}, { name: 'twin' });
    await driver.create();
    const { driver: again } = machine({}, { name: 'twin' });
    await expect(again.preCreateCheck()).rejects.toBeInstanceOf(InvalidConfigError);
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
  });
});

describe('azure provisioning boot data (the simulator applies the cloud-config host key)', () => {
  it('boots with the host cloud-config plus --azure-custom-data as custom data, and pins the host key it installs', async () => {
    const hostKey = generateSSHKeyPair({ comment: 'host' });
    const path = join(root, 'custom-data.sh');
    await writeFile(path, '#!/bin/sh\necho from-the-user\n');
    const { driver, context } = machine({ 'azure-custom-data': path });
    await driver.create({ boot: { userData: hostKeyCloudConfig(hostKey), hostKeyFingerprint: hostKey.sha256Fingerprint } });
    const vm = sim.store.listInstances('azure').find((instance) => instance.name === driver.machineName);
    const userData = String(vm?.attributes.userData);
    expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
    expect(userData).toContain(hostKey.publicKey);
    expect(userData).toContain('echo from-the-user');
    expect(context.data.read().hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
    await driver.remove();
    expect(azureLeaks(sim)).toEqual([]);
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
    expect(azureLeaks(sim)).toEqual([]);
  });
});

