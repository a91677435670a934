import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import type { SimInstance } from '../../core/store.ts';
import { AZURE, type AzureBackend, armAttributes, idsAt, json, jsonBody, objectAt, resourceNotFound } from './azure-backend.ts';
import { type ArmTarget, requireResourceGroup } from './azure-resources.ts';

/** VM details kept in `instance.attributes`. */
export interface VirtualMachineAttributes {
  armId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags?: Record<string, string>;
  zones?: string[];
  vmId: string;
  vmSize: string;
  nicIds: string[];
  osDiskId: string;
  availabilitySetId?: string;
  /** The request's `properties`, minus secrets (customData, admin password). */
  properties: Record<string, unknown>;
  deallocated: boolean;
  /** Set while an operation on it runs: `creating`, `deleting`… */
  provisioning?: string;
  diskGb: number;
}

function attributesOf(instance: SimInstance): VirtualMachineAttributes {
  return instance.attributes as unknown as VirtualMachineAttributes;
}

function vmNotFound(target: ArmTarget): ApiError {
  return resourceNotFound('Microsoft.Compute/virtualMachines', target.names[0] ?? '', target.resourceGroup);
}

function requireVm(backend: AzureBackend, target: ArmTarget): SimInstance {
  const vm = backend.vm(target.armId);
  if (vm === undefined) throw vmNotFound(target);
  return vm;
}

/** The ARM JSON of a VM. */
export function virtualMachineJson(instance: SimInstance): Record<string, unknown> {
  const attributes = attributesOf(instance);
  const running = instance.state === 'running' || instance.state === 'stopped' || instance.state === 'stopping';
  const storageProfile = objectAt(attributes.properties.storageProfile);
  return {
    id: attributes.armId,
    name: instance.name,
    type: 'Microsoft.Compute/virtualMachines',
    location: attributes.location,
    ...(attributes.tags === undefined ? {} : { tags: attributes.tags }),
    ...(attributes.zones === undefined ? {} : { zones: attributes.zones }),
    properties: {
      ...attributes.properties,
      vmId: attributes.vmId,
      storageProfile: {
        ...storageProfile,
        osDisk: { ...objectAt(storageProfile.osDisk), managedDisk: { ...objectAt(objectAt(storageProfile.osDisk).managedDisk), id: attributes.osDiskId } },
      },
      provisioningState: attributes.provisioning === 'deleting' ? 'Deleting' : attributes.provisioning === 'creating' || !running ? 'Creating' : 'Succeeded',
      timeCreated: instance.createdAt.toISOString(),
    },
  };
}

/** `ProvisioningState/…` and `PowerState/…` statuses, as the instance view reports them. */
export function instanceStatuses(instance: SimInstance): { code: string; level: string; displayStatus: string }[] {
  const attributes = attributesOf(instance);
  const provisioning = attributes.provisioning ?? 'succeeded';
  const power =
    instance.state === 'pending'
      ? 'starting'
      : instance.state === 'running'
        ? 'running'
        : instance.state === 'stopping'
          ? attributes.deallocated
            ? 'deallocating'
            : 'stopping'
          : instance.state === 'stopped'
            ? attributes.deallocated
              ? 'deallocated'
              : 'stopped'
            : 'unknown';
  const statuses = [{ code: `ProvisioningState/${provisioning}`, level: 'Info', displayStatus: `Provisioning ${provisioning}` }];
  if (provisioning !== 'creating') statuses.push({ code: `PowerState/${power}`, level: 'Info', displayStatus: `VM ${power}` });
  return statuses;
}

