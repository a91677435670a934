import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import {
  CancelledError,
  configureRateBudget,
  createMemoryContext,
  parseFlags,
  type RateBudget,
  State,
} from '@machine/driver-core';
import { RecordingBudget } from '@machine/driver-core/testing';
import type { Middleware } from '@microsoft/kiota-http-fetchlibrary';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { RateBudgetHandler } from './digitalocean-rate-budget.ts';
import { createDigitalOceanClient, createDigitalOceanDescriptor, digitalOceanRateBucket, digitalOceanRateLimit, rateSignalOf, windowRateLimit, withRequestSignal } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { machineRoot, simFlags, simMachine, simToken, startDigitalOceanSim } from './test-support/sim-harness.ts';

afterEach(() => {
  configureRateBudget(undefined);
});

describe('digitalOceanRateBucket and rateSignalOf', () => {
  it('keys the bucket by the token (never in clear), never more than DigitalOcean’s 250 in a minute', () => {
    const bucket = digitalOceanRateBucket('dop_v1_secret');
    expect(bucket.key).toMatch(/^digitalocean:[0-9a-f]{16}$/);
    expect(bucket.key).not.toContain('secret');
    expect(digitalOceanRateBucket('dop_v1_secret').key).toBe(bucket.key);
    expect(digitalOceanRateBucket('dop_v1_other').key).not.toBe(bucket.key);
    // 250 a minute, whichever minute one looks at: 25 at once, 225 spread over it.
    expect(bucket.limit).toEqual({ burst: 25, perSecond: 225 / 60 });
    expect(windowRateLimit(30, 60_000)).toEqual({ burst: 3, perSecond: 27 / 60 });
  });

  it('reads a throttle, Retry-After, and a spent window with its reset; leaves out what cannot matter or would block too long', () => {
    const now = 1_700_000_000_000;
    const headers = (values: Record<string, string>) => new Headers(values);
    expect(rateSignalOf(429, headers({ 'retry-after': '2', 'ratelimit-remaining': '4000' }), digitalOceanRateLimit, 90_000, now)).toEqual({ throttled: true, retryAfterMs: 2_000 });
    expect(rateSignalOf(200, headers({ 'ratelimit-remaining': '4999', 'ratelimit-reset': '1700003600' }), digitalOceanRateLimit, 90_000, now)).toEqual({});
    expect(rateSignalOf(200, headers({ 'ratelimit-remaining': '12' }), digitalOceanRateLimit, 90_000, now)).toEqual({ remaining: 12 });
    expect(rateSignalOf(200, headers({ 'ratelimit-remaining': '120' }), digitalOceanRateLimit, 90_000, now)).toEqual({});
    expect(rateSignalOf(200, headers({ 'ratelimit-remaining': '0', 'ratelimit-reset': '1700000030' }), digitalOceanRateLimit, 90_000, now)).toEqual({ remaining: 0, resetAt: 1_700_000_030_000 });
    // The hourly window spent for 50 more minutes: the retry handler says so; the bucket does not hang every process.
    expect(rateSignalOf(429, headers({ 'ratelimit-remaining': '0', 'ratelimit-reset': '1700003000' }), digitalOceanRateLimit, 90_000, now)).toEqual({ throttled: true, remaining: 0 });
  });

  it('without a configured budget, hands the request on as it is (the same promise: no wait, no await)', () => {
    const sent = Promise.resolve(new Response('{}'));
    const next: Middleware = { next: undefined, execute: () => sent };
    const handler = new RateBudgetHandler(digitalOceanRateBucket(simToken), 90_000);
    handler.next = next;
    expect(handler.execute('http://127.0.0.1/v2/regions', { method: 'GET' })).toBe(sent);
  });
});

