import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import type { SimResource } from '../../core/store.ts';
import {
  AZURE,
  type ArmAttributes,
  type AzureBackend,
  armAttributes,
  idsAt,
  json,
  jsonBody,
  objectAt,
  RESOURCE_TYPES,
  type ResourceTypeKey,
  resourceGroupNotFound,
  resourceJson,
  resourceNotFound,
} from './azure-backend.ts';
import { nicReserved } from './azure-errors.ts';

/** A parsed ARM resource path. */
export interface ArmTarget {
  subscriptionId: string;
  /** Resource group name as the caller spelled it. */
  resourceGroup: string;
  typeKey: ResourceTypeKey;
  /** `[name]`, or `[vnet, subnet]` for subnets. */
  names: string[];
  /** The ARM ID as the caller spelled it. */
  armId: string;
}

/** The resource group's ID. */
export function resourceGroupId(subscriptionId: string, resourceGroup: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
}

/** Throws 404 unless the resource group exists; returns it. */
export function requireResourceGroup(backend: AzureBackend, subscriptionId: string, resourceGroup: string): SimResource {
  const group = backend.context.store.getResource(AZURE, 'resourceGroups', resourceGroupId(subscriptionId, resourceGroup).toLowerCase());
  if (group === undefined) throw resourceGroupNotFound(resourceGroup);
  return group;
}

function lastName(target: ArmTarget): string {
  return target.names.at(-1) ?? target.resourceGroup;
}

function groupOf(target: ArmTarget): string {
  return RESOURCE_TYPES[target.typeKey].group;
}

function notFoundFor(target: ArmTarget): ApiError {
  if (target.typeKey === 'microsoft.resources/resourcegroups') return resourceGroupNotFound(target.resourceGroup);
  const type = RESOURCE_TYPES[target.typeKey].type;
  return resourceNotFound(type, target.names.join('/'), target.resourceGroup);
}

function stored(backend: AzureBackend, target: ArmTarget): SimResource | undefined {
  return backend.context.store.getResource(AZURE, groupOf(target), target.armId.toLowerCase());
}

/** A reference in a body must name an existing resource of the given group. */
function requireReference(backend: AzureBackend, id: string, group: string, what: string): SimResource {
  const found = backend.context.store.getResource(AZURE, group, id.toLowerCase());
  if (found === undefined) throw new ApiError(400, 'InvalidResourceReference', `Resource ${id} referenced by ${what} was not found.`);
  return found;
}

/** The computed ARM JSON of a resource (back-references filled in from the store). */
export function armJson(backend: AzureBackend, resource: SimResource): Record<string, unknown> {
  const body = armJsonAsStored(backend, resource);
  const attributes = armAttributes(resource);
  // A resource an operation still holds reads `Updating` (realistic profile).
  if (resource.kind !== 'resourceGroups' && backend.conditions.isUpdating(attributes.armId)) body.properties = { ...objectAt(body.properties), provisioningState: 'Updating' };
  if (resource.kind === 'publicIPAddresses' && dynamicAddressHidden(backend, resource)) {
    const { ipAddress: _hidden, ...properties } = objectAt(body.properties);
    body.properties = properties;
  }
  return body;
}

/**
 * A Dynamic public IP has no address until its VM runs (plus `dynamicIpLagMs`) and loses it while
 * the VM is deallocated (realistic profile). Standard static addresses are never hidden.
 */
function dynamicAddressHidden(backend: AzureBackend, publicIp: SimResource): boolean {
  const conditions = backend.conditions;
  const properties = armAttributes(publicIp).properties;
  if (!conditions.realism.realistic || properties.publicIPAllocationMethod !== 'Dynamic') return false;
  const ipConfigId = String(objectAt(properties.ipConfiguration).id ?? '').toLowerCase();
  const nicId = ipConfigId.split('/ipconfigurations/')[0] ?? '';
  const nic = nicId === '' ? undefined : backend.context.store.getResource(AZURE, 'networkInterfaces', nicId);
  const vmId = nic === undefined ? undefined : objectAt(armAttributes(nic).properties.virtualMachine).id;
  const vm = typeof vmId === 'string' ? backend.vm(vmId) : undefined;
  if (vm === undefined || vm.state !== 'running') return true;
  return Date.now() - vm.stateChangedAt.getTime() < conditions.scaled('dynamicIpLagMs');
}

