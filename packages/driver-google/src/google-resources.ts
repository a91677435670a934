import { type AnyResourceKind, type ResourceKind as Kind, NotFoundError, type ResourceCall, type ResourceRef } from '@machine/driver-core';
import type { ComputeApi } from './google-api.ts';
import type { ComputeFirewall, ComputeInstance } from './google-clients.ts';
import { isAlreadyExists, isNotFound } from './google-errors.ts';
import { lastSegment, machineTag, managedMarker } from './google-firewall.ts';
import { hasSSHKey, withoutSSHKey, withSSHKey } from './google-metadata.ts';

/** Journal kinds this driver records. */
export const ResourceKind = {
  instance: 'instance',
  firewall: 'firewall',
  /** Our line in an adopted instance's `ssh-keys` metadata (`--google-use-existing`). */
  instanceSSHKey: 'instance-ssh-key',
  /** The `docker-machine` tag we added to an adopted instance. */
  instanceTag: 'instance-tag',
} as const;

/** The error itself, or the client-library error a typed error wraps, says "already exists". */
const alreadyExists = (error: unknown) => isAlreadyExists(error) || isAlreadyExists((error as { cause?: unknown } | null)?.cause);

/** The resource kinds of a Compute Engine machine. The client is the driver's {@link ComputeApi}. */
export function googleKinds(settings: { project: string; zone: string }): {
  firewall: Kind<ComputeApi, { resource: ComputeFirewall }>;
  instance: Kind<ComputeApi, { resource: ComputeInstance }>;
  instanceTag: Kind<ComputeApi, { instance: ComputeInstance }>;
  instanceSSHKey: Kind<ComputeApi, { instance: ComputeInstance; line: string }>;
  all: readonly AnyResourceKind<ComputeApi>[];
} {
  const { project } = settings;
  const zoneOf = (ref: ResourceRef) => ref.region ?? settings.zone;

  /** Instances on the rule's network that carry the machine tag (they need the rule). */
  const usersOf = async (api: ComputeApi, network: string, call: ResourceCall): Promise<string[]> =>
    api.call(call.signal, async (c) => {
      const names: string[] = [];
      for await (const [, scoped] of c.instances.aggregatedListAsync({ project }, { autoPaginate: false })) {
        for (const instance of scoped.instances ?? []) {
          const onNetwork = (instance.networkInterfaces ?? []).some((nic) => lastSegment(nic.network) === network);
          if (onNetwork && (instance.tags?.items ?? []).includes(machineTag)) names.push(instance.name ?? '');
        }
      }
      return names;
    });

  const managedRule = async (api: ComputeApi, name: string, call: ResourceCall): Promise<ComputeFirewall | undefined> => {
    try {
      const [rule] = await api.call(call.signal, (c) => c.firewalls.get({ project, firewall: name }));
      return (rule.description ?? '').includes(managedMarker) ? rule : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  };

  /** The network's shared rule: kept while any tagged instance on the network needs it; the last machine removed deletes it. */
  const firewall: Kind<ComputeApi, { resource: ComputeFirewall }> = {
    kind: ResourceKind.firewall,
    label: 'firewall rule',
    step: 'firewall',
    deleteAfter: [ResourceKind.instance],
    describe: (spec) => `creating firewall rule ${spec.resource.name}`,
    intent: (spec) => ({ name: spec.resource.name ?? '', network: lastSegment(spec.resource.network) }),
    async create(api, spec, call) {
      await api.globalCall('create', call.signal, (c, requestId) => c.firewalls.insert({ project, firewallResource: spec.resource, requestId }));
      return { id: spec.resource.name ?? '', meta: { network: lastSegment(spec.resource.network) } };
    },
    async delete(api, ref, call) {
      const rule = await managedRule(api, ref.id, call);
      if (rule === undefined) throw new NotFoundError(`firewall rule ${ref.id} is gone (or not this tool's)`);
      if ((await usersOf(api, lastSegment(rule.network), call)).length > 0) return; // another machine's to delete
      await api.globalCall('remove', call.signal, (c, requestId) => c.firewalls.delete({ project, firewall: ref.id, requestId }));
    },
    usedBy: async (api, ref, call) => usersOf(api, ref.meta?.network ?? '', call),
    // The rule a concurrent create made first (409), or the one a lost reply made.
    async find(api, query, call) {
      const name = query.meta?.name;
      const rule = name === undefined ? undefined : await managedRule(api, name, call);
      return rule === undefined ? [] : [{ id: name ?? '', meta: { network: lastSegment(rule.network) } }];
    },
    errors: { exists: alreadyExists },
  };

  /** The instance, named after the machine (its identity: a lost insert reply is found by name). */
  const instance: Kind<ComputeApi, { resource: ComputeInstance }> = {
    kind: ResourceKind.instance,
    label: 'instance',
    step: 'create-instance',
    describe: (spec) => `creating instance ${spec.resource.name} (${lastSegment(spec.resource.machineType)}) in ${settings.zone}`,
    intent: (spec) => ({ name: spec.resource.name ?? '' }),
    async create(api, spec, call) {
      const zone = settings.zone;
      await api.zoneCall('create', zone, call.signal, (c, requestId) => c.instances.insert({ project, zone, instanceResource: spec.resource, requestId }));
      return { id: spec.resource.name ?? '', region: zone };
    },
    delete: async (api, ref, call) => {
      const zone = zoneOf(ref);
      await api.zoneCall('remove', zone, call.signal, (c, requestId) => c.instances.delete({ project, zone, instance: ref.id, requestId }));
    },
    async find(api, query, call) {
      const name = query.meta?.name;
      if (name === undefined) return [];
      const found = await api.findInstance(name, settings.zone, call.signal);
      return found === undefined ? [] : [{ id: name, region: settings.zone }];
    },
  };

  /** `--google-use-existing`: the `docker-machine` tag added to the adopted instance (removed again on remove). */
  const instanceTag: Kind<ComputeApi, { instance: ComputeInstance }> = {
    kind: ResourceKind.instanceTag,
    label: 'instance tag',
    step: 'instance-tag',
    async create(api, spec, call) {
      await setTags(api, call.machineName, call, (items) => [...new Set([...items, machineTag])], spec.instance);
      return { id: call.machineName, region: settings.zone, meta: { tag: machineTag } };
    },
    delete: (api, ref, call) => setTags(api, ref.id, call, (items) => items.filter((item) => item !== (ref.meta?.tag ?? machineTag)), undefined, zoneOf(ref)),
    async find(api, query, call) {
      const found = await api.findInstance(query.machineName ?? '', settings.zone, call.signal);
      return (found?.tags?.items ?? []).includes(machineTag) ? [{ id: query.machineName ?? '', region: settings.zone, meta: { tag: machineTag } }] : [];
    },
  };

  /** `--google-use-existing`: this machine's line in the adopted instance's `ssh-keys` (the user's keys stay). */
  const instanceSSHKey: Kind<ComputeApi, { instance: ComputeInstance; line: string }> = {
    kind: ResourceKind.instanceSSHKey,
    label: 'instance SSH key',
    step: 'instance-ssh-key',
    intent: (spec) => ({ line: spec.line }),
    async create(api, spec, call) {
      await setMetadata(api, call.machineName, call, spec.line, 'add', spec.instance);
      return { id: call.machineName, region: settings.zone, meta: { line: spec.line } };
    },
    delete: async (api, ref, call) => {
      if (ref.meta?.line !== undefined) await setMetadata(api, ref.id, call, ref.meta.line, 'remove', undefined, zoneOf(ref));
    },
    async find(api, query, call) {
      const line = query.meta?.line;
      const found = line === undefined ? undefined : await api.findInstance(query.machineName ?? '', settings.zone, call.signal);
      return line !== undefined && hasSSHKey(found?.metadata, line) ? [{ id: query.machineName ?? '', region: settings.zone, meta: { line } }] : [];
    },
  };

  /** Read-modify-write of an instance's tags, with the fingerprint; nothing to do when they already read so. */
  async function setTags(api: ComputeApi, name: string, call: ResourceCall, change: (items: string[]) => string[], known?: ComputeInstance, zone = settings.zone): Promise<void> {
    const read = () => api.findInstance(name, zone, call.signal);
    await api.withFingerprintRetry(read, async (fresh) => {
      const current = fresh ?? known ?? (await read());
      if (current === undefined) return;
      const before = current.tags?.items ?? [];
      const items = change([...before]);
      if (items.length === before.length && items.every((item) => before.includes(item))) return;
      await api.zoneCall('create', zone, call.signal, (c, requestId) =>
        c.instances.setTags({ project, zone, instance: name, tagsResource: { items, fingerprint: current.tags?.fingerprint ?? null }, requestId }),
      );
    });
  }

  /** Adds or removes one `ssh-keys` line, merging with what the instance has. */
  async function setMetadata(api: ComputeApi, name: string, call: ResourceCall, line: string, how: 'add' | 'remove', known?: ComputeInstance, zone = settings.zone): Promise<void> {
    const read = () => api.findInstance(name, zone, call.signal);
    await api.withFingerprintRetry(read, async (fresh) => {
      const current = fresh ?? known ?? (await read());
      if (current === undefined || hasSSHKey(current.metadata, line) === (how === 'add')) return;
      const items = how === 'add' ? withSSHKey(current.metadata, line) : withoutSSHKey(current.metadata, line);
      await api.zoneCall('create', zone, call.signal, (c, requestId) =>
        c.instances.setMetadata({ project, zone, instance: name, metadataResource: { items, fingerprint: current.metadata?.fingerprint ?? null }, requestId }),
      );
    });
  }

  return { firewall, instance, instanceTag, instanceSSHKey, all: [firewall, instance, instanceTag, instanceSSHKey] };
}
