import type { AvailabilitySet, VirtualMachine, VirtualMachineInstanceView } from '@azure/arm-compute';
import type { NetworkInterface, NetworkSecurityGroup, PublicIPAddress, Subnet, VirtualNetwork } from '@azure/arm-network';
import type { GenericResourceExpanded, ResourceGroup } from '@azure/arm-resources';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelineRetryOptions } from '@azure/core-rest-pipeline';
import { AuthError } from '@machine/driver-core';
import { type AzureConfig, type AzureEnvironmentName, azureEnvironments, isLoopbackHost } from './azure-flags.ts';
import { azureRateBudgetPolicy } from './azure-rate-budget.ts';
import { throttleWatchPolicy } from './azure-throttle-watch.ts';

/** Options every call takes. */
export interface CallOptions {
  abortSignal?: AbortSignal;
}

/** Options of a long-running operation (the SDK's poller). */
export interface LongRunningOptions extends CallOptions {
  updateIntervalInMs?: number;
}

/** The SDK's paged lists are async iterables. */
export type Paged<T> = AsyncIterable<T>;

/**
 * The slice of the Azure SDK clients the driver uses. The real `ComputeManagementClient`,
 * `NetworkManagementClient` and `ResourceManagementClient` fit it as they are (their long-running
 * methods return pollers, which are promises of the final result); tests may pass stand-ins.
 */
