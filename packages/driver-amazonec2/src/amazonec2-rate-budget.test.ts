import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { type AmazonEC2Realism, type Sim, startSim } from '@machine/cloud-sim';
import {
  accountFingerprint,
  configureRateBudget,
  createMemoryContext,
  MemoryRateBucketStore,
  parseFlags,
  type RateBudget,
  rateBudget,
  SharedRateBudget,
} from '@machine/driver-core';
import { RecordingBudget } from '@machine/driver-core/testing';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addRateBudgetMiddleware, amazonEC2Flags, amazonEC2RateBucket, amazonEC2RateCategory, createAmazonEC2Descriptor, isAmazonEC2Throttle } from './index.ts';

const region = 'eu-west-3';
const credentials = { accessKeyId: 'AKIDRATEBUDGET000001', secretAccessKey: 'rate-budget-secret' };
const tuning = {
  waiterDelays: { minDelay: 0.02, maxDelay: 0.1 },
  sshPoll: { interval: 20, maxInterval: 100 },
  dependencyTimeout: 2000,
  visibilityTimeout: 500,
};
const descriptor = createAmazonEC2Descriptor({ ...tuning, clientOverrides: { retryStrategy: new ConfiguredRetryStrategy(3, 10) } });

let sim: Sim;
const knobs: AmazonEC2Realism = {};
let root: string;
let counter = 0;
const clients: EC2Client[] = [];

beforeAll(async () => {
  sim = await startSim({ providers: ['amazonec2'], providerOptions: { amazonec2: knobs } });
  root = await mkdtemp(join(tmpdir(), 'amazonec2-rate-'));
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await sim.close();
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  configureRateBudget(undefined);
  sim.faults.clear();
  for (const key of Object.keys(knobs)) delete knobs[key as keyof AmazonEC2Realism];
  for (const leak of sim.leaks()) {
    const instance = sim.store.getInstance(leak.provider, leak.id);
    if (instance !== undefined) void sim.lifecycle.terminate(instance);
    else sim.store.deleteResource(leak.provider, leak.kind, leak.id);
  }
});

function machine(driverDescriptor = descriptor, name = `rb${++counter}`) {
  const context = createMemoryContext(name, join(root, name));
  const config = parseFlags(
    amazonEC2Flags,
    {
      'amazonec2-endpoint': sim.endpoints.amazonec2,
      'amazonec2-access-key': credentials.accessKeyId,
      'amazonec2-secret-key': credentials.secretAccessKey,
      'amazonec2-region': region,
      'amazonec2-ssh-port': sim.sshPort,
      'amazonec2-wait-timeout': 10,
    },
    { env: {} },
  );
  return { driver: driverDescriptor.createDriver({ config, context }), context };
}

/** A raw SDK client metered as the driver meters its own. */
function meteredClient(keys = credentials): EC2Client {
  const client = new EC2Client({ region, endpoint: sim.endpoints.amazonec2, credentials: keys, maxAttempts: 1 });
  addRateBudgetMiddleware(client);
  clients.push(client);
  return client;
}

function throttlesAtSimulator(): number {
  return sim.requestLog.entries('amazonec2').filter((entry) => entry.status === 503).length;
}

