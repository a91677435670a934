import type { AnyResourceKind, FirewallRule, FoundResource, ResourceCall, ResourceKind as Kind } from '@machine/driver-core';
import type { DigitalOceanClient, DotsDropletCreate } from './digitalocean-api-types.ts';
import { statusOf } from './digitalocean-errors.ts';

/** Tag on every droplet this driver makes (`doctl compute droplet list --tag-name machine`; the batch state query lists it). */
export const machineTag = 'machine';

/** The journal kinds of this driver (kept for records and callers that read the journal). */
export const ResourceKind = { sshKey: 'ssh-key', droplet: 'droplet', firewall: 'firewall' } as const;

/**
 * The name of a key or firewall: `<managed-by>.<machine>.<token>` (`machine.web1.1f2e3d4c`). Unique
 * per create call, so a lost reply is found by it, and sweep reads the managed-by part back.
 */
export function managedName(call: Pick<ResourceCall, 'managedBy' | 'machineName' | 'token'>): string {
  return `${call.managedBy}.${call.machineName}.${call.token}`;
}

/** The parts of a {@link managedName}, or undefined for any other name. */
export function parseManagedName(name: string | null | undefined): { managedBy: string; machineName: string; token: string } | undefined {
  const [managedBy, machineName, token, ...rest] = (name ?? '').split('.');
  if (managedBy === undefined || machineName === undefined || token === undefined || rest.length > 0 || !/^[0-9a-f]{8}$/.test(token)) return undefined;
  return { managedBy, machineName, token };
}

/** The tag that marks a droplet as managed by this store (`managed-by:machine-<storeId>`). */
export function managedByTag(managedBy: string): string {
  return `managed-by:${managedBy}`;
}

const perPage = 200;
const maxPages = 50;

/** Every item of a paged DigitalOcean list (200 a page). */
async function listAll<T>(page: (page: number) => Promise<readonly T[] | null | undefined>): Promise<T[]> {
  const all: T[] = [];
  for (let number = 1; number <= maxPages; number++) {
    const items = (await page(number)) ?? [];
    all.push(...items);
    if (items.length < perPage) break;
  }
  return all;
}

/** Keys and firewalls are found by their managed name: by token for an intent, by managed-by for sweep. */
function byManagedName(query: { managedBy: string; machineName?: string; token?: string }, name: string | null | undefined): boolean {
  const parts = parseManagedName(name);
  if (parts === undefined || parts.managedBy !== query.managedBy) return false;
  return (query.machineName === undefined || parts.machineName === query.machineName) && (query.token === undefined || parts.token === query.token);
}

function found(id: string, name: string | null | undefined, createdAt?: Date | null, meta?: Record<string, string>): FoundResource {
  const parts = parseManagedName(name);
  return {
    id,
    ...(name ? { name } : {}),
    ...(createdAt instanceof Date ? { createdAt } : {}),
    ...(parts === undefined ? {} : { token: parts.token, machineName: parts.machineName }),
    ...(meta === undefined ? {} : { meta }),
  };
}

/** An SSH key uploaded for one machine. */
export const sshKeyKind: Kind<DigitalOceanClient, { publicKey: string; fingerprint: string }> = {
  kind: ResourceKind.sshKey,
  label: 'ssh key',
  step: 'upload-key',
  describe: (_spec, call) => `uploading SSH key ${managedName(call)}`,
  intent: (_spec, call) => ({ name: managedName(call) }),
  async create(client, spec, call) {
    const name = managedName(call);
    const response = await client.v2.account.keys.post({ name, publicKey: spec.publicKey });
    const id = response?.sshKey?.id;
    if (typeof id !== 'number') throw new Error(`DigitalOcean did not return the id of key ${name}`);
    return { id: String(id), meta: { name, fingerprint: spec.fingerprint } };
  },
  delete: (client, ref) => client.v2.account.keys.bySsh_key_identifier(Number(ref.id)).delete(),
  async find(client, query) {
    const keys = await listAll(async (page) => (await client.v2.account.keys.get({ queryParameters: { page, perPage } }))?.sshKeys);
    return keys.filter((key) => typeof key.id === 'number' && byManagedName(query, key.name)).map((key) => found(String(key.id), key.name, undefined, { name: key.name ?? '' }));
  },
};