/** PUT …/virtualMachines/{name}: checks the NIC, disk and image, launches the instance; done when it runs. */
export function putVirtualMachine(backend: AzureBackend, target: ArmTarget, request: SimRequest): SimResponse {
  requireResourceGroup(backend, target.subscriptionId, target.resourceGroup);
  const existing = backend.vm(target.armId);
  const body = jsonBody(request);
  if (existing !== undefined) {
    const attributes = attributesOf(existing);
    if (body.tags !== undefined) attributes.tags = objectAt(body.tags) as Record<string, string>;
    return json(200, virtualMachineJson(existing));
  }
  const name = target.names[0] ?? '';
  const location = typeof body.location === 'string' ? body.location : undefined;
  if (location === undefined) throw new ApiError(400, 'LocationRequired', 'The location property is required for this definition.');
  const properties = { ...objectAt(body.properties) };
  const vmSize = String(objectAt(properties.hardwareProfile).vmSize ?? '');
  if (vmSize === '') throw new ApiError(400, 'InvalidParameter', "Required parameter 'hardwareProfile.vmSize' is missing (null).");
  const osProfile = { ...objectAt(properties.osProfile) };
  const linux = objectAt(osProfile.linuxConfiguration);
  const keys = (Array.isArray(objectAt(linux.ssh).publicKeys) ? (objectAt(linux.ssh).publicKeys as unknown[]) : [])
    .map((key) => objectAt(key).keyData)
    .filter((key): key is string => typeof key === 'string');
  if (linux.disablePasswordAuthentication === true && keys.length === 0) {
    throw new ApiError(400, 'InvalidParameter', 'Authentication using either SSH or by user name and password must be enabled in Linux profile.');
  }
  const storageProfile = objectAt(properties.storageProfile);
  const image = objectAt(storageProfile.imageReference);
  if (image.id === undefined && (typeof image.publisher !== 'string' || typeof image.offer !== 'string' || typeof image.sku !== 'string')) {
    throw new ApiError(400, 'InvalidParameter', 'The value of parameter imageReference is invalid.');
  }
  const nicIds = idsAt(objectAt(properties.networkProfile).networkInterfaces);
  if (nicIds.length === 0) throw new ApiError(400, 'InvalidParameter', 'At least one network interface is required.');
  const nics = nicIds.map((id) => {
    const nic = backend.context.store.getResource(AZURE, 'networkInterfaces', id.toLowerCase());
    if (nic === undefined) throw new ApiError(400, 'InvalidResourceReference', `Resource ${id} referenced by resource ${target.armId} was not found.`);
    const user = objectAt(armAttributes(nic).properties.virtualMachine).id;
    if (typeof user === 'string' && backend.vm(user) !== undefined) throw new ApiError(400, 'NicInUse', `Network Interface ${id} is used by existing resource ${user}.`);
    return nic;
  });
  const availabilitySetId = objectAt(properties.availabilitySet).id;
  if (typeof availabilitySetId === 'string' && backend.context.store.getResource(AZURE, 'availabilitySets', availabilitySetId.toLowerCase()) === undefined) {
    throw new ApiError(404, 'NotFound', `Availability set ${availabilitySetId} was not found.`);
  }
  if (backend.vms().length >= backend.vmLimit) {
    throw new ApiError(409, 'OperationNotAllowed', `Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Location: ${location}, Current Limit: ${backend.vmLimit * 2}, Current Usage: ${backend.vms().length * 2}, Additional Required: 2.`);
  }

  const osDisk = objectAt(storageProfile.osDisk);
  const diskName = typeof osDisk.name === 'string' ? osDisk.name : `${name}_OsDisk_1_${backend.context.ids.hex(32)}`;
  const diskId = `/subscriptions/${target.subscriptionId}/resourceGroups/${target.resourceGroup}/providers/Microsoft.Compute/disks/${diskName}`;
  const diskGb = typeof osDisk.diskSizeGB === 'number' ? osDisk.diskSizeGB : 30;
  const customData = osProfile.customData;
  delete osProfile.customData;
  delete osProfile.adminPassword;
  const attributes: VirtualMachineAttributes = {
    armId: target.armId,
    subscriptionId: target.subscriptionId,
    resourceGroup: target.resourceGroup.toLowerCase(),
    location,
    ...(body.tags === undefined ? {} : { tags: objectAt(body.tags) as Record<string, string> }),
    ...(Array.isArray(body.zones) ? { zones: body.zones as string[] } : {}),
    vmId: backend.context.ids.uuid(),
    vmSize,
    nicIds,
    osDiskId: diskId,
    ...(typeof availabilitySetId === 'string' ? { availabilitySetId } : {}),
    properties: { ...properties, osProfile },
    deallocated: false,
    diskGb,
  };
  const { instance, running } = backend.context.lifecycle.launch({
    provider: AZURE,
    kind: 'virtualMachine',
    id: target.armId.toLowerCase(),
    name,
    authorizedKeys: keys,
    attributes: attributes as unknown as Record<string, unknown>,
    ...(typeof customData === 'string' ? { userData: Buffer.from(customData, 'base64').toString('utf8') } : {}),
  });
  const live = attributesOf(instance);
  live.provisioning = 'creating';
  void running.then(() => {
    if (live.provisioning === 'creating') delete live.provisioning;
  });
  backend.context.store.putResource({
    provider: AZURE,
    kind: 'disks',
    id: diskId.toLowerCase(),
    name: diskName,
    createdAt: new Date(),
    attributes: {
      armId: diskId,
      type: 'Microsoft.Compute/disks',
      subscriptionId: target.subscriptionId,
      resourceGroup: target.resourceGroup.toLowerCase(),
      location,
      sku: { name: String(objectAt(osDisk.managedDisk).storageAccountType ?? 'Standard_LRS') },
      properties: { diskSizeGB: diskGb, managedBy: target.armId, diskState: 'Attached', provisioningState: 'Succeeded' },
    },
  });
  for (const nic of nics) {
    armAttributes(nic).properties.virtualMachine = { id: target.armId };
    for (const ipConfigId of idsAt(armAttributes(nic).properties.ipConfigurations)) {
      for (const publicIp of backend.resources('publicIPAddresses')) {
        const ipProperties = armAttributes(publicIp).properties;
        if (String(objectAt(ipProperties.ipConfiguration).id ?? '').toLowerCase() === ipConfigId.toLowerCase()) ipProperties.ipAddress = instance.publicIp;
      }
    }
  }
  const operation = backend.startOperation(location, target.subscriptionId, 'Microsoft.Compute', running, {
    code: 'OSProvisioningInternalError',
    message: `OS Provisioning failed for VM '${name}'.`,
  });
  return json(201, virtualMachineJson(instance), { 'azure-asyncoperation': operation });
}

