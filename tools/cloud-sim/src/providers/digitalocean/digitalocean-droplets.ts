import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { SimInstance } from '../../core/store.ts';
import { consume } from '../../core/realism.ts';
import { attributesOf, DIGITALOCEAN, type DigitalOceanBackend, type DropletAttributes, jsonBody } from './digitalocean-backend.ts';
import { findImage, REGIONS, SIZES } from './digitalocean-catalog.ts';
import { DROPLET_LIMIT_MESSAGE, notFound, unprocessable } from './digitalocean-errors.ts';
import { actionJson, dropletJson, dropletStatus, paginate } from './digitalocean-json.ts';
import { publicKeysFor } from './digitalocean-keys.ts';

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$/;

/** POST /v2/droplets (single `name` or multi `names`). */
export function createDroplets(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const body = jsonBody(request);
  const names = Array.isArray(body.names) ? body.names : [body.name];
  if (names.length === 0 || names.some((name) => typeof name !== 'string' || name === '')) throw unprocessable('Name is required');
  for (const name of names as string[]) {
    if (!HOSTNAME.test(name)) throw unprocessable(`Name must contain only valid hostname characters: ${name}`);
  }
  const region = typeof body.region === 'string' ? body.region : 'nyc3';
  if (!REGIONS.some((candidate) => candidate.slug === region)) throw unprocessable('You specified an invalid region for Droplet creation.');
  if (typeof body.size !== 'string' || body.size === '') throw unprocessable('You must specify a size.');
  const size = SIZES.find((candidate) => candidate.slug === body.size);
  if (size === undefined) throw unprocessable('You specified an invalid size for Droplet creation.');
  if (typeof body.image !== 'string' && typeof body.image !== 'number') throw unprocessable('You must specify an image.');
  if (findImage(body.image) === undefined) throw unprocessable('You specified an invalid image for Droplet creation.');
  const keys = publicKeysFor(backend, Array.isArray(body.ssh_keys) ? body.ssh_keys : []);
  const tags = Array.isArray(body.tags) ? body.tags.filter((tag): tag is string => typeof tag === 'string') : [];
  if (backend.droplets().length + names.length > backend.dropletLimit) throw unprocessable(DROPLET_LIMIT_MESSAGE);

  const created = (names as string[]).map((name) => {
    const attributes: DropletAttributes = {
      region,
      size: size.slug,
      image: body.image as string | number,
      backups: body.backups === true,
      ipv6: body.ipv6 === true,
      monitoring: body.monitoring === true,
      vpcUuid: typeof body.vpc_uuid === 'string' ? body.vpc_uuid : backend.vpcUuid,
      diskGb: size.disk,
      ...(typeof body.user_data === 'string' ? { userData: body.user_data } : {}),
      ...(consume(backend.knobs.rareStatus, name) ? { rareStatus: backend.knobs.rareStatus?.status ?? 'unknown' } : {}),
    };
    const { instance, running } = backend.context.lifecycle.launch({
      provider: DIGITALOCEAN,
      kind: 'droplet',
      id: String(backend.context.ids.next('digitalocean:droplet', 500_000_001)),
      name,
      authorizedKeys: keys,
      tags,
      attributes: { ...attributes },
      ...(attributes.userData === undefined ? {} : { userData: attributes.userData }),
    });
    // Realistic: `active` before the public IPv4 shows in networks.v4 (replication delay).
    attributesOf(instance).publicIpAfter = Number.POSITIVE_INFINITY;
    void running.then((reached) => {
      if (!reached) return;
      attributesOf(instance).bootedAt = Date.now();
      attributesOf(instance).publicIpAfter = Date.now() + backend.scaled('publicIpLagMs');
    });
    return { instance, action: backend.startAction('create', instance, running) };
  });
  const links = { actions: created.map(({ action }) => ({ id: action.id, rel: 'create', href: backend.url(`/v2/actions/${action.id}`) })) };
  if (!Array.isArray(body.names)) return { status: 202, body: { droplet: dropletJson(created[0]!.instance, backend), links } };
  return { status: 202, body: { droplets: created.map(({ instance }) => dropletJson(instance, backend)), links } };
}

/** GET /v2/droplets with optional `tag_name` or `name` filters. */
export function listDroplets(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const tag = request.url.searchParams.get('tag_name');
  const name = request.url.searchParams.get('name');
  const droplets = backend
    .droplets()
    .filter((droplet) => backend.listed(droplet) && (tag === null || droplet.tags.includes(tag)) && (name === null || droplet.name === name));
  return { status: 200, body: paginate(backend, request, 'droplets', droplets.map((droplet) => dropletJson(droplet, backend))) };
}

/** GET /v2/droplets/{id}. */
export function getDroplet(backend: DigitalOceanBackend, id: string): SimResponse {
  return { status: 200, body: { droplet: dropletJson(backend.droplet(id), backend) } };
}

