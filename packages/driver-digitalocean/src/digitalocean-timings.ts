import type { RetryPolicy } from './digitalocean-client.ts';

/** Poll and fallback timing; the defaults suit the real API, tests shrink them. */
export interface DigitalOceanTimings {
  /** First delay between polls of a droplet or an action, ms (default 1000; backs off 1.5×). */
  pollIntervalMs: number;
  /** Longest delay between polls, ms (default 5000). */
  maxPollIntervalMs: number;
  /** How long a graceful `shutdown` may take before `power_off`, ms (default 60 000). */
  shutdownTimeoutMs: number;
  /** How long a `reboot` may take before `power_cycle`, ms (default 120 000). */
  rebootTimeoutMs: number;
  /** Retry policy of the client the driver builds (not of an injected one). */
  retry: Partial<RetryPolicy>;
  /** How long remove waits for a deleted droplet to be gone (404), ms (default 300 000). */
  deleteTimeoutMs?: number;
  /**
   * After a create call whose reply was lost, how long its droplet, key or firewall may be missing
   * from DigitalOcean's listings, ms (default 60 000): the lookup lists again until then.
   */
  visibilityWindowMs: number;
}

/** Production timings. */
export const defaultTimings: DigitalOceanTimings = {
  pollIntervalMs: 1000,
  maxPollIntervalMs: 5000,
  shutdownTimeoutMs: 60_000,
  rebootTimeoutMs: 120_000,
  retry: {},
  visibilityWindowMs: 60_000,
};

/** The resource kinds' settings of these timings. */
export function kindSettingsOf(timings: DigitalOceanTimings): { visibilityWindowMs: number; pollIntervalMs: number; deleteTimeoutMs?: number } {
  return {
    visibilityWindowMs: timings.visibilityWindowMs,
    pollIntervalMs: timings.pollIntervalMs,
    ...(timings.deleteTimeoutMs === undefined ? {} : { deleteTimeoutMs: timings.deleteTimeoutMs }),
  };
}
