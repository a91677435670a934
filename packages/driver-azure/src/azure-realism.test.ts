import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import { AuthError, CapacityError, createMemoryContext, type ProgressEvent, parseFlags, QuotaError, type RawFlagValues, State, TimeoutError } from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClients } from './azure-clients.ts';
import { azureFlags, createAzureDescriptor } from './index.ts';
import { azureLeaks, fastTimings, simClients, simFlags, startAzureSim } from './testing/sim-harness.ts';

// The driver against the simulator's realistic Azure (issue 17's Azure items), through the real
// @azure/arm-* clients. Each test starts its own simulator: a new subscription every time.

const azure = createAzureDescriptor({ timings: fastTimings });
let root: string;
let sim: Sim | undefined;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-azure-realism-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

function machine(s: Sim, client: AzureClients, extra: RawFlagValues = {}) {
  counter++;
  const name = `real-${counter}`;
  const progress: ProgressEvent[] = [];
  const context = { ...createMemoryContext(name, join(root, name)), onProgress: (event: ProgressEvent) => progress.push(event) };
  const config = parseFlags(azureFlags, simFlags(s, extra), { env: {} });
  return { driver: azure.createDriver({ config, context, client }), context, progress };
}

async function started(options: Parameters<typeof startAzureSim>[0] = {}): Promise<{ sim: Sim; client: AzureClients }> {
  sim = await startAzureSim(options);
  return { sim, client: await simClients(sim) };
}

