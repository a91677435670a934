import type { ProviderContext, SimRequest } from '../../core/provider-front-end.ts';
import { consume, type Realism, realismOf, WindowQuota } from '../../core/realism.ts';
import type { SimInstance, SimResource } from '../../core/store.ts';
import { badRequest, notFound } from './digitalocean-errors.ts';
import { DIGITALOCEAN_BURST_LIMIT, DIGITALOCEAN_REALISTIC_DEFAULTS, type DigitalOceanRealism } from './digitalocean-realism.ts';

/** Provider name in the store, the request log and fault rules. */
export const DIGITALOCEAN = 'digitalocean';

/**
 * Options of the DigitalOcean front end (`startSim({ digitalocean: {...} })`), with the real-cloud
 * behaviours and knobs of {@link DigitalOceanRealism}.
 */
export interface DigitalOceanOptions extends DigitalOceanRealism {
  /** Account droplet limit; creates beyond it get DigitalOcean's 422 (default 1000). */
  dropletLimit?: number;
  /** Bearer tokens starting with this prefix get 401 (default `invalid`). */
  invalidTokenPrefix?: string;
  /** `ratelimit-limit` reported on every answer (default 5000). */
  rateLimit?: number;
  /**
   * How long a deleted droplet stays readable and listed before it is gone, in simulator ms (not
   * scaled; any profile). Default: `deletedVisibleMs` scaled (realistic), 0 (kind). At
   * DigitalOcean, DELETE answers 204 at once and the droplet goes a little later.
   */
  dropletDeleteMs?: number;
}

/** A droplet action (`/v2/actions/{id}`). Not a leakable resource. */
export interface DigitalOceanAction {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  started_at: string;
  completed_at: string | null;
  resource_id: number;
  resource_type: 'droplet';
  region_slug: string;
}

/** Droplet details kept in `instance.attributes`. */
export interface DropletAttributes {
  /** Its public IPv4 shows from this time (epoch ms; realistic profile: a while after it first ran). */
  publicIpAfter?: number;
  /** The status the API still shows until `shownStatusUntil` (an action completed a moment ago). */
  shownStatus?: string;
  shownStatusUntil?: number;
  /** When the droplet last booted (epoch ms). */
  bootedAt?: number;
  /** DELETE was accepted; it goes at `dropletDeleteMs`. */
  deleting?: boolean;
  /** The `rareStatus` knob picked it: it reports this status while it runs. */
  rareStatus?: string;
  region: string;
  size: string;
  image: string | number;
  userData?: string;
  backups: boolean;
  ipv6: boolean;
  monitoring: boolean;
  vpcUuid: string;
  diskGb: number;
}

/** Shared state and helpers of one DigitalOcean front end. */
export class DigitalOceanBackend {
  readonly context: ProviderContext;
  readonly dropletLimit: number;
  readonly invalidTokenPrefix: string;
  readonly rateLimit: number;
  /** The options object as given: read on every call, so tests may turn knobs between calls. */
  readonly knobs: DigitalOceanOptions;
  readonly realism: Realism;
  readonly actions = new Map<number, DigitalOceanAction>();
  readonly vpcUuid: string;
  readonly accountUuid: string;
  readonly teamUuid: string;
  #hourStart = Math.floor(Date.now() / 1000);
  #usedThisHour = 0;
  #burst: { quota: WindowQuota; limit: number; windowMs: number } | undefined;

  constructor(context: ProviderContext, options: DigitalOceanOptions = {}) {
    this.context = context;
    this.dropletLimit = options.dropletLimit ?? 1000;
    this.invalidTokenPrefix = options.invalidTokenPrefix ?? 'invalid';
    this.rateLimit = options.rateLimit ?? 5000;
    this.knobs = options;
    this.realism = realismOf(context.realism, options);
    this.vpcUuid = context.ids.uuid();
    this.accountUuid = context.ids.uuid();
    this.teamUuid = context.ids.uuid();
  }

  /** A real-cloud duration of the realistic profile, scaled (0 under the `kind` profile). */
  scaled(knob: keyof typeof DIGITALOCEAN_REALISTIC_DEFAULTS): number {
    return this.realism.scaled(this.knobs[knob] ?? DIGITALOCEAN_REALISTIC_DEFAULTS[knob]);
  }

  /** How long a deleted droplet stays readable (ms). */
  get dropletDeleteMs(): number {
    return this.knobs.dropletDeleteMs ?? this.scaled('deletedVisibleMs');
  }

  /** False while a new droplet or key is not in the listings yet (read-after-create lag). */
  listed(resource: SimInstance | SimResource): boolean {
    return Date.now() - resource.createdAt.getTime() >= this.scaled('listingLagMs');
  }

