import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GoogleOptions, type Sim, startSim } from '@machine/cloud-sim';
import {
  configureRateBudget,
  createMemoryContext,
  MemoryRateBucketStore,
  parseFlags,
  type RateBudget,
  rateBudget,
  SharedRateBudget,
} from '@machine/driver-core';
import { RecordingBudget } from '@machine/driver-core/testing';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ComputeClients, createComputeClients } from './google-clients.ts';
import { parseEndpoint } from './google-flags.ts';
import google, { googleFlags, googleRateBucket, googleRateGroup, isGoogleRateLimitAnswer, meterAuthClient } from './index.ts';

const project = 'rate-project-1';
const zone = 'us-central1-a';

let sim: Sim;
const knobs: GoogleOptions = {};
let root: string;
let counter = 0;

/** Real `@google-cloud/compute` clients (REST transport, each with its own OAuth2Client) pointed at the simulator. */
function simClients(): Promise<ComputeClients> {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'sim-token', expiry_date: Date.now() + 3600_000 });
  return createComputeClients({
    endpoint: parseEndpoint(sim.endpoints.google ?? ''),
    authClient: auth,
    projectId: project,
    retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 20, budgetMs: 5000 },
    pollIntervalMs: 10,
  });
}

function config() {
  return parseFlags(googleFlags, { 'google-project': project, 'google-endpoint': sim.endpoints.google, 'google-ssh-port': sim.sshPort, 'google-wait-timeout': 10 }, { env: {} });
}

