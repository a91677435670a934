/**
 * Fault injection: API faults (a provider error on the Nth call of an operation, throttling, added
 * latency) and instance faults (never reaches running, SSH port never opens, SSH rejects the key,
 * Docker Engine install fails, public IP changes on each start).
 * Each provider front end renders an API fault in its own wire format.
 */

/** Provider-independent API error kinds; each front end maps them to its own status and body. */
export type FaultErrorKind = 'auth' | 'quota' | 'not_found' | 'server' | 'unavailable';

/** The error kinds, for validation. */
export const FAULT_ERROR_KINDS: readonly FaultErrorKind[] = ['auth', 'quota', 'not_found', 'server', 'unavailable'];

/** How a throttled answer looks: the provider's 429 with reset and retry-after headers. */
export interface ThrottleSpec {
  /** Calls to throttle (default 1). */
  times?: number;
  /** `retry-after` in seconds (default 0 so SDK retries are immediate in tests). */
  retryAfterSeconds?: number;
  /** Seconds until `ratelimit-reset` (default 1). */
  resetSeconds?: number;
}

/**
 * What happens to the answer of a call the provider carried out (`reply` rules): `drop` closes the
 * connection without an answer, `hold` never answers (until the client gives up or the simulator
 * closes). Either way the change is committed: a lost reply, as a killed process or a network
 * failure after the provider acted sees it.
 */
export type LostReply = 'drop' | 'hold';

/** The lost-reply kinds, for validation. */
export const LOST_REPLY_KINDS: readonly LostReply[] = ['drop', 'hold'];

/**
 * An API fault rule. Matching calls are counted from when the rule is added; the rule fires on
 * calls number `nth` … `nth + times - 1`. Exactly one of `error`, `throttle`, `reply`, `latencyMs`
 * is expected (latency may be combined with an error or a reply).
 */
export interface ApiFaultRule {
  /** Provider name (default: any). */
  provider?: string;
  /** Operation name such as `droplets.create`, or `*` (default). */
  operation?: string;
  /** First matching call that fails, 1-based (default 1). */
  nth?: number;
  /** How many consecutive matching calls fire (default 1 for errors/throttling, unlimited for latency). */
  times?: number;
  /** Answer with this provider error instead of doing the call. */
  error?: FaultErrorKind;
  /** With `error`: also send `retry-after` (seconds), e.g. 0 so SDK retries of a 503 are immediate. */
  retryAfterSeconds?: number;
  /** Answer with the provider's 429. */
  throttle?: ThrottleSpec;
  /** Delay the answer by this many milliseconds. */
  latencyMs?: number;
  /** Carry out the call, then lose its answer: `drop` the connection or `hold` it forever. */
  reply?: LostReply;
}

/**
 * A fault of driver-core's chaos conformance run (`ChaosFault`: throttle, server-error, lost-reply,
 * latency) as an API fault rule of `provider`: a throttle with an immediate Retry-After, a 5xx, a
 * dropped answer, or one late answer.
 */
export function chaosFaultRule(
  provider: string,
  fault: { readonly kind: string; readonly nth: number; readonly operation?: string; readonly durationMs: number },
): ApiFaultRule {
  const at = { provider, operation: fault.operation ?? '*', nth: fault.nth };
  switch (fault.kind) {
    case 'throttle':
      return { ...at, throttle: { times: 1, retryAfterSeconds: 0, resetSeconds: 1 } };
    case 'server-error':
      return { ...at, error: 'server' };
    case 'lost-reply':
      return { ...at, reply: 'drop' };
    default:
      return { ...at, times: 1, latencyMs: fault.durationMs };
  }
}

/** Instance-level fault kinds. */
export type InstanceFaultKind = 'neverRuns' | 'sshNeverOpens' | 'sshRejectsKey' | 'engineInstallFails' | 'ipChangesOnStart';

/** Every instance fault kind, for validation. */
export const INSTANCE_FAULT_KINDS: readonly InstanceFaultKind[] = ['neverRuns', 'sshNeverOpens', 'sshRejectsKey', 'engineInstallFails', 'ipChangesOnStart'];

