import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type AnyResourceKind,
  type FoundResource,
  isAmbiguousFailure,
  NotFoundError,
  ProviderError,
  type ResourceCall,
  type ResourceKind as Kind,
  type ResourceModel,
  State,
} from '@machine/driver-core';
import { type SeedOptions, writeSeedIso } from './cloud-init-seed.ts';
import type { VBoxClient } from './vbox-client.ts';
import { parseBlocks, parseVmList, VBoxManageError } from './vboxmanage.ts';
import { isSessionLocked, mapVBoxManageError } from './virtualbox-errors.ts';
import { stateOfVmState } from './virtualbox-state.ts';

/** Journal kinds this driver records. */
export const ResourceKind = {
  /** The registered VM (id: its UUID, chosen before createvm). */
  vm: 'vm',
  /** The VM's disk (id: the file path), cloned from the image. */
  disk: 'disk',
  /** The cloud-init NoCloud seed ISO (id: the file path). */
  seedIso: 'seed-iso',
  /** A host-only interface (id: its name); pre-existing when create found one the user made. */
  hostOnlyInterface: 'hostonly-if',
  /** A host-only network (VirtualBox 7 on macOS; id: its name); pre-existing unless machine made it. */
  hostOnlyNetwork: 'hostonly-net',
  /** A DHCP server create added to an existing host-only interface (id: the interface name). */
  dhcpServer: 'dhcp-server',
} as const;

/**
 * The VM extra-data key that records a `--virtualbox-hostonly-no-dhcp` guest's static host-only
 * address. It lives in the VM's settings, so it goes away with the VM (nothing to clean up), and
 * the next static create reads it to skip that address.
 */
export const hostOnlyIpKey = 'machine/hostonly-ip';

/**
 * The VM extra-data key sweep looks for (a disk carries the same value as its description): `<managed-by> <ISO time>` (`machine 2026-01-02T03:04:05.000Z`;
 * the managed-by value is `machine-<storeId>` when the host names its store).
 */
export const managedByKey = 'machine/managed-by';

/** The value of {@link managedByKey} for a VM made now. */
export function managedByTagValue(managedBy: string, now = new Date()): string {
  return `${managedBy} ${now.toISOString()}`;
}

/** The global extra-data key that marks a host-only interface as made by machine (value: the machine that made it). */
export function hostOnlyTag(name: string, mode: 'if' | 'net' = 'if'): string {
  return `machine/hostonly-${mode}/${name}`;
}

/** `getextradata` printed a value (`Value: …`, not `No value set!`). */
export function extraDataValue(output: string): string | undefined {
  return /^Value: (.+)$/m.exec(output.trim())?.[1];
}

/** The VirtualBox error a failed call carries, if it came from VBoxManage. */
function vboxCause(error: unknown): VBoxManageError | undefined {
  if (error instanceof VBoxManageError) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause instanceof VBoxManageError ? cause : undefined;
}

/**
 * True when a failed VBoxManage call may still have been carried out: it was killed (a signal, its
 * time limit) before it answered. A VBoxManage that exited with an error answered: nothing was made.
 */
export function isAmbiguousVBoxFailure(error: unknown): boolean {
  const cause = vboxCause(error);
  if (cause === undefined) return isAmbiguousFailure(error);
  return cause.spawnCode === undefined && (cause.exitCode === undefined || cause.timedOutMs !== undefined);
}

/** Locked-session refusals (a VM just powered off keeps its session a moment): remove retries them. */
function isLocked(error: unknown): boolean {
  const cause = vboxCause(error);
  return cause !== undefined && isSessionLocked(cause);
}

const vboxErrors = { ambiguous: isAmbiguousVBoxFailure };

/** States in which VirtualBox can unregister a VM as it is; in any other (even an unknown one) remove powers it off first. */
const unregisterableStates = new Set<State>([State.Stopped, State.Saved]);

const op = 'remove';

