import type { VirtualMachine } from '@azure/arm-compute';
import type { NetworkInterface, PublicIPAddress, SecurityRule } from '@azure/arm-network';
import {
  type AnyResourceKind,
  ProviderError,
  type FoundResource,
  type ResourceCall,
  type ResourceKind,
  type ResourceQuery,
  type ResourceRef,
} from '@machine/driver-core';
import type { AzureApi } from './azure-api.ts';
import { azureErrorFacts, isAzureNotFound } from './azure-errors.ts';
import { parseResourceId, resourceId } from './azure-resource-id.ts';

/** The kinds of resource the driver records in the machine's journal. */
export const resourceKinds = {
  resourceGroup: 'resource-group',
  availabilitySet: 'availability-set',
  securityGroup: 'network-security-group',
  virtualNetwork: 'virtual-network',
  subnet: 'subnet',
  publicIp: 'public-ip',
  networkInterface: 'network-interface',
  osDisk: 'os-disk',
  virtualMachine: 'virtual-machine',
} as const;

/** Tags the driver puts on what it makes: `managed-by` on everything, plus the machine and the intent token on a machine's own resources. */
export const tagNames = { managedBy: 'managed-by', machine: 'machine-name', token: 'machine-token' } as const;
/** The tag an older version put on the shared pieces it made. */
const legacyTag = ['created-by', 'machine'] as const;

/** Where a resource goes: its group, name and location, and the user's --azure-tags. */
export interface Placed {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  userTags: Readonly<Record<string, string>>;
}

type Tags = Record<string, string>;

/** Tags of a machine's own resource: the call's managed-by value, the machine and the intent token. */
export function ownTags(call: Pick<ResourceCall, 'managedBy' | 'machineName' | 'token'>, userTags: Readonly<Tags>): Tags {
  return { ...userTags, [tagNames.managedBy]: call.managedBy, [tagNames.machine]: call.machineName, [tagNames.token]: call.token };
}

/** True when a resource found already there was made by this tool (then it is shared, else it is the user's). */
export function madeByMachine(tags: Readonly<Tags> | undefined, managedBy: string): boolean {
  return tags?.[tagNames.managedBy] === managedBy || tags?.[legacyTag[0]] === legacyTag[1];
}

const deleteOp = 'remove';
const codeIs =
  (...codes: string[]) =>
  (error: unknown) =>
    codes.includes(azureErrorFacts(error).code ?? '');
/**
 * Whatever failed, the PUT may have been accepted before it (a poll that failed, a Failed
 * provisioning, a lost reply): `find` looks the deterministic name up, which is cheap and exact.
 * Only a refused identity or an unregistered provider certainly made nothing (and a lookup would be refused too).
 */
const ambiguous = (error: unknown) => {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const refused = (candidate: unknown) =>
    (candidate as { code?: unknown } | null)?.code === 'AUTH' || ['MissingSubscriptionRegistration', 'AuthorizationFailed'].includes(azureErrorFacts(candidate).code ?? '');
  return !refused(error) && !refused(cause);
};

/** What `find` answers for one resource seen at Azure. */
function found(id: string, name: string | undefined, tags: Readonly<Tags> | undefined, createdAt?: Date | string): FoundResource {
  const created = createdAt === undefined ? undefined : new Date(createdAt);
  return {
    id,
    ...(name === undefined ? {} : { name }),
    ...(created === undefined || Number.isNaN(created.getTime()) ? {} : { createdAt: created }),
    ...(tags?.[tagNames.token] === undefined ? {} : { token: tags[tagNames.token] }),
    ...(tags?.[tagNames.machine] === undefined ? {} : { machineName: tags[tagNames.machine] }),
  };
}

/** Sweep: everything of an ARM type in the config's group carrying this managed-by value. */
async function sweepType(api: AzureApi, type: string, query: ResourceQuery, call: ResourceCall): Promise<FoundResource[]> {
  const resourceGroup = api.config.resourceGroup;
  const list = await api.find('listing the resource group', 'sweep', call.signal, async (abortSignal) => {
    const items = [];
    for await (const item of api.clients.resources.resources.listByResourceGroup(resourceGroup, { abortSignal })) items.push(item);
    return items;
  });
  return (list ?? [])
    .filter((item) => item.type?.toLowerCase() === type.toLowerCase() && item.id !== undefined && item.tags?.[tagNames.managedBy] === query.managedBy)
    .map((item) => found(item.id ?? '', item.name, item.tags, item.createdTime));
}

