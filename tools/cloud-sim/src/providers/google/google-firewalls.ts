import type { SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import type { SimResource } from '../../core/store.ts';
import { GOOGLE, type GoogleBackend, jsonBody } from './google-backend.ts';
import { invalidField, notFound } from './google-errors.ts';

/** The Compute v1 `Firewall` JSON. */
export function firewallJson(backend: GoogleBackend, rule: SimResource): Record<string, unknown> {
  const project = String(rule.attributes.project);
  return {
    kind: 'compute#firewall',
    id: String(rule.attributes.numericId),
    creationTimestamp: rule.createdAt.toISOString(),
    name: rule.name,
    selfLink: backend.link(`projects/${project}/global/firewalls/${rule.name}`),
    ...(rule.attributes.resource as Record<string, unknown>),
  };
}

function normalise(backend: GoogleBackend, project: string, body: Record<string, unknown>): Record<string, unknown> {
  const network = String(body.network ?? 'global/networks/default').replace(/^https:\/\/[^/]+\/compute\/v1\//, '');
  const relative = network.startsWith('projects/') ? network : network.startsWith('global/') ? `projects/${project}/${network}` : `projects/${project}/global/networks/${network}`;
  const allowed = (body.allowed as { IPProtocol?: string; ports?: string[] }[] | undefined) ?? [];
  for (const entry of allowed) {
    if (!['tcp', 'udp', 'icmp', 'all', 'sctp', 'esp', 'ah'].includes(String(entry.IPProtocol))) {
      throw invalidField('resource.allowed[].IPProtocol', entry.IPProtocol, 'Invalid protocol.');
    }
    for (const port of entry.ports ?? []) {
      if (!/^\d{1,5}(-\d{1,5})?$/.test(port)) throw invalidField('resource.allowed[].ports[]', port, 'Invalid port range.');
    }
  }
  const sources = (body.sourceRanges as string[] | undefined) ?? [];
  const families = new Set(sources.map((source) => (source.includes(':') ? 6 : 4)));
  if (families.size > 1) throw invalidField('resource.sourceRanges', sources.join(','), 'IPv4 and IPv6 ranges cannot be mixed in one rule.');
  return {
    description: body.description ?? '',
    network: backend.link(relative),
    priority: body.priority ?? 1000,
    sourceRanges: sources,
    targetTags: body.targetTags ?? [],
    allowed,
    direction: body.direction ?? 'INGRESS',
    logConfig: { enable: false },
    disabled: false,
  };
}

/** GET …/global/firewalls/{name}. */
export function getFirewall(backend: GoogleBackend, project: string, name: string): SimResponse {
  return { status: 200, body: firewallJson(backend, backend.firewall(project, name)) };
}

/** GET …/global/firewalls. */
export function listFirewalls(backend: GoogleBackend, project: string): SimResponse {
  const items = backend.context.store.listResources(GOOGLE, 'firewall').filter((rule) => rule.attributes.project === project);
  return { status: 200, body: { kind: 'compute#firewallList', items: items.map((rule) => firewallJson(backend, rule)) } };
}

/** POST …/global/firewalls. */
export function insertFirewall(backend: GoogleBackend, request: SimRequest, project: string): SimResponse {
  const body = jsonBody(request);
  const name = backend.checkName('resource.name', body.name);
  backend.assertNoFirewall(project, name);
  const resource = normalise(backend, project, body);
  const numericId = backend.context.ids.next('google:firewall', 2_000_000_000_000);
  backend.context.store.putResource({
    provider: GOOGLE,
    kind: 'firewall',
    id: `${project}/${name}`,
    name,
    createdAt: new Date(),
    attributes: { project, numericId, resource },
  });
  const link = backend.link(`projects/${project}/global/firewalls/${name}`);
  return { status: 200, body: backend.startOperation(request, project, 'global', 'insert', { link, id: String(numericId) }, async () => {}) };
}

/** PATCH …/global/firewalls/{name}: the given fields replace the rule's. */
export function patchFirewall(backend: GoogleBackend, request: SimRequest, project: string, name: string): SimResponse {
  const rule = backend.firewall(project, name);
  const current = rule.attributes.resource as Record<string, unknown>;
  const body = jsonBody(request);
  rule.attributes.resource = normalise(backend, project, { ...current, ...body });
  const link = backend.link(`projects/${project}/global/firewalls/${name}`);
  return { status: 200, body: backend.startOperation(request, project, 'global', 'patch', { link, id: String(rule.attributes.numericId) }, async () => {}) };
}

/** DELETE …/global/firewalls/{name}. */
export function deleteFirewall(backend: GoogleBackend, request: SimRequest, project: string, name: string): SimResponse {
  const rule = backend.firewall(project, name);
  backend.context.store.deleteResource(GOOGLE, 'firewall', rule.id);
  const link = backend.link(`projects/${project}/global/firewalls/${name}`);
  return { status: 200, body: backend.startOperation(request, project, 'global', 'delete', { link, id: String(rule.attributes.numericId) }, async () => {}) };
}

/** GET …/regions/{region}/addresses/{name}: reserved addresses come from the front end's options. */
export function getAddress(backend: GoogleBackend, project: string, region: string, name: string): SimResponse {
  const address = backend.addresses[`${region}/${name}`];
  if (address === undefined) throw notFound(`projects/${project}/regions/${region}/addresses/${name}`);
  return {
    status: 200,
    body: {
      kind: 'compute#address',
      name,
      address,
      status: 'RESERVED',
      addressType: 'EXTERNAL',
      region: backend.link(`projects/${project}/regions/${region}`),
      selfLink: backend.link(`projects/${project}/regions/${region}/addresses/${name}`),
    },
  };
}