/** GET …/virtualMachines/{name} (`$expand=instanceView` adds the statuses). */
export function getVirtualMachine(backend: AzureBackend, target: ArmTarget, request: SimRequest): SimResponse {
  const vm = requireVm(backend, target);
  const body = virtualMachineJson(vm);
  if (request.url.searchParams.get('$expand') === 'instanceView') {
    body.properties = { ...objectAt(body.properties), instanceView: { statuses: instanceStatuses(vm) } };
  }
  return json(200, body);
}

/** GET …/virtualMachines/{name}/instanceView. */
export function getInstanceView(backend: AzureBackend, target: ArmTarget): SimResponse {
  const vm = requireVm(backend, target);
  return json(200, { computerName: vm.name, osName: 'ubuntu', osVersion: '24.04', statuses: instanceStatuses(vm) });
}

/** GET /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines (`statusOnly=true` adds statuses). */
export function listAllVirtualMachines(backend: AzureBackend, subscriptionId: string, request: SimRequest): SimResponse {
  const statusOnly = request.url.searchParams.get('statusOnly') === 'true';
  const value = backend
    .vms()
    .filter((vm) => attributesOf(vm).subscriptionId.toLowerCase() === subscriptionId.toLowerCase())
    .map((vm) => {
      const body = virtualMachineJson(vm);
      return statusOnly ? { ...body, properties: { ...objectAt(body.properties), instanceView: { statuses: instanceStatuses(vm) } } } : body;
    });
  return json(200, { value });
}

/** POST …/{powerOff|deallocate|start|restart}: 202 with an async operation that ends with the transition. */
export function virtualMachineAction(backend: AzureBackend, target: ArmTarget, action: string, request: SimRequest): SimResponse {
  const vm = requireVm(backend, target);
  const attributes = attributesOf(vm);
  const lifecycle = backend.context.lifecycle;
  let done: Promise<boolean>;
  switch (action) {
    case 'poweroff':
      done = lifecycle.stop(vm, { force: request.url.searchParams.get('skipShutdown') === 'true' });
      break;
    case 'deallocate':
      attributes.deallocated = true;
      done = lifecycle.stop(vm);
      break;
    case 'start':
      attributes.deallocated = false;
      done = lifecycle.start(vm);
      break;
    case 'restart':
      if (vm.state !== 'running') {
        throw new ApiError(409, 'OperationNotAllowed', `Operation 'restart' is not allowed on VM '${vm.name}' since the VM is ${attributes.deallocated ? 'deallocated' : 'not running'}.`);
      }
      done = lifecycle.reboot(vm);
      break;
    default:
      throw new ApiError(404, 'NotFound', `No route for action ${action}.`);
  }
  const operation = backend.startOperation(attributes.location, target.subscriptionId, 'Microsoft.Compute', done);
  return { status: 202, headers: { 'azure-asyncoperation': operation } };
}

/** DELETE …/virtualMachines/{name}: the instance terminates; its NIC and OS disk stay, detached (ARM's default delete options). */
export function deleteVirtualMachine(backend: AzureBackend, target: ArmTarget): SimResponse {
  const vm = backend.vm(target.armId);
  if (vm === undefined) return { status: 204 };
  const attributes = attributesOf(vm);
  attributes.provisioning = 'deleting';
  const done = backend.context.lifecycle.terminate(vm).then((reached) => {
    for (const nicId of attributes.nicIds) {
      const nic = backend.context.store.getResource(AZURE, 'networkInterfaces', nicId.toLowerCase());
      if (nic !== undefined) delete armAttributes(nic).properties.virtualMachine;
    }
    const disk = backend.context.store.getResource(AZURE, 'disks', attributes.osDiskId.toLowerCase());
    if (disk !== undefined) {
      delete armAttributes(disk).properties.managedBy;
      armAttributes(disk).properties.diskState = 'Unattached';
    }
    return reached;
  });
  const operation = backend.startOperation(attributes.location, target.subscriptionId, 'Microsoft.Compute', done);
  return { status: 202, headers: { 'azure-asyncoperation': operation } };
}
