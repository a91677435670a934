import { describe, expect, it } from 'vitest';
import { CancelledError } from './errors/cancelled-error.ts';
import {
  accountFingerprint,
  applySignal,
  configureRateBudget,
  MemoryRateBucketStore,
  type RateBucket,
  type RateBudgetEvent,
  type RateBucketState,
  rateBudget,
  reserveSlot,
  retryAfterMs,
  SharedRateBudget,
} from './rate-budget.ts';

const limit = { burst: 3, perSecond: 10 };

/** Takes `count` slots at the same instant and returns each one's wait. */
function waits(count: number, start: RateBucketState | undefined, now: number, scale = { timeScale: 1 }): { waits: number[]; state: RateBucketState | undefined } {
  let state = start;
  const result: number[] = [];
  for (let i = 0; i < count; i++) {
    const reserved = reserveSlot(state, now, limit, scale);
    state = reserved.state;
    result.push(reserved.waitMs);
  }
  return { waits: result, state };
}

describe('reserveSlot', () => {
  it('lets a full bucket burst, then lines takers up one refill apart', () => {
    expect(waits(6, undefined, 1_000).waits).toEqual([0, 0, 0, 100, 200, 300]);
  });

  it('refills with time, never above the burst', () => {
    const { state } = waits(3, undefined, 0);
    expect(waits(2, state, 150).waits).toEqual([0, 50]);
    expect(waits(4, state, 60_000).waits).toEqual([0, 0, 0, 100]);
  });

  it('runs a simulator limit faster by its time scale', () => {
    expect(waits(5, undefined, 0, { timeScale: 0.01 }).waits).toEqual([0, 0, 0, 1, 2]);
  });
});

describe('applySignal', () => {
  it('blocks a throttled bucket for Retry-After and halves its rate', () => {
    const throttled = applySignal(undefined, 0, limit, { throttled: true, retryAfterMs: 2_000 });
    expect(throttled.blockedUntil).toBe(2_000);
    expect(throttled.factor).toBe(0.5);
    // The block, then a half-rate refill (200 ms a token instead of 100): nothing was saved up during the block.
    expect(reserveSlot(throttled, 500, limit).waitMs).toBe(1_700);
    expect(reserveSlot(throttled, 2_100, limit).waitMs).toBe(100);
    // Not blocked, the emptied bucket at half rate gives a slot every 200 ms instead of 100.
    const { waits: halved } = waits(2, applySignal(undefined, 0, limit, { throttled: true, retryAfterMs: 0 }), 0);
    expect(halved).toEqual([200, 400]);
  });

  it('waits a scaled second after a throttle that gives no Retry-After', () => {
    expect(applySignal(undefined, 0, limit, { throttled: true }).blockedUntil).toBe(1_000);
    expect(applySignal(undefined, 0, limit, { throttled: true }, { timeScale: 0.01 }).blockedUntil).toBe(10);
  });

  it('blocks a throttle of a windowed quota until the next window starts, scaled', () => {
    expect(applySignal(undefined, 90_000, limit, { throttled: true, windowMs: 60_000 }).blockedUntil).toBe(120_000);
    expect(applySignal(undefined, 1_250, limit, { throttled: true, windowMs: 60_000 }, { timeScale: 0.01 }).blockedUntil).toBe(1_800);
    expect(applySignal(undefined, 90_000, limit, { throttled: true, windowMs: 60_000, retryAfterMs: 5_000 }).blockedUntil).toBe(95_000);
  });

  it('grows a throttled rate and burst back to the full limit over five minutes, counted from the end of the block', () => {
    let state = applySignal(undefined, 0, limit, { throttled: true });
    state = applySignal(state, 0, limit, { throttled: true });
    expect(state.factor).toBe(0.25);
    // Counted from the end of the block (1 s): not back to full rate the moment a long Retry-After ends.
    expect(reserveSlot(state, 1_000, limit).state.factor).toBe(0.25);
    expect(reserveSlot(state, 151_000, limit).state.factor).toBeCloseTo(0.75);
    expect(reserveSlot(state, 400_000, limit).state.factor).toBe(1);
    // A quarter of the rate keeps a quarter of the burst: after a long quiet, one goes at once, not three.
    const quiet = waits(3, { tokens: 0, at: 0, blockedUntil: 0, factor: 0.25 }, 10_000).waits;
    expect(quiet[0]).toBe(0);
    expect(quiet[1]).toBeGreaterThan(0);
    expect(waits(3, { ...state, blockedUntil: 0, at: 0 }, 1_000_000).waits).toEqual([0, 0, 0]);
  });

  it('caps the tokens at what the provider says remains, and waits for its reset when none does', () => {
    expect(applySignal(undefined, 0, limit, { remaining: 1 }).tokens).toBe(1);
    const spent = applySignal(undefined, 0, limit, { remaining: 0, resetAt: 5_000 });
    expect(spent.blockedUntil).toBe(5_000);
    expect(reserveSlot(spent, 1_000, limit).waitMs).toBe(4_100);
    expect(applySignal(undefined, 0, limit, { remaining: 40 }).tokens).toBe(limit.burst);
  });
});