  /**
   * Counts one request against the hourly window (reported in `ratelimit-*`) and the burst window.
   * Returns the seconds to wait when DigitalOcean would answer 429, else undefined.
   */
  countRequest(): { throttledForSeconds?: number; remaining: number; reset: number } {
    const now = Math.floor(Date.now() / 1000);
    if (now >= this.#hourStart + 3600) {
      this.#hourStart = now;
      this.#usedThisHour = 0;
    }
    this.#usedThisHour++;
    const remaining = Math.max(this.rateLimit - this.#usedThisHour, 0);
    const reset = this.#hourStart + 3600;
    if (this.knobs.enforceHourlyLimit === true && this.#usedThisHour > this.rateLimit) return { throttledForSeconds: reset - now, remaining, reset };
    if (!this.realism.realistic) return { remaining, reset };
    const limit = this.knobs.burstLimit ?? DIGITALOCEAN_BURST_LIMIT;
    const windowMs = Math.max(this.scaled('burstWindowMs'), 1);
    if (this.#burst === undefined || this.#burst.limit !== limit || this.#burst.windowMs !== windowMs) {
      this.#burst = { quota: new WindowQuota(limit, windowMs), limit, windowMs };
    }
    if (this.#burst.quota.take()) return { remaining, reset };
    return { throttledForSeconds: Math.max(1, Math.ceil(this.#burst.quota.retryAfterMs() / 1000)), remaining, reset };
  }

  /** Whether a `shutdown` of this droplet now completes without stopping it (realistic: soon after boot; knob `shutdownIgnored`). */
  shutdownIgnored(droplet: SimInstance): boolean {
    if (consume(this.knobs.shutdownIgnored, droplet.name)) return true;
    const bootedAt = attributesOf(droplet).bootedAt ?? droplet.stateChangedAt.getTime();
    return this.realism.realistic && Date.now() - bootedAt < this.scaled('shutdownIgnoredAfterBootMs');
  }

  /** After an action completed: the API shows `previous` as the status for the status lag. */
  lagStatus(droplet: SimInstance, previous: string): void {
    const attributes = attributesOf(droplet);
    const lag = this.scaled('statusLagMs');
    if (lag <= 0) {
      delete attributes.shownStatus;
      delete attributes.shownStatusUntil;
      return;
    }
    attributes.shownStatus = previous;
    attributes.shownStatusUntil = Date.now() + lag;
  }

  /**
   * While a power action runs, the droplet's status stays what it was (realistic profile): a
   * reboot or power-on never shows `new`, a shutdown reads `active` until the droplet is off.
   */
  holdStatus(droplet: SimInstance, previous: string): void {
    if (!this.realism.realistic) return;
    const attributes = attributesOf(droplet);
    attributes.shownStatus = previous;
    attributes.shownStatusUntil = Number.POSITIVE_INFINITY;
  }

  /** True while an action of the droplet is in progress (`locked`). */
  locked(droplet: SimInstance): boolean {
    const id = Number(droplet.id);
    for (const action of this.actions.values()) if (action.resource_id === id && action.status === 'in-progress') return true;
    return false;
  }

  /** A live droplet by path id; throws 404. */
  droplet(id: string): SimInstance {
    const instance = this.context.store.getInstance(DIGITALOCEAN, id);
    if (instance === undefined || instance.state === 'terminated') throw notFound();
    return instance;
  }

  /** Live droplets, oldest first. */
  droplets(): SimInstance[] {
    return this.context.store.listInstances(DIGITALOCEAN);
  }

  /** Records an in-progress action that completes (or errors) when `done` settles. */
  startAction(type: string, droplet: SimInstance, done: Promise<boolean>): DigitalOceanAction {
    const action: DigitalOceanAction = {
      id: this.context.ids.next('digitalocean:action', 2_000_000_001),
      status: 'in-progress',
      type,
      started_at: new Date().toISOString(),
      completed_at: null,
      resource_id: Number(droplet.id),
      resource_type: 'droplet',
      region_slug: attributesOf(droplet).region,
    };
    this.actions.set(action.id, action);
    done.then((reached) => {
      action.status = reached ? 'completed' : 'errored';
      action.completed_at = new Date().toISOString();
    });
    return action;
  }

  /** Absolute URL of a path on this endpoint. */
  url(path: string): string {
    return `${this.context.endpoint()}${path}`;
  }
}

/** The droplet attributes of an instance. */
export function attributesOf(instance: SimInstance): DropletAttributes {
  return instance.attributes as unknown as DropletAttributes;
}

/** The request's JSON body as an object (`{}` when empty); 400 when it is not JSON. */
export function jsonBody(request: SimRequest): Record<string, unknown> {
  if (request.body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(request.body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw badRequest('The request body could not be parsed as a JSON object.');
  }
}
