import type { CountedSelector, RealismOptions } from '../../core/realism.ts';

/**
 * Azure Resource Manager's real-cloud behaviours. Durations are **real-cloud** milliseconds: the
 * front end multiplies them by the time scale (default 0.01), and the `kind` profile turns every
 * one off. The object given to `startSim` is read on every call, so a test may change a knob
 * between calls. Evidence for each default: /work/shared/CLOUD-BEHAVIOURS.md section 3.
 */
export interface AzureRealism extends RealismOptions {
  /** Network PUTs and deletes stay `Updating`/InProgress this long; their targets are locked meanwhile (default 2 000). */
  networkOperationMs?: number;
  /** A VM delete stays `Deleting` this long; its NIC keeps pointing at it meanwhile (`NicInUse`) (default 10 000). */
  vmDeleteMs?: number;
  /** After a NIC is deleted, its NSG and public IP still read as in use this long (default 5 000). */
  nicReleaseMs?: number;
  /** A NIC whose VM failed to be made refuses use and delete with `NicReservedForAnotherVm` this long (default 180 000). */
  nicReservationMs?: number;
  /** The instance view has no `PowerState` status this long after a create or start (default 3 000). */
  powerStateLagMs?: number;
  /** A Dynamic public IP gets its address this long after its VM runs (default 3 000). */
  dynamicIpLagMs?: number;
  /** Resource providers not registered on the subscription at start: `MissingSubscriptionRegistration` (default Compute and Network). */
  unregisteredNamespaces?: readonly string[];
  /** A registration (`providers.register`) stays `Registering` this long (default 30 000). */
  registrationMs?: number;
  /** A token seen for the first time is refused with 403 `AuthorizationFailed` this long: a fresh role assignment propagating (default 30 000). */
  roleAssignmentLagMs?: number;
  /** Per-VM Compute buckets (size, real refill per minute); an empty bucket answers CRP's 429 (defaults: the documented ones). */
  computeBuckets?: Partial<Record<ComputeBucket, { size: number; refillPerMinute: number }>>;
  /** Per-subscription ARM buckets (size, real refill per second) behind `x-ms-ratelimit-remaining-subscription-*` (default reads 250/25, writes 200/10). */
  subscriptionBuckets?: Partial<Record<'reads' | 'writes', { size: number; refillPerSecond: number }>>;
  /** Knob (off by default): VM creates of these sizes (or every one) fail at once with 409 `SkuNotAvailable`. */
  skuNotAvailable?: CountedSelector & { sizes?: readonly string[] };
  /**
   * Knob (off by default): matching VM creates (and, with `operations`, starts) are accepted and then
   * fail in the LRO poll with `AllocationFailed`; a failed create leaves the VM `Failed` and its NIC reserved.
   */
  allocationFailure?: CountedSelector & { operations?: readonly ('create' | 'start')[]; code?: 'AllocationFailed' | 'ZonalAllocationFailed' };
  /**
   * Knob (off by default): a NIC stays `NicReservedForAnotherVm` for `nicReservationMs` after its VM
   * is deleted too, not only after a failed create (off: most deletes free the NIC at once).
   */
  nicReservedAfterDelete?: boolean;
  /** Knob (off by default): the region takes RSA keys only (before Dec 2023): ed25519 is `InvalidParameter`. */
  rsaKeysOnly?: boolean;
  /** Core quota: regional cores (default 350) and cores per VM (default 2). Over it: 409 `OperationNotAllowed`. */
  regionalCores?: number;
  coresPerVm?: number;
}

/** The per-VM Compute throttling groups (compute-throttling-limits.md). */
export type ComputeBucket = 'GetVM3Min' | 'PutVM3Min' | 'DeleteVM3Min' | 'GetOperation3Min';

/** Real-cloud defaults of the `realistic` profile (before scaling). */
export const AZURE_REALISTIC_DEFAULTS = {
  networkOperationMs: 2_000,
  vmDeleteMs: 10_000,
  nicReleaseMs: 5_000,
  nicReservationMs: 180_000,
  powerStateLagMs: 3_000,
  dynamicIpLagMs: 3_000,
  registrationMs: 30_000,
  roleAssignmentLagMs: 30_000,
} as const;

/** The documented per-VM buckets: Get + InstanceView 36 (12/min), create/update/actions 12 (4/min), delete/deallocate 12 (4/min), operation status 45 (15/min). */
export const COMPUTE_BUCKETS: Readonly<Record<ComputeBucket, { size: number; refillPerMinute: number }>> = {
  GetVM3Min: { size: 36, refillPerMinute: 12 },
  PutVM3Min: { size: 12, refillPerMinute: 4 },
  DeleteVM3Min: { size: 12, refillPerMinute: 4 },
  GetOperation3Min: { size: 45, refillPerMinute: 15 },
};

/** ARM's subscription token buckets (request-limits-and-throttling.md). */
export const SUBSCRIPTION_BUCKETS = { reads: { size: 250, refillPerSecond: 25 }, writes: { size: 200, refillPerSecond: 10 } } as const;

export const DEFAULT_UNREGISTERED = ['Microsoft.Compute', 'Microsoft.Network'] as const;