/** Which instances an instance fault applies to; applied when an instance is created. */
export interface InstanceSelector {
  provider?: string;
  /** Exact instance name, or a pattern. */
  name?: string | RegExp;
  /** How many new instances get the fault (default: every matching one). */
  times?: number;
}

/** An instance fault as set from JSON (`CLOUD_SIM_FAULTS`). */
export interface InstanceFaultRule extends Omit<InstanceSelector, 'name'> {
  instance: InstanceFaultKind;
  name?: string;
}

/** What `CLOUD_SIM_FAULTS` may hold: a JSON array of these. */
export type FaultSpec = ApiFaultRule | InstanceFaultRule;

/** What the HTTP layer must do for one call. */
export interface FaultDecision {
  latencyMs: number;
  error?: FaultErrorKind;
  /** `retry-after` to add to the error answer. */
  retryAfterSeconds?: number;
  throttle?: Required<ThrottleSpec>;
  /** Run the call, then lose its answer this way. */
  reply?: LostReply;
}

interface ActiveApiRule {
  rule: ApiFaultRule;
  seen: number;
  fired: number;
}

interface ActiveInstanceRule {
  kind: InstanceFaultKind;
  selector: InstanceSelector;
  applied: number;
}

/** A handle that removes a fault rule. */
export interface FaultHandle {
  remove(): void;
}

/** The fault registry of one simulator (`sim.faults`). */
export class FaultInjector {
  readonly #apiRules: ActiveApiRule[] = [];
  readonly #instanceRules: ActiveInstanceRule[] = [];

  /** Adds an API fault rule or (from JSON) an instance fault rule. */
  add(spec: FaultSpec): FaultHandle {
    if ('instance' in spec) return this.#addInstance(spec.instance, spec);
    validateApiRule(spec);
    const active: ActiveApiRule = { rule: { ...spec }, seen: 0, fired: 0 };
    this.#apiRules.push(active);
    return { remove: () => removeFrom(this.#apiRules, active) };
  }

  /** Adds every rule of a `CLOUD_SIM_FAULTS`-style JSON array. */
  addAll(specs: readonly FaultSpec[]): void {
    for (const spec of specs) this.add(spec);
  }

  /** Matching new instances stay pending forever (their create action never completes). */
  instanceNeverRuns(selector: InstanceSelector = {}): FaultHandle {
    return this.#addInstance('neverRuns', selector);
  }

  /** Matching new instances reach running but nothing listens on their SSH address. */
  sshNeverOpens(selector: InstanceSelector = {}): FaultHandle {
    return this.#addInstance('sshNeverOpens', selector);
  }

  /** Matching new instances run an SSH server that refuses every key. */
  sshRejectsKey(selector: InstanceSelector = {}): FaultHandle {
    return this.#addInstance('sshRejectsKey', selector);
  }

  /**
   * Matching new instances cannot install Docker Engine: apt-get answers `E: Unable to locate
   * package docker-ce` (exit 100), so the install script and cloud-init fail (`status: error`).
   */
  engineInstallFails(selector: InstanceSelector = {}): FaultHandle {
    return this.#addInstance('engineInstallFails', selector);
  }

  /** Matching new instances get a new public address each time they start after a stop (not on reboot). */
  ipChangesOnStart(selector: InstanceSelector = {}): FaultHandle {
    return this.#addInstance('ipChangesOnStart', selector);
  }

  /** Removes every rule. */
  clear(): void {
    this.#apiRules.length = 0;
    this.#instanceRules.length = 0;
  }

  /** Counts one call of `provider`/`operation` against every rule and says what to inject. */
  decide(provider: string, operation: string): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0 };
    for (const active of this.#apiRules) {
      const { rule } = active;
      if (rule.provider !== undefined && rule.provider !== provider) continue;
      if (rule.operation !== undefined && rule.operation !== '*' && rule.operation !== operation) continue;
      active.seen++;
      const nth = rule.nth ?? 1;
      const isLatencyOnly = rule.error === undefined && rule.throttle === undefined && rule.reply === undefined;
      const times = rule.times ?? rule.throttle?.times ?? (isLatencyOnly ? Number.POSITIVE_INFINITY : 1);
      if (active.seen < nth || active.fired >= times) continue;
      active.fired++;
      decision.latencyMs += rule.latencyMs ?? 0;
      if (rule.reply !== undefined && rule.error === undefined && rule.throttle === undefined) decision.reply ??= rule.reply;
      if (decision.error !== undefined || decision.throttle !== undefined) continue;
      if (rule.error !== undefined) {
        decision.error = rule.error;
        if (rule.retryAfterSeconds !== undefined) decision.retryAfterSeconds = rule.retryAfterSeconds;
      } else if (rule.throttle !== undefined) {
        decision.throttle = {
          times,
          retryAfterSeconds: rule.throttle.retryAfterSeconds ?? 0,
          resetSeconds: rule.throttle.resetSeconds ?? 1,
        };
      }
    }
    return decision;
  }