function machine(client: ComputeClients, name = `rate-${++counter}`) {
  const context = createMemoryContext(name, join(root, name));
  return { driver: google.createDriver({ config: config(), context, client }), context, name };
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

function rateLimitedAtSimulator(): number {
  return sim.requestLog.entries('google').filter((entry) => entry.status === 403 || entry.status === 429).length;
}

beforeAll(async () => {
  sim = await startSim({ providers: ['google'], providerOptions: { google: knobs } });
  root = await mkdtemp(join(tmpdir(), 'google-rate-'));
});

afterAll(async () => {
  await sim.close();
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  configureRateBudget(undefined);
  sim.faults.clear();
  delete knobs.rateQuotas;
});

describe('google rate buckets', () => {
  it('puts each Compute call in its per-minute quota group, and nothing else', () => {
    const base = `http://127.0.0.1:1/compute/v1/projects/${project}`;
    expect(googleRateGroup('GET', `${base}/zones/${zone}/instances/web`)).toEqual({ project, group: 'read' });
    expect(googleRateGroup('GET', new URL(`${base}/aggregated/instances?maxResults=500`))).toEqual({ project, group: 'read' });
    expect(googleRateGroup('POST', `${base}/zones/${zone}/instances`)).toEqual({ project, group: 'write' });
    expect(googleRateGroup('DELETE', `${base}/global/firewalls/docker-machines`)).toEqual({ project, group: 'write' });
    expect(googleRateGroup('POST', `${base}/zones/${zone}/operations/operation-1/wait`)).toEqual({ project, group: 'operationRead' });
    expect(googleRateGroup('GET', `${base}/global/operations/operation-1`)).toEqual({ project, group: 'operationRead' });
    expect(googleRateGroup('POST', 'https://oauth2.googleapis.com/token')).toBeUndefined();
    expect(googleRateBucket(project, 'write')).toEqual({ key: `google:${project}:write`, limit: { burst: 300, perSecond: 20 } });
  });

  it('reads Compute Engine’s rate-limit answers, not its other refusals', () => {
    expect(isGoogleRateLimitAnswer(403, { error: { errors: [{ reason: 'rateLimitExceeded' }] } })).toBe(true);
    expect(isGoogleRateLimitAnswer(403, '{"error":{"status":"PERMISSION_DENIED","errors":[{"reason":"userRateLimitExceeded"}]}}')).toBe(true);
    expect(isGoogleRateLimitAnswer(429, undefined)).toBe(true);
    expect(isGoogleRateLimitAnswer(403, { error: { errors: [{ reason: 'forbidden' }] } })).toBe(false);
    expect(isGoogleRateLimitAnswer(404, 'rateLimitExceeded')).toBe(false);
  });

  it('leaves an auth client without a gaxios transporter as it is', () => {
    const bare = { getRequestHeaders: async () => ({}) };
    expect(meterAuthClient(bare)).toBe(bare);
  });
});

describe('google with a shared rate budget, against the simulator', () => {
  it('every request sent takes one slot: create, a fleet listing (REST, outside the client library), remove, throttled retries and operation polls included', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    const clients = await simClients();
    // Two 429s on the insert: the driver's retry loop sends it three times.
    sim.faults.add({ provider: 'google', operation: 'instances.insert', throttle: { times: 2 } });
    const { driver, context, name } = machine(clients);
    sim.requestLog.clear();
    await driver.create();
    const states = await google.getStates?.([{ context, config: config() }]);
    expect(states?.get(name)).toMatchObject({ state: 'Running' });
    await driver.remove();
    const sent = sim.requestLog.entries('google');
    expect(sim.requestLog.count('instances.insert', 'google')).toBe(3);
    expect(sim.requestLog.count('instances.aggregatedList', 'google')).toBeGreaterThanOrEqual(1);
    expect(sim.requestLog.count('zoneOperations.wait', 'google')).toBeGreaterThanOrEqual(1);
    expect(budget.takes).toHaveLength(sent.length);
    const groups = { read: 0, write: 0, operationRead: 0 };
    for (const bucket of budget.takes) groups[bucket.key.slice(`google:${project}:`.length) as keyof typeof groups]++;
    expect(groups.operationRead).toBe(sim.requestLog.count('zoneOperations.wait', 'google') + sim.requestLog.count('globalOperations.wait', 'google'));
    expect(groups.read + groups.write + groups.operationRead).toBe(sent.length);
    expect(budget.observed.map(({ bucket, signal }) => [bucket.key, signal.throttled])).toEqual([
      [`google:${project}:write`, true],
      [`google:${project}:write`, true],
    ]);
    console.info(`google: ${sent.length} requests sent, ${budget.takes.length} slots taken (${JSON.stringify(groups)})`);
    expect(sim.leaks()).toEqual([]);
  });

  it('a 403 rateLimitExceeded one client meets makes a later request of another client of the project wait', async () => {
    // Real-cloud time: a throttle without Retry-After blocks the bucket for a second.
    const budget = new RecordingBudget(1);
    configureRateBudget(budget);
    // One read per window of 6 s (ten minutes × 0.01): the second read is refused.
    knobs.rateQuotas = { limit: 1, windowMs: 600_000, groups: ['read'] };
    // Both clients first: building one takes longer than the block lasts.
    const [first, second] = await Promise.all([simClients(), simClients()]);
    expect(await rejection(first.instances.get({ project, zone, instance: 'absent-1' }))).toMatchObject({ code: 5 });
    const throttled = await rejection(first.instances.get({ project, zone, instance: 'absent-1' }));
    expect(String(throttled)).toMatch(/Quota exceeded/);
    expect(sim.requestLog.entries('google').at(-1)?.status).toBe(403);
    const key = `google:${project}:read`;
    expect(budget.observed.map(({ bucket, signal }) => [bucket.key, signal.throttled])).toEqual([[key, true]]);
    expect(budget.events.filter((event) => event.kind === 'wait')).toEqual([]);

    // Another client (its own auth client and transport), same project and group: it waits for the
    // next minute before it sends; the call's deadline ends the wait (the simulator is not asked).
    const sent = sim.requestLog.entries('google').length;
    const deadlined = await rejection(second.instances.get({ project, zone, instance: 'absent-2' }, { timeout: 200 }));
    expect(String(deadlined)).toMatch(/Deadline exceeded/i);
    expect(sim.requestLog.entries('google')).toHaveLength(sent);
    const waits = budget.events.filter((event) => event.kind === 'wait');
    expect(waits.map((event) => event.bucket.key)).toEqual([key]);
    expect(waits[0]?.ms).toBeGreaterThan(0);

    // Another group of the project (a write) is not blocked.
    await rejection(second.firewalls.delete({ project, firewall: 'absent-rule' }));
    expect(budget.events.filter((event) => event.kind === 'wait')).toHaveLength(1);
    expect(budget.takes.at(-1)?.key).toBe(`google:${project}:write`);
  });

  it('ten concurrent creates under a tight write quota meet fewer rate limits with the budget than without', async () => {
    // One set of clients for both runs, warmed by a create and a remove: a first call of each method costs CPU.
    const clients = await simClients();
    const warm = machine(clients);
    await warm.driver.create();
    await warm.driver.remove();
    const run = async (budget: RateBudget | undefined): Promise<{ limited: number; created: number }> => {
      configureRateBudget(budget);
      // A new knob object starts new windows: 2 writes per 600 ms window (a minute × 0.01).
      knobs.rateQuotas = { limit: 2, groups: ['write'] };
      const fleet = Array.from({ length: 10 }, () => machine(clients));
      sim.requestLog.clear();
      const results = await Promise.allSettled(fleet.map(({ driver }) => driver.create()));
      const limited = rateLimitedAtSimulator();
      delete knobs.rateQuotas;
      const made = fleet.filter((_, index) => results[index]?.status === 'fulfilled');
      await Promise.all(fleet.map(({ driver }) => driver.remove()));
      return { limited, created: made.length };
    };
    const without = await run(undefined);
    const withBudget = await run(new SharedRateBudget(new MemoryRateBucketStore(), { timeScale: 0.01 }));
    console.info(
      `google, 10 concurrent creates, 2 writes per 600 ms window: ${without.limited} rateLimitExceeded without a budget (${without.created} created), ${withBudget.limited} with (${withBudget.created} created)`,
    );
    expect(withBudget.limited).toBeLessThan(without.limited);
    expect(sim.leaks()).toEqual([]);
  });

  it('with no budget configured requests go out as before', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    configureRateBudget(undefined);
    expect(rateBudget()).toBeUndefined();
    const clients = await simClients();
    sim.requestLog.clear();
    expect(await rejection(clients.instances.get({ project, zone, instance: 'absent-3' }))).toMatchObject({ code: 5 });
    expect(sim.requestLog.entries('google')).toHaveLength(1);
    expect(budget.takes).toEqual([]);
  });
});