export interface AzureClients {
  readonly compute: {
    readonly virtualMachines: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<VirtualMachine>;
      instanceView(resourceGroup: string, name: string, options?: CallOptions): Promise<VirtualMachineInstanceView>;
      createOrUpdate(resourceGroup: string, name: string, parameters: VirtualMachine, options?: LongRunningOptions): PromiseLike<VirtualMachine>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
      powerOff(resourceGroup: string, name: string, options?: LongRunningOptions & { skipShutdown?: boolean }): PromiseLike<void>;
      deallocate(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
      start(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
      restart(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
      /** Every VM of the subscription; `statusOnly: 'true'` adds each one's instance view statuses. */
      listAll(options?: CallOptions & { statusOnly?: string }): Paged<VirtualMachine>;
    };
    readonly availabilitySets: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<AvailabilitySet>;
      createOrUpdate(resourceGroup: string, name: string, parameters: AvailabilitySet, options?: CallOptions): Promise<AvailabilitySet>;
      delete(resourceGroup: string, name: string, options?: CallOptions): Promise<void>;
    };
    readonly disks: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<{ id?: string; name?: string; tags?: Record<string, string> }>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
  };
  readonly network: {
    readonly networkSecurityGroups: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<NetworkSecurityGroup>;
      createOrUpdate(resourceGroup: string, name: string, parameters: NetworkSecurityGroup, options?: LongRunningOptions): PromiseLike<NetworkSecurityGroup>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
    readonly virtualNetworks: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<VirtualNetwork>;
      createOrUpdate(resourceGroup: string, name: string, parameters: VirtualNetwork, options?: LongRunningOptions): PromiseLike<VirtualNetwork>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
    readonly subnets: {
      get(resourceGroup: string, vnet: string, name: string, options?: CallOptions): Promise<Subnet>;
      createOrUpdate(resourceGroup: string, vnet: string, name: string, parameters: Subnet, options?: LongRunningOptions): PromiseLike<Subnet>;
      delete(resourceGroup: string, vnet: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
    readonly publicIPAddresses: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<PublicIPAddress>;
      /** Every public IP address of the subscription (a fleet's addresses in one call). */
      listAll(options?: CallOptions): Paged<PublicIPAddress>;
      createOrUpdate(resourceGroup: string, name: string, parameters: PublicIPAddress, options?: LongRunningOptions): PromiseLike<PublicIPAddress>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
    readonly networkInterfaces: {
      get(resourceGroup: string, name: string, options?: CallOptions): Promise<NetworkInterface>;
      /** Every network interface of the subscription (a fleet's private addresses in one call). */
      listAll(options?: CallOptions): Paged<NetworkInterface>;
      createOrUpdate(resourceGroup: string, name: string, parameters: NetworkInterface, options?: LongRunningOptions): PromiseLike<NetworkInterface>;
      delete(resourceGroup: string, name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
  };
  readonly resources: {
    readonly resourceGroups: {
      get(name: string, options?: CallOptions): Promise<ResourceGroup>;
      createOrUpdate(name: string, parameters: ResourceGroup, options?: CallOptions): Promise<ResourceGroup>;
      delete(name: string, options?: LongRunningOptions): PromiseLike<void>;
    };
    readonly resources: {
      listByResourceGroup(resourceGroup: string, options?: CallOptions & { top?: number }): Paged<GenericResourceExpanded>;
    };
    /** Resource provider registration (`Microsoft.Compute`…): a new subscription may need it first. */
    readonly providers: {
      register(namespace: string, options?: CallOptions): Promise<{ registrationState?: string }>;
      get(namespace: string, options?: CallOptions): Promise<{ registrationState?: string }>;
    };
  };
  /** Poll interval of long-running operations when the server sends no Retry-After (default: the SDK's, 2 s). */
  readonly pollIntervalMs?: number;
}

/** How to build the real SDK clients. */
export interface AzureClientOptions {
  subscriptionId: string;
  /** The credential; default: the chain {@link createAzureCredential} builds from the config. */
  credential: TokenCredential;
  /** Resource Manager endpoint, e.g. `https://management.azure.com` or a loopback simulator `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** Retry settings for throttling and transient errors (the SDK retries 429, 5xx and network errors). */
  retryOptions?: PipelineRetryOptions;
  pollIntervalMs?: number;
  /** A custom HTTP client (the loopback rewrite is added around it when the endpoint is plain http). */
  httpClient?: HttpClient;
}

/** The ARM endpoint the SDK talks to: https always (its bearer-token policy refuses anything else). */
const loopbackStandIn = 'https://management.azure.com';

/** The SDK modules the clients are built from (imported on first use, never at package import). */
export interface AzureSdk {
  compute: Pick<typeof import('@azure/arm-compute'), 'ComputeManagementClient'>;
  network: Pick<typeof import('@azure/arm-network'), 'NetworkManagementClient'>;
  resources: Pick<typeof import('@azure/arm-resources'), 'ResourceManagementClient'>;
  pipeline: Pick<typeof import('@azure/core-rest-pipeline'), 'createDefaultHttpClient'>;
}

/** Imports the SDK modules the clients need. */
export async function loadAzureSdk(): Promise<AzureSdk> {
  const [compute, network, resources, pipeline] = await Promise.all([
    import('@azure/arm-compute'),
    import('@azure/arm-network'),
    import('@azure/arm-resources'),
    import('@azure/core-rest-pipeline'),
  ]);
  return { compute, network, resources, pipeline };
}

/**
 * Builds the three Resource Manager clients on first use (the SDK is imported here, never at
 * package import), over {@link armTransport}.
 */
export async function createAzureClients(options: AzureClientOptions): Promise<AzureClients> {
  return azureClientsFrom(await loadAzureSdk(), options);
}

/** {@link createAzureClients} with the SDK already loaded (synchronous: a test opens one set per simulated process). */
export function azureClientsFrom(sdk: AzureSdk, options: AzureClientOptions): AzureClients {
  const { ComputeManagementClient } = sdk.compute;
  const { NetworkManagementClient } = sdk.network;
  const { ResourceManagementClient } = sdk.resources;
  const { endpoint, httpClient, scope } = armTransport(sdk.pipeline, options.endpoint, options.httpClient);
  const clientOptions = {
    endpoint,
    httpClient,
    credentials: { scopes: [scope] },
    ...(options.retryOptions === undefined ? {} : { retryOptions: options.retryOptions }),
    userAgentOptions: { userAgentPrefix: 'machine-driver-azure' },
    // Per retry (after the retry policy), so once per attempt, poll and redirect: the throttle watch
    // sees each throttled answer before the SDK waits out its Retry-After (progress, deadline); the
    // rate budget, innermost, takes a slot right before the request goes out and reads its answer.
    additionalPolicies: [
      { policy: throttleWatchPolicy, position: 'perRetry' as const },
      { policy: azureRateBudgetPolicy(options.subscriptionId), position: 'perRetry' as const },
    ],
  };
  return {
    compute: new ComputeManagementClient(options.credential, options.subscriptionId, clientOptions),
    network: new NetworkManagementClient(options.credential, options.subscriptionId, clientOptions),
    resources: new ResourceManagementClient(options.credential, options.subscriptionId, clientOptions),
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  };
}

/**
 * Where the SDK sends ARM requests, through which HTTP client, and the token scope. A plain-http
 * loopback endpoint (a simulator) is reached through an HTTP client that rewrites the https URL the
 * SDK insists on, and restores it so the poller sees its own URLs.
 */
export function armTransport(
  pipeline: Pick<typeof import('@azure/core-rest-pipeline'), 'createDefaultHttpClient'>,
  endpointOption: string,
  given?: HttpClient,
): { endpoint: string; httpClient: HttpClient; scope: string } {
  const target = new URL(endpointOption);
  const plainLoopback = target.protocol === 'http:' && isLoopbackHost(target.hostname);
  const base = given ?? pipeline.createDefaultHttpClient();
  const endpoint = plainLoopback ? loopbackStandIn : endpointOption.replace(/\/+$/, '');
  const httpClient: HttpClient = plainLoopback
    ? {
        async sendRequest(request) {
          const original = request.url;
          request.url = rewriteOrigin(original, loopbackStandIn, target.origin);
          request.allowInsecureConnection = true;
          try {
            const response = await base.sendRequest(request);
            return rewriteLocationHeaders(response, target.origin, loopbackStandIn);
          } finally {
            request.url = original;
          }
        },
      }
    : base;
  return { endpoint, httpClient, scope: `${endpoint}/.default` };
}

function rewriteOrigin(url: string, from: string, to: string): string {
  return url.startsWith(from) ? `${to}${url.slice(from.length)}` : url;
}

/** A simulator that names itself in Location / Azure-AsyncOperation headers is mapped back to the https stand-in. */
function rewriteLocationHeaders<R extends { headers: { get(name: string): string | undefined; set(name: string, value: string): void } }>(
  response: R,
  from: string,
  to: string,
): R {
  for (const name of ['location', 'azure-asyncoperation']) {
    const value = response.headers.get(name);
    if (value?.startsWith(from)) response.headers.set(name, `${to}${value.slice(from.length)}`);
  }
  return response;
}

/** The credential for a plain-http loopback endpoint (a simulator): a placeholder token, never a real one. */
export const loopbackCredential: TokenCredential = {
  getToken: async () => ({ token: 'loopback-placeholder-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

/** Where the default chain looks, for the one-line "no credential" error. */
export const credentialSources =
  'AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) + AZURE_TENANT_ID, workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity, Azure CLI (az login), Azure Developer CLI (azd auth login), Azure PowerShell (Connect-AzAccount)';

/**
 * The credential: a service principal when a client secret is given (flag or env), else the
 * SDK's default chain (environment, workload identity, managed identity, Azure CLI, azd, PowerShell).
 * Loads @azure/identity lazily.
 */
export async function createAzureCredential(config: Pick<AzureConfig, 'clientId' | 'clientSecret' | 'tenantId' | 'environment'>): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  const authorityHost = azureEnvironments[config.environment as AzureEnvironmentName].authorityHost;
  if (config.clientSecret !== undefined && config.clientSecret !== '') {
    if (config.clientId === undefined || config.tenantId === undefined) {
      throw new AuthError('a client secret needs a client ID and a tenant ID too', {
        operation: 'config',
        hint: 'pass --azure-client-id and --azure-tenant-id (or set AZURE_CLIENT_ID and AZURE_TENANT_ID)',
      });
    }
    return new identity.ClientSecretCredential(config.tenantId, config.clientId, config.clientSecret, { authorityHost });
  }
  return new identity.DefaultAzureCredential({
    authorityHost,
    ...(config.tenantId === undefined ? {} : { tenantId: config.tenantId }),
    ...(config.clientId === undefined ? {} : { managedIdentityClientId: config.clientId, workloadIdentityClientId: config.clientId }),
  });
}
