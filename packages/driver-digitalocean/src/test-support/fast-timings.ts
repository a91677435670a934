import type { DigitalOceanTimings } from '../digitalocean-timings.ts';

/** Timings that keep tests fast: millisecond polls and retries. */
export const fastTimings: DigitalOceanTimings = {
  pollIntervalMs: 5,
  maxPollIntervalMs: 20,
  shutdownTimeoutMs: 300,
  rebootTimeoutMs: 300,
  retry: { baseDelayMs: 5, maxDelayMs: 20, maxRetries: 3 },
  // The simulator's listing lag is 30 ms (3 s × timeScale 0.01).
  visibilityWindowMs: 1_000,
};
