import type { SimRequest } from '../../core/provider-front-end.ts';
import type { SimInstance, SimResource } from '../../core/store.ts';
import { attributesOf, type DigitalOceanAction, type DigitalOceanBackend } from './digitalocean-backend.ts';
import { findImage, REGIONS, SIZES } from './digitalocean-catalog.ts';

const DROPLET_STATUS = { pending: 'new', running: 'active', stopping: 'active', stopped: 'off', terminated: 'archive' } as const;

/**
 * The `status` the API shows: the instance's, except for a while after an action completed (the
 * old one, realistic profile) and for droplets the `rareStatus` knob picked.
 */
export function dropletStatus(instance: SimInstance): string {
  const attributes = attributesOf(instance);
  if (attributes.rareStatus !== undefined && instance.state === 'running') return attributes.rareStatus;
  if (attributes.shownStatus !== undefined && Date.now() < (attributes.shownStatusUntil ?? 0)) return attributes.shownStatus;
  return DROPLET_STATUS[instance.state];
}

/**
 * A droplet in the v2 API's shape. Networks appear once it has left `new`, its public IPv4 only
 * after the IP lag (realistic profile); `locked` while an action runs, as on DigitalOcean.
 */
export function dropletJson(instance: SimInstance, backend: DigitalOceanBackend): Record<string, unknown> {
  const attributes = attributesOf(instance);
  const size = SIZES.find((candidate) => candidate.slug === attributes.size);
  const region = REGIONS.find((candidate) => candidate.slug === attributes.region);
  const booted = instance.state !== 'pending';
  const showsPublicIp = booted && Date.now() >= (attributes.publicIpAfter ?? 0);
  return {
    id: Number(instance.id),
    name: instance.name,
    memory: size?.memory ?? 1024,
    vcpus: size?.vcpus ?? 1,
    disk: size?.disk ?? 25,
    locked: backend.locked(instance),
    status: dropletStatus(instance),
    kernel: null,
    created_at: instance.createdAt.toISOString(),
    features: [...(attributes.backups ? ['backups'] : []), ...(attributes.ipv6 ? ['ipv6'] : []), ...(attributes.monitoring ? ['monitoring'] : []), 'private_networking'],
    backup_ids: [],
    next_backup_window: null,
    snapshot_ids: [],
    image: findImage(attributes.image) ?? null,
    volume_ids: [],
    size: size ?? null,
    size_slug: attributes.size,
    networks: {
      v4: [
        ...(showsPublicIp ? [{ ip_address: instance.publicIp, netmask: '255.255.0.0', gateway: '127.1.0.1', type: 'public' }] : []),
        ...(booted ? [{ ip_address: instance.privateIp, netmask: '255.255.0.0', gateway: '10.1.0.1', type: 'private' }] : []),
      ],
      v6: [],
    },
    region: region ?? null,
    tags: [...instance.tags],
    vpc_uuid: attributes.vpcUuid,
  };
}

/** An SSH key (`ssh_key`). */
export function keyJson(resource: SimResource): Record<string, unknown> {
  return { id: Number(resource.id), fingerprint: resource.attributes.fingerprint, public_key: resource.attributes.publicKey, name: resource.name };
}

/** A firewall; `status` is `waiting` right after a change and `succeeded` on later reads. */
export function firewallJson(resource: SimResource, status: 'waiting' | 'succeeded' = 'succeeded'): Record<string, unknown> {
  const dropletIds = (resource.attributes.dropletIds as number[] | undefined) ?? [];
  return {
    id: resource.id,
    name: resource.name,
    status,
    created_at: resource.createdAt.toISOString(),
    pending_changes: status === 'waiting' ? dropletIds.map((dropletId) => ({ droplet_id: dropletId, removing: false, status: 'waiting' })) : [],
    inbound_rules: resource.attributes.inboundRules ?? [],
    outbound_rules: resource.attributes.outboundRules ?? [],
    droplet_ids: [...dropletIds],
    tags: [...((resource.attributes.tags as string[] | undefined) ?? [])],
  };
}

/** An action, with its region object. */
export function actionJson(action: DigitalOceanAction): Record<string, unknown> {
  return { ...action, region: REGIONS.find((region) => region.slug === action.region_slug) ?? null };
}

/**
 * A paginated list body: `{ [key]: items, links: { pages: {first, prev, next, last} }, meta: {total} }`
 * with `page`/`per_page` from the query (default 1/20, at most 200), like the v2 API.
 */
export function paginate(backend: DigitalOceanBackend, request: SimRequest, key: string, items: readonly unknown[]): Record<string, unknown> {
  const perPage = Math.min(Math.max(Number(request.url.searchParams.get('per_page') ?? 20) || 20, 1), 200);
  const page = Math.max(Number(request.url.searchParams.get('page') ?? 1) || 1, 1);
  const lastPage = Math.max(Math.ceil(items.length / perPage), 1);
  const pageUrl = (number: number): string => {
    const params = new URLSearchParams(request.url.searchParams);
    params.set('page', String(number));
    params.set('per_page', String(perPage));
    return backend.url(`${request.url.pathname}?${params.toString()}`);
  };
  const pages: Record<string, string> = {};
  if (page > 1) {
    pages.first = pageUrl(1);
    pages.prev = pageUrl(Math.min(page - 1, lastPage));
  }
  if (page < lastPage) {
    pages.next = pageUrl(page + 1);
    pages.last = pageUrl(lastPage);
  }
  return {
    [key]: items.slice((page - 1) * perPage, page * perPage),
    links: Object.keys(pages).length > 0 ? { pages } : {},
    meta: { total: items.length },
  };
}
