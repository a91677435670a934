import type { google } from '@google-cloud/compute/build/protos/protos.js';
import type { GoogleEndpoint } from './google-flags.ts';
import { meterAuthClient } from './google-rate-budget.ts';

/** Compute Engine v1 message types (type-only; erased at run time). */
export type Compute = typeof google.cloud.compute.v1;
export type ComputeInstance = google.cloud.compute.v1.IInstance;
export type ComputeOperation = google.cloud.compute.v1.IOperation;
export type ComputeFirewall = google.cloud.compute.v1.IFirewall;
export type ComputeMetadata = google.cloud.compute.v1.IMetadata;
export type ComputeAddress = google.cloud.compute.v1.IAddress;

/** What the client library's `insert`/`delete`/… return first: an operation wrapper around the zone or global Operation. */
export interface StartedOperation {
  latestResponse?: unknown;
}

type Reply<T> = Promise<[T, ...unknown[]]>;

/** The part of `InstancesClient` the driver uses. */
export interface InstancesApi {
  /** `options.timeout`: the call's deadline, ms (the client library's CallOptions). */
  get(request: google.cloud.compute.v1.IGetInstanceRequest, options?: { timeout?: number }): Reply<ComputeInstance>;
  insert(request: google.cloud.compute.v1.IInsertInstanceRequest): Reply<StartedOperation>;
  delete(request: google.cloud.compute.v1.IDeleteInstanceRequest): Reply<StartedOperation>;
  start(request: google.cloud.compute.v1.IStartInstanceRequest): Reply<StartedOperation>;
  stop(request: google.cloud.compute.v1.IStopInstanceRequest): Reply<StartedOperation>;
  reset(request: google.cloud.compute.v1.IResetInstanceRequest): Reply<StartedOperation>;
  setMetadata(request: google.cloud.compute.v1.ISetMetadataInstanceRequest): Reply<StartedOperation>;
  setTags(request: google.cloud.compute.v1.ISetTagsInstanceRequest): Reply<StartedOperation>;
  list(request: google.cloud.compute.v1.IListInstancesRequest): Reply<ComputeInstance[]>;
  aggregatedListAsync(
    request: google.cloud.compute.v1.IAggregatedListInstancesRequest,
    options?: { autoPaginate?: boolean },
  ): AsyncIterable<[string, google.cloud.compute.v1.IInstancesScopedList]>;
}

/** The part of `ZoneOperationsClient` the driver uses. */
export interface ZoneOperationsApi {
  wait(request: google.cloud.compute.v1.IWaitZoneOperationRequest): Reply<ComputeOperation>;
}

/** The part of `GlobalOperationsClient` the driver uses. */
export interface GlobalOperationsApi {
  wait(request: google.cloud.compute.v1.IWaitGlobalOperationRequest): Reply<ComputeOperation>;
}

/** The part of `FirewallsClient` the driver uses. */
export interface FirewallsApi {
  get(request: google.cloud.compute.v1.IGetFirewallRequest): Reply<ComputeFirewall>;
  insert(request: google.cloud.compute.v1.IInsertFirewallRequest): Reply<StartedOperation>;
  patch(request: google.cloud.compute.v1.IPatchFirewallRequest): Reply<StartedOperation>;
  delete(request: google.cloud.compute.v1.IDeleteFirewallRequest): Reply<StartedOperation>;
}

/** The part of `AddressesClient` the driver uses. */
export interface AddressesApi {
  get(request: google.cloud.compute.v1.IGetAddressRequest): Reply<ComputeAddress>;
}

/** How the driver retries throttled and transient failures (its own loop; the write calls carry a requestId). */
export interface RetrySettings {
  /** Tries in all, first included (default 5). */
  attempts: number;
  /** First delay, ms (default 1000); doubles each time with full jitter. */
  initialDelayMs: number;
  /** Largest delay, ms (default 20 000). */
  maxDelayMs: number;
  /**
   * How long throttling (403/429 `rateLimitExceeded`) and `resourceNotReady` are retried, ms,
   * whatever `attempts` says (default 120 000): Compute Engine's rate quotas are per minute and
   * refill only at the next minute, operation polling included.
   */
  budgetMs: number;
}

/** The clients the driver needs; tests inject them (mocks, or real clients pointed at the simulator). */
export interface ComputeClients {
  instances: InstancesApi;
  zoneOperations: ZoneOperationsApi;
  globalOperations: GlobalOperationsApi;
  firewalls: FirewallsApi;
  addresses: AddressesApi;
  /** Overrides the retry loop's settings (tests make it fast). */
  retry?: Partial<RetrySettings>;
  /** Operation poll interval override, ms (tests). */
  pollIntervalMs?: number;
}