/** A resource's group and names (`[vnet, subnet]` for a subnet), read from its ID. */
interface At {
  resourceGroup: string;
  names: string[];
  name: string;
}

function at(id: string): At {
  const parsed = parseResourceId(id);
  return { resourceGroup: parsed.resourceGroup, names: parsed.names, name: parsed.names.at(-1) ?? parsed.resourceGroup };
}

/** An ARM resource as a GET answers it (the parts `find` reads). */
interface Seen {
  id?: string;
  name?: string;
  tags?: Tags;
}

/** What differs between a machine's own resource kinds. */
interface OwnKind<Spec extends Placed> {
  kind: string;
  label: string;
  step: string;
  /** ARM type, for sweep. */
  type: string;
  /** Its ARM ID: `[provider, type, name…]` under its group. */
  path(spec: Spec): string[];
  put(api: AzureApi, spec: Spec, tags: Tags, call: ResourceCall): Promise<Seen>;
  get(api: AzureApi, at: At, abortSignal: AbortSignal): PromiseLike<Seen>;
  del(api: AzureApi, at: At, signal: AbortSignal): Promise<void>;
  inUse?: readonly string[];
  deleteAfter?: readonly string[];
}

function idOf<Spec extends Placed>(spec: Spec, def: Pick<OwnKind<Spec>, 'path'>): string {
  const [provider, ...path] = def.path(spec);
  return resourceId(spec.subscriptionId, spec.resourceGroup, provider, ...path);
}

/** A machine's own resource: PUT by its deterministic name (Azure's idempotency), tagged with the intent token, found again by name. */
function ownKind<Spec extends Placed>(def: OwnKind<Spec>): ResourceKind<AzureApi, Spec> {
  return {
    kind: def.kind,
    label: def.label,
    step: def.step,
    ...(def.deleteAfter === undefined ? {} : { deleteAfter: def.deleteAfter }),
    describe: (spec) => `creating ${def.label} ${spec.name}`,
    intent: (spec) => ({ id: idOf(spec, def) }),
    async create(api, spec, call) {
      const made = await def.put(api, spec, ownTags(call, spec.userTags), call);
      return { id: made.id ?? idOf(spec, def) };
    },
    delete: (api, ref, call) => def.del(api, at(ref.id), call.signal),
    async find(api, query, call) {
      const id = query.meta?.id;
      if (id === undefined) return query.machineName === undefined ? sweepType(api, def.type, query, call) : [];
      const where = at(id);
      const seen = await api.find(`${def.label} ${where.name}`, 'find', call.signal, (abortSignal) => def.get(api, where, abortSignal));
      if (seen?.id === undefined || (seen.tags !== undefined && seen.tags[tagNames.managedBy] !== query.managedBy)) return [];
      return [found(seen.id, seen.name ?? where.name, seen.tags)];
    },
    errors: { gone: isAzureNotFound, inUse: codeIs(...(def.inUse ?? [])), ambiguous },
  };
}

/** Sets `delete` and `usedBy` of a piece several machines may share: kept while anything else uses it. */
function sharedKind<Spec extends Placed>(
  def: OwnKind<Spec> & { users(api: AzureApi, where: At, signal: AbortSignal): Promise<readonly string[]>; sweep?: boolean },
): ResourceKind<AzureApi, Spec> {
  const base = ownKind(def);
  const users = async (api: AzureApi, ref: ResourceRef, call: ResourceCall) => {
    const using = await def.users(api, at(ref.id), call.signal);
    // This machine's own NIC (or subnet) still there after its delete failed: keep the piece recorded for the next remove.
    const self = ref.id.toLowerCase();
    const own = api.recorded().filter((id) => id !== self && !self.startsWith(`${id}/`));
    const mine = using.find((user) => own.some((id) => user.toLowerCase() === id || user.toLowerCase().startsWith(`${id}/`)));
    if (mine !== undefined) throw new ProviderError(`kept ${def.label} ${at(ref.id).name} for now: this machine's ${mine} still uses it`, { retryable: true });
    return using;
  };
  return {
    ...base,
    create: async (api, spec, call) => {
      const made = await def.put(api, spec, { ...spec.userTags, [tagNames.managedBy]: call.managedBy }, call);
      return { id: made.id ?? idOf(spec, def) };
    },
    // Made by this machine but used by another one meanwhile: left to its last user.
    async delete(api, ref, call) {
      if ((await users(api, ref, call)).length === 0) await def.del(api, at(ref.id), call.signal);
    },
    usedBy: users,
    async find(api, query, call) {
      if (query.meta?.id === undefined && def.sweep === false) return [];
      return (await base.find?.(api, query, call)) ?? [];
    },
  };
}

