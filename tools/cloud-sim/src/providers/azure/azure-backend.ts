import { ApiError, type ProviderContext, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import { realismOf } from '../../core/realism.ts';
import type { SimInstance, SimResource } from '../../core/store.ts';
import { AzureConditions } from './azure-conditions.ts';
import type { AzureRealism } from './azure-realism.ts';

/** Provider name in the store, the request log and fault rules. */
export const AZURE = 'azure';

/** Options of the Azure front end (`startSim({ providerOptions: { azure: {...} } })`). */
export interface AzureSimOptions extends AzureRealism {
  /** VMs the subscription may run at once; creates beyond it get ARM's quota error (default 1000). */
  vmLimit?: number;
  /** Bearer tokens starting with this prefix get 401 `InvalidAuthenticationToken` (default `invalid`). */
  invalidTokenPrefix?: string;
}

/** The resource types the front end serves, by lower-case `namespace/type[/childType]`. */
export const RESOURCE_TYPES = {
  'microsoft.resources/resourcegroups': { type: 'Microsoft.Resources/resourceGroups', group: 'resourceGroups' },
  'microsoft.compute/availabilitysets': { type: 'Microsoft.Compute/availabilitySets', group: 'availabilitySets' },
  'microsoft.compute/disks': { type: 'Microsoft.Compute/disks', group: 'disks' },
  'microsoft.compute/virtualmachines': { type: 'Microsoft.Compute/virtualMachines', group: 'virtualMachines' },
  'microsoft.network/networksecuritygroups': { type: 'Microsoft.Network/networkSecurityGroups', group: 'networkSecurityGroups' },
  'microsoft.network/virtualnetworks': { type: 'Microsoft.Network/virtualNetworks', group: 'virtualNetworks' },
  'microsoft.network/virtualnetworks/subnets': { type: 'Microsoft.Network/virtualNetworks/subnets', group: 'subnets' },
  'microsoft.network/publicipaddresses': { type: 'Microsoft.Network/publicIPAddresses', group: 'publicIPAddresses' },
  'microsoft.network/networkinterfaces': { type: 'Microsoft.Network/networkInterfaces', group: 'networkInterfaces' },
} as const;

/** A served resource type key. */
export type ResourceTypeKey = keyof typeof RESOURCE_TYPES;

/** What an ARM resource keeps in `SimResource.attributes` (the store kind is its `group`). */
export interface ArmAttributes {
  /** The ARM ID with the casing of its first PUT. */
  armId: string;
  type: string;
  subscriptionId: string;
  /** Lower-case resource group name. */
  resourceGroup: string;
  location?: string;
  tags?: Record<string, string>;
  sku?: unknown;
  zones?: string[];
  properties: Record<string, unknown>;
}

/** A long-running operation, polled at its `Azure-AsyncOperation` URL. */
export interface AsyncOperation {
  id: string;
  status: 'InProgress' | 'Succeeded' | 'Failed' | 'Canceled';
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string; details?: { code: string; message: string; target?: string }[] };
  /** The VM it acts on (its status polls count against that VM's `GetOperation3Min` bucket). */
  vmId?: string;
}

/** Shared state and helpers of one Azure front end. */
export class AzureBackend {
  readonly context: ProviderContext;
  readonly vmLimit: number;
  readonly invalidTokenPrefix: string;
  readonly operations = new Map<string, AsyncOperation>();
  /** The realistic profile's windows, buckets and locks. */
  readonly conditions: AzureConditions;

  constructor(context: ProviderContext, options: AzureSimOptions = {}) {
    this.context = context;
    this.conditions = new AzureConditions(realismOf(context.realism, options), options);
    this.vmLimit = options.vmLimit ?? 1000;
    this.invalidTokenPrefix = options.invalidTokenPrefix ?? 'invalid';
    // A public IP resource follows its VM's address when it changes (the ipChangesOnStart fault).
    context.lifecycle.onAddressChange((instance, previousIp) => {
      if (instance.provider !== AZURE) return;
      for (const publicIp of this.resources('publicIPAddresses')) {
        const properties = (publicIp.attributes as { properties?: Record<string, unknown> }).properties;
        if (properties !== undefined && properties.ipAddress === previousIp) properties.ipAddress = instance.publicIp;
      }
    });
  }