function armJsonAsStored(backend: AzureBackend, resource: SimResource): Record<string, unknown> {
  const attributes = armAttributes(resource);
  switch (resource.kind) {
    case 'virtualNetworks': {
      const prefix = `${attributes.armId.toLowerCase()}/subnets/`;
      const subnets = backend
        .resources('subnets')
        .filter((subnet) => subnet.id.startsWith(prefix))
        .map((subnet) => armJson(backend, subnet));
      return resourceJson(resource, { subnets });
    }
    case 'networkSecurityGroups': {
      const id = attributes.armId.toLowerCase();
      const nics = backend.resources('networkInterfaces').filter((nic) => String(objectAt(armAttributes(nic).properties.networkSecurityGroup).id ?? '').toLowerCase() === id);
      return resourceJson(resource, { networkInterfaces: nics.map((nic) => ({ id: armAttributes(nic).armId })) });
    }
    case 'availabilitySets': {
      const vms = backend.vms().filter((vm) => String(vm.attributes.availabilitySetId ?? '').toLowerCase() === attributes.armId.toLowerCase());
      return resourceJson(resource, { virtualMachines: vms.map((vm) => ({ id: vm.attributes.armId })) });
    }
    case 'resourceGroups': {
      const { properties: _properties, ...rest } = resourceJson(resource);
      return { ...rest, properties: { provisioningState: 'Succeeded' } };
    }
    default:
      return resourceJson(resource);
  }
}

/** GET of any stored resource type. */
export function getResource(backend: AzureBackend, target: ArmTarget): SimResponse {
  const resource = stored(backend, target);
  if (resource === undefined) throw notFoundFor(target);
  return json(200, armJson(backend, resource));
}