describe('the shared rate budget in the dots client (simulator)', () => {
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

  const endpoint = (): string => {
    const url = sim.endpoints.digitalocean;
    if (url === undefined) throw new Error('the simulator has no DigitalOcean endpoint');
    return url;
  };

  it('(a) every request the driver sends takes a slot of its token’s bucket, retries included', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    const { driver, config, context } = simMachine(sim, root.path, { 'digitalocean-firewall': true });
    sim.requestLog.clear();
    sim.faults.add({ provider: 'digitalocean', operation: 'regions.list', throttle: { times: 1, retryAfterSeconds: 0, resetSeconds: 0 } });
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.get', error: 'unavailable', retryAfterSeconds: 0, times: 2 });
    await driver.preCreateCheck();
    await driver.create();
    await driver.stop();
    await driver.start();
    const states = await createDigitalOceanDescriptor({ timings: fastTimings }).getStates?.([{ config: config as DigitalOceanConfig, context }]);
    expect(states?.get(context.machineName)).toMatchObject({ state: State.Running });
    await driver.remove();
    const sent = sim.requestLog.entries('digitalocean');
    // The retried attempts reached the simulator, each with its own slot.
    expect(sent.filter((entry) => entry.status === 429)).toHaveLength(1);
    expect(sent.filter((entry) => entry.status === 503)).toHaveLength(2);
    expect(sent.length).toBeGreaterThan(10);
    expect(budget.takenKeys()).toHaveLength(sent.length);
    expect(new Set(budget.takenKeys())).toEqual(new Set([digitalOceanRateBucket(simToken).key]));
    expect(budget.observed.map((entry) => entry.signal)).toContainEqual(expect.objectContaining({ throttled: true }));
  });

  it('(b) a 429 with Retry-After one client saw makes the next request of another client on the same token wait; another token does not', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    const first = await createDigitalOceanClient({ token: simToken, apiUrl: endpoint(), retry: { maxRetries: 0 } });
    const second = await createDigitalOceanClient({ token: simToken, apiUrl: endpoint(), retry: fastTimings.retry });
    const otherToken = await createDigitalOceanClient({ token: 'dop_v1_another_account', apiUrl: endpoint(), retry: fastTimings.retry });
    sim.faults.add({ provider: 'digitalocean', operation: 'regions.list', throttle: { times: 1, retryAfterSeconds: 1, resetSeconds: 1 } });
    await expect(first.v2.regions.get()).rejects.toMatchObject({ responseStatusCode: 429 });
    const bucket = digitalOceanRateBucket(simToken).key;
    expect(budget.events).toEqual([expect.objectContaining({ kind: 'signal', signal: expect.objectContaining({ throttled: true, retryAfterMs: 1_000 }) })]);

    await otherToken.v2.regions.get();
    expect(budget.events.filter((event) => event.kind === 'wait')).toEqual([]);

    const answer = await second.v2.regions.get();
    expect(answer?.regions?.length).toBeGreaterThan(0);
    const waits = budget.events.filter((event) => event.kind === 'wait');
    expect(waits).toHaveLength(1);
    expect(waits[0]?.bucket.key).toBe(bucket);
    // Blocked for what is left of the server's second, then one slot at the halved rate (a few ms
    // at the simulator's scale): the budget's own reckoning, not a clock reading.
    expect(waits[0]?.ms).toBeGreaterThan(0);
    expect(waits[0]?.ms).toBeLessThanOrEqual(1_000 + Math.ceil(1_000 / ((digitalOceanRateBucket(simToken).limit.perSecond * 0.5) / 0.01)));
    expect(sim.requestLog.entries('digitalocean').at(-1)?.status).toBe(200);
  });

  it('a driver operation’s abort signal cancels its wait for a slot, and nothing is sent', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    const bucket = digitalOceanRateBucket(simToken);
    await budget.observe(bucket, { throttled: true, retryAfterMs: 60_000 });
    const client = await createDigitalOceanClient({ token: simToken, apiUrl: endpoint(), retry: fastTimings.retry });
    const controller = new AbortController();
    const before = sim.requestLog.total;
    const call = withRequestSignal(controller.signal, () => client.v2.regions.get());
    setTimeout(() => controller.abort(), 20);
    await expect(call).rejects.toBeInstanceOf(CancelledError);
    expect(sim.requestLog.total).toBe(before);
    expect(budget.takenKeys()).toHaveLength(1);
  });

  it('(d) 20 concurrent creates under a burst limit of 30: all succeed, and the simulator answers far fewer 429s with the budget', async () => {
    const timings = { ...fastTimings, retry: { baseDelayMs: 5, maxDelayMs: 2_000, maxRetries: 8 } };
    const run = async (label: string, budget: RateBudget | undefined): Promise<{ throttled: number; requests: number; failed: number }> => {
      // Droplets take 300 ms to boot: the creates poll meanwhile, well over 30 requests a window together.
      const limited = await startDigitalOceanSim({ digitalocean: { burstLimit: 30 }, delays: { pendingMs: 300, stoppingMs: 10 } });
      configureRateBudget(budget);
      try {
        const descriptor = createDigitalOceanDescriptor({ timings });
        const machines = Array.from({ length: 20 }, (_, index) => {
          const name = `burst-${label}-${index}`;
          const context = createMemoryContext(name, join(root.path, name));
          const config = parseFlags(descriptor.flags, simFlags(limited), { env: {} }) as DigitalOceanConfig;
          return descriptor.createDriver({ config, context });
        });
        const created = await Promise.allSettled(machines.map((driver) => driver.create()));
        const sent = limited.requestLog.entries('digitalocean');
        const result = { throttled: sent.filter((entry) => entry.status === 429).length, requests: sent.length, failed: created.filter((outcome) => outcome.status === 'rejected').length };
        await Promise.allSettled(machines.map((driver) => driver.remove()));
        expect(limited.leaks()).toEqual([]);
        return result;
      } finally {
        configureRateBudget(undefined);
        await limited.close();
      }
    };
    // The simulated limit is 30 a (scaled) minute, not DigitalOcean's 250: the budget that knows the
    // provider's limit, as the driver's bucket knows DigitalOcean's, is the one told 30 the same way
    // (windowRateLimit). The driver's own bucket (250) learns only from 429s; its number is reported.
    const simulatedLimit = windowRateLimit(30, 60_000);
    const knowing = new RecordingBudget(0.01);
    const toldTheLimit: RateBudget = {
      take: (bucket, signal) => knowing.take({ ...bucket, limit: simulatedLimit }, signal),
      observe: (bucket, signal) => knowing.observe({ ...bucket, limit: simulatedLimit }, signal),
    };
    const without = await run('none', undefined);
    const own = await run('own', new RecordingBudget(0.01));
    const told = await run('told', toldTheLimit);
    console.info(
      `20 concurrent creates, simulated burst limit 30: 429s answered without a budget ${without.throttled} (of ${without.requests} requests, ${without.failed} creates failed); ` +
        `with the driver's 250/min bucket ${own.throttled} (of ${own.requests}, ${own.failed} failed); with a budget that knows the limit ${told.throttled} (of ${told.requests}, ${told.failed} failed)`,
    );
    expect(own.failed).toBe(0);
    expect(told.failed).toBe(0);
    expect(without.throttled).toBeGreaterThan(0);
    expect(told.throttled).toBeLessThan(without.throttled);
    expect(new Set(knowing.takenKeys())).toEqual(new Set([digitalOceanRateBucket(simToken).key]));
    expect(knowing.events.some((event) => event.kind === 'wait')).toBe(true);
  }, 120_000);
});