describe('azure driver against the realistic simulator', () => {
  it('item 7: the first create on a new subscription registers Compute and Network and waits out the role-assignment 403s', async () => {
    const { sim: s, client } = await started();
    const { driver, progress } = machine(s, client);
    await driver.create();
    const statuses = s.requestLog.entries('azure').map((entry) => `${entry.operation} ${entry.status}`);
    expect(statuses).toContain('resourceGroups.get 403');
    expect(statuses.filter((status) => status.startsWith('providers.register 200'))).toHaveLength(2);
    expect(statuses.some((status) => status.endsWith(' 409'))).toBe(true);
    expect(progress.map((event) => event.message)).toContainEqual(expect.stringMatching(/not registered for Microsoft\.Network: registering it/));
    expect(progress.map((event) => event.message)).toContainEqual(expect.stringMatching(/AuthorizationFailed: a role assignment made in the last minutes may still be propagating/));
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 7: an identity that may not register the provider gets one AuthError saying who can, and nothing is left', async () => {
    const { sim: s, client } = await started({ providerOptions: { azure: { roleAssignmentLagMs: 0 } } });
    s.faults.add({ provider: 'azure', operation: 'providers.register', error: 'auth', times: 1000 });
    counter++;
    const context = createMemoryContext(`real-${counter}`, join(root, `real-${counter}`));
    const config = parseFlags(azureFlags, simFlags(s), { env: {} });
    const strict = createAzureDescriptor({ timings: { ...fastTimings, authorizationGraceMs: 100 } });
    const error = await strict.createDriver({ config, context, client }).create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toContain('not registered for Microsoft.Network, and this identity may not register it');
    expect((error as Error).message).toContain('az provider register --namespace Microsoft.Network');
    expect(context.journal.entries()).toEqual([]);
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 4: parallel creates sharing the vnet and subnet get past AnotherOperationInProgress and RetryableError, and remove leaves nothing', async () => {
    // Network operations take 300 ms here, so three creates meet each other's vnet and subnet writes.
    const { sim: s, client } = await started({ providerOptions: { azure: { networkOperationMs: 30_000 } } });
    const machines = [machine(s, client), machine(s, client), machine(s, client)];
    await Promise.all(machines.map(({ driver }) => driver.create()));
    const conflicts = s.requestLog.entries('azure').filter((entry) => entry.status === 409 || entry.status === 429);
    expect(conflicts.length).toBeGreaterThan(0);
    expect(machines.flatMap(({ progress }) => progress.map((event) => event.message))).toContainEqual(expect.stringMatching(/(AnotherOperationInProgress|RetryableError): another operation holds it/));
    for (const { driver } of machines) expect(await driver.getState()).toBe(State.Running);
    await Promise.all(machines.map(({ driver }) => driver.remove()));
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 5: a Retry-After of 1200 s is not slept through: the call fails at once, saying so, within --azure-wait-timeout', async () => {
    const { sim: s, client } = await started();
    const { driver } = machine(s, client);
    await driver.create();
    s.faults.add({ provider: 'azure', operation: 'virtualMachines.instanceView', throttle: { times: 5, retryAfterSeconds: 1200 } });
    const began = Date.now();
    const error = await driver.getState().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(/Azure is throttling it \(OperationNotAllowed\) and asks to retry after 1200 s, past the \d+ s left of --azure-wait-timeout \(20 s\)/);
    expect(Date.now() - began).toBeLessThan(20_000);
    s.faults.clear();
    await driver.remove();
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 5: a Retry-After within the deadline is waited out and said in progress; a GET that never answers ends at the deadline', async () => {
    const { sim: s, client } = await started();
    const { driver, progress } = machine(s, client, { 'azure-wait-timeout': 3 });
    await driver.create();
    s.faults.add({ provider: 'azure', operation: 'virtualMachines.instanceView', throttle: { times: 1, retryAfterSeconds: 1 } });
    expect(await driver.getState()).toBe(State.Running);
    expect(progress.map((event) => event.message)).toContainEqual(expect.stringMatching(/Azure is throttling the state of virtual machine real-\d+ \(OperationNotAllowed\): waiting 1 s as Retry-After asks \(\d s left of --azure-wait-timeout \(3 s\)\)/));
    s.faults.add({ provider: 'azure', operation: 'virtualMachines.instanceView', reply: 'hold' });
    const error = await driver.getState().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('gave up waiting for the state of virtual machine');
    s.faults.clear();
    await driver.remove();
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 6: AllocationFailed (in the poll) is a CapacityError saying to try another size or later; the Failed VM and its reserved NIC are removed', async () => {
    const { sim: s, client } = await started({ providerOptions: { azure: { allocationFailure: { times: 1 } } } });
    const { driver, context } = machine(s, client);
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CapacityError);
    expect(error).not.toBeInstanceOf(QuotaError);
    expect((error as Error).message).toContain('AllocationFailed');
    expect((error as Error).message).toMatch(/try another size .* or later/);
    // The VM existed (Failed) and was deleted; its NIC refused deletion while reserved, and was retried.
    expect(s.requestLog.count('virtualMachines.delete')).toBeGreaterThan(0);
    expect(s.requestLog.entries('azure').some((entry) => entry.operation === 'networkInterfaces.delete' && entry.status === 400)).toBe(true);
    expect(context.journal.entries()).toEqual([]);
    expect(azureLeaks(s)).toEqual([]);
  });

  it('item 6: SkuNotAvailable is a CapacityError too, not a quota error', async () => {
    const { sim: s, client } = await started({ providerOptions: { azure: { skuNotAvailable: { sizes: ['Standard_B2s'] } } } });
    const { driver } = machine(s, client);
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CapacityError);
    expect((error as Error).message).toContain('SkuNotAvailable');
    expect(azureLeaks(s)).toEqual([]);
  });

  it('a region that takes RSA keys only: create retries the VM with an RSA key, and SSH uses it', async () => {
    const { sim: s, client } = await started({ providerOptions: { azure: { rsaKeysOnly: true } } });
    const { driver, progress } = machine(s, client);
    await driver.create();
    expect(driver.getSSHKeyPath()).toMatch(/id_rsa$/);
    const vm = await client.compute.virtualMachines.get('docker-machine', driver.machineName);
    expect(vm.osProfile?.linuxConfiguration?.ssh?.publicKeys?.[0]?.keyData).toMatch(/^ssh-rsa /);
    expect(progress.map((event) => event.message)).toContainEqual(expect.stringContaining('RSA keys only'));
    await driver.remove();
    expect(azureLeaks(s)).toEqual([]);
  });
});
