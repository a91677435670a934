/**
 * @machine/driver-azure: the Azure Resource Manager driver. Importing this module loads no Azure
 * SDK code: the SDK clients are built on first use.
 */
import {
  type BatchStateRequest,
  type BatchStatus,
  defineDriver,
  type DriverDescriptor,
  findEntry,
  guardDriver,
  NotFoundError,
  type State,
  type SweepReport,
  type SweepRequest,
  secretValues,
  sweepResources,
} from '@machine/driver-core';
import { createAzureApi } from './azure-api.ts';
import type { AzureClients } from './azure-clients.ts';
import { type ArmLister, type ArmResource, createArmLister, listApiVersions } from './azure-fleet-list.ts';
import { armCall } from './azure-retry.ts';
import { AzureDriver } from './azure-driver.ts';
import { createAzureErrorMapper } from './azure-errors.ts';
import { azureKinds, resourceKinds } from './azure-resources.ts';
import { type AzureTimings, defaultTimings } from './azure-retry.ts';
import { stateFromInstanceView } from './azure-state.ts';
import { type AzureConfig, type AzureEnvironmentName, azureEnvironments, azureFlags, isLoopbackHost } from './azure-flags.ts';

export { type AzureClientOptions, type AzureClients, createAzureClients, createAzureCredential } from './azure-clients.ts';
export { AzureDriver } from './azure-driver.ts';
export { type AzureRateKind, azureRateBucket, azureRateBudgetPolicy, azureRateKind, azureRateLimits, azureRateSignal } from './azure-rate-budget.ts';
export { customDataLimitBytes, securityRules } from './azure-plan.ts';
export { azureKinds, resourceKinds, tagNames } from './azure-resources.ts';
export { type AzureTimings, defaultTimings } from './azure-retry.ts';
export { azureErrorFacts, createAzureErrorMapper } from './azure-errors.ts';
export { type AzureConfig, type AzureEnvironmentName, azureEnvironments, azureFlags } from './azure-flags.ts';
export { stateFromInstanceView } from './azure-state.ts';

/** The Resource Manager endpoint for a config: the override, else the environment's. */
export function azureEndpoint(config: Pick<AzureConfig, 'endpoint' | 'environment'>): string {
  return config.endpoint ?? azureEnvironments[config.environment as AzureEnvironmentName].resourceManager;
}

function isPlainLoopback(endpoint: string): boolean {
  const url = new URL(endpoint);
  return url.protocol === 'http:' && isLoopbackHost(url.hostname);
}

const clientCache = new Map<string, Promise<AzureClients>>();

/**
 * The SDK clients a config calls for, built once per endpoint, subscription and identity and
 * shared by every machine of the process (the SDK is loaded here, on first use). A failed build
 * (no credential) is not kept.
 */
function clientsFor(config: AzureConfig): Promise<AzureClients> {
  const key = [azureEndpoint(config), config.subscriptionId.toLowerCase(), config.environment, config.tenantId ?? '', config.clientId ?? '', config.clientSecret ?? ''].join('|');
  let clients = process.env.AZ_NOCACHE ? undefined : clientCache.get(key);
  if (clients === undefined) {
    clients = buildClients(config);
    clients.catch(() => clientCache.delete(key));
    clientCache.set(key, clients);
  }
  return clients;
}

async function buildClients(config: AzureConfig): Promise<AzureClients> {
  const { createAzureClients, createAzureCredential, loopbackCredential } = await import('./azure-clients.ts');
  const endpoint = azureEndpoint(config);
  return createAzureClients({
    subscriptionId: config.subscriptionId,
    // A plain-http loopback endpoint is a simulator or a local proxy: never send it a real token.
    credential: isPlainLoopback(endpoint) ? loopbackCredential : await createAzureCredential(config),
    endpoint,
    // Loopback simulators send no Retry-After; poll them briskly.
    ...(isPlainLoopback(endpoint) ? { pollIntervalMs: 50 } : {}),
  });
}

const listerCache = new Map<string, Promise<ArmLister>>();

/**
 * The fleet lister of a config (see createArmLister: no generated client is loaded), built once per
 * endpoint, subscription and identity. A failed build (no credential) is not kept.
 */
