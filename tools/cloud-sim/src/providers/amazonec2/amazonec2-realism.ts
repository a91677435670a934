import type { CountedSelector, RealismOptions } from '../../core/realism.ts';

/**
 * EC2's real-cloud behaviours. Durations are **real-cloud** milliseconds: the front end multiplies
 * them by the time scale (default 0.01), and the `kind` profile turns them all off. The object
 * given to `startSim` is read on every call, so a test may change a knob between calls.
 * See /work/shared/CLOUD-BEHAVIOURS.md section 1 for the evidence behind each default.
 */
export interface AmazonEC2Realism extends RealismOptions {
  /** A new instance or security group answers `…NotFound` by id, and is missing from filtered lists, this long (default 2 000). */
  visibilityLagMs?: number;
  /** A running instance shows no public IP until this long after it reached `running` (default 3 000). */
  publicIpLagMs?: number;
  /** A terminated instance reads `shutting-down` this long first (default 10 000). */
  shuttingDownMs?: number;
  /** Its network interface keeps its security groups this long after `terminated`: `DependencyViolation` (default 20 000). */
  interfaceReleaseMs?: number;
  /** Terminated instances stay describable this long, then `InvalidInstanceID.NotFound` (default 3 600 000: an hour). */
  terminatedTtlMs?: number;
  /** `instanceState.code` carries EC2's internal high byte (running = 272), default true. */
  stateCodeHighByte?: boolean;
  /** Each start after a stop gives a new public IP, as EC2 does without an Elastic IP (default true). */
  ipChangesOnStart?: boolean;
  /**
   * Knob (off by default): `RunInstances`/`StartInstances` for matching instance names (the `Name`
   * tag) fail with 500 `InsufficientInstanceCapacity`. `times` counts calls, SDK retries included.
   */
  insufficientCapacity?: CountedSelector & { operations?: readonly ('RunInstances' | 'StartInstances')[] };
  /**
   * Knob (off by default): matching new instances are accepted, then go `pending → shutting-down
   * → terminated` with this `StateReason` code (default `Server.InsufficientInstanceCapacity`).
   */
  launchFailure?: CountedSelector & { stateReason?: keyof typeof STATE_REASONS };
  /**
   * Knob (off by default): a token bucket per action (EC2's request-rate buckets): an empty bucket
   * answers 503 `RequestLimitExceeded`. `refillPerSecond` is in simulator time, not scaled. Each new
   * knob object starts its buckets full (as Compute Engine's `rateQuotas` windows do).
   */
  requestBuckets?: { size: number; refillPerSecond: number; actions?: readonly string[] };
}

/** Real-cloud defaults of the `realistic` profile (before scaling). */
export const EC2_REALISTIC_DEFAULTS = {
  visibilityLagMs: 2_000,
  publicIpLagMs: 3_000,
  shuttingDownMs: 10_000,
  interfaceReleaseMs: 20_000,
  terminatedTtlMs: 3_600_000,
} as const;

/** `StateReason` codes and messages, as EC2 writes them (API_StateReason). */
export const STATE_REASONS = {
  'Server.InsufficientInstanceCapacity': 'Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request',
  'Server.InternalError': 'Server.InternalError: Internal error on launch',
  'Client.VolumeLimitExceeded': 'Client.VolumeLimitExceeded: Volume limit exceeded',
  'Client.InternalError': 'Client.InternalError: Client error on launch',
  'Client.UserInitiatedShutdown': 'Client.UserInitiatedShutdown: User initiated shutdown',
} as const;
