import type { Route, SimRequest } from '../../core/provider-front-end.ts';
import type { GoogleBackend } from './google-backend.ts';
import type { RateQuotaGroup } from './google-realism.ts';
import { deleteFirewall, getAddress, getFirewall, insertFirewall, listFirewalls, patchFirewall } from './google-firewalls.ts';
import {
  aggregatedInstances,
  deleteInstance,
  getInstance,
  insertInstance,
  instanceAction,
  listInstances,
  setInstanceMetadata,
  setInstanceTags,
} from './google-instances.ts';

type Handler = (backend: GoogleBackend, request: SimRequest, params: string[]) => ReturnType<Route['handle']>;

interface RouteDefinition {
  method: string;
  pattern: RegExp;
  operation: string;
  handle: Handler;
}

const P = '^/compute/v1/projects/([^/]+)';
const Z = `${P}/zones/([^/]+)`;

/** The Compute v1 REST paths the simulator answers, with their request-log operation names. */
export const GOOGLE_ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', pattern: new RegExp(`${Z}/instances/([^/]+)$`), operation: 'instances.get', handle: (b, _r, [p, z, n]) => getInstance(b, p!, z!, n!) },
  { method: 'GET', pattern: new RegExp(`${Z}/instances$`), operation: 'instances.list', handle: (b, r, [p, z]) => listInstances(b, r, p!, z!) },
  { method: 'POST', pattern: new RegExp(`${Z}/instances$`), operation: 'instances.insert', handle: (b, r, [p, z]) => insertInstance(b, r, p!, z!) },
  { method: 'DELETE', pattern: new RegExp(`${Z}/instances/([^/]+)$`), operation: 'instances.delete', handle: (b, r, [p, z, n]) => deleteInstance(b, r, p!, z!, n!) },
  { method: 'POST', pattern: new RegExp(`${Z}/instances/([^/]+)/start$`), operation: 'instances.start', handle: (b, r, [p, z, n]) => instanceAction(b, r, p!, z!, n!, 'start') },
  { method: 'POST', pattern: new RegExp(`${Z}/instances/([^/]+)/stop$`), operation: 'instances.stop', handle: (b, r, [p, z, n]) => instanceAction(b, r, p!, z!, n!, 'stop') },
  { method: 'POST', pattern: new RegExp(`${Z}/instances/([^/]+)/reset$`), operation: 'instances.reset', handle: (b, r, [p, z, n]) => instanceAction(b, r, p!, z!, n!, 'reset') },
  { method: 'POST', pattern: new RegExp(`${Z}/instances/([^/]+)/setMetadata$`), operation: 'instances.setMetadata', handle: (b, r, [p, z, n]) => setInstanceMetadata(b, r, p!, z!, n!) },
  { method: 'POST', pattern: new RegExp(`${Z}/instances/([^/]+)/setTags$`), operation: 'instances.setTags', handle: (b, r, [p, z, n]) => setInstanceTags(b, r, p!, z!, n!) },
  { method: 'GET', pattern: new RegExp(`${P}/aggregated/instances$`), operation: 'instances.aggregatedList', handle: (b, _r, [p]) => aggregatedInstances(b, p!) },
  {
    method: 'POST',
    pattern: new RegExp(`${Z}/operations/([^/]+)/wait$`),
    operation: 'zoneOperations.wait',
    handle: async (b, _r, [p, z, o]) => ({ status: 200, body: await b.waitOperation(p!, `zones/${z}`, o!) }),
  },
  {
    method: 'GET',
    pattern: new RegExp(`${Z}/operations/([^/]+)$`),
    operation: 'zoneOperations.get',
    handle: (b, _r, [p, z, o]) => ({ status: 200, body: { ...b.operation(p!, `zones/${z}`, o!).operation } }),
  },
  {
    method: 'POST',
    pattern: new RegExp(`${P}/global/operations/([^/]+)/wait$`),
    operation: 'globalOperations.wait',
    handle: async (b, _r, [p, o]) => ({ status: 200, body: await b.waitOperation(p!, 'global', o!) }),
  },
  {
    method: 'GET',
    pattern: new RegExp(`${P}/global/operations/([^/]+)$`),
    operation: 'globalOperations.get',
    handle: (b, _r, [p, o]) => ({ status: 200, body: { ...b.operation(p!, 'global', o!).operation } }),
  },
  { method: 'GET', pattern: new RegExp(`${P}/global/firewalls/([^/]+)$`), operation: 'firewalls.get', handle: (b, _r, [p, n]) => getFirewall(b, p!, n!) },
  { method: 'GET', pattern: new RegExp(`${P}/global/firewalls$`), operation: 'firewalls.list', handle: (b, _r, [p]) => listFirewalls(b, p!) },
  { method: 'POST', pattern: new RegExp(`${P}/global/firewalls$`), operation: 'firewalls.insert', handle: (b, r, [p]) => insertFirewall(b, r, p!) },
  { method: 'PATCH', pattern: new RegExp(`${P}/global/firewalls/([^/]+)$`), operation: 'firewalls.patch', handle: (b, r, [p, n]) => patchFirewall(b, r, p!, n!) },
  { method: 'DELETE', pattern: new RegExp(`${P}/global/firewalls/([^/]+)$`), operation: 'firewalls.delete', handle: (b, r, [p, n]) => deleteFirewall(b, r, p!, n!) },
  { method: 'GET', pattern: new RegExp(`${P}/regions/([^/]+)/addresses/([^/]+)$`), operation: 'addresses.get', handle: (b, _r, [p, r, n]) => getAddress(b, p!, r!, n!) },
];

/** The per-minute quota group a call counts against: operation polling has its own. */
function quotaGroupOf(definition: RouteDefinition): RateQuotaGroup {
  if (/Operations\.(wait|get)$/.test(definition.operation)) return 'operationRead';
  return definition.method === 'GET' ? 'read' : 'write';
}

/** The route for a request, or undefined (answered 404). */
export function matchGoogleRoute(backend: GoogleBackend, request: SimRequest): Route | undefined {
  for (const definition of GOOGLE_ROUTES) {
    if (definition.method !== request.method) continue;
    const match = definition.pattern.exec(request.url.pathname);
    if (match === null) continue;
    const params = match.slice(1).map((part) => decodeURIComponent(part));
    return {
      operation: definition.operation,
      handle: () => {
        backend.takeRateQuota(quotaGroupOf(definition));
        // A write repeated with the same requestId gets the first call's operation, not a second change.
        const replay = definition.method === 'GET' ? undefined : backend.replayed(request, params[0] ?? '');
        return replay === undefined ? definition.handle(backend, request, params) : { status: 200, body: replay };
      },
    };
  }
  return undefined;
}