/** The registered VM, named after the machine; its UUID is chosen before `createvm`, so an intent finds it. */
export const vmKind: Kind<VBoxClient, { uuid: string; basefolder: string }> = {
  kind: ResourceKind.vm,
  label: 'VM',
  describe: (_spec, call) => `creating VM ${call.machineName}`,
  intent: (spec, call) => ({ uuid: spec.uuid, name: call.machineName, folder: join(spec.basefolder, call.machineName) }),
  async create(client, spec, call) {
    const args = ['createvm', '--name', call.machineName, '--uuid', spec.uuid, '--basefolder', spec.basefolder, '--ostype', 'Ubuntu_64', '--register'];
    await client.vbox(args, 'create');
    return { id: spec.uuid, meta: { name: call.machineName, folder: join(spec.basefolder, call.machineName) } };
  },
  async delete(client, ref, call) {
    let state: State;
    try {
      state = stateOfVmState((await client.info(ref.id, op)).get('VMState'));
    } catch (error) {
      // Registered no more: a folder a createvm left behind is all there is to delete (records
      // from before intents have no folder in their meta: it is the machine folder's VM folder).
      const folder = ref.meta?.folder ?? (client.machineDir === undefined ? undefined : join(client.machineDir, ref.meta?.name ?? call.machineName));
      if (NotFoundError.isInstance(error) && folder !== undefined) await rm(folder, { recursive: true, force: true });
      throw error;
    }
    if (!unregisterableStates.has(state)) {
      await client.vbox(['controlvm', ref.id, 'poweroff'], op).catch((error: unknown) => {
        // Already off between the two calls: fine.
        if (!ProviderError.isInstance(error)) throw error;
      });
    }
    await client.vbox(['unregistervm', ref.id, '--delete'], op);
    // Swept (no record): the seed ISO has no journal entry of its own, and unregistervm keeps DVD images.
    if (ref.meta?.seed !== undefined) await client.closeMedium('dvd', ref.meta.seed, false, op);
  },
  async find(client, query) {
    const vms = parseVmList(await client.vbox(['list', 'vms'], op));
    const uuid = query.meta?.uuid?.toLowerCase();
    if (uuid !== undefined) return vms.filter((vm) => vm.uuid === uuid).map((vm) => ({ id: vm.uuid, name: vm.name, meta: { name: vm.name, ...(query.meta?.folder === undefined ? {} : { folder: query.meta.folder }) } }));
    // Sweep: the VMs whose extra data names this managed-by value, with the seed ISO attached to each.
    const found: FoundResource[] = [];
    for (const vm of vms) {
      try {
        const [managedBy, made] = (extraDataValue(await client.vbox(['getextradata', vm.uuid, managedByKey], op)) ?? '').split(' ');
        if (managedBy !== query.managedBy) continue;
        const seed = [...(await client.info(vm.uuid, op)).values()].find((value) => value.endsWith('seed.iso'));
        const createdAt = new Date(made ?? '');
        found.push({
          id: vm.uuid,
          name: vm.name,
          machineName: vm.name,
          ...(Number.isNaN(createdAt.getTime()) ? {} : { createdAt }),
          meta: { name: vm.name, ...(seed === undefined ? {} : { seed }) },
        });
      } catch (error) {
        if (!NotFoundError.isInstance(error)) throw error; // else deleted since the list
      }
    }
    return found;
  },
  errors: { ...vboxErrors, inUse: isLocked },
};

