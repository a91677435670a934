import type { ProviderContext, SimRequest } from '../../core/provider-front-end.ts';
import type { SimInstance } from '../../core/store.ts';
import { badRequest, notFound } from './digitalocean-errors.ts';

/** Provider name in the store, the request log and fault rules. */
export const DIGITALOCEAN = 'digitalocean';

/** Options of the DigitalOcean front end (`startSim({ digitalocean: {...} })`). */
export interface DigitalOceanOptions {
  /** Account droplet limit; creates beyond it get DigitalOcean's 422 (default 1000). */
  dropletLimit?: number;
  /** Bearer tokens starting with this prefix get 401 (default `invalid`). */
  invalidTokenPrefix?: string;
  /** `ratelimit-limit` reported on every answer (default 5000). */
  rateLimit?: number;
  /**
   * How long a deleted droplet stays readable and listed before it is gone (default 0). At
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
  readonly dropletDeleteMs: number;
  readonly actions = new Map<number, DigitalOceanAction>();
  readonly vpcUuid: string;
  readonly accountUuid: string;
  readonly teamUuid: string;

  constructor(context: ProviderContext, options: DigitalOceanOptions = {}) {
    this.context = context;
    this.dropletLimit = options.dropletLimit ?? 1000;
    this.invalidTokenPrefix = options.invalidTokenPrefix ?? 'invalid';
    this.rateLimit = options.rateLimit ?? 5000;
    this.dropletDeleteMs = options.dropletDeleteMs ?? 0;
    this.vpcUuid = context.ids.uuid();
    this.accountUuid = context.ids.uuid();
    this.teamUuid = context.ids.uuid();
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
