import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import type { SimInstance } from '../../core/store.ts';
import { AZURE, type AzureBackend, armAttributes, idsAt, json, jsonBody, objectAt, resourceNotFound } from './azure-backend.ts';
import type { InstanceFaultKind } from '../../core/faults.ts';
import { consume } from '../../core/realism.ts';
import { AzureApiError, nicReserved } from './azure-errors.ts';
import { type ArmTarget, requireResourceGroup } from './azure-resources.ts';
import { checkSshKeys } from './azure-ssh-keys.ts';

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
      provisioningState:
        attributes.provisioning === 'deleting'
          ? 'Deleting'
          : attributes.provisioning === 'failed'
            ? 'Failed'
            : attributes.provisioning === 'creating' || !running
              ? 'Creating'
              : 'Succeeded',
      timeCreated: instance.createdAt.toISOString(),
    },
  };
}

/** `ProvisioningState/…` and `PowerState/…` statuses, as the instance view reports them. */
export function instanceStatuses(instance: SimInstance, powerStateLagMs = 0): { code: string; level: string; displayStatus: string }[] {
  const attributes = attributesOf(instance);
  // Right after a create or start the PowerState entry is missing for a while (realistic profile).
  const lagging = instance.state === 'running' && Date.now() - instance.stateChangedAt.getTime() < powerStateLagMs;
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
  if (provisioning !== 'creating' && !lagging) statuses.push({ code: `PowerState/${power}`, level: 'Info', displayStatus: `VM ${power}` });
  return statuses;
}

/** PUT …/virtualMachines/{name}: checks the NIC, disk and image, launches the instance; done when it runs. */
export function putVirtualMachine(backend: AzureBackend, target: ArmTarget, request: SimRequest): SimResponse {
  requireResourceGroup(backend, target.subscriptionId, target.resourceGroup);
  const existing = backend.vm(target.armId);
  const body = jsonBody(request);
  const conditions = backend.conditions;
  const realistic = conditions.realism.realistic;
  if (existing !== undefined) {
    const attributes = attributesOf(existing);
    if (realistic) refuseWhileDeleting(existing, 'createOrUpdate');
    if (realistic) refuseImmutableChanges(attributes, objectAt(objectAt(body.properties).osProfile));
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
  if (realistic) checkSshKeys(keys, conditions.knobs.rsaKeysOnly === true);
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
    if (conditions.inUseBy(id) !== undefined) throw nicReserved();
    return nic;
  });
  const availabilitySetId = objectAt(properties.availabilitySet).id;
  if (typeof availabilitySetId === 'string' && backend.context.store.getResource(AZURE, 'availabilitySets', availabilitySetId.toLowerCase()) === undefined) {
    throw new ApiError(404, 'NotFound', `Availability set ${availabilitySetId} was not found.`);
  }
  const skuKnob = conditions.knobs.skuNotAvailable;
  if (realistic && skuKnob !== undefined && (skuKnob.sizes === undefined || skuKnob.sizes.includes(vmSize)) && consume(skuKnob, name)) {
    throw new AzureApiError(
      409,
      'SkuNotAvailable',
      `The requested size for resource '${target.armId}' is currently not available in location '${location}' zones '${(Array.isArray(body.zones) ? body.zones : []).join(',')}' for subscription '${target.subscriptionId}'. Please try another size or deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details.`,
    );
  }
  const coresPerVm = conditions.knobs.coresPerVm ?? 2;
  const limit = Math.min(backend.vmLimit * coresPerVm, realistic ? (conditions.knobs.regionalCores ?? 350) : Number.POSITIVE_INFINITY);
  const usage = backend.vms().filter((vm) => !attributesOf(vm).deallocated).length * coresPerVm;
  if (usage + coresPerVm > limit) {
    throw new ApiError(
      409,
      'OperationNotAllowed',
      `Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Additional details - Deployment Model: Resource Manager, Location: ${location}, Current Limit: ${limit}, Current Usage: ${usage}, Additional Required: ${coresPerVm}, (Minimum) New Limit Required: ${usage + coresPerVm}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView by specifying parameters listed in the ‘Details’ section for deployment to succeed.`,
    );
  }
  const allocation = conditions.knobs.allocationFailure;
  const allocationFails = realistic && allocation !== undefined && (allocation.operations ?? ['create']).includes('create') && consume(allocation, name);

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
  const { instance, running: launched } = backend.context.lifecycle.launch({
    provider: AZURE,
    kind: 'virtualMachine',
    id: target.armId.toLowerCase(),
    name,
    authorizedKeys: keys,
    attributes: attributes as unknown as Record<string, unknown>,
    ...(typeof customData === 'string' ? { userData: Buffer.from(customData, 'base64').toString('utf8') } : {}),
    ...(allocationFails ? { faults: ['neverRuns' as const] } : {}),
  });
  const live = attributesOf(instance);
  live.provisioning = 'creating';
  // AllocationFailed arrives only in the poll; the VM stays, `Failed`, and its NIC is reserved.
  const running = allocationFails ? failAllocation(backend, instance) : launched;
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
  const operation = backend.startOperation(
    location,
    target.subscriptionId,
    'Microsoft.Compute',
    running,
    allocationFails ? allocationFailed(allocation?.code) : { code: 'OSProvisioningInternalError', message: `OS Provisioning failed for VM '${name}'.` },
    { vmId: target.armId },
  );
  return json(201, virtualMachineJson(instance), { 'azure-asyncoperation': operation });
}