describe('SharedRateBudget', () => {
  const bucket: RateBucket = { key: 'test:account:region', limit: { burst: 1, perSecond: 50 } };

  it('two budgets on one store share the bucket', async () => {
    const store = new MemoryRateBucketStore();
    const events: RateBudgetEvent[] = [];
    const a = new SharedRateBudget(store, { onEvent: (event) => events.push(event) });
    const b = new SharedRateBudget(store, { onEvent: (event) => events.push(event) });
    await a.take(bucket);
    await b.take(bucket);
    expect(events.map((event) => event.kind)).toEqual(['wait']);
    expect(events[0]?.ms).toBeGreaterThan(10);
  });

  it('a throttle one budget sees makes the other wait', async () => {
    const store = new MemoryRateBucketStore();
    const events: RateBudgetEvent[] = [];
    const a = new SharedRateBudget(store);
    const b = new SharedRateBudget(store, { onEvent: (event) => events.push(event) });
    await a.observe({ ...bucket, limit: { burst: 100, perSecond: 100 } }, { throttled: true, retryAfterMs: 30 });
    await b.take({ ...bucket, limit: { burst: 100, perSecond: 100 } });
    expect(events[0]?.kind).toBe('wait');
    expect(events[0]?.ms).toBeGreaterThan(15);
  });

  it('rejects a cancelled wait with CancelledError', async () => {
    const budget = new SharedRateBudget(new MemoryRateBucketStore());
    await budget.take(bucket);
    const controller = new AbortController();
    const waiting = budget.take({ ...bucket, limit: { burst: 1, perSecond: 0.001 } }, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
  });

  it('ignores an answer that says nothing about the limit, and survives a store that fails', async () => {
    let updates = 0;
    const failing = {
      update: async () => {
        updates++;
        throw new Error('disk full');
      },
    };
    const budget = new SharedRateBudget(failing);
    await budget.observe(bucket, {});
    expect(updates).toBe(0);
    await expect(budget.observe(bucket, { throttled: true })).resolves.toBeUndefined();
    expect(updates).toBe(1);
  });

  it('refuses a time scale that is not a positive number', () => {
    expect(() => new SharedRateBudget(new MemoryRateBucketStore(), { timeScale: 0 })).toThrow(/positive number/);
  });
});

describe('configureRateBudget', () => {
  it('is none by default and is what drivers read once set', () => {
    expect(rateBudget()).toBeUndefined();
    const budget = new SharedRateBudget(new MemoryRateBucketStore());
    configureRateBudget(budget);
    try {
      expect(rateBudget()).toBe(budget);
    } finally {
      configureRateBudget(undefined);
    }
    expect(rateBudget()).toBeUndefined();
  });
});

describe('helpers', () => {
  it('reads Retry-After in seconds or as a date', () => {
    expect(retryAfterMs('2')).toBe(2_000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  it('fingerprints a credential without showing it', () => {
    const print = accountFingerprint('dop_v1_secret-token');
    expect(print).toMatch(/^[0-9a-f]{16}$/);
    expect(print).not.toContain('secret');
    expect(accountFingerprint('dop_v1_secret-token')).toBe(print);
    expect(accountFingerprint('another')).not.toBe(print);
  });
});