  /** A stored ARM resource by ID (case-insensitive). */
  resource(id: string): SimResource | undefined {
    const key = id.toLowerCase();
    for (const type of Object.values(RESOURCE_TYPES)) {
      if (type.group === 'virtualMachines') continue;
      const found = this.context.store.getResource(AZURE, type.group, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** A live VM by ID (case-insensitive). */
  vm(id: string): SimInstance | undefined {
    const instance = this.context.store.getInstance(AZURE, id.toLowerCase());
    return instance === undefined || instance.state === 'terminated' ? undefined : instance;
  }

  /** Every stored resource of a group. */
  resources(group: string): SimResource[] {
    return this.context.store.listResources(AZURE, group);
  }

  /** Live VMs. */
  vms(): SimInstance[] {
    return this.context.store.listInstances(AZURE);
  }

  /**
   * Starts an async operation that settles with `done` (true: Succeeded; false: Failed with
   * `failure`), no sooner than `minMs` from now (the realistic profile's operation durations).
   */
  startOperation(
    location: string,
    subscriptionId: string,
    namespace: string,
    done: Promise<boolean>,
    failure?: { code: string; message: string },
    options: { minMs?: number; vmId?: string } = {},
  ): string {
    const id = this.context.ids.uuid();
    const operation: AsyncOperation = { id, status: 'InProgress', startTime: new Date().toISOString(), ...(options.vmId === undefined ? {} : { vmId: options.vmId }) };
    this.operations.set(id, operation);
    const minMs = options.minMs ?? 0;
    const settled = minMs <= 0 ? done : Promise.all([done, new Promise((resolve) => setTimeout(resolve, minMs).unref())]).then(([reached]) => reached);
    settled.then(
      (reached) => {
        operation.status = reached ? 'Succeeded' : 'Failed';
        operation.endTime = new Date().toISOString();
        if (!reached) operation.error = failure ?? { code: 'OperationPreempted', message: 'The operation was preempted by a later operation.' };
      },
      (error: unknown) => {
        operation.status = 'Failed';
        operation.endTime = new Date().toISOString();
        operation.error = { code: 'InternalOperationError', message: error instanceof Error ? error.message : String(error) };
      },
    );
    return this.operationUrl(location, subscriptionId, namespace, id);
  }

  /** The location-scoped URL of an operation (not under the resource's path, as ARM's are). */
  operationUrl(location: string, subscriptionId: string, namespace: string, id: string): string {
    return `${this.context.endpoint()}/subscriptions/${subscriptionId}/providers/${namespace}/locations/${location || 'global'}/operations/${id}?api-version=2024-07-01`;
  }
}

/** The request's JSON body as an object (`{}` when empty); 400 when it is not JSON. */
export function jsonBody(request: SimRequest): Record<string, unknown> {
  if (request.body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(request.body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch {
    throw new ApiError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
  }
}

/** A plain object property, or `{}`. */
export function objectAt(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** `{ id }` references in a list. */
export function idsAt(value: unknown): string[] {
  return Array.isArray(value) ? value.map((item) => objectAt(item).id).filter((id): id is string => typeof id === 'string') : [];
}

/** ARM's 404 for a resource. */
export function resourceNotFound(type: string, name: string, resourceGroup: string): ApiError {
  return new ApiError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
}

/** ARM's 404 for a resource group. */
export function resourceGroupNotFound(name: string): ApiError {
  return new ApiError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
}

/** The ARM JSON of a stored resource. */
export function resourceJson(resource: SimResource, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const attributes = resource.attributes as unknown as ArmAttributes;
  return {
    id: attributes.armId,
    name: resource.name,
    type: attributes.type,
    ...(attributes.location === undefined ? {} : { location: attributes.location }),
    ...(attributes.tags === undefined ? {} : { tags: attributes.tags }),
    ...(attributes.sku === undefined ? {} : { sku: attributes.sku }),
    ...(attributes.zones === undefined ? {} : { zones: attributes.zones }),
    properties: { ...attributes.properties, ...extra },
  };
}

/** The attributes of a stored ARM resource. */
export function armAttributes(resource: SimResource): ArmAttributes {
  return resource.attributes as unknown as ArmAttributes;
}

/** A JSON answer. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): SimResponse {
  return { status, body, headers };
}