/** The droplet: named after the machine, tagged `machine`, `machine-<name>` and `managed-by:<value>`. */
export const dropletKind: Kind<DigitalOceanClient, DotsDropletCreate> = {
  kind: ResourceKind.droplet,
  label: 'droplet',
  step: 'create-instance',
  describe: (spec) => `creating droplet ${spec.name} (${spec.size}, ${spec.image}) in ${spec.region}`,
  intent: (spec) => ({ name: spec.name, region: spec.region }),
  async create(client, spec, call) {
    const response = await client.v2.droplets.post({ ...spec, tags: dropletTags(spec, call) });
    const droplet = response !== undefined && 'droplet' in response ? response.droplet : undefined;
    if (typeof droplet?.id !== 'number') throw new Error('DigitalOcean did not return the new droplet’s id');
    return { id: String(droplet.id), region: spec.region };
  },
  delete: (client, ref) => client.v2.droplets.byDroplet_id(Number(ref.id)).delete(),
  // DigitalOcean accepts the delete (204) and removes the droplet afterwards: gone means a 404.
  async isGone(client, ref) {
    try {
      await client.v2.droplets.byDroplet_id(Number(ref.id)).get();
      return false;
    } catch (error) {
      if (statusOf(error) === 404) return true;
      throw error;
    }
  },
  async find(client, query) {
    // An intent: this machine's droplets made since the intent; sweep: every droplet of the store.
    const tagName = query.machineName === undefined ? managedByTag(query.managedBy) : `${machineTag}-${query.machineName}`;
    const droplets = await listAll(async (page) => (await client.v2.droplets.get({ queryParameters: { tagName, page, perPage } }))?.droplets);
    return droplets
      .filter((droplet) => typeof droplet.id === 'number' && (droplet.tags ?? []).includes(managedByTag(query.managedBy)))
      .filter((droplet) => query.machineName === undefined || droplet.name === query.machineName)
      .filter((droplet) => query.since === undefined || !(droplet.createdAt instanceof Date && droplet.createdAt < query.since))
      .map((droplet) => ({
        ...found(String(droplet.id), droplet.name, droplet.createdAt),
        ...(droplet.name ? { machineName: droplet.name } : {}),
        ...(droplet.region?.slug ? { region: droplet.region.slug } : {}),
      }));
  },
  // A droplet with an event in progress refuses deletion for a moment.
  errors: { inUse: (error) => statusOf(error) === 422 || (error as { statusCode?: number })?.statusCode === 422 },
  timeouts: { delete: 300_000 },
};

/** The tags of a droplet create: `machine`, `machine-<name>`, the managed-by tag, then the user's. */
export function dropletTags(spec: Pick<DotsDropletCreate, 'name' | 'tags'>, call: Pick<ResourceCall, 'managedBy'>): string[] {
  return [...new Set([machineTag, `${machineTag}-${spec.name}`, managedByTag(call.managedBy), ...(spec.tags ?? [])])];
}

/** A cloud firewall for one droplet: the machine's inbound rules, all outbound. */
export const firewallKind: Kind<DigitalOceanClient, { dropletId: number; rules: readonly FirewallRule[] }> = {
  kind: ResourceKind.firewall,
  label: 'firewall',
  step: 'create-firewall',
  describe: (_spec, call) => `creating cloud firewall ${managedName(call)}`,
  intent: (_spec, call) => ({ name: managedName(call) }),
  async create(client, spec, call) {
    const name = managedName(call);
    const everywhere = { addresses: ['0.0.0.0/0', '::/0'] };
    const response = await client.v2.firewalls.post({
      name,
      dropletIds: [spec.dropletId],
      inboundRules: spec.rules.map((rule) => ({
        protocol: rule.protocol,
        ports: rule.fromPort === rule.toPort ? String(rule.fromPort) : `${rule.fromPort}-${rule.toPort}`,
        sources: { addresses: [...rule.sources] },
      })),
      // A DigitalOcean firewall drops whatever it does not allow, outbound too: allow all outbound.
      outboundRules: [
        { protocol: 'tcp', ports: '0', destinations: everywhere },
        { protocol: 'udp', ports: '0', destinations: everywhere },
        { protocol: 'icmp', destinations: everywhere },
      ],
    });
    const id = response?.firewall?.id;
    if (typeof id !== 'string' || id === '') throw new Error(`DigitalOcean did not return the id of firewall ${name}`);
    return { id, meta: { name } };
  },
  delete: (client, ref) => client.v2.firewalls.byFirewall_id(ref.id).delete(),
  async find(client, query) {
    const firewalls = await listAll(async (page) => (await client.v2.firewalls.get({ queryParameters: { page, perPage } }))?.firewalls);
    return firewalls
      .filter((firewall) => typeof firewall.id === 'string' && byManagedName(query, firewall.name))
      .map((firewall) => found(String(firewall.id), firewall.name, firewall.createdAt, { name: firewall.name ?? '' }));
  },
};

/** The kinds in create order. */
export const digitalOceanKinds = [sshKeyKind, dropletKind, firewallKind] as const;

/** The kinds, with the droplet's wait for gone set to `deleteTimeoutMs` when given. */
export function withDeleteTimeout(deleteTimeoutMs: number | undefined): readonly AnyResourceKind<DigitalOceanClient>[] {
  if (deleteTimeoutMs === undefined) return digitalOceanKinds;
  return [sshKeyKind, { ...dropletKind, timeouts: { delete: deleteTimeoutMs } }, firewallKind];
}