/** The VM's disk, cloned from the image to a path in the machine folder; its description carries the managed-by tag (set with its resize). */
export const diskKind: Kind<VBoxClient, { source: string; path: string }> = {
  kind: ResourceKind.disk,
  label: 'disk',
  step: 'create-disk',
  deleteAfter: [ResourceKind.vm],
  describe: (spec) => `cloning ${spec.source} into the VM disk`,
  intent: (spec) => ({ path: spec.path, source: spec.source }),
  async create(client, spec) {
    try {
      await client.vbox(['clonemedium', 'disk', spec.source, spec.path, '--format', 'VDI'], 'create');
    } catch (error) {
      // An answered failure (a full disk) may leave a partial file: nothing of it is kept.
      if (!isAmbiguousVBoxFailure(error)) await client.closeMedium('disk', spec.path, true, 'create').catch(() => rm(spec.path, { force: true }));
      throw error;
    }
    return { id: spec.path };
  },
  async delete(client, ref) {
    await client.closeMedium('disk', ref.id, true, op);
    // Found after a lost clonemedium reply: the source image it registered is released too (create does that itself).
    if (ref.meta?.source !== undefined) await client.vbox(['closemedium', 'disk', ref.meta.source], op).catch(() => undefined);
  },
  async find(client, query) {
    const path = query.meta?.path;
    if (query.meta !== undefined) return path !== undefined && existsSync(path) ? [{ id: path, meta: { source: query.meta.source ?? '' } }] : [];
    // Sweep: registered disks named disk.vdi whose description names this managed-by value and
    // that no VM uses (a VM's own disk goes with it).
    const found: FoundResource[] = [];
    for (const block of parseBlocks(await client.vbox(['list', 'hdds'], op))) {
      const location = block.get('Location') ?? '';
      if (basename(location) !== 'disk.vdi') continue;
      const info = parseBlocks(await client.vbox(['showmediuminfo', 'disk', location], op).catch(() => ''))[0];
      const [managedBy, made] = (info?.get('Description') ?? '').split(' ');
      if (managedBy !== query.managedBy || info?.get('In use by VMs') !== undefined) continue;
      const createdAt = new Date(made ?? '');
      found.push({ id: location, name: location, machineName: basename(dirname(location)), ...(Number.isNaN(createdAt.getTime()) ? {} : { createdAt }) });
    }
    return found;
  },
  errors: vboxErrors,
};