describe('amazonec2 rate buckets', () => {
  it('sorts actions into EC2’s throttling categories', () => {
    expect(amazonEC2RateCategory('DescribeInstances', { Filters: [{ Name: 'instance-id', Values: ['i-1'] }] })).toBe('non-mutating');
    expect(amazonEC2RateCategory('DescribeInstances', {})).toBe('unfiltered');
    expect(amazonEC2RateCategory('DescribeVpcs', { NextToken: 'x', Filters: [] })).toBe('unfiltered');
    expect(amazonEC2RateCategory('RunInstances')).toBe('launch');
    expect(amazonEC2RateCategory('StartInstances')).toBe('launch');
    expect(amazonEC2RateCategory('TerminateInstances')).toBe('resource-intensive');
    expect(amazonEC2RateCategory('AuthorizeSecurityGroupIngress')).toBe('resource-intensive');
    expect(amazonEC2RateCategory('ImportKeyPair')).toBe('mutating');
    expect(amazonEC2RateCategory('DeleteSecurityGroup')).toBe('mutating');
  });

  it('keys a bucket by account fingerprint, region and category, never the credential in clear', () => {
    const bucket = amazonEC2RateBucket(credentials.accessKeyId, region, 'RunInstances');
    expect(bucket.key).toBe(`amazonec2:${accountFingerprint(credentials.accessKeyId)}:${region}:launch`);
    expect(bucket.key).not.toContain(credentials.accessKeyId);
    expect(bucket.limit).toEqual({ burst: 50, perSecond: 2 });
    expect(amazonEC2RateBucket(credentials.accessKeyId, region, 'GetParameter', {}, 'ssm').key).toMatch(/:ssm$/);
    expect(amazonEC2RateBucket(credentials.accessKeyId, 'us-east-1', 'RunInstances').key).not.toBe(bucket.key);
  });

  it('reads EC2’s and SSM’s throttles from SDK errors', () => {
    expect(isAmazonEC2Throttle({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isAmazonEC2Throttle({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })).toBe(true);
    expect(isAmazonEC2Throttle({ name: 'Unavailable', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isAmazonEC2Throttle({ name: 'InvalidInstanceID.NotFound', $metadata: { httpStatusCode: 400 } })).toBe(false);
    expect(isAmazonEC2Throttle(undefined)).toBe(false);
  });
});

describe('amazonec2 with a shared rate budget, against the simulator', () => {
  it('every request the SDK sends takes one slot: a create and a remove, SDK retries of a throttle and waiter polls included', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    // Two throttles of RunInstances: the SDK's retry middleware sends it three times.
    sim.faults.add({ provider: 'amazonec2', operation: 'RunInstances', throttle: { times: 2 } });
    const { driver } = machine();
    sim.requestLog.clear();
    await driver.create();
    await driver.remove();
    const sent = sim.requestLog.entries('amazonec2');
    expect(sim.requestLog.count('RunInstances', 'amazonec2')).toBe(3);
    expect(sim.requestLog.count('DescribeInstances', 'amazonec2')).toBeGreaterThanOrEqual(1);
    expect(budget.takes).toHaveLength(sent.length);
    const fingerprint = accountFingerprint(credentials.accessKeyId);
    for (const bucket of budget.takes) expect(bucket.key).toMatch(new RegExp(`^amazonec2:${fingerprint}:${region}:[a-z-]+$`));
    expect(budget.takes.filter((bucket) => bucket.key.endsWith(':launch'))).toHaveLength(3);
    expect(budget.takes.filter((bucket) => bucket.key.endsWith(':ssm'))).toHaveLength(sim.requestLog.count('ssm:GetParameter', 'amazonec2'));
    expect(budget.observed).toEqual([
      { bucket: expect.objectContaining({ key: `amazonec2:${fingerprint}:${region}:launch` }), signal: { throttled: true } },
      { bucket: expect.objectContaining({ key: `amazonec2:${fingerprint}:${region}:launch` }), signal: { throttled: true } },
    ]);
    console.info(`amazonec2: ${sent.length} requests sent, ${budget.takes.length} slots taken`);
    expect(sim.leaks()).toEqual([]);
  });

  it('a throttle one client meets makes a later request of another client on the same account wait; another account does not', async () => {
    // Real-cloud time: a throttle without Retry-After blocks the bucket for a second.
    const budget = new RecordingBudget(1);
    configureRateBudget(budget);
    knobs.requestBuckets = { size: 1, refillPerSecond: 0.001, actions: ['DescribeVpcs'] };
    const first = meteredClient();
    await first.send(new DescribeVpcsCommand({}));
    const throttled = await first.send(new DescribeVpcsCommand({})).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((throttled as Error).name).toBe('RequestLimitExceeded');
    const key = `amazonec2:${accountFingerprint(credentials.accessKeyId)}:${region}:unfiltered`;
    expect(budget.events.filter((event) => event.kind === 'signal').map((event) => event.bucket.key)).toEqual([key]);
    expect(budget.events.filter((event) => event.kind === 'wait')).toEqual([]);

    // A second client of the same account, another action of the same category: it waits out the block.
    await meteredClient().send(new DescribeSubnetsCommand({}));
    const waits = budget.events.filter((event) => event.kind === 'wait');
    expect(waits.map((event) => event.bucket.key)).toEqual([key]);
    expect(waits[0]?.ms).toBeGreaterThan(0);

    // Another account's bucket is its own.
    const other = { accessKeyId: 'AKIDRATEBUDGET000002', secretAccessKey: 'other-secret' };
    await meteredClient(other).send(new DescribeSubnetsCommand({}));
    expect(budget.events.filter((event) => event.kind === 'wait')).toHaveLength(1);
    expect(budget.takes.at(-1)?.key).toBe(`amazonec2:${accountFingerprint(other.accessKeyId)}:${region}:unfiltered`);
  });

  it('ten concurrent creates under a tight request bucket meet fewer throttles with the budget than without', async () => {
    // The driver's default six attempts (--amazonec2-retries 5), 10 ms apart.
    const patient = createAmazonEC2Descriptor({ ...tuning, clientOverrides: { retryStrategy: new ConfiguredRetryStrategy(6, 10) } });
    // Warm: a first create loads and compiles what every later one uses.
    const warm = machine(patient);
    await warm.driver.create();
    await warm.driver.remove();
    const run = async (budget: RateBudget | undefined): Promise<{ throttles: number; created: number }> => {
      configureRateBudget(budget);
      // A new knob object: the simulator's buckets start full. Two tokens, 20 a second, per action:
      // a hundredth of EC2's scaled limits, within what a budget can slow down to after throttles.
      knobs.requestBuckets = { size: 2, refillPerSecond: 20, actions: ['ImportKeyPair', 'RunInstances'] };
      const fleet = Array.from({ length: 10 }, () => machine(patient));
      sim.requestLog.clear();
      const results = await Promise.allSettled(fleet.map(({ driver }) => driver.create()));
      const throttles = throttlesAtSimulator();
      delete knobs.requestBuckets;
      const made = fleet.filter((_, index) => results[index]?.status === 'fulfilled');
      await Promise.all(made.map(({ driver }) => driver.remove()));
      return { throttles, created: made.length };
    };
    const without = await run(undefined);
    const withBudget = await run(new SharedRateBudget(new MemoryRateBucketStore(), { timeScale: 0.01 }));
    console.info(
      `amazonec2, 10 concurrent creates, 2-token buckets at 20/s: ${without.throttles} RequestLimitExceeded without a budget (${without.created} created), ${withBudget.throttles} with (${withBudget.created} created)`,
    );
    expect(withBudget.throttles).toBeLessThan(without.throttles);
    expect(sim.leaks()).toEqual([]);
  });

  it('with no budget configured the middleware only passes requests on', async () => {
    const budget = new RecordingBudget(0.01);
    configureRateBudget(budget);
    configureRateBudget(undefined);
    expect(rateBudget()).toBeUndefined();
    const client = meteredClient();
    sim.requestLog.clear();
    const answer = await client.send(new DescribeVpcsCommand({}));
    expect(answer.Vpcs?.length).toBeGreaterThan(0);
    expect(sim.requestLog.entries('amazonec2')).toHaveLength(1);
    expect(budget.takes).toEqual([]);
  });
});
