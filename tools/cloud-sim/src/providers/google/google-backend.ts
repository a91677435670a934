import { ApiError, type ProviderContext, type SimRequest } from '../../core/provider-front-end.ts';
import { type Realism, realismOf, WindowQuota } from '../../core/realism.ts';
import type { SimInstance, SimResource } from '../../core/store.ts';
import { alreadyExists, fingerprintMismatch, invalidField, notFound } from './google-errors.ts';
import { type GoogleRealism, type RateQuotaGroup, rateLimitMessage } from './google-realism.ts';

/** Provider name in the store, the request log and fault rules. */
export const GOOGLE = 'google';

/**
 * Options of the Compute Engine front end (`startSim({ providerOptions: { google: {...} } })`): the
 * project, plus the real-cloud behaviours and knobs of {@link GoogleRealism}.
 */
export interface GoogleOptions extends GoogleRealism {
  /** Instances the project may run; an insert beyond it finishes with a QUOTA_EXCEEDED operation error (default 24). */
  instanceLimit?: number;
  /** Bearer tokens starting with this prefix get 401 (default `invalid`). */
  invalidTokenPrefix?: string;
  /** Reserved static addresses by `region/name` (the simulated IP is still the instance's loopback address). */
  addresses?: Readonly<Record<string, string>>;
  /** Longest time one `operations.wait` call blocks, ms (default 1000; the real API blocks up to 2 minutes). */
  waitCapMs?: number;
}

/** Machine types the simulated zones offer. */
export const MACHINE_TYPES: readonly string[] = [
  'e2-micro',
  'e2-small',
  'e2-medium',
  'e2-standard-2',
  'e2-standard-4',
  'n1-standard-1',
  'n2-standard-2',
  'n2-standard-4',
  'n2d-standard-2',
  'c3-standard-4',
  't2a-standard-1',
];

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ZONE = /^[a-z]+-[a-z]+\d+-[a-z]$/;

/** A zone or global operation. Not a leakable resource. */
export interface GoogleOperation {
  kind: 'compute#operation';
  id: string;
  name: string;
  operationType: string;
  targetLink: string;
  targetId?: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress: number;
  user: string;
  insertTime: string;
  startTime: string;
  endTime?: string;
  selfLink: string;
  zone?: string;
  error?: { errors: { code: string; message: string }[] };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
}

interface OperationRecord {
  operation: GoogleOperation;
  project: string;
  /** `zones/<zone>` or `global`. */
  scope: string;
  done: Promise<void>;
  /** True once a `wait` call saw it (the first one may return at once). */
  waited: boolean;
}

/** What a Compute instance keeps in `SimInstance.attributes`. */
export interface GoogleInstanceAttributes {
  project: string;
  zone: string;
  resource: Record<string, unknown>;
  metadataFingerprint: string;
  tagsFingerprint: string;
  bootDiskId?: string;
}

/**
 * The state of the simulated Compute Engine: instances through the shared lifecycle, firewall
 * rules and boot disks in the store, operations (zone and global) here.
 */
export class GoogleBackend {
  readonly context: ProviderContext;
  readonly instanceLimit: number;
  readonly invalidTokenPrefix: string;
  readonly addresses: Readonly<Record<string, string>>;
  readonly waitCapMs: number;
  readonly #operations = new Map<string, OperationRecord>();
  readonly #byRequestId = new Map<string, OperationRecord>();
  /** The options object as given: read on every call, so tests may turn knobs between calls. */
  readonly knobs: GoogleOptions;
  readonly realism: Realism;
  /** Operation types running per target link (an instance is locked while one runs: `resourceNotReady`). */
  readonly #running = new Map<string, string[]>();
  #quotas: { knob: GoogleOptions['rateQuotas']; windows: Map<RateQuotaGroup, WindowQuota> } = { knob: undefined, windows: new Map() };

  constructor(context: ProviderContext, options: GoogleOptions = {}) {
    this.context = context;
    this.knobs = options;
    this.realism = realismOf(context.realism, options);
    this.instanceLimit = options.instanceLimit ?? 24;
    this.invalidTokenPrefix = options.invalidTokenPrefix ?? 'invalid';
    this.addresses = options.addresses ?? {};
    this.waitCapMs = options.waitCapMs ?? 1000;
  }

  /** `https://www.googleapis.com/compute/v1/<path>` (Compute Engine answers with full URLs). */
  link(path: string): string {
    return `https://www.googleapis.com/compute/v1/${path}`;
  }

