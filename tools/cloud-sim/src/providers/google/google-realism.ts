import type { CountedSelector, RealismOptions } from '../../core/realism.ts';

/** Compute Engine's per-minute rate-quota groups (operation polling has its own). */
export type RateQuotaGroup = 'read' | 'write' | 'operationRead';

/**
 * Compute Engine's real-cloud behaviours. Durations are **real-cloud** milliseconds, multiplied by
 * the time scale (default 0.01); the `kind` profile turns the defaults off. The object given to
 * `startSim` is read on every call, so a test may turn a knob between calls. Evidence:
 * /work/shared/CLOUD-BEHAVIOURS.md section 2.
 */
export interface GoogleRealism extends RealismOptions {
  /** `operations.wait` "might return after zero seconds": the first wait of each operation answers at once (default true). */
  waitReturnsEarly?: boolean;
  /** A mutation of an instance while another of its operations runs: 400 `resourceNotReady` (default true). */
  resourceNotReady?: boolean;
  /** An ephemeral external IP changes on each start after a stop; a reserved `natIP` stays (default true). */
  ipChangesOnStart?: boolean;
  /**
   * Knob (off by default): per-minute rate quotas, counted in windows aligned to the clock (refilled
   * at the next synchronized minute). Over the limit: 403 `rateLimitExceeded`. `windowMs` is real
   * time (default 60 000, scaled); `groups` default every group, operation polling included.
   */
  rateQuotas?: { limit: number; windowMs?: number; groups?: readonly RateQuotaGroup[] };
  /**
   * Knob (off by default): insert and/or start operations of matching instances end DONE with
   * `ZONE_RESOURCE_POOL_EXHAUSTED` (a stockout, not a quota); a failed insert leaves no instance,
   * a failed start leaves it `TERMINATED`.
   */
  stockout?: CountedSelector & { operations?: readonly ('insert' | 'start')[] };
  /**
   * Knob (off by default): matching new instances land `TERMINATED` right after their insert
   * operation is DONE (a host error), with this `statusMessage`.
   */
  landsTerminated?: CountedSelector & { statusMessage?: string };
  /** Knob (off by default): matching instances report this status instead of RUNNING (e.g. `REPAIRING`, or a status newer than the client). */
  rareStatus?: CountedSelector & { status: string };
}

/** The message Compute Engine gives with `ZONE_RESOURCE_POOL_EXHAUSTED`. */
export function stockoutMessage(project: string, zone: string): string {
  return `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`;
}

/** The 403 `rateLimitExceeded` message of a per-minute quota group. */
export function rateLimitMessage(group: RateQuotaGroup): string {
  const metric = { read: 'Read requests', write: 'Queries', operationRead: 'Operation read requests' }[group];
  return `Quota exceeded for quota metric '${metric}' and limit '${metric} per minute' of service 'compute.googleapis.com' for consumer 'project_number:123456789012'.`;
}