describe('ratelimit-remaining: 0 (loopback server, real dots client)', () => {
  it('(c) blocks the bucket until ratelimit-reset', async () => {
    const arrivals: number[] = [];
    let resetSeconds = 0;
    const server = createServer((request, response) => {
      arrivals.push(Date.now());
      const first = arrivals.length === 1;
      if (first) resetSeconds = Math.floor(Date.now() / 1000) + 2;
      response.writeHead(200, {
        'content-type': 'application/json',
        'ratelimit-limit': '5000',
        'ratelimit-remaining': first ? '0' : '4998',
        'ratelimit-reset': String(first ? resetSeconds : resetSeconds + 3600),
      });
      response.end(JSON.stringify({ regions: [{ slug: 'nyc3', name: 'New York 3', available: true, sizes: [] }], links: {}, meta: { total: 1 } }));
      void request;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const budget = new RecordingBudget(0.01);
      configureRateBudget(budget);
      const client = await createDigitalOceanClient({ token: 'dop_v1_loopback', apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, retry: fastTimings.retry });
      await client.v2.regions.get();
      expect(budget.observed[0]?.signal).toEqual({ remaining: 0, resetAt: resetSeconds * 1000 });
      await client.v2.regions.get();
      expect(budget.events.filter((event) => event.kind === 'wait')).toHaveLength(1);
      // Not sent before the reset (a lower bound: a slow machine only makes it later; 10 ms for timer rounding).
      expect(arrivals[1]).toBeGreaterThanOrEqual(resetSeconds * 1000 - 10);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