function listerFor(config: AzureConfig): Promise<ArmLister> {
  const key = [azureEndpoint(config), config.subscriptionId.toLowerCase(), config.environment, config.tenantId ?? '', config.clientId ?? '', config.clientSecret ?? ''].join('|');
  let lister = listerCache.get(key);
  if (lister === undefined) {
    lister = (async () => {
      const { createAzureCredential, loopbackCredential } = await import('./azure-clients.ts');
      const endpoint = azureEndpoint(config);
      return createArmLister({ endpoint, credential: isPlainLoopback(endpoint) ? loopbackCredential : await createAzureCredential(config) });
    })();
    lister.catch(() => listerCache.delete(key));
    listerCache.set(key, lister);
  }
  return lister;
}

/** The address `getIP` would give for a machine, from the subscription-wide lists; undefined when they do not carry it. */
function addressFrom(config: AzureConfig, context: BatchStateRequest<AzureConfig>['context'], lists: { publicIps: Map<string, ArmResource>; nics: Map<string, ArmResource> }): string | undefined {
  const publicIp = findEntry(context.journal, resourceKinds.publicIp);
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  if (config.usePrivateIp || config.noPublicIp || publicIp === undefined) {
    const nic = findEntry(context.journal, resourceKinds.networkInterface);
    const found = nic === undefined ? undefined : lists.nics.get(nic.id.toLowerCase());
    const ipConfigurations = (found?.properties?.ipConfigurations ?? []) as { properties?: { primary?: boolean; privateIPAddress?: string } }[];
    return text(ipConfigurations.find((ipConfig) => ipConfig.properties?.primary !== false)?.properties?.privateIPAddress);
  }
  const properties = lists.publicIps.get(publicIp.id.toLowerCase())?.properties;
  const fqdn = text((properties?.dnsSettings as { fqdn?: unknown } | undefined)?.fqdn);
  return config.dnsLabel === undefined ? text(properties?.ipAddress) : (fqdn ?? text(properties?.ipAddress));
}

/** Options of {@link createAzureDescriptor}. */
export interface AzureDescriptorOptions {
  /** Retry, in-use and poll timing (tests shrink it). */
  timings?: Partial<AzureTimings>;
}

