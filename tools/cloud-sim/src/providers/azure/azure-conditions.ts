import type { SimRequest } from '../../core/provider-front-end.ts';
import { type Realism, TokenBucket } from '../../core/realism.ts';
import {
  anotherOperationInProgress,
  armThrottled,
  authorizationFailed,
  computeThrottled,
  missingRegistration,
  referencedNotProvisioned,
} from './azure-errors.ts';
import {
  AZURE_REALISTIC_DEFAULTS,
  type AzureRealism,
  COMPUTE_BUCKETS,
  type ComputeBucket,
  DEFAULT_UNREGISTERED,
  SUBSCRIPTION_BUCKETS,
} from './azure-realism.ts';

/** What the guards need to know about a request, from its route. */
export interface RequestFacts {
  /** Resource provider namespace the request goes to (`Microsoft.Compute`…), if any. */
  namespace?: string;
  /** The RBAC action, e.g. `Microsoft.Network/virtualNetworks/write`. */
  action: string;
  /** The ARM scope (the resource or group ID). */
  scope: string;
  write: boolean;
  /** Per-VM Compute bucket and the VM it counts against. */
  computeBucket?: { bucket: ComputeBucket; vmId: string };
}

/** A lock a running network operation holds on a resource. */
interface Lock {
  until: number;
  operationUrl: string;
}

/**
 * The time-dependent state of Azure's realistic behaviours: resource-provider registration, the
 * role-assignment window per token, the throttling buckets, operation locks on network resources
 * and the windows in which a NIC, NSG or public IP stays in use. All durations are real-cloud
 * milliseconds scaled by the realism; under the `kind` profile every check passes.
 */
export class AzureConditions {
  readonly realism: Realism;
  readonly knobs: AzureRealism;
  readonly #registration = new Map<string, { state: 'NotRegistered' | 'Registering' | 'Registered'; at: number }>();
  readonly #tokensSeen = new Map<string, number>();
  readonly #computeBuckets = new Map<string, TokenBucket>();
  readonly #subscriptionBuckets = new Map<string, TokenBucket>();
  readonly #locks = new Map<string, Lock>();
  readonly #inUseUntil = new Map<string, { until: number; by: string }>();

  constructor(realism: Realism, knobs: AzureRealism) {
    this.realism = realism;
    this.knobs = knobs;
    const unregistered = realism.realistic ? (knobs.unregisteredNamespaces ?? DEFAULT_UNREGISTERED) : [];
    for (const namespace of unregistered) this.#registration.set(namespace.toLowerCase(), { state: 'NotRegistered', at: 0 });
  }

  /** A real-cloud duration of the realistic profile, scaled (0 under the `kind` profile). */
  scaled(knob: keyof typeof AZURE_REALISTIC_DEFAULTS): number {
    return this.realism.scaled(this.knobs[knob] ?? AZURE_REALISTIC_DEFAULTS[knob]);
  }

  /** Runs before every handler: registration, role-assignment window, throttling (in that order, as ARM does). */
  check(request: SimRequest, facts: RequestFacts): Record<string, string> {
    if (!this.realism.realistic) return {};
    if (facts.namespace !== undefined && this.registrationState(facts.namespace) !== 'Registered') throw missingRegistration(canonicalNamespace(facts.namespace));
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const firstSeen = this.#tokensSeen.get(token) ?? Date.now();
    this.#tokensSeen.set(token, firstSeen);
    if (Date.now() - firstSeen < this.scaled('roleAssignmentLagMs')) {
      throw authorizationFailed(principalOf(token), facts.action, facts.scope);
    }
    return this.#throttle(facts);
  }