/** The cloud-init NoCloud seed ISO in the machine folder (a local file, written by the driver). */
export const seedIsoKind: Kind<VBoxClient, SeedOptions & { path: string }> = {
  kind: ResourceKind.seedIso,
  label: 'seed ISO',
  step: 'write-seed',
  deleteAfter: [ResourceKind.vm],
  describe: (spec) => `writing the cloud-init seed ${spec.path}`,
  intent: (spec) => ({ path: spec.path }),
  async create(_client, { path, ...seed }) {
    try {
      await writeSeedIso(path, seed);
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
    return { id: path };
  },
  delete: (client, ref) => client.closeMedium('dvd', ref.id, false, op),
  find: async (_client, query) => (query.meta?.path !== undefined && existsSync(query.meta.path) ? [{ id: query.meta.path }] : []),
  // A local write either failed (and removed its partial file) or did not happen.
  errors: { ambiguous: () => false },
};

/**
 * Whether remove must leave a host-only interface/network (or its DHCP server) alone: true while
 * other VMs use it (the last machine on it deletes it). While this machine's own VM still uses it
 * (its delete failed just before), it throws instead, so the journal keeps the entry and the next
 * remove deletes it; forgetting it then would leak it for good.
 */
async function otherUsers(client: VBoxClient, name: string, call: ResourceCall): Promise<string[]> {
  const users = await client.interfaceUsers(name, op);
  if (users.some((vm) => vm.name === call.machineName)) {
    throw new ProviderError(`${name} was not deleted: this machine's VM still uses it`, { machine: call.machineName, operation: op, hint: 'run remove again once the VM is deleted' });
  }
  return users.map((vm) => vm.name);
}

/** A host-only interface or network: deleted under the host-only lock, by the last machine whose VM uses it. */
function hostOnlyKind<Spec>(
  mode: 'if' | 'net',
  parts: Pick<Kind<VBoxClient, Spec>, 'describe' | 'intent' | 'create'> & {
    list(client: VBoxClient): Promise<Map<string, string>[]>;
    remove(client: VBoxClient, name: string): Promise<void>;
    /** The ones an intent made (the call's reply was lost). */
    made(client: VBoxClient, listed: Map<string, string>[], meta: Readonly<Record<string, string>>): Promise<FoundResource[]>;
  },
): Kind<VBoxClient, Spec> {
  return {
    kind: mode === 'if' ? ResourceKind.hostOnlyInterface : ResourceKind.hostOnlyNetwork,
    label: mode === 'if' ? 'host-only interface' : 'host-only network',
    step: 'host-only',
    deleteAfter: [ResourceKind.vm],
    describe: parts.describe,
    intent: parts.intent,
    create: parts.create,
    delete: (client, ref, call) =>
      // The in-use check and the delete hold the host-only lock, so the last of several concurrent
      // removes deletes it and a concurrent create cannot lose it.
      client.withHostOnlyLock(undefined, async () => {
        if ((await otherUsers(client, ref.id, call)).length > 0) return;
        // Found after a lost reply, then tagged by another machine's create (the one that really made it): not this machine's.
        if (ref.meta?.orphan === 'true') {
          const maker = extraDataValue(await client.vbox(['getextradata', 'global', hostOnlyTag(ref.id, mode)], op));
          if (maker !== undefined && maker !== call.machineName) return;
        }
        try {
          await parts.remove(client, ref.id);
        } catch (error) {
          if (!NotFoundError.isInstance(error)) throw error;
        }
        await client.vbox(['setextradata', 'global', hostOnlyTag(ref.id, mode)], op);
      }),
    usedBy: (client, ref, call) => otherUsers(client, ref.id, call),
    async find(client, query) {
      const listed = await parts.list(client);
      if (query.meta !== undefined) return parts.made(client, listed, query.meta);
      // Sweep: the ones machine made (tagged) that no VM uses.
      const found: FoundResource[] = [];
      for (const block of listed) {
        const name = block.get('Name') ?? '';
        const maker = extraDataValue(await client.vbox(['getextradata', 'global', hostOnlyTag(name, mode)], op));
        if (maker === undefined || (await client.interfaceUsers(name, op)).length > 0) continue;
        found.push({ id: name, name, machineName: maker });
      }
      return found;
    },
    errors: vboxErrors,
  };
}

/**
 * A host-only interface `hostonlyif create` makes (VirtualBox picks its name). A lost reply is
 * found as an interface that was not there when the intent was written (the list is journaled
 * with it, taken under the host-only lock) and that no machine tagged as its own.
 */
export const hostOnlyInterfaceKind = hostOnlyKind<{ before: readonly string[] }>('if', {
  describe: () => 'creating a host-only interface',
  intent: (spec) => ({ before: spec.before.join(',') }),
  async create(client) {
    const output = await client.vbox(['hostonlyif', 'create'], 'create');
    const name = /Interface '([^']+)' was successfully created/.exec(output)?.[1];
    if (name === undefined) throw new ProviderError(`could not read the new host-only interface's name from \`VBoxManage hostonlyif create\`: ${JSON.stringify(output.trim())}`);
    return { id: name };
  },
  list: async (client) => parseBlocks(await client.vbox(['list', 'hostonlyifs'], op)),
  remove: async (client, name) => {
    await client.vbox(['dhcpserver', 'remove', '--interface', name], op).catch(ignoreMissing);
    await client.vbox(['hostonlyif', 'remove', name], op);
  },
  async made(client, listed, meta) {
    const before = new Set((meta.before ?? '').split(','));
    // One call makes one interface, and VirtualBox names it with the lowest free number
    // (vboxnetN, "… Adapter #N"): of several new untagged ones (someone made another by hand
    // since), the lowest is this call's.
    const names = listed.map((block) => block.get('Name') ?? '').sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (const name of names) {
      if (name === '' || before.has(name)) continue;
      if (extraDataValue(await client.vbox(['getextradata', 'global', hostOnlyTag(name)], op)) !== undefined) continue;
      return [{ id: name, name, meta: { orphan: 'true' } }];
    }
    return [];
  },
});

