import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import {
  configureRateBudget,
  createMemoryContext,
  MemoryRateBucketStore,
  parseFlags,
  type RateBucket,
  type RateBucketState,
  type RateBudget,
  type RateBudgetEvent,
  type RateSignal,
  type RawFlagValues,
  SharedRateBudget,
  State,
} from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AzureClients, azureClientsFrom, loadAzureSdk } from './azure-clients.ts';
import { type AzureAnswer, azureRateKind, azureRateSignal, subscriptionOfUrl } from './azure-rate-budget.ts';
import { azureFlags, azureRateBucket, createAzureDescriptor } from './index.ts';
import { azureLeaks, clearAzureAccount, fakeCredential, fastTimings, simClientOptions, simClients, simFlags, startAzureSim } from './testing/sim-harness.ts';

// Issue 20's shared rate budgets on Azure: the pipeline policy takes a slot of
// azure:<subscription>:<reads|writes|deletes> before every HTTP attempt the real SDK clients send
// and feeds ARM's answers back. Each simulator test starts its own simulator (a new subscription).

const azure = createAzureDescriptor({ timings: fastTimings });
/** The simulator's default time scale: the budget runs ARM's limits as fast as the simulator does. */
const timeScale = 0.01;
let root: string;
let sim: Sim | undefined;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-azure-rate-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  configureRateBudget(undefined);
  await sim?.close();
  sim = undefined;
});

