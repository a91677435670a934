import { createHash } from 'node:crypto';
import { sleep } from './wait.ts';

/**
 * Shared rate budgets: a token bucket per provider-account-region that every process (and host)
 * using the same bucket store draws from before it sends a request, fed back by what the provider
 * says in its answers (`Retry-After`, `ratelimit-remaining`, a throttled code). Many concurrent
 * creates then slow down before the provider refuses them, instead of each retrying blind.
 *
 * Drivers call `rateBudget()` in their SDK's request pipeline (one `take` per HTTP request, one
 * `observe` per answer that says something about the limit). Hosts choose the budget with
 * `configureRateBudget`: the CLI shares it through its store (a locked file, or a PostgreSQL row);
 * a library user may keep the default (none: requests go out unmetered, as the SDKs send them) or
 * share one in memory.
 */

/** A provider's documented request limit for one bucket, in real-cloud numbers. */
export interface RateLimit {
  /** Requests that may go at once from a full bucket. */
  readonly burst: number;
  /** Steady refill, requests per second. */
  readonly perSecond: number;
}

/** One shared budget: what it counts and its limit. */
export interface RateBucket {
  /**
   * Provider, account and region (and, where the provider counts separately, the kind of call):
   * `digitalocean:3f2a…`, `amazonec2:9c1e…:us-east-1:mutating`. Never a secret in clear: use
   * {@link accountFingerprint} for tokens and keys.
   */
  readonly key: string;
  readonly limit: RateLimit;
}

/** What an answer said about the provider's limit. */
export interface RateSignal {
  /** The provider refused the call for its rate (429, `RequestLimitExceeded`, `rateLimitExceeded`). */
  readonly throttled?: boolean;
  /** How long the provider asks to wait, ms (`Retry-After`). */
  readonly retryAfterMs?: number;
  /** Requests left in the provider's current window (`ratelimit-remaining`, `x-ms-ratelimit-remaining-*`). */
  readonly remaining?: number;
  /** When that window refills, epoch ms (`ratelimit-reset`). */
  readonly resetAt?: number;
  /**
   * The provider counts requests in windows of this many real ms aligned to the clock (Compute
   * Engine's per-minute quotas refill at the start of the next minute): a throttle without
   * Retry-After blocks the bucket until the next window starts. Scaled like the bucket's limit.
   */
  readonly windowMs?: number;
}

/** What a driver draws from. */
export interface RateBudget {
  /** Waits until one more request fits the bucket; rejects with CancelledError when `signal` aborts. */
  take(bucket: RateBucket, signal?: AbortSignal): Promise<void>;
  /** Feeds an answer's signal back into the bucket. Never rejects: a budget that cannot be written only meters less well. */
  observe(bucket: RateBucket, signal: RateSignal): Promise<void>;
}

/** The stored state of one bucket. */
export interface RateBucketState {
  /** Tokens at `at`; below zero when requests already hold later slots. */
  readonly tokens: number;
  /** When `tokens` was computed, epoch ms by the store's clock. */
  readonly at: number;
  /** No request starts before this (epoch ms): a `Retry-After`, or a window the provider says is spent. */
  readonly blockedUntil: number;
  /** The rate and burst in use as a fraction of the limit (0 < factor ≤ 1): halved on each throttle, grows back over five minutes. */
  readonly factor: number;
}

/**
 * Where bucket states live; shared by every process that should share the budget. `update` reads
 * the state of `key` (undefined when new), lets `change` compute the next one and writes it,
 * atomically against every other user of the store; `now` is the store's clock (a shared
 * database's clock, so hosts whose clocks differ still agree).
 */
export interface RateBucketStore {
  update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T>;
}

/** Bucket states in this process's memory (one process shares one budget). */
export class MemoryRateBucketStore implements RateBucketStore {
  readonly #states = new Map<string, RateBucketState>();

