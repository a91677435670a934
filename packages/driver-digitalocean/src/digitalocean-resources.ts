import { type AnyResourceKind, type FirewallRule, type FoundResource, type ResourceCall, type ResourceKind as Kind, type ResourceQuery, sleep } from '@machine/driver-core';
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

/** How the kinds look for what a create whose reply was lost made. */
export interface DigitalOceanKindSettings {
  /**
   * ms after a create call in which a listing may not show what it made yet (DigitalOcean lists a
   * new droplet or key a moment after answering): an empty answer is looked at again until then.
   */
  visibilityWindowMs: number;
  /** First delay between those looks, ms (doubles, at most 5 s). */
  pollIntervalMs: number;
  /** How long remove waits for a deleted droplet to be gone (404), ms. */
  deleteTimeoutMs?: number;
}

/** Production settings: a minute of listing lag is tolerated. */
export const defaultKindSettings: DigitalOceanKindSettings = { visibilityWindowMs: 60_000, pollIntervalMs: 1000 };

/**
 * For an intent (a create whose reply was lost), lists again while nothing is found until the
 * intent's time plus the visibility window: one empty listing right after the call proves nothing.
 * Sweep (no token) lists once.
 */
async function lookUntilListed<T>(settings: DigitalOceanKindSettings, query: ResourceQuery, look: () => Promise<T[]>): Promise<T[]> {
  let found = await look();
  if (query.token === undefined) return found;
  const at = Date.parse(query.meta?.at ?? '');
  const deadline = (Number.isFinite(at) ? at : Date.now()) + settings.visibilityWindowMs;
  for (let delay = settings.pollIntervalMs; found.length === 0 && Date.now() < deadline; delay = Math.min(delay * 2, 5000)) {
    await sleep(Math.max(1, Math.min(delay, deadline - Date.now())));
    found = await look();
  }
  return found;
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

/** The tags of a droplet create: `machine`, `machine-<name>`, the managed-by tag, then the user's. */
export function dropletTags(spec: Pick<DotsDropletCreate, 'name' | 'tags'>, call: Pick<ResourceCall, 'managedBy'>): string[] {
  return [...new Set([machineTag, `${machineTag}-${spec.name}`, managedByTag(call.managedBy), ...(spec.tags ?? [])])];
}

/** The resource kinds of a DigitalOcean machine, in create order, with these settings. */
export function digitalOceanKindSet(settings: DigitalOceanKindSettings = defaultKindSettings): {
  sshKey: Kind<DigitalOceanClient, { publicKey: string; fingerprint: string }>;
  droplet: Kind<DigitalOceanClient, DotsDropletCreate>;
  firewall: Kind<DigitalOceanClient, { dropletId: number; rules: readonly FirewallRule[] }>;
  all: readonly AnyResourceKind<DigitalOceanClient>[];
} {
/** An SSH key uploaded for one machine. */
const sshKey: Kind<DigitalOceanClient, { publicKey: string; fingerprint: string }> = {
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
    return lookUntilListed(settings, query, async () => {
      const keys = await listAll(async (page) => (await client.v2.account.keys.get({ queryParameters: { page, perPage } }))?.sshKeys);
      return keys.filter((key) => typeof key.id === 'number' && byManagedName(query, key.name)).map((key) => found(String(key.id), key.name, undefined, { name: key.name ?? '' }));
    });
  },
};

/** The droplet: named after the machine, tagged `machine`, `machine-<name>` and `managed-by:<value>`. */
const droplet: Kind<DigitalOceanClient, DotsDropletCreate> = {
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
    return lookUntilListed(settings, query, async () => {
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
    });
  },
  // A droplet with an event in progress refuses deletion for a moment.
  errors: { inUse: (error) => statusOf(error) === 422 || (error as { statusCode?: number })?.statusCode === 422 },
  timeouts: { delete: settings.deleteTimeoutMs ?? 300_000 },
};

/** A cloud firewall for one droplet: the machine's inbound rules, all outbound. */
const firewall: Kind<DigitalOceanClient, { dropletId: number; rules: readonly FirewallRule[] }> = {
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
    return lookUntilListed(settings, query, async () => {
      const firewalls = await listAll(async (page) => (await client.v2.firewalls.get({ queryParameters: { page, perPage } }))?.firewalls);
      return firewalls
        .filter((firewall) => typeof firewall.id === 'string' && byManagedName(query, firewall.name))
        .map((firewall) => found(String(firewall.id), firewall.name, firewall.createdAt, { name: firewall.name ?? '' }));
    });
  },
};
return { sshKey, droplet, firewall, all: [sshKey, droplet, firewall] };
}

const defaultKinds = digitalOceanKindSet();
/** The SSH key kind with the production settings. */
export const sshKeyKind = defaultKinds.sshKey;
/** The droplet kind with the production settings. */
export const dropletKind = defaultKinds.droplet;
/** The firewall kind with the production settings. */
export const firewallKind = defaultKinds.firewall;
/** The kinds in create order (production settings). */
export const digitalOceanKinds = defaultKinds.all;
