import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import { ApiError, type ProviderDefinition, type ProviderFrontEnd, type Route, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';
import { AZURE, AzureBackend, type AzureSimOptions, json, RESOURCE_TYPES, type ResourceTypeKey } from './azure-backend.ts';
import { canonicalNamespace, type RequestFacts } from './azure-conditions.ts';
import { AzureApiError } from './azure-errors.ts';
import { type ArmTarget, deleteResource, getResource, listGroupResources, listSubscriptionResources, putResource } from './azure-resources.ts';
import {
  deleteVirtualMachine,
  getInstanceView,
  getVirtualMachine,
  listAllVirtualMachines,
  putVirtualMachine,
  virtualMachineAction,
} from './azure-virtual-machines.ts';

export type { AzureSimOptions } from './azure-backend.ts';
export { AZURE_REALISTIC_DEFAULTS, type AzureRealism, COMPUTE_BUCKETS } from './azure-realism.ts';
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
      route: (request) => guardedRoute(backend, request),
      authenticate(request: SimRequest) {
        const header = request.headers.authorization ?? '';
        const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
        if (token === undefined) return new ApiError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
        if (token.startsWith(backend.invalidTokenPrefix)) return new ApiError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
        return undefined;
      },
      faultError: (kind) => azureFaultError(kind),
      throttleResponse: (throttle, request) => azureThrottle(throttle, request),
      renderError: (error, request) => {
        const extra = error instanceof AzureApiError ? error : undefined;
        return {
          status: error.status,
          headers: {
            'x-ms-error-code': error.code,
            ...(error.status === 401 ? { 'www-authenticate': 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token"' } : {}),
            ...extra?.headers,
          },
          body: {
            error: {
              code: error.code,
              message: error.message,
              ...(extra?.target === undefined ? {} : { target: extra.target }),
              ...(extra?.details === undefined ? {} : { details: extra.details }),
            },
          },
          ...(request.method === 'HEAD' ? { body: undefined } : {}),
        };
      },
      decorate(response: SimResponse, request: SimRequest) {
        response.headers = {
          'x-ms-request-id': request.requestId,
          'x-ms-correlation-request-id': request.requestId,
          'x-ms-routing-request-id': `WESTUS2:${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}Z:${request.requestId}`,
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

/**
 * A throttled call: for Compute (CRP) the 429 whose top-level code is `OperationNotAllowed` with a
 * `TooManyRequests` detail and `x-ms-ratelimit-remaining-resource`; for the rest ARM's 429
 * `TooManyRequests`. Both carry `Retry-After` (seconds, as given: 1200 is CRP's documented example).
 */
export function azureThrottle(throttle: Required<ThrottleSpec>, request: SimRequest): SimResponse {
  const write = request.method !== 'GET' && request.method !== 'HEAD';
  if (/\/providers\/microsoft\.compute\//i.test(request.url.pathname)) {
    const bucket = write ? 'PutVM30Min' : 'HighCostGet30Min';
    return {
      status: 429,
      headers: {
        'retry-after': String(throttle.retryAfterSeconds),
        'x-ms-ratelimit-remaining-resource': `Microsoft.Compute/${write ? 'PutVM3Min' : 'HighCostGet3Min'};0,Microsoft.Compute/${bucket};0`,
        'x-ms-error-code': 'OperationNotAllowed',
      },
      body: {
        error: {
          code: 'OperationNotAllowed',
          message: 'The server rejected the request because too many requests have been received for this subscription.',
          details: [{ code: 'TooManyRequests', target: bucket, message: JSON.stringify({ operationGroup: bucket, allowedRequestCount: 0, measuredRequestCount: 1 }) }],
        },
      },
    };
  }
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

/**
 * The route of a request, behind the realistic profile's checks: a missing `api-version`, an
 * unregistered resource provider, a role assignment still propagating, and the throttling buckets
 * (whose remaining counts go out as `x-ms-ratelimit-remaining-*` headers).
 */
function guardedRoute(backend: AzureBackend, request: SimRequest): Route | undefined {
  const route = matchAzureRoute(backend, request);
  if (route === undefined) return undefined;
  return {
    operation: route.operation,
    handle: async () => {
      const conditions = backend.conditions;
      if (conditions.realism.realistic && !request.url.searchParams.has('api-version')) {
        throw new AzureApiError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      }
      const facts = requestFacts(backend, request);
      const headers = facts === undefined ? {} : conditions.check(request, facts);
      const response = await route.handle();
      response.headers = { ...headers, ...response.headers };
      return response;
    },
  };
}

/** The namespace, RBAC action, scope and throttling bucket of a request, read off its path. */
function requestFacts(backend: AzureBackend, request: SimRequest): RequestFacts | undefined {
  const parts = request.url.pathname.split('/').filter((part) => part !== '').map((part) => decodeURIComponent(part));
  const lower = parts.map((part) => part.toLowerCase());
  const method = request.method.toUpperCase();
  const write = method !== 'GET' && method !== 'HEAD';
  const subscription = `/subscriptions/${parts[1] ?? ''}`;
  if (lower[2] === 'providers') {
    const namespace = parts[3] ?? '';
    if (lower[4] === 'locations') {
      const vmId = backend.operations.get(parts[7] ?? '')?.vmId;
      return {
        namespace,
        action: `${namespace}/locations/operations/read`,
        scope: subscription,
        write: false,
        ...(vmId === undefined ? {} : { computeBucket: { bucket: 'GetOperation3Min', vmId } }),
      };
    }
    if (parts.length <= 5) return { action: `${canonicalNamespace(namespace)}/register/action`, scope: subscription, write };
    return { namespace, action: `${namespace}/${parts[4] ?? ''}/read`, scope: subscription, write };
  }
  const verb = method === 'POST' ? `${parts[8] ?? ''}/action` : method === 'DELETE' ? 'delete' : method === 'PUT' ? 'write' : 'read';
  if (parts.length <= 5 || lower[4] !== 'providers') return { action: `Microsoft.Resources/subscriptions/resourceGroups/${verb}`, scope: `/${parts.slice(0, 4).join('/')}`, write };
  const namespace = parts[5] ?? '';
  const type = parts[6] ?? '';
  const scope = `/${parts.slice(0, 8).join('/')}`;
  const facts: RequestFacts = { namespace, action: `${namespace}/${type}${lower[8] === 'subnets' ? '/subnets' : ''}/${verb}`, scope, write };
  if (lower[5] === 'microsoft.compute' && lower[6] === 'virtualmachines') {
    const action = lower[8];
    const bucket = !write ? 'GetVM3Min' : method === 'DELETE' || action === 'deallocate' ? 'DeleteVM3Min' : 'PutVM3Min';
    facts.computeBucket = { bucket, vmId: scope };
  }
  return facts;
}

/** Matches a request against the ARM paths the front end serves. */
export function matchAzureRoute(backend: AzureBackend, request: SimRequest): Route | undefined {
  const parts = request.url.pathname.split('/').filter((part) => part !== '').map((part) => decodeURIComponent(part));
  const lower = parts.map((part) => part.toLowerCase());
  if (lower[0] !== 'subscriptions' || parts[1] === undefined) return undefined;
  const subscriptionId = parts[1];
  const method = request.method.toUpperCase();

  // /subscriptions/{s}/providers/{ns}[/register]: resource provider registration.
  if (lower[2] === 'providers' && parts[3] !== undefined && parts.length === 4 && method === 'GET') {
    const namespace = canonicalNamespace(parts[3]);
    return { operation: 'providers.get', handle: () => json(200, providerJson(backend, subscriptionId, namespace)) };
  }
  if (lower[2] === 'providers' && parts[3] !== undefined && parts.length === 5 && lower[4] === 'register' && method === 'POST') {
    const namespace = canonicalNamespace(parts[3]);
    return {
      operation: 'providers.register',
      handle: () => {
        backend.conditions.register(namespace);
        return json(200, providerJson(backend, subscriptionId, namespace));
      },
    };
  }
  // /subscriptions/{s}/providers/{ns}/locations/{loc}/operations/{id}
  if (lower[2] === 'providers' && lower[4] === 'locations' && lower[6] === 'operations' && parts[7] !== undefined && parts.length === 8 && method === 'GET') {
    const id = parts[7];
    return {
      operation: 'operations.get',
      handle: () => {
        const operation = backend.operations.get(id);
        if (operation === undefined) throw new ApiError(404, 'NotFound', `Operation ${id} was not found.`);
        const { vmId: _vmId, ...body } = operation;
        return json(200, { name: operation.id, ...body });
      },
    };
  }
  // /subscriptions/{s}/providers/Microsoft.Compute/virtualMachines
  if (lower[2] === 'providers' && lower[3] === 'microsoft.compute' && lower[4] === 'virtualmachines' && parts.length === 5 && method === 'GET') {
    return { operation: 'virtualMachines.listAll', handle: () => listAllVirtualMachines(backend, subscriptionId, request) };
  }
  // /subscriptions/{s}/providers/Microsoft.Network/{publicIPAddresses|networkInterfaces}: every one of the subscription.
  if (lower[2] === 'providers' && lower[3] === 'microsoft.network' && parts.length === 5 && method === 'GET') {
    const typeKey = `microsoft.network/${lower[4] ?? ''}`;
    if (typeKey === 'microsoft.network/publicipaddresses' || typeKey === 'microsoft.network/networkinterfaces') {
      return { operation: `${RESOURCE_TYPES[typeKey].group}.listAll`, handle: () => listSubscriptionResources(backend, subscriptionId, typeKey) };
    }
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

/** A resource provider as `providers.get` answers it. */
function providerJson(backend: AzureBackend, subscriptionId: string, namespace: string): Record<string, unknown> {
  return {
    id: `/subscriptions/${subscriptionId}/providers/${namespace}`,
    namespace,
    registrationState: backend.conditions.registrationState(namespace),
    registrationPolicy: 'RegistrationRequired',
  };
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