/** The Azure driver descriptor, with its timings. The package's default export uses the defaults. */
export function createAzureDescriptor(options: AzureDescriptorOptions = {}): DriverDescriptor<AzureConfig, AzureClients> {
  const timings = { ...defaultTimings, ...options.timings };
  // A loopback simulator scales Azure's windows down: retry and poll it briskly too (unless told otherwise).
  const timingsFor = (config: AzureConfig): AzureTimings =>
    options.timings === undefined && isPlainLoopback(azureEndpoint(config)) ? { ...timings, retryMs: 50, maxRetryMs: 500, pollMs: 100 } : timings;
  return defineDriver<AzureConfig, AzureClients>({
  name: 'azure',
  specificationVersion: 'v1',
  description: 'Microsoft Azure virtual machines (Azure Resource Manager, managed disks)',
  flags: azureFlags,
  // The Ubuntu images boot with cloud-init, which reads osProfile.customData: the host's provisioning cloud-config goes there.
  capabilities: { userData: true },
  createDriver: ({ config, context, client }) => {
    const clientSource = async (): Promise<AzureClients> => client ?? clientsFor(config);
    const mapError = createAzureErrorMapper(() => secretValues(azureFlags, config));
    return guardDriver(new AzureDriver(config, context, clientSource, { timings: timingsFor(config), mapError }), mapError);
  },
  sweep: (request) => sweep(request, timingsFor(request.config)),
  /**
   * One `virtualMachines.listAll(statusOnly)` call per subscription (and endpoint and identity),
   * whatever the number of machines, and beside it one `publicIPAddresses.listAll` (or
   * `networkInterfaces.listAll` for private addresses) for the addresses: nothing per machine.
   */
  async getStates(machines, options = {}) {
    const result = new Map<string, State | BatchStatus | Error>();
    const batches = new Map<string, BatchStateRequest<AzureConfig>[]>();
    for (const machine of machines) {
      const { config } = machine;
      const key = [azureEndpoint(config), config.subscriptionId.toLowerCase(), config.clientId ?? '', config.tenantId ?? ''].join('|');
      batches.set(key, [...(batches.get(key) ?? []), machine]);
    }
    await Promise.all(
      [...batches.values()].map(async (batch) => {
        const first = batch[0];
        if (first === undefined) return;
        try {
          const lister = await listerFor(first.config);
          const { waitTimeout, subscriptionId } = first.config;
          const scope = {
            machine: first.context.machineName,
            operation: 'getState',
            deadline: Date.now() + waitTimeout * 1000,
            deadlineName: `--azure-wait-timeout (${waitTimeout} s)`,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
            progress: () => undefined,
          };
          const subscription = `/subscriptions/${encodeURIComponent(subscriptionId)}/providers`;
          const list = (what: string, path: string, query: Record<string, string>) =>
            armCall(undefined, scope, timingsFor(first.config), what, (abortSignal) => lister.list(`${subscription}/${path}`, query, abortSignal));
          const usesPrivate = (machine: BatchStateRequest<AzureConfig>) =>
            machine.config.usePrivateIp || machine.config.noPublicIp || findEntry(machine.context.journal, resourceKinds.publicIp) === undefined;
          const byId = (resources: readonly ArmResource[]) => new Map(resources.filter((resource) => typeof resource.id === 'string').map((resource) => [String(resource.id).toLowerCase(), resource]));
          const none = new Map<string, ArmResource>();
          const [vms, publicIps, nics] = await Promise.all([
            list('the state of every virtual machine', 'Microsoft.Compute/virtualMachines', { 'api-version': listApiVersions.compute, statusOnly: 'true' }),
            // The addresses are a convenience: a failed list leaves them out (the host asks getIP), not the states.
            batch.some((machine) => !usesPrivate(machine))
              ? list('every public IP address', 'Microsoft.Network/publicIPAddresses', { 'api-version': listApiVersions.network }).then(byId, () => none)
              : none,
            batch.some(usesPrivate)
              ? list('every network interface', 'Microsoft.Network/networkInterfaces', { 'api-version': listApiVersions.network }).then(byId, () => none)
              : none,
          ]);
          const states = new Map<string, State>();
          for (const vm of vms) {
            const statuses = (vm.properties?.instanceView as { statuses?: { code?: string }[] } | undefined)?.statuses;
            if (vm.id !== undefined) states.set(vm.id.toLowerCase(), stateFromInstanceView(statuses));
          }
          const lists = { publicIps, nics };
          for (const { config, context } of batch) {
            const entry = findEntry(context.journal, resourceKinds.virtualMachine);
            const state = entry === undefined ? undefined : states.get(entry.id.toLowerCase());
            const ip = state === undefined ? undefined : addressFrom(config, context, lists);
            result.set(
              context.machineName,
              state === undefined ? new NotFoundError('the virtual machine is gone', { machine: context.machineName, operation: 'getState' }) : ip === undefined ? { state } : { state, ip },
            );
          }
        } catch (error) {
          const mapError = createAzureErrorMapper(() => secretValues(azureFlags, first.config));
          for (const { context } of batch) result.set(context.machineName, mapError(error, { machine: context.machineName, operation: 'getState' }));
        }
      }),
    );
    return result;
  },
  /** Loads the pipeline and builds each subscription's fleet lister (credential included), without an API call. */
  async prepare(configs) {
    await Promise.all(configs.map((config) => listerFor(config).catch(() => undefined)));
  },
  });
}

/**
 * Lists (and with `delete`, deletes) what carries `managed-by: <value>` in the config's resource
 * group (VMs, NICs, public IPs, NSGs, vnets, availability sets) that no record of the store claims.
 */
async function sweep(request: SweepRequest<AzureConfig, AzureClients>, timings: AzureTimings): Promise<SweepReport> {
  const mapError = createAzureErrorMapper(() => secretValues(azureFlags, request.config));
  return sweepResources(
    {
      kinds: azureKinds.map((kind) => ({ ...kind, timeouts: { delete: timings.inUseMs } })),
      client: async () => createAzureApi(request.client ?? (await clientsFor(request.config)), request.config, { machine: 'sweep', timings }),
      poll: { interval: timings.pollMs, maxInterval: timings.pollMs * 4 },
      mapError,
    },
    request,
  );
}

const azure: DriverDescriptor<AzureConfig, AzureClients> = createAzureDescriptor();

export default azure;