  async update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T> {
    const { state, result } = change(this.#states.get(key), Date.now());
    this.#states.set(key, state);
    return result;
  }
}

/**
 * How long a bucket takes to grow back from a throttle to its full rate and burst, real ms: longer
 * than the providers' windows (a minute), so a fleet that was refused does not run into the next
 * window at full speed again.
 */
const RECOVERY_MS = 300_000;
/** The lowest rate a throttled bucket falls to, as a fraction of its limit. */
const MIN_FACTOR = 1 / 32;
/** The wait after a throttle that said nothing about how long, real ms. */
const DEFAULT_THROTTLE_WAIT_MS = 1_000;

/** Real-cloud durations and rates become simulator ones: `timeScale` 0.01 runs a limit 100 times as fast. */
export interface RateScale {
  readonly timeScale: number;
}

/**
 * Takes one slot from a bucket: refills it for the time passed, and answers how long the request
 * must wait (0: go now). A request that finds the bucket empty holds the next slot (the tokens go
 * below zero), so concurrent takers line up instead of retrying.
 */
export function reserveSlot(state: RateBucketState | undefined, now: number, limit: RateLimit, scale: RateScale = { timeScale: 1 }): { state: RateBucketState; waitMs: number } {
  const current = refill(state, now, limit, scale);
  const tokens = current.tokens - 1;
  const perMs = (limit.perSecond * current.factor) / 1000 / scale.timeScale;
  // A blocked bucket refills only once the block ends: its takers line up after it, one refill apart.
  const blockedFor = Math.max(0, current.blockedUntil - now);
  const forTokens = tokens >= 0 ? 0 : -tokens / perMs;
  return { state: { ...current, tokens }, waitMs: Math.ceil(blockedFor + forTokens) };
}

/** Applies what an answer said: a throttle halves the rate and blocks the bucket; a low `remaining` caps its tokens. */
export function applySignal(state: RateBucketState | undefined, now: number, limit: RateLimit, signal: RateSignal, scale: RateScale = { timeScale: 1 }): RateBucketState {
  let next = refill(state, now, limit, scale);
  if (signal.throttled === true) {
    const window = signal.windowMs === undefined ? 0 : signal.windowMs * scale.timeScale;
    const untilNextWindow = window > 0 ? (Math.floor(now / window) + 1) * window - now : undefined;
    const wait = signal.retryAfterMs ?? untilNextWindow ?? DEFAULT_THROTTLE_WAIT_MS * scale.timeScale;
    next = { tokens: Math.min(next.tokens, 0), at: now, blockedUntil: Math.max(next.blockedUntil, now + wait), factor: Math.max(MIN_FACTOR, next.factor / 2) };
  } else if (signal.retryAfterMs !== undefined) {
    next = { ...next, blockedUntil: Math.max(next.blockedUntil, now + signal.retryAfterMs) };
  }
  if (signal.remaining !== undefined && Number.isFinite(signal.remaining)) {
    next = { ...next, tokens: Math.min(next.tokens, signal.remaining) };
    if (signal.remaining <= 0 && signal.resetAt !== undefined && signal.resetAt > now) next = { ...next, blockedUntil: Math.max(next.blockedUntil, signal.resetAt) };
  }
  return next;
}

/** Tokens and rate grow with the time since `at`, not counting a block: nothing builds up while the provider says wait. */
function refill(state: RateBucketState | undefined, now: number, limit: RateLimit, scale: RateScale): RateBucketState {
  if (state === undefined) return { tokens: limit.burst, at: now, blockedUntil: 0, factor: 1 };
  const elapsed = Math.max(0, now - Math.max(state.at, state.blockedUntil));
  const factor = Math.min(1, state.factor + elapsed / (RECOVERY_MS * scale.timeScale));
  const perMs = (limit.perSecond * state.factor) / 1000 / scale.timeScale;
  // A throttled bucket's burst shrinks with its rate: after a block, its takers do not go all at once.
  const burst = Math.max(1, limit.burst * factor);
  return { tokens: Math.min(burst, state.tokens + elapsed * perMs), at: now, blockedUntil: state.blockedUntil, factor };
}

/** What a {@link SharedRateBudget} reports. */
export interface RateBudgetEvent {
  readonly bucket: RateBucket;
  /** `wait`: a request waits `ms` for its slot; `signal`: an answer fed the bucket. */
  readonly kind: 'wait' | 'signal';
  readonly ms?: number;
  readonly signal?: RateSignal;
}

export interface SharedRateBudgetOptions {
  /** Provider limits and waits run this much faster (the simulator's `timeScale`, default 1: the real cloud). */
  readonly timeScale?: number;
  /** Called for every wait and every signal (a host's progress or statistics). */
  readonly onEvent?: (event: RateBudgetEvent) => void;
}

/** A rate budget whose buckets live in a {@link RateBucketStore}: every process on that store shares them. */
export class SharedRateBudget implements RateBudget {
  readonly #store: RateBucketStore;
  readonly #scale: RateScale;
  readonly #onEvent: ((event: RateBudgetEvent) => void) | undefined;

  constructor(store: RateBucketStore, options: SharedRateBudgetOptions = {}) {
    const timeScale = options.timeScale ?? 1;
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`rate budget timeScale must be a positive number, not ${timeScale}`);
    this.#store = store;
    this.#scale = { timeScale };
    this.#onEvent = options.onEvent;
  }

  async take(bucket: RateBucket, signal?: AbortSignal): Promise<void> {
    const waitMs = await this.#store.update(bucket.key, (state, now) => {
      const reserved = reserveSlot(state, now, bucket.limit, this.#scale);
      return { state: reserved.state, result: reserved.waitMs };
    });
    if (waitMs <= 0) return;
    this.#onEvent?.({ bucket, kind: 'wait', ms: waitMs });
    await sleep(waitMs, signal);
  }

  async observe(bucket: RateBucket, signal: RateSignal): Promise<void> {
    if (signal.throttled !== true && signal.retryAfterMs === undefined && signal.remaining === undefined) return;
    this.#onEvent?.({ bucket, kind: 'signal', signal });
    try {
      await this.#store.update(bucket.key, (state, now) => ({ state: applySignal(state, now, bucket.limit, signal, this.#scale), result: undefined }));
    } catch {
      // A signal that cannot be recorded only makes the budget meter less well; the request's own answer stands.
    }
  }
}

/**
 * The process's budget lives on `globalThis` under a registered symbol, so a driver that resolved
 * its own copy of driver-core (a global npm install beside the CLI's) still draws from the host's.
 */
const CONFIGURED = Symbol.for('@machine/driver-core.rateBudget');
type BudgetHolder = { [CONFIGURED]?: RateBudget };

/** Sets the budget every driver in this process draws from (`undefined`: none, requests go out unmetered). */
export function configureRateBudget(budget: RateBudget | undefined): void {
  const holder = globalThis as BudgetHolder;
  if (budget === undefined) delete holder[CONFIGURED];
  else holder[CONFIGURED] = budget;
}

/** The budget drivers draw from, when the host configured one. */
export function rateBudget(): RateBudget | undefined {
  return (globalThis as BudgetHolder)[CONFIGURED];
}

/** A short, stable, non-reversible name for an account credential, for bucket keys: `sha256(secret)` first 16 hex digits. */
export function accountFingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 16);
}

/** Reads `Retry-After` (seconds or an HTTP date) as ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
