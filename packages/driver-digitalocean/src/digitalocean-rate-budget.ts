/**
 * DigitalOcean's side of the shared rate budget (driver-core's `rateBudget()`): the bucket a token
 * draws from, what an answer says about the limit, and the kiota middleware that takes a slot
 * before every HTTP request the dots client sends (retries, redirects and polls included) and
 * feeds each answer back. Without a configured budget the middleware only passes the request on.
 *
 * This module imports kiota's types only, so the package's entry point may re-export it without
 * loading the SDK.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { accountFingerprint, type RateBucket, type RateLimit, type RateSignal, rateBudget, retryAfterMs } from '@machine/driver-core';
import type { Middleware } from '@microsoft/kiota-http-fetchlibrary';

/**
 * A token bucket that never lets more than `requests` go in any `windowMs` (rolling or fixed):
 * a tenth may go at once, the rest spread over the window. (A bucket of the whole `requests` at
 * once plus `requests` a window would let twice the limit through in its first window.)
 */
export function windowRateLimit(requests: number, windowMs: number): RateLimit {
  const burst = Math.max(1, Math.floor(requests / 10));
  return { burst, perSecond: (requests - burst) / (windowMs / 1000) };
}

/**
 * DigitalOcean's burst limit, 250 requests a minute per token (CLOUD-BEHAVIOURS.md): 25 at once,
 * then 3.75 a second. The hourly 5 000 comes back through `ratelimit-remaining`/`-reset`.
 */
export const digitalOceanRateLimit: RateLimit = windowRateLimit(250, 60_000);

/** The bucket of one API token: DigitalOcean limits per token, in every region alike. */
export function digitalOceanRateBucket(token: string): RateBucket {
  return { key: `digitalocean:${accountFingerprint(token)}`, limit: digitalOceanRateLimit };
}

/**
 * What one answer says about the limit: a 429 is a throttle; `Retry-After` blocks the bucket that
 * long; `ratelimit-remaining` caps it, and when it is 0, `ratelimit-reset` (epoch seconds) blocks it
 * until then. A wait longer than `maxBlockMs` is left out: the retry handler then reports the reset
 * to the user instead of every process hanging until it (DigitalOcean's hourly window).
 * A `remaining` above the bucket's burst cannot change it and is left out, so an ordinary answer
 * writes nothing to a shared store.
 */
export function rateSignalOf(status: number, headers: Headers, limit: RateLimit, maxBlockMs: number, now = Date.now()): RateSignal {
  const signal: { -readonly [K in keyof RateSignal]: RateSignal[K] } = {};
  if (status === 429) signal.throttled = true;
  const wait = retryAfterMs(headers.get('retry-after'), now);
  if (wait !== undefined && wait <= maxBlockMs) signal.retryAfterMs = wait;
  const remaining = Number(headers.get('ratelimit-remaining') ?? Number.NaN);
  if (Number.isFinite(remaining) && remaining <= limit.burst) {
    signal.remaining = Math.max(0, remaining);
    const reset = Number(headers.get('ratelimit-reset') ?? Number.NaN);
    if (remaining <= 0 && Number.isFinite(reset) && reset * 1000 - now <= maxBlockMs) signal.resetAt = reset * 1000;
  }
  return signal;
}

const requestSignals = new AsyncLocalStorage<AbortSignal>();

/**
 * Runs `work` so that every request the dots client sends inside it may be cancelled by `signal`
 * while it waits for its rate-budget slot (kiota passes no signal of its own down its middleware).
 */
export function withRequestSignal<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  return signal === undefined ? work() : requestSignals.run(signal, work);
}

/** The operation's signal of the request being sent, if its caller gave one. */
export function requestSignal(): AbortSignal | undefined {
  return requestSignals.getStore();
}

/**
 * The kiota middleware that meters requests. It sits innermost, right before the fetch, so every
 * attempt the retry handler makes (and every redirect) takes its own slot.
 */
export class RateBudgetHandler implements Middleware {
  next: Middleware | undefined;
  readonly #bucket: RateBucket;
  readonly #maxBlockMs: number;

  /** `maxBlockMs`: the longest wait a provider's answer may impose on the bucket (the retry policy's `giveUpAfterMs`). */
  constructor(bucket: RateBucket, maxBlockMs: number) {
    this.#bucket = bucket;
    this.#maxBlockMs = maxBlockMs;
  }

  execute(url: string, requestInit: RequestInit, requestOptions?: Parameters<Middleware['execute']>[2]): Promise<Response> {
    const next = this.next;
    if (next === undefined) return Promise.reject(new Error('RateBudgetHandler has no next middleware'));
    const budget = rateBudget();
    // No budget configured: the request goes out as the SDK sends it, without a wait or an await.
    if (budget === undefined) return next.execute(url, requestInit, requestOptions);
    return this.#metered(budget, next, url, requestInit, requestOptions);
  }

  async #metered(
    budget: NonNullable<ReturnType<typeof rateBudget>>,
    next: Middleware,
    url: string,
    requestInit: RequestInit,
    requestOptions: Parameters<Middleware['execute']>[2],
  ): Promise<Response> {
    await budget.take(this.#bucket, requestInit.signal ?? requestSignal());
    const response = await next.execute(url, requestInit, requestOptions);
    await budget.observe(this.#bucket, rateSignalOf(response.status, response.headers, this.#bucket.limit, this.#maxBlockMs));
    return response;
  }
}

/** Aborts each attempt that has no answer after `timeoutMs`, counted from when it goes out (after its rate-budget slot). */
export class AttemptTimeoutHandler implements Middleware {
  next: Middleware | undefined;
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  execute(url: string, requestInit: RequestInit, requestOptions?: Parameters<Middleware['execute']>[2]): Promise<Response> {
    const next = this.next;
    if (next === undefined) return Promise.reject(new Error('AttemptTimeoutHandler has no next middleware'));
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = requestInit.signal ? AbortSignal.any([requestInit.signal, timeout]) : timeout;
    return next.execute(url, { ...requestInit, signal }, requestOptions);
  }
}