/** PUT of any stored resource type: validates references, keeps back-references, answers as ARM does. */
export function putResource(backend: AzureBackend, target: ArmTarget, request: SimRequest): SimResponse {
  const body = jsonBody(request);
  const isGroup = target.typeKey === 'microsoft.resources/resourcegroups';
  if (!isGroup) requireResourceGroup(backend, target.subscriptionId, target.resourceGroup);
  const isSubnet = target.typeKey === 'microsoft.network/virtualnetworks/subnets';
  const vnetId = isSubnet ? target.armId.slice(0, target.armId.toLowerCase().lastIndexOf('/subnets/')) : undefined;
  if (vnetId !== undefined && backend.context.store.getResource(AZURE, 'virtualNetworks', vnetId.toLowerCase()) === undefined) {
    throw resourceNotFound('Microsoft.Network/virtualNetworks', target.names[0] ?? '', target.resourceGroup);
  }
  const location = typeof body.location === 'string' ? body.location : undefined;
  if (!isSubnet && location === undefined) throw new ApiError(400, 'LocationRequired', 'The location property is required for this definition.');
  const locks = lockedBy(backend, target);
  backend.conditions.assertUnlocked(locks);
  const existing = stored(backend, target);
  const properties = { ...objectAt(body.properties) };
  switch (target.typeKey) {
    case 'microsoft.network/networkinterfaces':
      prepareNetworkInterface(backend, target, properties, existing);
      break;
    case 'microsoft.network/publicipaddresses': {
      const dns = objectAt(properties.dnsSettings);
      if (typeof dns.domainNameLabel === 'string') properties.dnsSettings = { ...dns, fqdn: `${dns.domainNameLabel}.${location}.cloudapp.azure.com` };
      const previous = existing === undefined ? {} : armAttributes(existing).properties;
      if (previous.ipAddress !== undefined) properties.ipAddress = previous.ipAddress;
      if (previous.ipConfiguration !== undefined) properties.ipConfiguration = previous.ipConfiguration;
      break;
    }
    case 'microsoft.network/networksecuritygroups':
      properties.securityRules = (Array.isArray(properties.securityRules) ? properties.securityRules : []).map((rule) => {
        const entry = objectAt(rule);
        return { ...entry, id: `${target.armId}/securityRules/${String(entry.name)}`, properties: { ...objectAt(entry.properties), provisioningState: 'Succeeded' } };
      });
      break;
    case 'microsoft.network/virtualnetworks': {
      const inline = Array.isArray(properties.subnets) ? properties.subnets : [];
      delete properties.subnets;
      for (const subnet of inline) {
        const entry = objectAt(subnet);
        const name = String(entry.name ?? '');
        const id = `${target.armId}/subnets/${name}`;
        storeResource(backend, 'subnets', id, name, {
          armId: id,
          type: 'Microsoft.Network/virtualNetworks/subnets',
          subscriptionId: target.subscriptionId,
          resourceGroup: target.resourceGroup.toLowerCase(),
          properties: { ...objectAt(entry.properties), provisioningState: 'Succeeded', ipConfigurations: [] },
        });
      }
      break;
    }
    case 'microsoft.network/virtualnetworks/subnets': {
      const previous = existing === undefined ? {} : armAttributes(existing).properties;
      properties.ipConfigurations = previous.ipConfigurations ?? [];
      break;
    }
    default:
      break;
  }
  const attributes: ArmAttributes = {
    armId: existing === undefined ? target.armId : armAttributes(existing).armId,
    type: RESOURCE_TYPES[target.typeKey].type,
    subscriptionId: target.subscriptionId,
    resourceGroup: target.resourceGroup.toLowerCase(),
    ...(location === undefined ? {} : { location }),
    ...(body.tags === undefined ? {} : { tags: objectAt(body.tags) as Record<string, string> }),
    ...(body.sku === undefined ? {} : { sku: body.sku }),
    ...(Array.isArray(body.zones) ? { zones: body.zones as string[] } : {}),
    properties: { ...properties, provisioningState: 'Succeeded' },
  };
  const resource = storeResource(backend, groupOf(target), target.armId, lastName(target), attributes);
  const status = existing === undefined ? 201 : 200;
  if (isGroup) return json(status, armJson(backend, resource));
  // Availability sets answer 200 for a create too (their API has no 201).
  if (target.typeKey === 'microsoft.compute/availabilitysets') return json(200, armJson(backend, resource));
  // Network resources answer at once and finish through an async operation, as ARM's network
  // provider does; under the realistic profile the operation takes a while and holds its targets.
  const operation = networkOperation(backend, target, location ?? 'global', locks);
  return json(status, { ...armJson(backend, resource), properties: { ...armJson(backend, resource).properties as object, provisioningState: 'Updating' } }, {
    'azure-asyncoperation': operation,
  });
}

/** What a write to the target holds while it runs: a subnet its vnet too, a vnet its subnets too. */
function lockedBy(backend: AzureBackend, target: ArmTarget): string[] {
  const id = target.armId.toLowerCase();
  if (target.typeKey === 'microsoft.network/virtualnetworks/subnets') return [id, id.slice(0, id.lastIndexOf('/subnets/'))];
  if (target.typeKey === 'microsoft.network/virtualnetworks') return [id, ...backend.resources('subnets').filter((subnet) => subnet.id.startsWith(`${id}/subnets/`)).map((subnet) => subnet.id)];
  return [id];
}

/** Starts a network operation lasting `networkOperationMs` (scaled) that locks `locks` meanwhile. */
function networkOperation(backend: AzureBackend, target: ArmTarget, location: string, locks: readonly string[]): string {
  const durationMs = backend.conditions.scaled('networkOperationMs');
  // The lock ends just before the operation reports Succeeded: a caller that saw it finish is never refused.
  const operation = backend.startOperation(location, target.subscriptionId, 'Microsoft.Network', Promise.resolve(true), undefined, { minMs: durationMs + 2 });
  backend.conditions.lock(locks, durationMs, operation);
  return operation;
}

