/**
 * How unkind the simulator is. The `realistic` profile (the default) emulates the timing windows
 * real clouds have — read-after-create NotFound, late public IPs, in-use windows after delete,
 * operations that fail only at DONE — with durations taken from the real clouds and multiplied by
 * `timeScale`, so tests stay fast without the windows disappearing. The `kind` profile is the
 * simulator as it was: every call answered at once, consistently, on the happy path.
 *
 * Front ends read the realism through {@link realismOf}; each provider's own knobs live in its
 * options (see the provider READMEs and the "Real-cloud behaviours" table of the package README).
 */

/** `realistic`: real-cloud windows on (default). `kind`: answers at once, consistently. */
export type RealismProfile = 'realistic' | 'kind';

/** Every profile name, for validation. */
export const REALISM_PROFILES: readonly RealismProfile[] = ['realistic', 'kind'];

/** Real seconds become `timeScale` seconds: 0.01 turns a 3 s window into 30 ms (default). */
export const DEFAULT_TIME_SCALE = 0.01;

/** Which profile and time scale a simulator (or one front end) runs with. */
export interface RealismOptions {
  /** Default `realistic`. */
  profile?: RealismProfile;
  /** Multiplier applied to real-cloud durations (default {@link DEFAULT_TIME_SCALE}); 1 = real time. */
  timeScale?: number;
}

/** The resolved realism a front end works with. */
export interface Realism {
  readonly profile: RealismProfile;
  readonly timeScale: number;
  /** True for the `realistic` profile. */
  readonly realistic: boolean;
  /** A real-cloud duration in ms, scaled; 0 under the `kind` profile. */
  scaled(realMs: number): number;
}

/** Resolves realism options (`profile` default `realistic`, `timeScale` default 0.01); throws on bad values. */
export function createRealism(options: RealismOptions = {}): Realism {
  const profile = options.profile ?? 'realistic';
  if (!REALISM_PROFILES.includes(profile)) throw new Error(`cloud-sim: profile must be one of ${REALISM_PROFILES.join(', ')}, not "${String(profile)}"`);
  const timeScale = options.timeScale ?? DEFAULT_TIME_SCALE;
  if (!Number.isFinite(timeScale) || timeScale < 0) throw new Error(`cloud-sim: timeScale must be a number >= 0, not ${String(timeScale)}`);
  const realistic = profile === 'realistic';
  return {
    profile,
    timeScale,
    realistic,
    scaled: (realMs) => (realistic ? Math.round(realMs * timeScale) : 0),
  };
}

/**
 * The realism of one front end: its own `profile`/`timeScale` options win over the simulator's
 * (`startSim({ profile, timeScale })`), which win over the defaults.
 */
export function realismOf(simWide: RealismOptions | undefined, own: RealismOptions | undefined): Realism {
  return createRealism({
    ...(simWide?.profile === undefined ? {} : { profile: simWide.profile }),
    ...(simWide?.timeScale === undefined ? {} : { timeScale: simWide.timeScale }),
    ...(own?.profile === undefined ? {} : { profile: own.profile }),
    ...(own?.timeScale === undefined ? {} : { timeScale: own.timeScale }),
  });
}

/** Matches an instance name against a knob's selector (exact string or pattern; none = every instance). */
export function nameMatches(selector: string | RegExp | undefined, name: string): boolean {
  if (selector === undefined) return true;
  return typeof selector === 'string' ? selector === name : selector.test(name);
}

/**
 * A knob that fires for a limited number of matching instances or calls: `{ name?, times? }`.
 * `consume` returns true (and counts one) when it fires.
 */
export interface CountedSelector {
  /** Exact instance name or a pattern (default: every one). */
  name?: string | RegExp;
  /** How many times it fires (default: every time). */
  times?: number;
}

/** Counts firings of a {@link CountedSelector}; the count lives on the selector object itself. */
export function consume(selector: CountedSelector | undefined, name: string): boolean {
  if (selector === undefined || !nameMatches(selector.name, name)) return false;
  const fired = firings.get(selector) ?? 0;
  if (fired >= (selector.times ?? Number.POSITIVE_INFINITY)) return false;
  firings.set(selector, fired + 1);
  return true;
}

const firings = new WeakMap<object, number>();

/**
 * A token bucket (EC2's per-action request buckets, Azure's throttling buckets): `take()` is false
 * when empty; `remaining()` tells what is left (Azure's `x-ms-ratelimit-remaining-*` headers).
 * Refills continuously at `refillPerSecond` of simulator time, up to `size`.
 */
export class TokenBucket {
  readonly #size: number;
  readonly #refillPerMs: number;
  #tokens: number;
  #at = Date.now();

  constructor(size: number, refillPerSecond: number) {
    this.#size = size;
    this.#tokens = size;
    this.#refillPerMs = refillPerSecond / 1000;
  }

  remaining(): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#size, this.#tokens + (now - this.#at) * this.#refillPerMs);
    this.#at = now;
    return this.#tokens;
  }

  take(): boolean {
    if (this.remaining() < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * A quota counted per window aligned to the clock (Compute Engine's per-minute quotas refill at the
 * start of the next synchronized minute). `take()` is false once `limit` calls were counted in the
 * current window; `retryAfterMs()` says when the next window starts.
 */
export class WindowQuota {
  readonly #limit: number;
  readonly #windowMs: number;
  #window = -1;
  #used = 0;

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = Math.max(1, windowMs);
  }

  take(): boolean {
    const window = Math.floor(Date.now() / this.#windowMs);
    if (window !== this.#window) {
      this.#window = window;
      this.#used = 0;
    }
    if (this.#used >= this.#limit) return false;
    this.#used++;
    return true;
  }

  retryAfterMs(): number {
    return this.#windowMs - (Date.now() % this.#windowMs);
  }
}