/** An auth object the client library accepts (`OAuth2Client`, `GoogleAuth`, or anything with these). */
export interface AuthClientLike {
  getRequestHeaders(url?: string): Promise<unknown>;
  fetch?(...args: unknown[]): Promise<unknown>;
}

/** Options for {@link createComputeClients}. */
export interface ComputeClientOptions {
  /** Endpoint override (the simulator). */
  endpoint?: GoogleEndpoint;
  /** Auth object; default Application Default Credentials (or a placeholder token for a loopback http endpoint). */
  authClient?: AuthClientLike;
  /** Project for quota attribution. */
  projectId?: string;
  retry?: Partial<RetrySettings>;
  pollIntervalMs?: number;
}

/**
 * Builds the Compute clients, importing only the five client modules the driver needs (not the
 * package root, which loads ~100 clients: about 1.5 s saved). The first client still parses the
 * library's protos file once. Uses the REST transport.
 */
export async function createComputeClients(options: ComputeClientOptions = {}): Promise<ComputeClients> {
  const [instances, zoneOperations, globalOperations, firewalls, addresses] = await Promise.all([
    import('@google-cloud/compute/build/src/v1/instances_client.js'),
    import('@google-cloud/compute/build/src/v1/zone_operations_client.js'),
    import('@google-cloud/compute/build/src/v1/global_operations_client.js'),
    import('@google-cloud/compute/build/src/v1/firewalls_client.js'),
    import('@google-cloud/compute/build/src/v1/addresses_client.js'),
  ]);
  // Every call the clients make goes through the auth client's transport, metered there (rate budget).
  const authClient = meterAuthClient(options.authClient ?? (await defaultAuthClient(options)));
  const endpoint = options.endpoint;
  const clientOptions = {
    fallback: true,
    clientConfig: withoutLibraryRetries,
    ...(endpoint === undefined ? {} : { apiEndpoint: endpoint.apiEndpoint, port: endpoint.port, protocol: endpoint.protocol }),
    // The library's option type names its own auth classes; any object with getRequestHeaders/fetch works.
    authClient: authClient as never,
    ...(options.projectId === undefined ? {} : { projectId: options.projectId }),
  };
  return {
    instances: new instances.InstancesClient(clientOptions),
    zoneOperations: new zoneOperations.ZoneOperationsClient(clientOptions),
    globalOperations: new globalOperations.GlobalOperationsClient(clientOptions),
    firewalls: new firewalls.FirewallsClient(clientOptions),
    addresses: new addresses.AddressesClient(clientOptions),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  };
}

/**
 * Turns off the client library's own retries (idempotent calls on UNAVAILABLE, for up to 600 s):
 * the driver's loop retries throttling and 5xx itself, with a bound, jitter and one requestId.
 */
const idempotentMethods: Readonly<Record<string, readonly string[]>> = {
  Instances: ['Get', 'List', 'AggregatedList'],
  ZoneOperations: ['Get', 'List'],
  GlobalOperations: ['Get', 'List'],
  Firewalls: ['Get', 'List'],
  Addresses: ['Get', 'List', 'AggregatedList'],
};
const withoutLibraryRetries = {
  interfaces: Object.fromEntries(
    Object.entries(idempotentMethods).map(([service, methods]) => [
      `google.cloud.compute.v1.${service}`,
      { retry_codes: { none: [] }, methods: Object.fromEntries(methods.map((method) => [method, { retry_codes_name: 'none' }])) },
    ]),
  ),
};

/**
 * Default auth. For a plain-http loopback endpoint (the simulator) a placeholder token, so real
 * credentials never travel unencrypted. Otherwise Application Default Credentials through
 * google-auth-library's GoogleAuth, resolved here once: left to the client library, a missing
 * credential rejects one promise per API method and all but the awaited one go unhandled (the
 * process dies), so it is found out before any client exists.
 */
export async function defaultAuthClient(options: Pick<ComputeClientOptions, 'endpoint' | 'projectId'>): Promise<AuthClientLike> {
  const { GoogleAuth, OAuth2Client } = await import('google-auth-library');
  if (options.endpoint?.protocol === 'http') {
    const client = new OAuth2Client();
    client.setCredentials({ access_token: 'simulator-placeholder-token', expiry_date: Date.now() + 365 * 24 * 3600 * 1000 });
    return client;
  }
  const auth = new GoogleAuth({
    scopes: ['https://www.googleapis.com/auth/compute'],
    ...(options.projectId === undefined ? {} : { projectId: options.projectId }),
  });
  return auth.getClient();
}