/** The error of an allocation that failed (capacity, not quota). */
function allocationFailed(code: 'AllocationFailed' | 'ZonalAllocationFailed' = 'AllocationFailed'): { code: string; message: string } {
  return {
    code,
    message:
      'Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance',
  };
}

/** A create whose allocation fails: after the boot time the VM is `Failed`, deallocated, and its NICs reserved for `nicReservationMs`. */
async function failAllocation(backend: AzureBackend, instance: SimInstance): Promise<boolean> {
  await new Promise((resolve) => setTimeout(resolve, backend.context.lifecycle.delays.pendingMs).unref());
  const attributes = attributesOf(instance);
  if (attributes.provisioning !== 'creating') return false;
  attributes.provisioning = 'failed';
  attributes.deallocated = true;
  void backend.context.lifecycle.stop(instance, { force: true });
  for (const nicId of attributes.nicIds) backend.conditions.holdInUse(nicId, backend.conditions.scaled('nicReservationMs'), attributes.armId);
  return false;
}

/** `OperationNotAllowed` for anything but a delete on a VM being deleted. */
function refuseWhileDeleting(vm: SimInstance, operation: string): void {
  if (attributesOf(vm).provisioning === 'deleting') {
    throw new ApiError(
      409,
      'OperationNotAllowed',
      `Operation '${operation}' is not allowed on VM '${vm.name}' since the VM is marked for deletion. You can only retry the Delete operation (or wait for an ongoing one to complete).`,
    );
  }
}

/** A re-PUT is an update: the OS profile's user and computer name cannot change. */
function refuseImmutableChanges(attributes: VirtualMachineAttributes, osProfile: Record<string, unknown>): void {
  const before = objectAt(attributes.properties.osProfile);
  for (const field of ['adminUsername', 'computerName']) {
    if (osProfile[field] !== undefined && before[field] !== undefined && osProfile[field] !== before[field]) {
      throw new AzureApiError(409, 'PropertyChangeNotAllowed', `Changing property 'osProfile.${field}' is not allowed.`, { target: `osProfile.${field}` });
    }
  }
}

/** GET …/virtualMachines/{name} (`$expand=instanceView` adds the statuses). */
export function getVirtualMachine(backend: AzureBackend, target: ArmTarget, request: SimRequest): SimResponse {
  const vm = requireVm(backend, target);
  const body = virtualMachineJson(vm);
  if (request.url.searchParams.get('$expand') === 'instanceView') {
    body.properties = { ...objectAt(body.properties), instanceView: { statuses: instanceStatuses(vm, backend.conditions.scaled('powerStateLagMs')) } };
  }
  return json(200, body);
}

/** GET …/virtualMachines/{name}/instanceView. */
export function getInstanceView(backend: AzureBackend, target: ArmTarget): SimResponse {
  const vm = requireVm(backend, target);
  return json(200, { computerName: vm.name, osName: 'ubuntu', osVersion: '24.04', statuses: instanceStatuses(vm, backend.conditions.scaled('powerStateLagMs')) });
}

/** GET /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines (`statusOnly=true` adds statuses). */
export function listAllVirtualMachines(backend: AzureBackend, subscriptionId: string, request: SimRequest): SimResponse {
  const statusOnly = request.url.searchParams.get('statusOnly') === 'true';
  const value = backend
    .vms()
    .filter((vm) => attributesOf(vm).subscriptionId.toLowerCase() === subscriptionId.toLowerCase())
    .map((vm) => {
      const body = virtualMachineJson(vm);
      return statusOnly ? { ...body, properties: { ...objectAt(body.properties), instanceView: { statuses: instanceStatuses(vm, backend.conditions.scaled('powerStateLagMs')) } } } : body;
    });
  return json(200, { value });
}