/** A host-only network (VirtualBox 7 on macOS), named `machine-<network>-<prefix>` before `hostonlynet add`. */
export const hostOnlyNetworkKind = hostOnlyKind<{ name: string; netmask: string; lowerIp: string; upperIp: string }>('net', {
  describe: (spec) => `creating host-only network ${spec.name}`,
  intent: (spec) => ({ name: spec.name }),
  async create(client, spec) {
    await client.vbox(['hostonlynet', 'add', '--name', spec.name, '--netmask', spec.netmask, '--lower-ip', spec.lowerIp, '--upper-ip', spec.upperIp, '--enable'], 'create');
    return { id: spec.name };
  },
  list: async (client) => parseBlocks(await client.vbox(['list', 'hostonlynets'], op)),
  remove: async (client, name) => {
    await client.vbox(['hostonlynet', 'remove', '--name', name], op);
  },
  made: async (_client, listed, meta) => listed.filter((block) => block.get('Name') === meta.name).map((block) => ({ id: meta.name ?? '', name: block.get('Name') ?? '' })),
});

/** The DHCP server create adds to an existing host-only interface that has none (id: the interface). */
export const dhcpServerKind: Kind<VBoxClient, { interface: string; args: readonly string[] }> = {
  kind: ResourceKind.dhcpServer,
  label: 'DHCP server',
  step: 'host-only',
  deleteAfter: [ResourceKind.vm],
  describe: (spec) => `adding a DHCP server to ${spec.interface}`,
  intent: (spec) => ({ interface: spec.interface }),
  async create(client, spec) {
    await client.vbox(spec.args, 'create');
    return { id: spec.interface };
  },
  delete: (client, ref, call) =>
    client.withHostOnlyLock(undefined, async () => {
      if ((await otherUsers(client, ref.id, call)).length > 0) return;
      // Already gone with its interface (another machine's remove deleted both): done.
      await client.vbox(['dhcpserver', 'remove', '--interface', ref.id], op).catch(ignoreMissing);
    }),
  async find(client, query) {
    const name = query.meta?.interface;
    if (name === undefined) return []; // sweep: a DHCP server goes with its interface
    const servers = parseBlocks(await client.vbox(['list', 'dhcpservers'], op));
    return servers.some((block) => block.get('NetworkName') === `HostInterfaceNetworking-${name}`) ? [{ id: name }] : [];
  },
  errors: vboxErrors,
};

function ignoreMissing(error: unknown): void {
  if (NotFoundError.isInstance(error)) return;
  // `dhcpserver remove` of a missing server says "Failed to find DHCP server for host-only interface '…'".
  if (ProviderError.isInstance(error) && /does not exist|could not find|failed to find|not found/i.test(error.message)) return;
  throw error;
}

/** The kinds in create order. */
export const virtualBoxKinds = [diskKind, vmKind, hostOnlyInterfaceKind, hostOnlyNetworkKind, dhcpServerKind, seedIsoKind] as const;

/** The driver's resource model over a VBoxManage client. */
export function virtualBoxModel(
  client: () => Promise<VBoxClient>,
  timings: { pollInterval: number; maxPollInterval: number; deleteTimeout: number },
): ResourceModel<VBoxClient> {
  const kinds: AnyResourceKind<VBoxClient>[] = virtualBoxKinds.map((kind) => (kind.kind === ResourceKind.vm ? { ...kind, timeouts: { delete: timings.deleteTimeout } } : kind));
  return {
    kinds,
    client,
    poll: { interval: timings.pollInterval, maxInterval: timings.maxPollInterval },
    mapError: (error, where) => mapVBoxManageError(error, where),
  };
}
