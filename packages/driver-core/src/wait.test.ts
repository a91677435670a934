import { describe, expect, it } from 'vitest';
import { CancelledError } from './errors/cancelled-error.ts';
import { ProviderError } from './errors/provider-error.ts';
import { TimeoutError } from './errors/timeout-error.ts';
import { sleep, waitFor } from './wait.ts';

describe('waitFor', () => {
  it('polls until done and returns the value', async () => {
    let calls = 0;
    const value = await waitFor(async () => (++calls < 3 ? { done: false } : { done: true, value: 'ready' }), { interval: 1 });
    expect(value).toBe('ready');
    expect(calls).toBe(3);
  });

  it('times out with the description, the tries and the last reason', async () => {
    const error = await waitFor(async () => ({ done: false, reason: 'status new' }), {
      interval: 5,
      timeout: 40,
      description: 'droplet 7 to be active',
      machine: 'web1',
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(/^machine "web1": gave up waiting for droplet 7 to be active after 0 s \(\d+ tries\); last: status new$/);
  });

  it('retries retryable typed errors and stops on others', async () => {
    let calls = 0;
    const value = await waitFor(
      async () => {
        calls++;
        if (calls === 1) throw new ProviderError('503', { statusCode: 503 });
        return { done: true, value: calls };
      },
      { interval: 1 },
    );
    expect(value).toBe(2);
    await expect(waitFor(async () => Promise.reject(new ProviderError('400', { statusCode: 400 })), { interval: 1 })).rejects.toThrow('400');
    await expect(waitFor(async () => Promise.reject(new Error('plain')), { interval: 1 })).rejects.toThrow('plain');
  });

  it('backs off: delays grow up to the maximum', async () => {
    const stamps: number[] = [];
    await waitFor(async () => {
      stamps.push(Date.now());
      return stamps.length < 5 ? { done: false } : { done: true, value: 0 };
    }, {
      interval: 10,
      backoff: 2,
      maxInterval: 40,
      jitter: 0,
    });
    const gaps = stamps.slice(1).map((stamp, index) => stamp - (stamps[index] ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[2]).toBeGreaterThanOrEqual(38);
    expect(gaps[3]).toBeLessThan(80);
  });

  it('stops at once when aborted', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await expect(waitFor(async () => ({ done: false }), { interval: 1000, signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
    expect(Date.now() - started).toBeLessThan(500);
    await expect(sleep(10, AbortSignal.abort())).rejects.toBeInstanceOf(CancelledError);
  });
});