/** POST …/{powerOff|deallocate|start|restart}: 202 with an async operation that ends with the transition. */
export function virtualMachineAction(backend: AzureBackend, target: ArmTarget, action: string, request: SimRequest): SimResponse {
  const vm = requireVm(backend, target);
  const attributes = attributesOf(vm);
  const lifecycle = backend.context.lifecycle;
  const conditions = backend.conditions;
  if (conditions.realism.realistic) refuseWhileDeleting(vm, action === 'poweroff' ? 'powerOff' : action);
  let done: Promise<boolean>;
  let failure: { code: string; message: string } | undefined;
  switch (action) {
    case 'poweroff':
      done = lifecycle.stop(vm, { force: request.url.searchParams.get('skipShutdown') === 'true' });
      break;
    case 'deallocate':
      attributes.deallocated = true;
      // A deallocated VM gives up its Dynamic public IP: the next start gets another one.
      if (conditions.realism.realistic && hasDynamicPublicIp(backend, attributes)) mutableFaults(vm).add('ipChangesOnStart');
      done = lifecycle.stop(vm);
      break;
    case 'start': {
      const allocation = conditions.knobs.allocationFailure;
      if (conditions.realism.realistic && attributes.deallocated && allocation?.operations?.includes('start') === true && consume(allocation, vm.name)) {
        failure = allocationFailed(allocation.code);
        done = new Promise((resolve) => setTimeout(() => resolve(false), lifecycle.delays.pendingMs).unref());
        break;
      }
      attributes.deallocated = false;
      done = lifecycle.start(vm).then((reached) => {
        if (conditions.realism.realistic && hasDynamicPublicIp(backend, attributes)) mutableFaults(vm).delete('ipChangesOnStart');
        return reached;
      });
      break;
    }
    case 'restart':
      if (vm.state !== 'running') {
        throw new ApiError(409, 'OperationNotAllowed', `Operation 'restart' is not allowed on VM '${vm.name}' since the VM is ${attributes.deallocated ? 'deallocated' : 'not running'}.`);
      }
      done = lifecycle.reboot(vm);
      break;
    default:
      throw new ApiError(404, 'NotFound', `No route for action ${action}.`);
  }
  const operation = backend.startOperation(attributes.location, target.subscriptionId, 'Microsoft.Compute', done, failure, { vmId: target.armId });
  return { status: 202, headers: { 'azure-asyncoperation': operation } };
}

/** The instance's fault set: the lifecycle makes it a Set; read-only to tests, this front end toggles the address change per deallocation. */
function mutableFaults(vm: SimInstance): Set<InstanceFaultKind> {
  return vm.faults as Set<InstanceFaultKind>;
}

function hasDynamicPublicIp(backend: AzureBackend, attributes: VirtualMachineAttributes): boolean {
  const configs = new Set(
    attributes.nicIds.flatMap((nicId) => {
      const nic = backend.context.store.getResource(AZURE, 'networkInterfaces', nicId.toLowerCase());
      return nic === undefined ? [] : idsAt(armAttributes(nic).properties.ipConfigurations).map((id) => id.toLowerCase());
    }),
  );
  return backend.resources('publicIPAddresses').some((publicIp) => {
    const properties = armAttributes(publicIp).properties;
    return properties.publicIPAllocationMethod === 'Dynamic' && configs.has(String(objectAt(properties.ipConfiguration).id ?? '').toLowerCase());
  });
}

/** DELETE …/virtualMachines/{name}: the instance terminates; its NIC and OS disk stay, detached (ARM's default delete options). */
export function deleteVirtualMachine(backend: AzureBackend, target: ArmTarget): SimResponse {
  const vm = backend.vm(target.armId);
  if (vm === undefined) return { status: 204 };
  const attributes = attributesOf(vm);
  attributes.provisioning = 'deleting';
  // The VM reads `Deleting` (its NIC still attached) for `vmDeleteMs` before it is gone (realistic profile).
  const deleteMs = backend.conditions.scaled('vmDeleteMs');
  const deleting = deleteMs <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, deleteMs).unref());
  const done = deleting.then(() => backend.context.lifecycle.terminate(vm)).then((reached) => {
    for (const nicId of attributes.nicIds) {
      const nic = backend.context.store.getResource(AZURE, 'networkInterfaces', nicId.toLowerCase());
      if (nic !== undefined) delete armAttributes(nic).properties.virtualMachine;
      // Knob: the NIC stays reserved after a plain delete too (rancher/machine#359 met it there).
      if (backend.conditions.knobs.nicReservedAfterDelete === true) backend.conditions.holdInUse(nicId, backend.conditions.scaled('nicReservationMs'), attributes.armId);
    }
    const disk = backend.context.store.getResource(AZURE, 'disks', attributes.osDiskId.toLowerCase());
    // `storageProfile.osDisk.deleteOption: Delete` deletes the OS disk with the VM (the default keeps it).
    if (disk !== undefined && objectAt(objectAt(attributes.properties.storageProfile).osDisk).deleteOption === 'Delete') {
      backend.context.store.deleteResource(AZURE, 'disks', disk.id);
    } else if (disk !== undefined) {
      delete armAttributes(disk).properties.managedBy;
      armAttributes(disk).properties.diskState = 'Unattached';
    }
    return reached;
  });
  const operation = backend.startOperation(attributes.location, target.subscriptionId, 'Microsoft.Compute', done, undefined, { vmId: target.armId });
  return { status: 202, headers: { 'azure-asyncoperation': operation } };
}