  #throttle(facts: RequestFacts): Record<string, string> {
    const headers: Record<string, string> = {};
    const timeScale = this.realism.timeScale;
    if (timeScale <= 0) return headers;
    const kind = facts.write ? 'writes' : 'reads';
    const spec = this.knobs.subscriptionBuckets?.[kind] ?? SUBSCRIPTION_BUCKETS[kind];
    const bucket = bucketOf(this.#subscriptionBuckets, kind, spec.size, spec.refillPerSecond / timeScale);
    if (!bucket.take()) throw armThrottled(facts.write, 1000 * timeScale);
    headers[`x-ms-ratelimit-remaining-subscription-${kind}`] = String(Math.floor(bucket.remaining()));
    if (facts.computeBucket !== undefined) {
      const { bucket: group, vmId } = facts.computeBucket;
      const limits = this.knobs.computeBuckets?.[group] ?? COMPUTE_BUCKETS[group];
      const perVm = bucketOf(this.#computeBuckets, `${vmId.toLowerCase()}|${group}`, limits.size, limits.refillPerMinute / 60 / timeScale);
      const taken = perVm.take();
      const remaining = `Microsoft.Compute/${group};${Math.floor(perVm.remaining())}`;
      if (!taken) throw computeThrottled(group, limits.size, (60_000 / limits.refillPerMinute) * timeScale, remaining);
      headers['x-ms-ratelimit-remaining-resource'] = remaining;
    }
    return headers;
  }

  /** `NotRegistered`, `Registering` or `Registered` (a registration finishes `registrationMs` after it was asked for). */
  registrationState(namespace: string): 'NotRegistered' | 'Registering' | 'Registered' {
    const entry = this.#registration.get(namespace.toLowerCase());
    if (entry === undefined) return 'Registered';
    if (entry.state === 'Registering' && Date.now() >= entry.at + this.scaled('registrationMs')) entry.state = 'Registered';
    return entry.state;
  }

  /** `providers.register`: starts the registration (idempotent). */
  register(namespace: string): void {
    const entry = this.#registration.get(namespace.toLowerCase());
    if (entry !== undefined && entry.state === 'NotRegistered') {
      entry.state = 'Registering';
      entry.at = Date.now();
    }
  }

  /** Locks resources (lower-case IDs) for a running network operation. */
  lock(ids: readonly string[], durationMs: number, operationUrl: string): void {
    if (durationMs <= 0) return;
    for (const id of ids) this.#locks.set(id.toLowerCase(), { until: Date.now() + durationMs, operationUrl });
  }

  /** Throws `AnotherOperationInProgress` when a write would touch a locked resource. */
  assertUnlocked(ids: readonly string[]): void {
    for (const id of ids) {
      const lock = this.#locks.get(id.toLowerCase());
      if (lock !== undefined && lock.until > Date.now()) throw anotherOperationInProgress(lock.operationUrl);
    }
  }

  /** Throws NRP's 429 `RetryableError` when a referenced resource is still being updated. */
  assertProvisioned(ids: readonly string[]): void {
    for (const id of ids) {
      const lock = this.#locks.get(id.toLowerCase());
      if (lock !== undefined && lock.until > Date.now()) throw referencedNotProvisioned(id);
    }
  }

  /** True while an operation holds the resource (its `provisioningState` reads `Updating`). */
  isUpdating(id: string): boolean {
    const lock = this.#locks.get(id.toLowerCase());
    return lock !== undefined && lock.until > Date.now();
  }

  /** Keeps a resource in use by `by` for `durationMs` more. */
  holdInUse(id: string, durationMs: number, by: string): void {
    if (durationMs > 0) this.#inUseUntil.set(id.toLowerCase(), { until: Date.now() + durationMs, by });
  }

  /** Who still holds a released resource, while its window lasts. */
  inUseBy(id: string): string | undefined {
    const hold = this.#inUseUntil.get(id.toLowerCase());
    return hold !== undefined && hold.until > Date.now() ? hold.by : undefined;
  }
}

function bucketOf(map: Map<string, TokenBucket>, key: string, size: number, refillPerSecond: number): TokenBucket {
  let bucket = map.get(key);
  if (bucket === undefined) {
    bucket = new TokenBucket(size, refillPerSecond);
    map.set(key, bucket);
  }
  return bucket;
}

/** A stable object id for a token (the simulator has no directory). */
function principalOf(token: string): string {
  let hash = 0;
  for (const char of token) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const hex = hash.toString(16).padStart(8, '0');
  return `${hex}-0000-4000-8000-${hex}0000`;
}

const namespaces = ['Microsoft.Compute', 'Microsoft.Network', 'Microsoft.Resources', 'Microsoft.Storage'];

/** The canonical spelling of a namespace. */
export function canonicalNamespace(namespace: string): string {
  return namespaces.find((known) => known.toLowerCase() === namespace.toLowerCase()) ?? namespace;
}