/** The resource group (shared; deleted by its last user once empty). */
export const resourceGroupKind = sharedKind<Placed>({
  kind: resourceKinds.resourceGroup,
  label: 'resource group',
  step: 'resource-group',
  type: 'Microsoft.Resources/resourceGroups',
  path: () => [],
  put: (api, spec, tags, call) =>
    api.call(`resource group ${spec.name}`, 'create', call.signal, (abortSignal) =>
      api.clients.resources.resourceGroups.createOrUpdate(spec.name, { location: spec.location, tags }, { abortSignal }),
    ),
  get: (api, { resourceGroup }, abortSignal) => api.clients.resources.resourceGroups.get(resourceGroup, { abortSignal }),
  del: (api, { resourceGroup: group }, signal) => api.lro(`resource group ${group} to be deleted`, deleteOp, signal, (lro) => api.clients.resources.resourceGroups.delete(group, lro)),
  async users(api, { resourceGroup: group }, signal) {
    const items = await api.find(`resource group ${group}`, deleteOp, signal, async (abortSignal) => {
      const ids: string[] = [];
      for await (const item of api.clients.resources.resources.listByResourceGroup(group, { abortSignal })) ids.push(item.id ?? item.name ?? 'a resource');
      return ids;
    });
    return items ?? [];
  },
  sweep: false,
});

/** An availability set (shared; deleted by its last user once it has no VM). */
export const availabilitySetKind = sharedKind<Placed>({
  kind: resourceKinds.availabilitySet,
  label: 'availability set',
  step: 'availability-set',
  type: 'Microsoft.Compute/availabilitySets',
  path: (spec) => ['Microsoft.Compute', 'availabilitySets', spec.name],
  deleteAfter: [resourceKinds.virtualMachine],
  put: (api, spec, tags, call) =>
    api.call(`availability set ${spec.name}`, 'create', call.signal, (abortSignal) =>
      api.clients.compute.availabilitySets.createOrUpdate(
        spec.resourceGroup,
        spec.name,
        { location: spec.location, tags, sku: { name: 'Aligned' }, platformFaultDomainCount: 2, platformUpdateDomainCount: 5 },
        { abortSignal },
      ),
    ),
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.compute.availabilitySets.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) => api.call(`availability set ${name}`, deleteOp, signal, (abortSignal) => api.clients.compute.availabilitySets.delete(group, name, { abortSignal })),
  async users(api, { resourceGroup, name }, signal) {
    const set = await api.find(`availability set ${name}`, deleteOp, signal, (abortSignal) => api.clients.compute.availabilitySets.get(resourceGroup, name, { abortSignal }));
    return (set?.virtualMachines ?? []).map((vm) => vm.id ?? '');
  },
});

