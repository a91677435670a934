import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import { ApiError, type ProviderDefinition, type ProviderFrontEnd, type Route, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import { AZURE, AzureBackend, type AzureSimOptions, json, RESOURCE_TYPES, type ResourceTypeKey } from './azure-backend.ts';
import { type ArmTarget, deleteResource, getResource, listGroupResources, putResource } from './azure-resources.ts';
import {
  deleteVirtualMachine,
  getInstanceView,
  getVirtualMachine,
  listAllVirtualMachines,
  putVirtualMachine,
  virtualMachineAction,
} from './azure-virtual-machines.ts';

export type { AzureSimOptions } from './azure-backend.ts';
export type { VirtualMachineAttributes } from './azure-virtual-machines.ts';

/** The subscription `env()` hands out (any UUID works). */
export const SIM_AZURE_SUBSCRIPTION_ID = '00000000-0000-4000-8000-00000000a2e0';

const vmActions = new Set(['poweroff', 'deallocate', 'start', 'restart']);

/**
 * The Azure Resource Manager front end: resource groups, availability sets, managed disks, VMs
 * (instance view and power actions), network security groups, virtual networks and subnets,
 * public IPs and NICs, in ARM's JSON (`properties` envelopes, case-insensitive paths), with
 * long-running operations reported through `Azure-AsyncOperation` (no `Retry-After`, so SDK pollers
 * run at their own interval), ARM error bodies and `x-ms-request-id` headers.
 */
export const azureProvider: ProviderDefinition<AzureSimOptions> = {
  name: AZURE,
  create(context, options): ProviderFrontEnd {
    const backend = new AzureBackend(context, options);
    return {
      name: AZURE,
      route: (request) => matchAzureRoute(backend, request),
      authenticate(request: SimRequest) {
        const header = request.headers.authorization ?? '';
        const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
        if (token === undefined) return new ApiError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
        if (token.startsWith(backend.invalidTokenPrefix)) return new ApiError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
        return undefined;
      },
      faultError: (kind) => azureFaultError(kind),
      throttleResponse: (throttle, request) => azureThrottle(throttle, request),
      renderError: (error, request) => ({
        status: error.status,
        headers: { 'x-ms-error-code': error.code, ...(error.status === 401 ? { 'www-authenticate': 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token"' } : {}) },
        body: { error: { code: error.code, message: error.message } },
        ...(request.method === 'HEAD' ? { body: undefined } : {}),
      }),
      decorate(response: SimResponse, request: SimRequest) {
        response.headers = {
          'x-ms-request-id': request.requestId,
          'x-ms-correlation-request-id': request.requestId,
          ...response.headers,
        };
      },
      env: (endpoint) => ({ AZURE_RESOURCE_MANAGER_ENDPOINT: endpoint, AZURE_SUBSCRIPTION_ID: SIM_AZURE_SUBSCRIPTION_ID }),
    };
  },
};

/** ARM's error for an injected fault kind. */
export function azureFaultError(kind: FaultErrorKind): ApiError {
  switch (kind) {
    case 'auth':
      return new ApiError(403, 'AuthorizationFailed', 'The client does not have authorization to perform this action over the scope, or the scope is invalid.');
    case 'quota':
      return new ApiError(409, 'OperationNotAllowed', 'Operation could not be completed as it results in exceeding approved standardBSFamily Cores quota.');
    case 'not_found':
      return new ApiError(404, 'ResourceNotFound', 'The resource was not found.');
    case 'server':
      return new ApiError(500, 'InternalServerError', 'Encountered internal server error. Please try again.');
    case 'unavailable':
      return new ApiError(503, 'ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.');
  }
}

/** ARM's 429 with `Retry-After` and the remaining-requests header. */
export function azureThrottle(throttle: Required<ThrottleSpec>, request: SimRequest): SimResponse {
  const write = request.method !== 'GET' && request.method !== 'HEAD';
  return {
    status: 429,
    headers: {
      'retry-after': String(throttle.retryAfterSeconds),
      [`x-ms-ratelimit-remaining-subscription-${write ? 'writes' : 'reads'}`]: '0',
      'x-ms-error-code': 'TooManyRequests',
    },
    body: { error: { code: 'TooManyRequests', message: 'The request is being throttled as the limit has been reached for operation type.' } },
  };
}

/** Matches a request against the ARM paths the front end serves. */
export function matchAzureRoute(backend: AzureBackend, request: SimRequest): Route | undefined {
  const parts = request.url.pathname.split('/').filter((part) => part !== '').map((part) => decodeURIComponent(part));
  const lower = parts.map((part) => part.toLowerCase());
  if (lower[0] !== 'subscriptions' || parts[1] === undefined) return undefined;
  const subscriptionId = parts[1];
  const method = request.method.toUpperCase();

  // /subscriptions/{s}/providers/{ns}/locations/{loc}/operations/{id}
  if (lower[2] === 'providers' && lower[4] === 'locations' && lower[6] === 'operations' && parts[7] !== undefined && parts.length === 8 && method === 'GET') {
    const id = parts[7];
    return {
      operation: 'operations.get',
      handle: () => {
        const operation = backend.operations.get(id);
        if (operation === undefined) throw new ApiError(404, 'NotFound', `Operation ${id} was not found.`);
        return json(200, { name: operation.id, ...operation });
      },
    };
  }
  // /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines
  if (lower[2] === 'providers' && lower[3] === 'microsoft.compute' && lower[4] === 'virtualmachines' && parts.length === 5 && method === 'GET') {
    return { operation: 'virtualMachines.listAll', handle: () => listAllVirtualMachines(backend, subscriptionId, request) };
  }
  if (lower[2] !== 'resourcegroups' || parts[3] === undefined) return undefined;
  const resourceGroup = parts[3];
  const groupId = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;

  if (parts.length === 4) {
    const target: ArmTarget = { subscriptionId, resourceGroup, typeKey: 'microsoft.resources/resourcegroups', names: [], armId: groupId };
    return resourceRoute(backend, target, method, request);
  }
  if (parts.length === 5 && lower[4] === 'resources' && method === 'GET') {
    return { operation: 'resources.listByResourceGroup', handle: () => listGroupResources(backend, subscriptionId, resourceGroup, request) };
  }
  if (lower[4] !== 'providers' || parts.length < 8) return undefined;
  const namespace = parts[5] ?? '';
  const type = parts[6] ?? '';
  const name = parts[7] ?? '';
  const baseKey = `${namespace}/${type}`.toLowerCase();

  if (baseKey === 'microsoft.compute/virtualmachines') {
    const target: ArmTarget = { subscriptionId, resourceGroup, typeKey: baseKey, names: [name], armId: `${groupId}/providers/Microsoft.Compute/virtualMachines/${name}` };
    if (parts.length === 8) {
      if (method === 'GET') return { operation: 'virtualMachines.get', handle: () => getVirtualMachine(backend, target, request) };
      if (method === 'PUT') return { operation: 'virtualMachines.createOrUpdate', handle: () => putVirtualMachine(backend, target, request) };
      if (method === 'DELETE') return { operation: 'virtualMachines.delete', handle: () => deleteVirtualMachine(backend, target) };
      return undefined;
    }
    const action = lower[8] ?? '';
    if (parts.length === 9 && action === 'instanceview' && method === 'GET') {
      return { operation: 'virtualMachines.instanceView', handle: () => getInstanceView(backend, target) };
    }
    if (parts.length === 9 && vmActions.has(action) && method === 'POST') {
      const operationName = { poweroff: 'powerOff', deallocate: 'deallocate', start: 'start', restart: 'restart' }[action] ?? action;
      return { operation: `virtualMachines.${operationName}`, handle: () => virtualMachineAction(backend, target, action, request) };
    }
    return undefined;
  }
  if (parts.length === 10 && baseKey === 'microsoft.network/virtualnetworks' && lower[8] === 'subnets') {
    const subnet = parts[9] ?? '';
    const target: ArmTarget = {
      subscriptionId,
      resourceGroup,
      typeKey: 'microsoft.network/virtualnetworks/subnets',
      names: [name, subnet],
      armId: `${groupId}/providers/${RESOURCE_TYPES['microsoft.network/virtualnetworks'].type}/${name}/subnets/${subnet}`,
    };
    return resourceRoute(backend, target, method, request);
  }
  if (parts.length !== 8 || !(baseKey in RESOURCE_TYPES)) return undefined;
  const typeKey = baseKey as ResourceTypeKey;
  const target: ArmTarget = { subscriptionId, resourceGroup, typeKey, names: [name], armId: `${groupId}/providers/${RESOURCE_TYPES[typeKey].type}/${name}` };
  return resourceRoute(backend, target, method, request);
}

function resourceRoute(backend: AzureBackend, target: ArmTarget, method: string, request: SimRequest): Route | undefined {
  const group = RESOURCE_TYPES[target.typeKey].group;
  switch (method) {
    case 'GET':
      return { operation: `${group}.get`, handle: () => getResource(backend, target) };
    case 'HEAD':
      return {
        operation: `${group}.checkExistence`,
        handle: () => {
          getResource(backend, target);
          return { status: 204 };
        },
      };
    case 'PUT':
      return { operation: `${group}.createOrUpdate`, handle: () => putResource(backend, target, request) };
    case 'DELETE':
      return { operation: `${group}.delete`, handle: () => deleteResource(backend, target) };
    default:
      return undefined;
  }
}
