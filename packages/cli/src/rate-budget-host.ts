import { configureRateBudget, type ProgressEvent, type RateBucket, type RateBudget, type RateBudgetEvent, type RateSignal, rateBudget, SharedRateBudget } from '@machine/driver-core';
import { CliError } from './cli-error.ts';
import type { MachineRecord, Store } from './store.ts';

/**
 * The CLI's shared rate budget (issue 20): the drivers of a command draw from the buckets of the
 * command's store (a locked file per bucket in the folder store, a row in PostgreSQL), so every
 * process and host using that store shares one budget per provider-account-region.
 *
 * Environment: `MACHINE_RATE_BUDGET=off` sends requests unmetered (as the SDKs send them);
 * `MACHINE_RATE_TIME_SCALE=0.01` runs the providers' limits that much faster (a simulator reached
 * by its API URL). Without it, a machine made with `--sim` runs at the simulator's time scale (its
 * state file's `realism`), anything else at 1 (the real clouds).
 */

/** Waits at least this long are said in the command's progress. */
const reportedWaitMs = 1_000;
/** At most one line per bucket this often (real ms), however many requests wait. */
const reportEveryMs = 10_000;

/** Environment that chooses the budget (the CLI's own, as `machine` was started). */
export type RateBudgetEnv = Readonly<Record<string, string | undefined>>;

/** `MACHINE_RATE_BUDGET`: anything but off/0/false/no keeps the budget on. */
export function rateBudgetWanted(env: RateBudgetEnv): boolean {
  const value = env.MACHINE_RATE_BUDGET?.trim().toLowerCase();
  return !(value === 'off' || value === '0' || value === 'false' || value === 'no');
}

/** `MACHINE_RATE_TIME_SCALE` as a positive number; undefined when unset; a one-line error when not a number. */
export function rateTimeScaleFromEnv(env: RateBudgetEnv): number | undefined {
  const text = env.MACHINE_RATE_TIME_SCALE?.trim();
  if (text === undefined || text === '') return undefined;
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale <= 0) throw new CliError(`MACHINE_RATE_TIME_SCALE must be a positive number (1 = the real clouds, 0.01 = the simulator's default), not "${text}"`);
  return scale;
}

/**
 * A budget of one store for this process: its time scale is settled at the first request (the
 * simulator's when a `--sim` machine was registered first), and its waits are said through the
 * progress of the machine registered last. A bucket store that fails (a lost database) lets requests
 * go unmetered rather than failing them: the provider's own throttling still stands behind it.
 */
export class StoreRateBudget implements RateBudget {
  readonly store: Store;
  readonly #env: RateBudgetEnv;
  readonly #simTimeScale: (root: string) => Promise<number | undefined>;
  #sim = false;
  #progress: ((event: ProgressEvent) => void) | undefined;
  #budget: Promise<RateBudget | undefined> | undefined;
  readonly #lastReport = new Map<string, number>();

  constructor(store: Store, env: RateBudgetEnv, simTimeScale: (root: string) => Promise<number | undefined>) {
    this.store = store;
    this.#env = env;
    this.#simTimeScale = simTimeScale;
  }

  /** A machine whose driver will draw from this budget: a `--sim` one sets the time scale, its progress hears the waits. */
  register(record: Pick<MachineRecord, 'sim'>, onProgress?: (event: ProgressEvent) => void): void {
    if (record.sim === true) this.#sim = true;
    if (onProgress !== undefined) this.#progress = onProgress;
  }

  async take(bucket: RateBucket, signal?: AbortSignal): Promise<void> {
    const budget = await this.#shared();
    if (budget === undefined) return;
    try {
      await budget.take(bucket, signal);
    } catch (error) {
      if (signal?.aborted === true) throw error;
      // The bucket store failed: this request goes unmetered.
    }
  }

  async observe(bucket: RateBucket, signal: RateSignal): Promise<void> {
    const budget = await this.#shared();
    await budget?.observe(bucket, signal);
  }

  /** The budget, made at the first request; a bad MACHINE_RATE_TIME_SCALE fails that request (before it is sent). */
  #shared(): Promise<RateBudget | undefined> {
    this.#budget ??= (async () => {
      const fromEnv = rateTimeScaleFromEnv(this.#env);
      const timeScale = fromEnv ?? (this.#sim ? await this.#simTimeScale(this.store.root) : undefined) ?? 1;
      // A simulator without limits (`kind`) has nothing to meter.
      if (timeScale <= 0) return undefined;
      return new SharedRateBudget(this.store.rateBuckets(), { timeScale, onEvent: (event) => this.#report(event) });
    })();
    return this.#budget;
  }

  #report(event: RateBudgetEvent): void {
    if (event.kind !== 'wait' || event.ms === undefined || event.ms < reportedWaitMs || this.#progress === undefined) return;
    const now = Date.now();
    const last = this.#lastReport.get(event.bucket.key);
    if (last !== undefined && now - last < reportEveryMs) return;
    this.#lastReport.set(event.bucket.key, now);
    const provider = event.bucket.key.split(':')[0] ?? event.bucket.key;
    this.#progress({ step: 'rate-budget', phase: 'info', message: `Waiting ${(event.ms / 1000).toFixed(1)} s for ${provider}'s shared rate budget (requests of every host on this store)...` });
  }
}

/** What {@link useStoreRateBudget} is told. */
export interface UseStoreRateBudgetOptions {
  /** Default `process.env`. */
  readonly env?: RateBudgetEnv;
  /** The progress of the machine: it hears the budget's long waits. */
  readonly onProgress?: ((event: ProgressEvent) => void) | undefined;
  /** The running simulator's time scale (default: sim-mode's, from its state file). */
  readonly simTimeScale?: (root: string) => Promise<number | undefined>;
}

/**
 * Makes the drivers of this process draw from `store`'s budget (once per store; a later store, as
 * in-process runs of several commands, replaces it), and registers the machine `record` is of.
 * `MACHINE_RATE_BUDGET=off`: no budget. A budget an embedder configured itself (not a store's) is kept.
 */
export function useStoreRateBudget(store: Store, record: Pick<MachineRecord, 'sim'>, options: UseStoreRateBudgetOptions = {}): void {
  const env = options.env ?? process.env;
  const current = rateBudget();
  if (current !== undefined && !(current instanceof StoreRateBudget)) return;
  if (!rateBudgetWanted(env)) {
    if (current !== undefined) configureRateBudget(undefined);
    return;
  }
  let budget = current?.store === store ? current : undefined;
  if (budget === undefined) {
    budget = new StoreRateBudget(store, env, options.simTimeScale ?? defaultSimTimeScale);
    configureRateBudget(budget);
  }
  budget.register(record, options.onProgress);
}

async function defaultSimTimeScale(root: string): Promise<number | undefined> {
  const { simTimeScale } = await import('./sim-mode.ts');
  return simTimeScale(root);
}
