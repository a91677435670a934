import { MemoryRateBucketStore, type RateBucket, type RateBucketStore, type RateBudget, type RateBudgetEvent, type RateSignal, SharedRateBudget } from '../rate-budget.ts';

/**
 * A rate budget for driver tests: a real {@link SharedRateBudget} over memory that also records
 * every slot a driver takes and every signal it feeds back, so a test can check that each request
 * the provider saw passed the budget, and what the driver read from the answers.
 */
export class RecordingBudget implements RateBudget {
  readonly takes: RateBucket[] = [];
  readonly observed: { bucket: RateBucket; signal: RateSignal }[] = [];
  readonly events: RateBudgetEvent[] = [];
  readonly #inner: SharedRateBudget;

  /** `timeScale`: the simulator's (0.01 runs the provider's limits 100 times as fast), 1 for real-cloud limits. */
  constructor(timeScale: number, store: RateBucketStore = new MemoryRateBucketStore()) {
    this.#inner = new SharedRateBudget(store, { timeScale, onEvent: (event) => this.events.push(event) });
  }

  /** The keys of the buckets slots were taken from, in order. */
  takenKeys(): string[] {
    return this.takes.map((bucket) => bucket.key);
  }

  take(bucket: RateBucket, signal?: AbortSignal): Promise<void> {
    this.takes.push(bucket);
    return this.#inner.take(bucket, signal);
  }

  observe(bucket: RateBucket, signal: RateSignal): Promise<void> {
    this.observed.push({ bucket, signal });
    return this.#inner.observe(bucket, signal);
  }
}
