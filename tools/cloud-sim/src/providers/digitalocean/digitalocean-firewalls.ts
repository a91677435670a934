import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { SimResource } from '../../core/store.ts';
import { DIGITALOCEAN, type DigitalOceanBackend, jsonBody } from './digitalocean-backend.ts';
import { notFound, unprocessable } from './digitalocean-errors.ts';
import { firewallJson, paginate } from './digitalocean-json.ts';

const KIND = 'firewall';
const PROTOCOLS = ['tcp', 'udp', 'icmp'];

/** POST /v2/firewalls → 202 `{firewall}` with status `waiting`. */
export function createFirewall(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const body = jsonBody(request);
  if (typeof body.name !== 'string' || body.name === '') throw unprocessable('name is required');
  const resource = backend.context.store.putResource({
    provider: DIGITALOCEAN,
    kind: KIND,
    id: backend.context.ids.uuid(),
    name: body.name,
    createdAt: new Date(),
    attributes: {},
  });
  try {
    applyFirewallBody(backend, resource, body);
  } catch (error) {
    backend.context.store.deleteResource(DIGITALOCEAN, KIND, resource.id);
    throw error;
  }
  return { status: 202, body: { firewall: firewallJson(resource, 'waiting') } };
}

/** GET /v2/firewalls. */
export function listFirewalls(backend: DigitalOceanBackend, request: SimRequest): SimResponse {
  const firewalls = backend.context.store.listResources(DIGITALOCEAN, KIND).map((firewall) => firewallJson(firewall));
  return { status: 200, body: paginate(backend, request, 'firewalls', firewalls) };
}

/** GET /v2/firewalls/{id}. */
export function getFirewall(backend: DigitalOceanBackend, id: string): SimResponse {
  return { status: 200, body: { firewall: firewallJson(requireFirewall(backend, id)) } };
}

/** PUT /v2/firewalls/{id}: replaces name, rules, droplets and tags. */
export function updateFirewall(backend: DigitalOceanBackend, id: string, request: SimRequest): SimResponse {
  const firewall = requireFirewall(backend, id);
  const body = jsonBody(request);
  if (typeof body.name !== 'string' || body.name === '') throw unprocessable('name is required');
  applyFirewallBody(backend, firewall, body);
  firewall.name = body.name;
  return { status: 200, body: { firewall: firewallJson(firewall, 'waiting') } };
}

/** DELETE /v2/firewalls/{id} → 204. */
export function deleteFirewall(backend: DigitalOceanBackend, id: string): SimResponse {
  requireFirewall(backend, id);
  backend.context.store.deleteResource(DIGITALOCEAN, KIND, id);
  return { status: 204 };
}

/** POST or DELETE /v2/firewalls/{id}/droplets `{droplet_ids}` → 204. */
export function changeFirewallDroplets(backend: DigitalOceanBackend, id: string, request: SimRequest, add: boolean): SimResponse {
  const firewall = requireFirewall(backend, id);
  const ids = dropletIds(backend, jsonBody(request).droplet_ids);
  const current = firewall.attributes.dropletIds as number[];
  firewall.attributes.dropletIds = add ? [...new Set([...current, ...ids])] : current.filter((dropletId) => !ids.includes(dropletId));
  return { status: 204 };
}

/** POST or DELETE /v2/firewalls/{id}/tags `{tags}` → 204. */
export function changeFirewallTags(backend: DigitalOceanBackend, id: string, request: SimRequest, add: boolean): SimResponse {
  const firewall = requireFirewall(backend, id);
  const tags = stringList(jsonBody(request).tags);
  const current = firewall.attributes.tags as string[];
  firewall.attributes.tags = add ? [...new Set([...current, ...tags])] : current.filter((tag) => !tags.includes(tag));
  return { status: 204 };
}

function applyFirewallBody(backend: DigitalOceanBackend, firewall: SimResource, body: Record<string, unknown>): void {
  const inbound = rules(body.inbound_rules, 'inbound_rules', 'sources');
  const outbound = rules(body.outbound_rules, 'outbound_rules', 'destinations');
  if (inbound.length === 0 && outbound.length === 0) throw unprocessable('must have at least one rule');
  firewall.attributes = {
    inboundRules: inbound,
    outboundRules: outbound,
    dropletIds: dropletIds(backend, body.droplet_ids),
    tags: stringList(body.tags),
  };
}

function rules(value: unknown, field: string, targetField: string): Record<string, unknown>[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw unprocessable(`${field} must be an array`);
  return value.map((rule, index) => {
    const candidate = (rule ?? {}) as Record<string, unknown>;
    if (typeof candidate.protocol !== 'string' || !PROTOCOLS.includes(candidate.protocol)) {
      throw unprocessable(`${field}[${index}].protocol must be one of ${PROTOCOLS.join(', ')}`);
    }
    if (candidate.protocol !== 'icmp' && (typeof candidate.ports !== 'string' || !/^(\d+(-\d+)?|all|0)$/.test(candidate.ports))) {
      throw unprocessable(`${field}[${index}].ports must be a port, a range or "all"`);
    }
    const target = (candidate[targetField] ?? {}) as Record<string, unknown>;
    return {
      protocol: candidate.protocol,
      ports: candidate.protocol === 'icmp' ? '0' : candidate.ports,
      [targetField]: {
        ...(Array.isArray(target.addresses) ? { addresses: stringList(target.addresses) } : {}),
        ...(Array.isArray(target.droplet_ids) ? { droplet_ids: target.droplet_ids } : {}),
        ...(Array.isArray(target.tags) ? { tags: stringList(target.tags) } : {}),
        ...(Array.isArray(target.load_balancer_uids) ? { load_balancer_uids: stringList(target.load_balancer_uids) } : {}),
      },
    };
  });
}

function dropletIds(backend: DigitalOceanBackend, value: unknown): number[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw unprocessable('droplet_ids must be an array');
  return value.map((id) => {
    const droplet = backend.context.store.getInstance(DIGITALOCEAN, String(id));
    if (droplet === undefined || droplet.state === 'terminated') throw unprocessable(`droplet ${String(id)} does not exist`);
    return Number(id);
  });
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function requireFirewall(backend: DigitalOceanBackend, id: string): SimResource {
  const firewall = backend.context.store.getResource(DIGITALOCEAN, KIND, id);
  if (firewall === undefined) throw notFound();
  return firewall;
}