/** A virtual network (shared; deleted by its last user once it has no subnet). */
export const virtualNetworkKind = sharedKind<Placed & { addressPrefixes: string[] }>({
  kind: resourceKinds.virtualNetwork,
  label: 'virtual network',
  step: 'virtual-network',
  type: 'Microsoft.Network/virtualNetworks',
  path: (spec) => ['Microsoft.Network', 'virtualNetworks', spec.name],
  put: (api, spec, tags, call) =>
    api.lro(`virtual network ${spec.name}`, 'create', call.signal, (lro) =>
      api.clients.network.virtualNetworks.createOrUpdate(spec.resourceGroup, spec.name, { location: spec.location, tags, addressSpace: { addressPrefixes: spec.addressPrefixes } }, lro),
    ),
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.network.virtualNetworks.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) => api.lro(`virtual network ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.network.virtualNetworks.delete(group, name, lro)),
  async users(api, { resourceGroup, name }, signal) {
    const vnet = await api.find(`virtual network ${name}`, deleteOp, signal, (abortSignal) => api.clients.network.virtualNetworks.get(resourceGroup, name, { abortSignal }));
    return (vnet?.subnets ?? []).map((subnet) => subnet.id ?? '');
  },
  deleteAfter: [resourceKinds.subnet],
});

/** A subnet (shared; deleted by its last user once no NIC is in it). Its tags are its vnet's. */
export const subnetKind = sharedKind<Placed & { vnet: string; addressPrefix: string }>({
  kind: resourceKinds.subnet,
  label: 'subnet',
  step: 'subnet',
  type: 'Microsoft.Network/virtualNetworks/subnets',
  path: (spec) => ['Microsoft.Network', 'virtualNetworks', spec.vnet, 'subnets', spec.name],
  put: (api, spec, _tags, call) =>
    api.lro(`subnet ${spec.name}`, 'create', call.signal, (lro) =>
      api.clients.network.subnets.createOrUpdate(spec.resourceGroup, spec.vnet, spec.name, { addressPrefix: spec.addressPrefix }, lro),
    ),
  get: async (api, { resourceGroup, names: [vnet = '', subnet = ''] }, abortSignal) => {
    const [seen, parent] = await Promise.all([
      api.clients.network.subnets.get(resourceGroup, vnet, subnet, { abortSignal }),
      api.clients.network.virtualNetworks.get(resourceGroup, vnet, { abortSignal }),
    ]);
    return { ...(seen.id === undefined ? {} : { id: seen.id }), name: subnet, ...(parent.tags === undefined ? {} : { tags: parent.tags }) };
  },
  del: (api, { resourceGroup, names: [vnet = '', subnet = ''] }, signal) =>
    api.lro(`subnet ${subnet} to be deleted`, deleteOp, signal, (lro) => api.clients.network.subnets.delete(resourceGroup, vnet, subnet, lro)),
  async users(api, { resourceGroup, names: [vnet = '', subnet = ''] }, signal) {
    const seen = await api.find(`subnet ${subnet}`, deleteOp, signal, (abortSignal) => api.clients.network.subnets.get(resourceGroup, vnet, subnet, { abortSignal }));
    return (seen?.ipConfigurations ?? []).map((config) => config.id ?? '');
  },
  deleteAfter: [resourceKinds.networkInterface],
  inUse: ['InUseSubnetCannotBeDeleted'],
  sweep: false,
});

/** The machine's network security group (unless --azure-nsg names one). */
export const securityGroupKind = ownKind<Placed & { rules: SecurityRule[] }>({
  kind: resourceKinds.securityGroup,
  label: 'network security group',
  step: 'network-security-group',
  type: 'Microsoft.Network/networkSecurityGroups',
  path: (spec) => ['Microsoft.Network', 'networkSecurityGroups', spec.name],
  put: (api, spec, tags, call) =>
    api.lro(`network security group ${spec.name}`, 'create', call.signal, (lro) =>
      api.clients.network.networkSecurityGroups.createOrUpdate(spec.resourceGroup, spec.name, { location: spec.location, tags, securityRules: spec.rules }, lro),
    ),
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.network.networkSecurityGroups.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) =>
    api.lro(`network security group ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.network.networkSecurityGroups.delete(group, name, lro)),
  inUse: ['InUseNetworkSecurityGroupCannotBeDeleted'],
  deleteAfter: [resourceKinds.networkInterface],
});