function storeResource(backend: AzureBackend, group: string, armId: string, name: string, attributes: ArmAttributes): SimResource {
  const existing = backend.context.store.getResource(AZURE, group, armId.toLowerCase());
  return backend.context.store.putResource({
    provider: AZURE,
    kind: group,
    id: armId.toLowerCase(),
    name,
    createdAt: existing?.createdAt ?? new Date(),
    attributes: attributes as unknown as Record<string, unknown>,
  });
}

/** Checks a NIC's subnet, public IP and NSG, assigns private addresses, and links the back-references. */
function prepareNetworkInterface(backend: AzureBackend, target: ArmTarget, properties: Record<string, unknown>, existing: SimResource | undefined): void {
  const securityGroupId = objectAt(properties.networkSecurityGroup).id;
  if (typeof securityGroupId === 'string') requireReference(backend, securityGroupId, 'networkSecurityGroups', `network interface ${lastName(target)}`);
  const configs = Array.isArray(properties.ipConfigurations) ? properties.ipConfigurations : [];
  if (configs.length === 0) throw new ApiError(400, 'NetworkInterfaceMustHaveAtLeastOneIpConfiguration', `Network interface ${target.armId} must have one or more IP configurations.`);
  if (existing !== undefined) unlinkNetworkInterface(backend, existing);
  const previousVm = existing === undefined ? undefined : armAttributes(existing).properties.virtualMachine;
  properties.ipConfigurations = configs.map((config, index) => {
    const entry = objectAt(config);
    const name = String(entry.name ?? `ipconfig${index + 1}`);
    const id = `${target.armId}/ipConfigurations/${name}`;
    const ipProperties = { ...objectAt(entry.properties) };
    const subnetId = objectAt(ipProperties.subnet).id;
    if (typeof subnetId !== 'string') throw new ApiError(400, 'InvalidRequestFormat', `IP configuration ${id} has no subnet.`);
    const subnet = requireReference(backend, subnetId, 'subnets', `IP configuration ${id}`);
    backend.conditions.assertProvisioned([subnetId, subnetId.slice(0, subnetId.toLowerCase().lastIndexOf('/subnets/'))]);
    const publicIpId = objectAt(ipProperties.publicIPAddress).id;
    if (typeof publicIpId === 'string') {
      const publicIp = requireReference(backend, publicIpId, 'publicIPAddresses', `IP configuration ${id}`);
      const current = objectAt(armAttributes(publicIp).properties.ipConfiguration).id;
      if (typeof current === 'string' && current.toLowerCase() !== id.toLowerCase()) {
        throw new ApiError(400, 'PublicIPAddressInUse', `Resource ${publicIpId} is referenced by ${current} and cannot be used by ${id}.`);
      }
      armAttributes(publicIp).properties.ipConfiguration = { id };
    }
    const subnetProperties = armAttributes(subnet).properties;
    subnetProperties.ipConfigurations = [...idsAt(subnetProperties.ipConfigurations).map((ref) => ({ id: ref })), { id }];
    if (ipProperties.privateIPAllocationMethod !== 'Static' || typeof ipProperties.privateIPAddress !== 'string') {
      ipProperties.privateIPAddress = nextPrivateAddress(String(subnetProperties.addressPrefix ?? '10.0.0.0/24'), backend.context.ids.next(`azure:ip:${subnet.id}`, 4));
      ipProperties.privateIPAllocationMethod = 'Dynamic';
    }
    return { ...entry, name, id, properties: { ...ipProperties, provisioningState: 'Succeeded', primary: ipProperties.primary ?? index === 0 } };
  });
  if (previousVm !== undefined) properties.virtualMachine = previousVm;
}

/** Removes a NIC's references from its subnets and public IPs. */
export function unlinkNetworkInterface(backend: AzureBackend, nic: SimResource): void {
  const ipConfigIds = new Set(idsAt(armAttributes(nic).properties.ipConfigurations).map((id) => id.toLowerCase()));
  for (const subnet of backend.resources('subnets')) {
    const subnetProperties = armAttributes(subnet).properties;
    subnetProperties.ipConfigurations = idsAt(subnetProperties.ipConfigurations)
      .filter((id) => !ipConfigIds.has(id.toLowerCase()))
      .map((id) => ({ id }));
  }
  for (const publicIp of backend.resources('publicIPAddresses')) {
    const ipProperties = armAttributes(publicIp).properties;
    const current = objectAt(ipProperties.ipConfiguration).id;
    if (typeof current === 'string' && ipConfigIds.has(current.toLowerCase())) delete ipProperties.ipConfiguration;
  }
}