  /** Live (not deleted) instances of a project, optionally of one zone. */
  instances(project: string, zone?: string): SimInstance[] {
    return this.context.store.listInstances(GOOGLE).filter((instance) => {
      const attributes = instance.attributes as unknown as GoogleInstanceAttributes;
      return attributes.project === project && (zone === undefined || attributes.zone === zone);
    });
  }

  /** The instance, or 404. */
  instance(project: string, zone: string, name: string): SimInstance {
    const found = this.instances(project, zone).find((instance) => instance.name === name);
    if (found === undefined) throw notFound(`projects/${project}/zones/${zone}/instances/${name}`);
    return found;
  }

  firewall(project: string, name: string): SimResource {
    const found = this.context.store.getResource(GOOGLE, 'firewall', `${project}/${name}`);
    if (found === undefined) throw notFound(`projects/${project}/global/firewalls/${name}`);
    return found;
  }

  /** Checks a resource name the way Compute Engine does. */
  checkName(field: string, name: unknown): string {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalidField(field, name, 'Must be a match of regex \'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)\'');
    }
    return name;
  }

  checkZone(zone: string): void {
    if (!ZONE.test(zone)) throw notFound(`zones/${zone}`);
  }

  /** The operation an earlier call with the same `requestId` started, if any (Compute Engine replays it). */
  replayed(request: SimRequest, project: string): GoogleOperation | undefined {
    const requestId = request.url.searchParams.get('requestId');
    const record = requestId === null ? undefined : this.#byRequestId.get(`${project}/${requestId}`);
    return record === undefined ? undefined : { ...record.operation };
  }

  /**
   * Starts an operation. `run` does the work and resolves when it is finished (or rejects with
   * the operation's error code and message); the same `requestId` returns the same operation.
   */
  startOperation(
    request: SimRequest,
    project: string,
    scope: string,
    operationType: string,
    target: { link: string; id?: string },
    run: () => Promise<void>,
  ): GoogleOperation {
    const requestId = request.url.searchParams.get('requestId');
    const replay = requestId === null ? undefined : this.#byRequestId.get(`${project}/${requestId}`);
    if (replay !== undefined) return { ...replay.operation };
    const id = String(this.context.ids.next('google:operation', 4_100_000_000_000));
    const name = `operation-${Date.now()}-${this.context.ids.hex(13)}-${this.context.ids.hex(8)}`;
    const now = new Date().toISOString();
    const operation: GoogleOperation = {
      kind: 'compute#operation',
      id,
      name,
      operationType,
      targetLink: target.link,
      ...(target.id === undefined ? {} : { targetId: target.id }),
      status: 'RUNNING',
      progress: 0,
      user: 'sim-user@cloud-sim.invalid',
      insertTime: now,
      startTime: now,
      selfLink: this.link(`projects/${project}/${scope}/operations/${name}`),
      ...(scope === 'global' ? {} : { zone: this.link(`projects/${project}/${scope}`) }),
    };
    const finish = (error?: OperationFailure) => {
      operation.status = 'DONE';
      operation.progress = 100;
      operation.endTime = new Date().toISOString();
      if (error !== undefined) {
        operation.error = { errors: [{ code: error.code, message: error.message }] };
        operation.httpErrorStatusCode = error.httpStatus;
        operation.httpErrorMessage = error.httpMessage;
      }
    };
    const done = run().then(
      () => finish(),
      (error: unknown) => finish(error instanceof OperationFailure ? error : new OperationFailure('INTERNAL_ERROR', String(error), 500, 'INTERNAL SERVER ERROR')),
    );
    const running = this.#running.get(target.link) ?? [];
    running.push(operationType);
    this.#running.set(target.link, running);
    const release = () => {
      const left = this.#running.get(target.link) ?? [];
      left.splice(left.indexOf(operationType), 1);
      if (left.length === 0) this.#running.delete(target.link);
    };
    void done.then(release);
    const record: OperationRecord = { operation, project, scope, done, waited: false };
    this.#operations.set(`${project}/${scope}/${name}`, record);
    if (requestId !== null) this.#byRequestId.set(`${project}/${requestId}`, record);
    return { ...operation };
  }

  /** The operation, or 404. */
  operation(project: string, scope: string, name: string): OperationRecord {
    const record = this.#operations.get(`${project}/${scope}/${name}`);
    if (record === undefined) throw notFound(`projects/${project}/${scope}/operations/${name}`);
    return record;
  }

  /**
   * Blocks until the operation is DONE or the wait cap passes (the API's `wait`), then returns it.
   * Realistic: the first wait of an operation returns at once, as the real one "might" under load.
   */
  async waitOperation(project: string, scope: string, name: string): Promise<GoogleOperation> {
    const record = this.operation(project, scope, name);
    const early = !record.waited && this.realism.realistic && this.knobs.waitReturnsEarly !== false;
    record.waited = true;
    if (record.operation.status !== 'DONE' && !early) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([record.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.waitCapMs)))]);
      clearTimeout(timer);
    }
    return { ...record.operation };
  }

  /**
   * 400 `resourceNotReady` when another operation on the resource is still running (realistic). A
   * delete during the instance's insert is accepted: the insert then ends in a conflict.
   */
  assertReady(link: string, operationType: string): void {
    if (!this.realism.realistic || this.knobs.resourceNotReady === false) return;
    const running = this.#running.get(link) ?? [];
    const conflicting = operationType === 'delete' ? running.filter((type) => type !== 'insert') : running;
    if (conflicting.length > 0) {
      throw new ApiError(400, 'resourceNotReady', `The resource '${link.replace(/^https:\/\/[^/]+\/compute\/v1\//, '')}' is not ready`);
    }
  }

  /** Counts one call against its per-minute rate quota group (knob `rateQuotas`): 403 `rateLimitExceeded` over the limit. */
  takeRateQuota(group: RateQuotaGroup): void {
    const knob = this.knobs.rateQuotas;
    if (knob === undefined || (knob.groups !== undefined && !knob.groups.includes(group))) return;
    if (this.#quotas.knob !== knob) this.#quotas = { knob, windows: new Map() };
    let window = this.#quotas.windows.get(group);
    if (window === undefined) {
      window = new WindowQuota(knob.limit, this.realism.scaled(knob.windowMs ?? 60_000) || (knob.windowMs ?? 60_000));
      this.#quotas.windows.set(group, window);
    }
    if (!window.take()) throw new ApiError(403, 'rateLimitExceeded', rateLimitMessage(group));
  }

  /** Replaces metadata after a fingerprint check; SSH accepts the keys in `ssh-keys` (and legacy `sshKeys`). */
  setMetadata(instance: SimInstance, metadata: { fingerprint?: string; items?: { key?: string; value?: string }[] }): void {
    const attributes = instance.attributes as unknown as GoogleInstanceAttributes;
    if (metadata.fingerprint !== attributes.metadataFingerprint) throw fingerprintMismatch('metadata');
    const items = (metadata.items ?? []).map((item) => ({ key: String(item.key ?? ''), value: String(item.value ?? '') }));
    attributes.resource.metadata = { items };
    attributes.metadataFingerprint = this.context.ids.hex(16);
    instance.authorizedKeys = authorizedKeysFrom(items);
  }

  setTags(instance: SimInstance, tags: { fingerprint?: string; items?: string[] }): void {
    const attributes = instance.attributes as unknown as GoogleInstanceAttributes;
    if (tags.fingerprint !== attributes.tagsFingerprint) throw fingerprintMismatch('tags');
    const items = [...new Set(tags.items ?? [])];
    for (const tag of items) this.checkName('tags.items', tag);
    attributes.resource.tags = { items };
    attributes.tagsFingerprint = this.context.ids.hex(16);
    instance.tags = items;
  }

  /** Firewall names must be unique in the project. */
  assertNoFirewall(project: string, name: string): void {
    if (this.context.store.getResource(GOOGLE, 'firewall', `${project}/${name}`) !== undefined) {
      throw alreadyExists(`projects/${project}/global/firewalls/${name}`);
    }
  }
}

/** An operation that finished with an error (in the operation's `error` field; the HTTP call succeeded). */
export class OperationFailure extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly httpMessage: string;

  constructor(code: string, message: string, httpStatus: number, httpMessage: string) {
    super(message);
    this.code = code;
    this.httpStatus = httpStatus;
    this.httpMessage = httpMessage;
  }
}

/** Public key lines from `ssh-keys` / `sshKeys` metadata values (`user:ssh-ed25519 AAAA… comment`). */
export function authorizedKeysFrom(items: readonly { key: string; value: string }[]): string[] {
  return items
    .filter((item) => item.key === 'ssh-keys' || item.key === 'sshKeys')
    .flatMap((item) => item.value.split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => line.slice(line.indexOf(':') + 1).trim());
}

/** Parses a JSON request body (400 on malformed JSON). */
export function jsonBody(request: SimRequest): Record<string, unknown> {
  if (request.body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(request.body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    throw invalidField('body', '…', 'The request body is not valid JSON.');
  }
}