/** The machine's public IP (Standard SKU, static: Basic addresses are retired). */
export const publicIpKind = ownKind<Placed & { zone?: string; dnsLabel?: string }>({
  kind: resourceKinds.publicIp,
  label: 'public IP address',
  step: 'public-ip',
  type: 'Microsoft.Network/publicIPAddresses',
  path: (spec) => ['Microsoft.Network', 'publicIPAddresses', spec.name],
  put: (api, spec, tags, call) => {
    const body: PublicIPAddress = {
      location: spec.location,
      tags,
      sku: { name: 'Standard', tier: 'Regional' },
      publicIPAllocationMethod: 'Static',
      publicIPAddressVersion: 'IPv4',
      ...(spec.zone === undefined ? {} : { zones: [spec.zone] }),
      ...(spec.dnsLabel === undefined ? {} : { dnsSettings: { domainNameLabel: spec.dnsLabel } }),
    };
    return api.lro(`public IP address ${spec.name}`, 'create', call.signal, (lro) => api.clients.network.publicIPAddresses.createOrUpdate(spec.resourceGroup, spec.name, body, lro));
  },
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.network.publicIPAddresses.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) => api.lro(`public IP address ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.network.publicIPAddresses.delete(group, name, lro)),
  inUse: ['PublicIPAddressCannotBeDeleted', 'PublicIPAddressInUse'],
  deleteAfter: [resourceKinds.networkInterface],
});

/** The machine's NIC. Azure keeps it reserved for 180 s after a failed VM create, and in use while its VM is being deleted. */
export const networkInterfaceKind = ownKind<Placed & { body: Omit<NetworkInterface, 'tags'> }>({
  kind: resourceKinds.networkInterface,
  label: 'network interface',
  step: 'network-interface',
  type: 'Microsoft.Network/networkInterfaces',
  path: (spec) => ['Microsoft.Network', 'networkInterfaces', spec.name],
  put: (api, spec, tags, call) =>
    api.lro(`network interface ${spec.name}`, 'create', call.signal, (lro) =>
      api.clients.network.networkInterfaces.createOrUpdate(spec.resourceGroup, spec.name, { ...spec.body, tags }, lro),
    ),
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.network.networkInterfaces.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) => api.lro(`network interface ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.network.networkInterfaces.delete(group, name, lro)),
  inUse: ['NicReservedForAnotherVm', 'NicInUse'],
  deleteAfter: [resourceKinds.virtualMachine],
});

/** The OS disk the VM's PUT makes (recorded before it, by its deterministic name; `deleteOption: Delete` usually takes it with the VM). */
export const osDiskKind: ResourceKind<AzureApi, Placed> = {
  ...ownKind<Placed>({
    kind: resourceKinds.osDisk,
    label: 'OS disk',
    step: 'os-disk',
    type: 'Microsoft.Compute/disks',
  path: (spec) => ['Microsoft.Compute', 'disks', spec.name],
    put: async () => ({}),
    get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.compute.disks.get(group, name, { abortSignal }),
    del: (api, { resourceGroup: group, name }, signal) => api.lro(`OS disk ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.compute.disks.delete(group, name, lro)),
    inUse: ['OperationNotAllowed'],
    deleteAfter: [resourceKinds.virtualMachine],
  }),
  describe: (spec) => `recording OS disk ${spec.name}`,
  create: async (_api, spec) => ({ id: resourceId(spec.subscriptionId, spec.resourceGroup, 'Microsoft.Compute', 'disks', spec.name) }),
};

/** What the VM kind's create leaves for the create body: the poller of its long-running PUT. */
export interface PendingVm {
  poller?: PromiseLike<VirtualMachine>;
}

/**
 * The VM. Its create returns once Azure accepted the PUT (the VM exists from then on, even if its
 * allocation later fails and leaves it `Failed`), so it is journaled before the body waits for the
 * outcome in `pending.poller`.
 */
export const virtualMachineKind = ownKind<Placed & { body: Omit<VirtualMachine, 'tags'>; pending: PendingVm }>({
  kind: resourceKinds.virtualMachine,
  label: 'virtual machine',
  step: 'virtual-machine',
  type: 'Microsoft.Compute/virtualMachines',
  path: (spec) => ['Microsoft.Compute', 'virtualMachines', spec.name],
  put: async (api, spec, tags, call) => {
    await api.lro(`virtual machine ${spec.name}`, 'create', call.signal, async (lro) => {
      const poller = api.clients.compute.virtualMachines.createOrUpdate(spec.resourceGroup, spec.name, { ...spec.body, tags }, lro);
      spec.pending.poller = poller;
      // The SDK's poller says when Azure accepted the PUT; a stand-in without one is awaited whole.
      if ('submitted' in poller && typeof poller.submitted === 'function') await (poller.submitted as () => Promise<void>).call(poller);
      else await poller;
    });
    return {};
  },
  get: (api, { resourceGroup: group, name }, abortSignal) => api.clients.compute.virtualMachines.get(group, name, { abortSignal }),
  del: (api, { resourceGroup: group, name }, signal) => api.lro(`virtual machine ${name} to be deleted`, deleteOp, signal, (lro) => api.clients.compute.virtualMachines.delete(group, name, lro)),
});

/** Every kind, in create order. */
export const azureKinds: readonly AnyResourceKind<AzureApi>[] = [
  resourceGroupKind,
  availabilitySetKind,
  securityGroupKind,
  virtualNetworkKind,
  subnetKind,
  publicIpKind,
  networkInterfaceKind,
  osDiskKind,
  virtualMachineKind,
];
