import type { CountedSelector, RealismOptions } from '../../core/realism.ts';

/**
 * DigitalOcean's real-cloud behaviours (CLOUD-BEHAVIOURS.md section 4). Durations are
 * **real-cloud** milliseconds: the front end multiplies them by the time scale (default 0.01), and
 * the `kind` profile turns them all off. The options object given to `startSim` is read on every
 * call, so a test may turn a knob between calls.
 */
export interface DigitalOceanRealism extends RealismOptions {
  /**
   * A new droplet or SSH key is missing from `GET /v2/droplets` / `GET /v2/account/keys` this long
   * after its create was answered (list replication; default 3 000). By id it reads at once.
   */
  listingLagMs?: number;
  /**
   * A droplet is `active` this long before its public IPv4 shows in `networks.v4` (digitalocean/api-v2#73,
   * "replication delay"; default 5 000).
   */
  publicIpLagMs?: number;
  /**
   * After a power action completed, the droplet's `status` still shows the old value this long
   * (digitalocean/droplet_kit#50; default 3 000).
   */
  statusLagMs?: number;
  /**
   * A `shutdown` sent this soon after the droplet booted is `completed` while the droplet stays
   * `active`: its guest has no ACPI handler up yet. DigitalOcean only promises that the command is
   * issued (digitalocean/api-v2#79, #91); tying it to the boot is an inference. Default 30 000.
   */
  shutdownIgnoredAfterBootMs?: number;
  /** Knob (off by default): every matching `shutdown` completes while the droplet stays `active`. */
  shutdownIgnored?: CountedSelector;
  /**
   * Requests per burst window before 429 `too_many_requests` with `Retry-After` (DigitalOcean: 250
   * a minute). Default 250; the window is `burstWindowMs` (60 000, scaled).
   */
  burstLimit?: number;
  /** The burst window, real ms (default 60 000). */
  burstWindowMs?: number;
  /** Knob (off by default): also answer 429 once the hourly `rateLimit` (5 000) is used up. */
  enforceHourlyLimit?: boolean;
  /** A deleted droplet stays readable and listed this long, real ms (default 10 000); `dropletDeleteMs` overrides it unscaled. */
  deletedVisibleMs?: number;
  /** Knob (off by default): matching droplets report this `status` (one DigitalOcean may add later) while they run. */
  rareStatus?: CountedSelector & { status: string };
}

/** Real-cloud defaults of the `realistic` profile (before scaling). */
export const DIGITALOCEAN_REALISTIC_DEFAULTS = {
  listingLagMs: 3_000,
  publicIpLagMs: 5_000,
  statusLagMs: 3_000,
  shutdownIgnoredAfterBootMs: 30_000,
  burstWindowMs: 60_000,
  deletedVisibleMs: 10_000,
} as const;

/** DigitalOcean's burst limit: 250 requests a minute per token. */
export const DIGITALOCEAN_BURST_LIMIT = 250;