function answer(status: number, headers: Record<string, string>, body?: unknown): AzureAnswer {
  const lower = new Map(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return { status, headers: { get: (name) => lower.get(name.toLowerCase()) }, bodyAsText: body === undefined ? undefined : JSON.stringify(body) };
}

describe('azure rate buckets and signals', () => {
  it('a request counts against its subscription’s reads, writes or deletes, at ARM’s documented token buckets', () => {
    expect(azureRateBucket('0000AAAA-1111', 'GET')).toEqual({ key: 'azure:0000aaaa-1111:reads', limit: { burst: 250, perSecond: 25 } });
    expect(azureRateBucket('0000aaaa-1111', 'PUT')).toEqual({ key: 'azure:0000aaaa-1111:writes', limit: { burst: 200, perSecond: 10 } });
    expect(azureRateBucket('0000aaaa-1111', 'POST').key).toBe('azure:0000aaaa-1111:writes');
    expect(azureRateBucket('0000aaaa-1111', 'DELETE')).toEqual({ key: 'azure:0000aaaa-1111:deletes', limit: { burst: 200, perSecond: 10 } });
    expect(azureRateKind('head')).toBe('reads');
    expect(subscriptionOfUrl('https://management.azure.com/subscriptions/abc-1/providers/Microsoft.Compute/locations/westus/operations/x?api-version=1')).toBe('abc-1');
    expect(subscriptionOfUrl('https://management.azure.com/tenants?api-version=2022-01-01')).toBeUndefined();
  });

  it('ARM’s 429 is a throttle for its Retry-After; a resource provider’s 429 is not; a low remaining count caps the bucket, a high one says nothing', () => {
    const armThrottle = answer(429, { 'retry-after': '7', 'x-ms-error-code': 'TooManyRequests' });
    expect(azureRateSignal(armThrottle, 'writes')).toEqual({ throttled: true, retryAfterMs: 7000 });
    // Without the code header: the body's code, or the kind's remaining count at 0.
    expect(azureRateSignal(answer(429, { 'retry-after': '2' }, { error: { code: 'TooManyRequests' } }), 'reads')).toEqual({ throttled: true, retryAfterMs: 2000 });
    expect(azureRateSignal(answer(429, { 'retry-after-ms': '250', 'x-ms-ratelimit-remaining-subscription-deletes': '0' }), 'deletes')).toEqual({ throttled: true, retryAfterMs: 250, remaining: 0 });
    // Compute's per-VM policy (Retry-After up to 1200 s) and the Network RP's RetryableError hold one resource, not the subscription.
    const crp = answer(429, { 'retry-after': '1200', 'x-ms-error-code': 'OperationNotAllowed', 'x-ms-ratelimit-remaining-resource': 'Microsoft.Compute/PutVM3Min;0,Microsoft.Compute/PutVM30Min;20', 'x-ms-ratelimit-remaining-subscription-writes': '190' });
    expect(azureRateSignal(crp, 'writes')).toEqual({});
    expect(azureRateSignal(answer(429, { 'retry-after': '1' }, { error: { code: 'RetryableError' } }), 'writes')).toEqual({});
    // Remaining counts: the lower of the principal’s and the subscription-wide (global) one, when at most half the bucket.
    expect(azureRateSignal(answer(200, { 'x-ms-ratelimit-remaining-subscription-writes': '3', 'x-ms-ratelimit-remaining-subscription-global-writes': '2999' }), 'writes')).toEqual({ remaining: 3 });
    expect(azureRateSignal(answer(200, { 'x-ms-ratelimit-remaining-subscription-reads': '240', 'x-ms-ratelimit-remaining-subscription-global-reads': '40' }), 'reads')).toEqual({ remaining: 40 });
    expect(azureRateSignal(answer(200, { 'x-ms-ratelimit-remaining-subscription-writes': '199' }), 'writes')).toEqual({});
    // The hourly limits' counts of subscriptions not yet on token buckets (11999) say nothing either.
    expect(azureRateSignal(answer(200, { 'x-ms-ratelimit-remaining-subscription-reads': '11999' }), 'reads')).toEqual({});
    // Another kind's count is not this request's.
    expect(azureRateSignal(answer(200, { 'x-ms-ratelimit-remaining-subscription-reads': '3' }), 'writes')).toEqual({});
  });
});

/** A shared budget over process memory, with every take and signal recorded. */
function recordedBudget(options: { onEvent?: (event: RateBudgetEvent) => void } = {}) {
  const store = new MemoryRateBucketStore();
  const events: RateBudgetEvent[] = [];
  const shared = new SharedRateBudget(store, {
    timeScale,
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  const takes: string[] = [];
  const signals: { key: string; signal: RateSignal }[] = [];
  const budget: RateBudget = {
    take(bucket: RateBucket, signal?: AbortSignal) {
      takes.push(bucket.key);
      return shared.take(bucket, signal);
    },
    observe(bucket: RateBucket, signal: RateSignal) {
      signals.push({ key: bucket.key, signal });
      return shared.observe(bucket, signal);
    },
  };
  configureRateBudget(budget);
  /** A bucket's stored state (undefined: nothing took from it), read without changing it. */
  const state = (key: string) =>
    store.update<RateBucketState | undefined>(key, (current, now) => ({ state: current ?? { tokens: 0, at: now, blockedUntil: 0, factor: 1 }, result: current }));
  return { budget, takes, signals, events, state };
}

function machine(s: Sim, client: AzureClients, extra: RawFlagValues = {}) {
  counter++;
  const name = `rate-${counter}`;
  const context = createMemoryContext(name, join(root, name));
  const config = parseFlags(azureFlags, simFlags(s, extra), { env: {} });
  return { driver: azure.createDriver({ config, context, client }), context, config };
}

/** The subscription's key prefix in the simulator. */
function prefix(s: Sim): string {
  return `azure:${(s.env().AZURE_SUBSCRIPTION_ID ?? '').toLowerCase()}`;
}

describe('azure rate budget against the simulator (real SDK clients)', () => {
  it('every request the simulator answered took one slot of its kind: SDK retries, LRO polls, provider registration and the fleet listing included', async () => {
    sim = await startAzureSim();
    const s = sim;
    const { takes } = recordedBudget();
    const client = await simClients(s);
    // Two throttled NIC PUTs and a 503 on the vnet PUT are retried by the SDK's own retry policy.
    s.faults.add({ provider: 'azure', operation: 'networkInterfaces.createOrUpdate', throttle: { times: 2, retryAfterSeconds: 0 } });
    s.faults.add({ provider: 'azure', operation: 'virtualNetworks.createOrUpdate', error: 'unavailable' });
    const { driver, context, config } = machine(s, client);
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
    // getStates lists through the lighter pipeline of azure-fleet-list.ts.
    const states = await azure.getStates?.([{ config, context }]);
    expect(states?.get(context.machineName)).toMatchObject({ state: State.Running });
    await driver.remove();
    expect(azureLeaks(s)).toEqual([]);

    const log = s.requestLog.entries('azure');
    const logged = (kind: string) => log.filter((entry) => `${prefix(s)}:${azureRateKind(entry.method)}` === kind).length;
    expect(takes).toHaveLength(log.length);
    for (const kind of ['reads', 'writes', 'deletes']) expect(takes.filter((key) => key === `${prefix(s)}:${kind}`).length).toBe(logged(`${prefix(s)}:${kind}`));
    // What they included: the SDK's retries (of the 429s and the 503), LRO polls, both listings, the registration.
    const statuses = (operation: string) => log.filter((entry) => entry.operation === operation).map((entry) => entry.status);
    expect(statuses('networkInterfaces.createOrUpdate').slice(0, 3)).toEqual([429, 429, 201]);
    expect(statuses('virtualNetworks.createOrUpdate')[0]).toBe(503);
    expect(statuses('virtualNetworks.createOrUpdate').some((status) => status < 300)).toBe(true);
    expect(s.requestLog.count('operations.get')).toBeGreaterThan(0);
    expect(s.requestLog.count('virtualMachines.listAll')).toBeGreaterThan(0);
    expect(s.requestLog.count('providers.register')).toBeGreaterThan(0);
    expect(log.filter((entry) => entry.method === 'DELETE').length).toBeGreaterThan(0);
  });

  it('with no budget configured the clients send as before and no bucket is touched', async () => {
    sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0 } } });
    const { takes, state } = recordedBudget();
    configureRateBudget(undefined);
    const client = await simClients(sim);
    await client.resources.resourceGroups.createOrUpdate('unmetered', { location: 'westus' });
    expect(takes).toEqual([]);
    expect(await state(`${prefix(sim)}:writes`)).toBeUndefined();
    await clearAzureAccount(sim, client);
  });

  it('a low x-ms-ratelimit-remaining-subscription-writes caps the bucket, and a request past it waits for its slot', async () => {
    // Three writes in the subscription’s bucket, refilled about once a minute.
    sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0, subscriptionBuckets: { writes: { size: 3, refillPerSecond: 0.0002 } } } } });
    const s = sim;
    const { signals, events, state } = recordedBudget();
    const client = await simClients(s);
    const writes = `${prefix(s)}:writes`;
    await client.resources.resourceGroups.createOrUpdate('capped-1', { location: 'westus' });
    expect(signals).toContainEqual({ key: writes, signal: { remaining: 2 } });
    // ARM's 200 writes less the one taken would be 199: the answer's count wins.
    expect((await state(writes))?.tokens).toBeLessThanOrEqual(2);
    await client.resources.resourceGroups.createOrUpdate('capped-2', { location: 'westus' });
    await client.resources.resourceGroups.createOrUpdate('capped-3', { location: 'westus' });
    expect((await state(writes))?.tokens).toBe(0);
    expect(events.filter((event) => event.kind === 'wait')).toEqual([]);
    // The fourth write finds the bucket empty: it waits for its slot instead of going at once.
    await client.resources.resourceGroups.createOrUpdate('capped-4', { location: 'westus' }).catch(() => undefined);
    expect(events.find((event) => event.kind === 'wait')).toMatchObject({ bucket: { key: writes }, ms: expect.any(Number) });
    // Reads have their own bucket: untouched by the writes' count.
    await client.resources.resourceGroups.get('capped-1');
    expect((await state(`${prefix(s)}:reads`))?.tokens).toBeGreaterThan(200);
  });

  it('a DELETE takes a slot of the deletes bucket; a count of another kind in its answer goes to that kind’s bucket', async () => {
    // The simulator counts deletes with the writes (ARM keeps them apart) and says so in the writes header.
    sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0, subscriptionBuckets: { writes: { size: 4, refillPerSecond: 0.0002 } } } } });
    const s = sim;
    const { takes, signals, state } = recordedBudget();
    const client = await simClients(s);
    await client.resources.resourceGroups.createOrUpdate('deleted', { location: 'westus' });
    await client.resources.resourceGroups.delete('deleted', { updateIntervalInMs: 5 });
    expect(takes.filter((key) => key === `${prefix(s)}:deletes`)).toHaveLength(1);
    expect(signals).toContainEqual({ key: `${prefix(s)}:writes`, signal: { remaining: 2 } });
    expect((await state(`${prefix(s)}:writes`))?.tokens).toBeLessThanOrEqual(2);
    expect((await state(`${prefix(s)}:deletes`))?.tokens).toBeGreaterThan(190);
  });

  it('a 429 with Retry-After one client saw makes a second client on the same subscription wait; its reads do not', async () => {
    sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0 } } });
    const s = sim;
    const { events } = recordedBudget();
    const sdk = await loadAzureSdk();
    // The first client does not retry: its 429 is its answer. The second is another process's clients.
    const first = azureClientsFrom(sdk, { ...simClientOptions(s, fakeCredential()), retryOptions: { maxRetries: 0 } });
    const second = azureClientsFrom(sdk, simClientOptions(s, fakeCredential()));
    const writes = `${prefix(s)}:writes`;
    s.faults.add({ provider: 'azure', operation: 'resourceGroups.createOrUpdate', throttle: { times: 1, retryAfterSeconds: 2 } });
    const refused = await first.resources.resourceGroups.createOrUpdate('first', { location: 'westus' }).catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ statusCode: 429 });
    expect(events).toContainEqual({ bucket: expect.objectContaining({ key: writes }), kind: 'signal', signal: { throttled: true, retryAfterMs: 2000, remaining: 0 } });
    // A read of the second client goes at once; its write waits out the rest of the Retry-After.
    await second.resources.resourceGroups.get('first').catch(() => undefined);
    expect(events.filter((event) => event.kind === 'wait')).toEqual([]);
    const logged = s.requestLog.entries('azure').length;
    await second.resources.resourceGroups.createOrUpdate('second', { location: 'westus' });
    const waits = events.filter((event) => event.kind === 'wait');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ bucket: { key: writes } });
    // The wait the budget computed, not a measured time: most of the 2 s asked for.
    expect(waits[0]?.ms).toBeGreaterThan(1000);
    // It went once, after its wait, and was not refused.
    expect(s.requestLog.entries('azure').slice(logged).map((entry) => `${entry.operation} ${entry.status}`)).toEqual(['resourceGroups.createOrUpdate 201']);
    await clearAzureAccount(s, second);
  });

  it('a request waiting for its slot ends with its call’s abort signal, and is never sent', async () => {
    sim = await startAzureSim({ providerOptions: { azure: { roleAssignmentLagMs: 0 } } });
    const s = sim;
    const { budget } = recordedBudget();
    const client = await simClients(s);
    const subscription = s.env().AZURE_SUBSCRIPTION_ID ?? '';
    await budget.observe(azureRateBucket(subscription, 'GET'), { throttled: true, retryAfterMs: 600_000 });
    const controller = new AbortController();
    const pending = client.resources.resourceGroups.get('waiting', { abortSignal: controller.signal }).then(
      () => 'answered',
      (error: unknown) => error,
    );
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    expect(s.requestLog.entries('azure')).toEqual([]);
  });

  it('6 concurrent creates under a tight subscription writes bucket: fewer 429s reach the simulator with the budget than without', async () => {
    const run = async (metered: boolean) => {
      // Five writes at once, one every 2.5 real seconds (25 ms here); network operations lock nothing, so every 429 is ARM's.
      const s = await startAzureSim({ providerOptions: { azure: { networkOperationMs: 0, subscriptionBuckets: { writes: { size: 5, refillPerSecond: 0.4 } } } } });
      sim = s;
      configureRateBudget(undefined);
      if (metered) recordedBudget();
      const client = await simClients(s);
      const machines = Array.from({ length: 6 }, () => machine(s, client));
      const results = await Promise.allSettled(machines.map(({ driver }) => driver.create()));
      const log = s.requestLog.entries('azure');
      const throttled = log.filter((entry) => entry.status === 429).length;
      const created = results.filter((result) => result.status === 'fulfilled').length;
      configureRateBudget(undefined);
      await s.close();
      sim = undefined;
      return { throttled, created, requests: log.length };
    };
    const without = await run(false);
    const metered = await run(true);
    console.info(`azure rate budget, 6 concurrent creates: without a budget ${without.throttled} 429s of ${without.requests} requests (${without.created} created), with ${metered.throttled} 429s of ${metered.requests} (${metered.created} created)`);
    expect(without.throttled).toBeGreaterThan(0);
    expect(metered.throttled).toBeLessThan(without.throttled);
  });
});
