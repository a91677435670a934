import type { Route, SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { DigitalOceanBackend } from './digitalocean-backend.ts';
import { findImage, IMAGES, REGIONS, SIZES } from './digitalocean-catalog.ts';
import { notFound } from './digitalocean-errors.ts';
import {
  createDropletAction,
  createDroplets,
  deleteDroplet,
  deleteDropletsByTag,
  getDroplet,
  getDropletAction,
  listDropletActions,
  listDroplets,
} from './digitalocean-droplets.ts';
import { changeFirewallDroplets, changeFirewallTags, createFirewall, deleteFirewall, getFirewall, listFirewalls, updateFirewall } from './digitalocean-firewalls.ts';
import { actionJson, paginate } from './digitalocean-json.ts';
import { createKey, deleteKey, getKey, listKeys, renameKey } from './digitalocean-keys.ts';

type Handler = (backend: DigitalOceanBackend, request: SimRequest, params: string[]) => SimResponse;

interface RouteSpec {
  method: string;
  path: RegExp;
  operation: string;
  handler: Handler;
}

const ID = '([^/]+)';

function route(method: string, path: string, operation: string, handler: Handler): RouteSpec {
  return { method, path: new RegExp(`^${path}/?$`), operation, handler };
}

/**
 * Every DigitalOcean v2 route the simulator answers, with its operation name (used by the request
 * log and fault rules).
 */
export const DIGITALOCEAN_ROUTES: readonly RouteSpec[] = [
  route('GET', '/v2/account', 'account.get', (backend) => ({ status: 200, body: { account: accountJson(backend) } })),
  route('GET', '/v2/account/keys', 'keys.list', (backend, request) => listKeys(backend, request)),
  route('POST', '/v2/account/keys', 'keys.create', (backend, request) => createKey(backend, request)),
  route('GET', `/v2/account/keys/${ID}`, 'keys.get', (backend, _request, [id]) => getKey(backend, id!)),
  route('PUT', `/v2/account/keys/${ID}`, 'keys.update', (backend, request, [id]) => renameKey(backend, id!, request)),
  route('DELETE', `/v2/account/keys/${ID}`, 'keys.delete', (backend, _request, [id]) => deleteKey(backend, id!)),

  route('GET', '/v2/droplets', 'droplets.list', (backend, request) => listDroplets(backend, request)),
  route('POST', '/v2/droplets', 'droplets.create', (backend, request) => createDroplets(backend, request)),
  route('DELETE', '/v2/droplets', 'droplets.delete_by_tag', (backend, request) => deleteDropletsByTag(backend, request)),
  route('GET', `/v2/droplets/${ID}`, 'droplets.get', (backend, _request, [id]) => getDroplet(backend, id!)),
  route('DELETE', `/v2/droplets/${ID}`, 'droplets.delete', (backend, _request, [id]) => deleteDroplet(backend, id!)),
  route('GET', `/v2/droplets/${ID}/actions`, 'droplet_actions.list', (backend, request, [id]) => listDropletActions(backend, id!, request)),
  route('POST', `/v2/droplets/${ID}/actions`, 'droplet_actions.create', (backend, request, [id]) => createDropletAction(backend, id!, request)),
  route('GET', `/v2/droplets/${ID}/actions/${ID}`, 'droplet_actions.get', (backend, _request, [id, actionId]) => getDropletAction(backend, id!, actionId!)),

  route('GET', '/v2/actions', 'actions.list', (backend, request) => ({
    status: 200,
    body: paginate(backend, request, 'actions', [...backend.actions.values()].reverse().map(actionJson)),
  })),
  route('GET', `/v2/actions/${ID}`, 'actions.get', (backend, _request, [id]) => {
    const action = backend.actions.get(Number(id));
    if (action === undefined) throw notFound();
    return { status: 200, body: { action: actionJson(action) } };
  }),

  route('GET', '/v2/firewalls', 'firewalls.list', (backend, request) => listFirewalls(backend, request)),
  route('POST', '/v2/firewalls', 'firewalls.create', (backend, request) => createFirewall(backend, request)),
  route('GET', `/v2/firewalls/${ID}`, 'firewalls.get', (backend, _request, [id]) => getFirewall(backend, id!)),
  route('PUT', `/v2/firewalls/${ID}`, 'firewalls.update', (backend, request, [id]) => updateFirewall(backend, id!, request)),
  route('DELETE', `/v2/firewalls/${ID}`, 'firewalls.delete', (backend, _request, [id]) => deleteFirewall(backend, id!)),
  route('POST', `/v2/firewalls/${ID}/droplets`, 'firewalls.add_droplets', (backend, request, [id]) => changeFirewallDroplets(backend, id!, request, true)),
  route('DELETE', `/v2/firewalls/${ID}/droplets`, 'firewalls.remove_droplets', (backend, request, [id]) => changeFirewallDroplets(backend, id!, request, false)),
  route('POST', `/v2/firewalls/${ID}/tags`, 'firewalls.add_tags', (backend, request, [id]) => changeFirewallTags(backend, id!, request, true)),
  route('DELETE', `/v2/firewalls/${ID}/tags`, 'firewalls.remove_tags', (backend, request, [id]) => changeFirewallTags(backend, id!, request, false)),

  route('GET', '/v2/regions', 'regions.list', (backend, request) => ({ status: 200, body: paginate(backend, request, 'regions', REGIONS) })),
  route('GET', '/v2/sizes', 'sizes.list', (backend, request) => ({ status: 200, body: paginate(backend, request, 'sizes', SIZES) })),
  route('GET', '/v2/images', 'images.list', (backend, request) => {
    const type = request.url.searchParams.get('type');
    const isPrivate = request.url.searchParams.get('private') === 'true';
    const images = isPrivate || (type !== null && type !== 'distribution') ? [] : IMAGES;
    return { status: 200, body: paginate(backend, request, 'images', images) };
  }),
  route('GET', `/v2/images/${ID}`, 'images.get', (_backend, _request, [id]) => {
    const image = findImage(decodeURIComponent(id!));
    if (image === undefined) throw notFound();
    return { status: 200, body: { image } };
  }),
];

/** Finds the route for a request. */
export function matchDigitalOceanRoute(backend: DigitalOceanBackend, request: SimRequest): Route | undefined {
  for (const spec of DIGITALOCEAN_ROUTES) {
    if (spec.method !== request.method) continue;
    const match = spec.path.exec(request.url.pathname);
    if (match === null) continue;
    const params = match.slice(1).map((param) => decodeURIComponent(param));
    return { operation: spec.operation, handle: () => spec.handler(backend, request, params) };
  }
  return undefined;
}

function accountJson(backend: DigitalOceanBackend): Record<string, unknown> {
  return {
    droplet_limit: backend.dropletLimit,
    floating_ip_limit: 3,
    volume_limit: 100,
    email: 'sim@cloud-sim.invalid',
    name: 'Cloud Sim',
    uuid: backend.accountUuid,
    email_verified: true,
    status: 'active',
    status_message: '',
    team: { uuid: backend.teamUuid, name: 'My Team' },
  };
}