  /** The instance faults a new instance gets (consumes `times`). */
  instanceFaultsFor(provider: string, name: string): Set<InstanceFaultKind> {
    const kinds = new Set<InstanceFaultKind>();
    for (const active of this.#instanceRules) {
      const { selector } = active;
      if (selector.provider !== undefined && selector.provider !== provider) continue;
      if (selector.name !== undefined && !matchesName(selector.name, name)) continue;
      if (active.applied >= (selector.times ?? Number.POSITIVE_INFINITY)) continue;
      active.applied++;
      kinds.add(active.kind);
    }
    return kinds;
  }

  #addInstance(kind: InstanceFaultKind, selector: InstanceSelector): FaultHandle {
    const active: ActiveInstanceRule = { kind, selector: { ...selector }, applied: 0 };
    this.#instanceRules.push(active);
    return { remove: () => removeFrom(this.#instanceRules, active) };
  }
}

/**
 * Parses `CLOUD_SIM_FAULTS` (a JSON array of {@link FaultSpec}, or one object). Throws with a
 * readable message on malformed input.
 */
export function parseFaultSpecs(json: string): FaultSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new Error(`CLOUD_SIM_FAULTS is not valid JSON: ${(error as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((item, index) => {
    if (typeof item !== 'object' || item === null) throw new Error(`CLOUD_SIM_FAULTS[${index}] is not an object`);
    const spec = item as FaultSpec;
    if ('instance' in spec) {
      if (!INSTANCE_FAULT_KINDS.includes(spec.instance)) {
        throw new Error(`CLOUD_SIM_FAULTS[${index}].instance must be one of ${INSTANCE_FAULT_KINDS.join(', ')}`);
      }
    } else {
      validateApiRule(spec, `CLOUD_SIM_FAULTS[${index}]`);
    }
    return spec;
  });
}

function validateApiRule(rule: ApiFaultRule, where = 'fault rule'): void {
  if (rule.error !== undefined && !FAULT_ERROR_KINDS.includes(rule.error)) {
    throw new Error(`${where}: error must be one of ${FAULT_ERROR_KINDS.join(', ')}`);
  }
  if (rule.reply !== undefined && !LOST_REPLY_KINDS.includes(rule.reply)) {
    throw new Error(`${where}: reply must be one of ${LOST_REPLY_KINDS.join(', ')}`);
  }
  if (rule.error === undefined && rule.throttle === undefined && rule.latencyMs === undefined && rule.reply === undefined) {
    throw new Error(`${where}: needs error, throttle, reply or latencyMs`);
  }
  if (rule.nth !== undefined && (!Number.isInteger(rule.nth) || rule.nth < 1)) {
    throw new Error(`${where}: nth must be an integer >= 1`);
  }
}

function matchesName(pattern: string | RegExp, name: string): boolean {
  return typeof pattern === 'string' ? pattern === name : pattern.test(name);
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index !== -1) list.splice(index, 1);
}
