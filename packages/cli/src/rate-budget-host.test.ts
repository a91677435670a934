import { configureRateBudget, MemoryRateBucketStore, type ProgressEvent, type RateBucket, type RateBucketState, type RateBucketStore, rateBudget } from '@machine/driver-core';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreRateBudget, useStoreRateBudget } from './rate-budget-host.ts';
import { simTimeScale } from './sim-mode.ts';
import type { Store } from './store.ts';

/** A bucket store that remembers what each update answered (a take's wait, ms). */
class RecordingBuckets implements RateBucketStore {
  readonly inner = new MemoryRateBucketStore();
  readonly results: unknown[] = [];
  failing = false;

  async update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T> {
    if (this.failing) throw new Error('connection terminated');
    const result = await this.inner.update(key, change);
    this.results.push(result);
    return result;
  }
}

/** Only what the budget uses of a store: its root and its buckets (the rest is never called). */
function fakeStore(buckets: RateBucketStore): Store {
  return { root: '/nonexistent-storage', rateBuckets: () => buckets } as unknown as Store;
}

// 1,000 real seconds a token: the second take's wait shows the time scale (1,000 s × scale).
const slow: RateBucket = { key: 'digitalocean:0123456789abcdef', limit: { burst: 1, perSecond: 0.001 } };

/** The wait the second of two takes was given, aborted at once (nothing sleeps). */
async function secondWait(budget: StoreRateBudget, buckets: RecordingBuckets): Promise<unknown> {
  await budget.take(slow);
  const aborted = new AbortController();
  const second = budget.take(slow, aborted.signal);
  await expect.poll(() => buckets.results.length).toBe(2);
  aborted.abort();
  await second.catch(() => {});
  return buckets.results[1];
}

afterEach(() => configureRateBudget(undefined));

describe('the CLI rate budget', () => {
  it("configures the store's budget once per store, registers each machine, and leaves an embedder's budget alone", () => {
    const store = fakeStore(new RecordingBuckets());
    useStoreRateBudget(store, {}, { env: {} });
    const configured = rateBudget();
    expect(configured).toBeInstanceOf(StoreRateBudget);
    useStoreRateBudget(store, { sim: true }, { env: {} });
    expect(rateBudget()).toBe(configured);
    const other = fakeStore(new RecordingBuckets());
    useStoreRateBudget(other, {}, { env: {} });
    expect((rateBudget() as StoreRateBudget).store).toBe(other);

    const embedders = { take: async () => {}, observe: async () => {} };
    configureRateBudget(embedders);
    useStoreRateBudget(store, {}, { env: {} });
    expect(rateBudget()).toBe(embedders);
  });

  it('MACHINE_RATE_BUDGET=off sends requests unmetered', () => {
    const store = fakeStore(new RecordingBuckets());
    useStoreRateBudget(store, {}, { env: {} });
    useStoreRateBudget(store, {}, { env: { MACHINE_RATE_BUDGET: 'off' } });
    expect(rateBudget()).toBeUndefined();
  });

  it("runs at the real clouds' scale, the simulator's for a --sim machine, MACHINE_RATE_TIME_SCALE's when set; a simulator without limits is not metered", async () => {
    const scales: Record<string, number | undefined> = {};
    for (const [name, record, env, sim] of [
      ['real', {}, {}, 0.01],
      ['sim', { sim: true }, {}, 0.01],
      ['env', { sim: true }, { MACHINE_RATE_TIME_SCALE: '0.5' }, 0.01],
      ['kind', { sim: true }, {}, 0],
    ] as const) {
      const buckets = new RecordingBuckets();
      const budget = new StoreRateBudget(fakeStore(buckets), env, async () => sim);
      budget.register(record);
      if (name === 'kind') {
        await budget.take(slow);
        await budget.take(slow);
        expect(buckets.results).toEqual([]);
        continue;
      }
      scales[name] = (await secondWait(budget, buckets)) as number;
    }
    // A token's wait, less the few ms between the two takes.
    expect(scales.real).toBeGreaterThan(990_000);
    expect(scales.real).toBeLessThanOrEqual(1_000_000);
    expect(scales.sim).toBeGreaterThan(9_000);
    expect(scales.sim).toBeLessThanOrEqual(10_000);
    expect(scales.env).toBeGreaterThan(490_000);
    expect(scales.env).toBeLessThanOrEqual(500_000);
  });

  it('says a wait of a second or more in the progress of the machine registered last, once per bucket per 10 s', async () => {
    const buckets = new RecordingBuckets();
    const budget = new StoreRateBudget(fakeStore(buckets), {}, async () => undefined);
    const first: ProgressEvent[] = [];
    const last: ProgressEvent[] = [];
    budget.register({}, (event) => first.push(event));
    budget.register({}, (event) => last.push(event));
    await secondWait(budget, buckets);
    // The third request holds the slot after the second's: a longer wait, within 10 s of the line.
    const aborted = new AbortController();
    const third = budget.take(slow, aborted.signal);
    await expect.poll(() => buckets.results.length).toBe(3);
    aborted.abort();
    await third.catch(() => {});
    expect(buckets.results[0]).toBe(0);
    expect(buckets.results[2]).toBeGreaterThan(1_990_000);
    expect(first).toEqual([]);
    expect(last).toEqual([{ step: 'rate-budget', phase: 'info', message: "Waiting 1000.0 s for digitalocean's shared rate budget (requests of every host on this store)..." }]);
  });

  it('lets a request go unmetered when the bucket store fails, and fails it with one line for a bad MACHINE_RATE_TIME_SCALE', async () => {
    const buckets = new RecordingBuckets();
    buckets.failing = true;
    await new StoreRateBudget(fakeStore(buckets), {}, async () => undefined).take(slow);
    await expect(new StoreRateBudget(fakeStore(new RecordingBuckets()), { MACHINE_RATE_TIME_SCALE: 'fast' }, async () => undefined).take(slow)).rejects.toThrow(
      'MACHINE_RATE_TIME_SCALE must be a positive number (1 = the real clouds, 0.01 = the simulator\'s default), not "fast"',
    );
  });

  it("reads the running simulator's time scale from its state file (0 for the kind profile, 0.01 when it does not say)", async () => {
    const root = await mkdtemp(join(tmpdir(), 'machine-rate-sim-'));
    try {
      expect(await simTimeScale(root)).toBeUndefined();
      await mkdir(join(root, 'sim'));
      const state = (realism?: object) => writeFile(join(root, 'sim', 'state.json'), JSON.stringify({ pid: process.pid, endpoints: {}, ...(realism === undefined ? {} : { realism }) }));
      await state({ profile: 'realistic', timeScale: 0.02 });
      expect(await simTimeScale(root)).toBe(0.02);
      await state({ profile: 'kind', timeScale: 0.01 });
      expect(await simTimeScale(root)).toBe(0);
      await state();
      expect(await simTimeScale(root)).toBe(0.01);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