function nextPrivateAddress(prefix: string, offset: number): string {
  const [address = '10.0.0.0'] = prefix.split('/');
  const value = address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0) + offset;
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** DELETE of any stored resource type, with ARM's in-use checks. Missing resources answer 204. */
export function deleteResource(backend: AzureBackend, target: ArmTarget): SimResponse {
  const resource = stored(backend, target);
  const isGroup = target.typeKey === 'microsoft.resources/resourcegroups';
  if (resource === undefined) {
    if (isGroup) throw resourceGroupNotFound(target.resourceGroup);
    return { status: 204 };
  }
  const attributes = armAttributes(resource);
  const store = backend.context.store;
  const locks = lockedBy(backend, target);
  backend.conditions.assertUnlocked(locks);
  const heldBy = backend.conditions.inUseBy(attributes.armId);
  switch (resource.kind) {
    case 'subnets':
      if (idsAt(attributes.properties.ipConfigurations).length > 0) {
        throw new ApiError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${resource.name} is in use by ${idsAt(attributes.properties.ipConfigurations).join(', ')} and cannot be deleted.`);
      }
      break;
    case 'virtualNetworks': {
      const prefix = `${resource.id}/subnets/`;
      const subnets = backend.resources('subnets').filter((subnet) => subnet.id.startsWith(prefix));
      const busy = subnets.find((subnet) => idsAt(armAttributes(subnet).properties.ipConfigurations).length > 0);
      if (busy !== undefined) throw new ApiError(400, 'InUseSubnetCannotBeDeleted', `Subnet ${busy.name} is in use and cannot be deleted.`);
      for (const subnet of subnets) store.deleteResource(AZURE, 'subnets', subnet.id);
      break;
    }
    case 'networkSecurityGroups': {
      const users = idsAt(objectAt(armJson(backend, resource).properties).networkInterfaces);
      // Just after its NIC was deleted it still reads as in use (realistic profile).
      if (users.length === 0 && heldBy !== undefined) users.push(heldBy);
      if (users.length > 0) {
        throw new ApiError(400, 'InUseNetworkSecurityGroupCannotBeDeleted', `Network security group ${attributes.armId} cannot be deleted because it is in use by the following resources: ${users.join(', ')}.`);
      }
      break;
    }
    case 'publicIPAddresses': {
      const user = objectAt(attributes.properties.ipConfiguration).id ?? heldBy;
      if (typeof user === 'string') throw new ApiError(400, 'PublicIPAddressCannotBeDeleted', `Public IP address ${attributes.armId} can not be deleted since it is still allocated to resource ${user}.`);
      break;
    }
    case 'networkInterfaces': {
      const vm = objectAt(attributes.properties.virtualMachine).id;
      if (typeof vm === 'string' && backend.vm(vm) !== undefined) throw new ApiError(400, 'NicInUse', `Network Interface ${attributes.armId} is used by existing resource ${vm}.`);
      if (heldBy !== undefined) throw nicReserved();
      releaseNetworkInterface(backend, resource);
      break;
    }
    case 'disks': {
      const owner = attributes.properties.managedBy;
      if (typeof owner === 'string' && backend.vm(owner) !== undefined) throw new ApiError(409, 'OperationNotAllowed', `Disk ${resource.name} is attached to VM ${owner}.`);
      break;
    }
    case 'availabilitySets': {
      const members = idsAt(objectAt(armJson(backend, resource).properties).virtualMachines);
      if (members.length > 0) throw new ApiError(409, 'AvailabilitySetInUse', `Availability set ${resource.name} still has virtual machines: ${members.join(', ')}.`);
      store.deleteResource(AZURE, resource.kind, resource.id);
      return { status: 200 };
    }
    case 'resourceGroups':
      deleteGroupContents(backend, resource.id);
      break;
    default:
      break;
  }
  store.deleteResource(AZURE, resource.kind, resource.id);
  const operation = isGroup
    ? backend.startOperation(attributes.location ?? 'global', target.subscriptionId, 'Microsoft.Resources', Promise.resolve(true))
    : networkOperation(backend, target, attributes.location ?? 'global', locks);
  return { status: 202, headers: { 'azure-asyncoperation': operation } };
}

/** Unlinks a deleted NIC; its NSG and public IP stay in use by it for `nicReleaseMs` (realistic profile). */
function releaseNetworkInterface(backend: AzureBackend, nic: SimResource): void {
  const properties = armAttributes(nic).properties;
  const releaseMs = backend.conditions.scaled('nicReleaseMs');
  const nsg = objectAt(properties.networkSecurityGroup).id;
  if (typeof nsg === 'string') backend.conditions.holdInUse(nsg, releaseMs, armAttributes(nic).armId);
  for (const config of Array.isArray(properties.ipConfigurations) ? properties.ipConfigurations : []) {
    const entry = objectAt(config);
    const publicIp = objectAt(objectAt(entry.properties).publicIPAddress).id;
    if (typeof publicIp === 'string') backend.conditions.holdInUse(publicIp, releaseMs, String(entry.id ?? armAttributes(nic).armId));
  }
  unlinkNetworkInterface(backend, nic);
}

/** Deleting a group deletes everything in it, VMs included. */
function deleteGroupContents(backend: AzureBackend, groupId: string): void {
  const prefix = `${groupId}/`;
  for (const vm of backend.vms()) {
    if (vm.id.startsWith(prefix)) void backend.context.lifecycle.terminate(vm);
  }
  for (const type of Object.values(RESOURCE_TYPES)) {
    for (const resource of backend.resources(type.group)) {
      if (resource.id.startsWith(prefix)) backend.context.store.deleteResource(AZURE, resource.kind, resource.id);
    }
  }
}

/** GET …/resourceGroups/{rg}/resources: everything in the group, `$top` honoured. */
export function listGroupResources(backend: AzureBackend, subscriptionId: string, resourceGroup: string, request: SimRequest): SimResponse {
  const group = requireResourceGroup(backend, subscriptionId, resourceGroup);
  const prefix = `${group.id}/`;
  const items: Record<string, unknown>[] = [];
  for (const type of Object.values(RESOURCE_TYPES)) {
    if (type.group === 'resourceGroups' || type.group === 'subnets') continue;
    for (const resource of backend.resources(type.group)) {
      if (resource.id.startsWith(prefix)) {
        const attributes = armAttributes(resource);
        items.push({
          id: attributes.armId,
          name: resource.name,
          type: attributes.type,
          location: attributes.location,
          ...(attributes.tags === undefined ? {} : { tags: attributes.tags }),
          createdTime: resource.createdAt.toISOString(),
        });
      }
    }
  }
  for (const vm of backend.vms()) {
    if (vm.id.startsWith(prefix)) {
      items.push({
        id: vm.attributes.armId,
        name: vm.name,
        type: 'Microsoft.Compute/virtualMachines',
        location: vm.attributes.location,
        ...(vm.attributes.tags === undefined ? {} : { tags: vm.attributes.tags }),
        createdTime: vm.createdAt.toISOString(),
      });
    }
  }
  const top = Number(request.url.searchParams.get('$top') ?? Number.NaN);
  return json(200, { value: Number.isInteger(top) && top > 0 ? items.slice(0, top) : items });
}

/** GET /subscriptions/{s}/providers/{ns}/{type}: every resource of the type in the subscription, in every group. */
export function listSubscriptionResources(backend: AzureBackend, subscriptionId: string, typeKey: ResourceTypeKey): SimResponse {
  const value = backend
    .resources(RESOURCE_TYPES[typeKey].group)
    .filter((resource) => armAttributes(resource).subscriptionId.toLowerCase() === subscriptionId.toLowerCase())
    .map((resource) => armJson(backend, resource));
  return json(200, { value });
}