/**
 * DELETE /v2/droplets/{id}: SSH torn down, address released, removed from firewalls; after
 * `dropletDeleteMs` when set (the droplet stays readable meanwhile, as at DigitalOcean, and a
 * repeated DELETE is answered 204 again).
 */
export function deleteDroplet(backend: DigitalOceanBackend, id: string): SimResponse {
  const droplet = backend.droplet(id);
  const attributes = attributesOf(droplet);
  if (attributes.deleting === true) return { status: 204 };
  const lingerMs = backend.dropletDeleteMs;
  if (lingerMs > 0) {
    attributes.deleting = true;
    setTimeout(() => destroy(backend, droplet), lingerMs).unref();
  } else destroy(backend, droplet);
  return { status: 204 };
}

/** DELETE /v2/droplets?tag_name=…: deletes every droplet with the tag. */
export function deleteDropletsByTag(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const tag = request.url.searchParams.get('tag_name');
  if (tag === null || tag === '') throw unprocessable('tag_name is required');
  for (const droplet of backend.droplets().filter((candidate) => candidate.tags.includes(tag))) destroy(backend, droplet);
  return { status: 204 };
}

function destroy(backend: DigitalOceanBackend, droplet: SimInstance): void {
  void backend.context.lifecycle.terminate(droplet);
  const dropletId = Number(droplet.id);
  for (const firewall of backend.context.store.listResources(DIGITALOCEAN, 'firewall')) {
    const ids = firewall.attributes.dropletIds as number[];
    firewall.attributes.dropletIds = ids.filter((candidate) => candidate !== dropletId);
  }
}

const POWER_ACTIONS = ['power_on', 'power_off', 'shutdown', 'reboot', 'power_cycle'] as const;
type PowerAction = (typeof POWER_ACTIONS)[number];

/** POST /v2/droplets/{id}/actions with a power action `type`. */
export function createDropletAction(backend: DigitalOceanBackend, id: string, request: SimRequest): SimResponse {
  const droplet = backend.droplet(id);
  const type = jsonBody(request).type;
  if (typeof type !== 'string' || !POWER_ACTIONS.includes(type as PowerAction)) {
    throw unprocessable(`'${String(type)}' is not a valid action type; supported: ${POWER_ACTIONS.join(', ')}`);
  }
  const attributes = attributesOf(droplet);
  if (backend.locked(droplet) || attributes.deleting === true || droplet.state === 'pending' || droplet.state === 'stopping') {
    throw unprocessable('Droplet already has a pending event.');
  }
  const { lifecycle } = backend.context;
  const previous = dropletStatus(droplet);
  backend.holdStatus(droplet, previous);
  let done: Promise<boolean>;
  switch (type as PowerAction) {
    case 'power_on':
      done = lifecycle.start(droplet);
      break;
    case 'power_off':
      done = lifecycle.stop(droplet, { force: true });
      break;
    case 'shutdown':
      // Best effort: the command is issued; a guest that does not act on it stays active.
      done =
        droplet.state === 'running' && backend.shutdownIgnored(droplet)
          ? new Promise((resolve) => setTimeout(() => resolve(true), lifecycle.delays.stoppingMs).unref())
          : lifecycle.stop(droplet);
      break;
    case 'reboot':
      done = droplet.state === 'stopped' ? lifecycle.start(droplet) : lifecycle.reboot(droplet);
      break;
    case 'power_cycle':
      done = droplet.state === 'stopped' ? lifecycle.start(droplet) : lifecycle.stop(droplet, { force: true }).then((stopped) => stopped && lifecycle.start(droplet));
      break;
  }
  done = done.then((reached) => {
    // The action is `completed`, yet the droplet's status still reads the old value a while.
    backend.lagStatus(droplet, previous);
    if (reached && droplet.state === 'running' && type !== 'shutdown') attributes.bootedAt = Date.now();
    return reached;
  });
  return { status: 201, body: { action: actionJson(backend.startAction(type, droplet, done)) } };
}

/** GET /v2/droplets/{id}/actions. */
export function listDropletActions(backend: DigitalOceanBackend, id: string, request: SimRequest): SimResponse {
  const droplet = backend.droplet(id);
  const actions = [...backend.actions.values()].filter((action) => action.resource_id === Number(droplet.id));
  return { status: 200, body: paginate(backend, request, 'actions', actions.reverse().map(actionJson)) };
}

/** GET /v2/droplets/{id}/actions/{action_id}. */
export function getDropletAction(backend: DigitalOceanBackend, id: string, actionId: string): SimResponse {
  const droplet = backend.droplet(id);
  const action = backend.actions.get(Number(actionId));
  if (action === undefined || action.resource_id !== Number(droplet.id)) throw notFound();
  return { status: 200, body: { action: actionJson(action) } };
}

