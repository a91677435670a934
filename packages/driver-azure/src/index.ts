/**
 * @machine/driver-azure: the Azure Resource Manager driver. Importing this module loads no Azure
 * SDK code: the SDK clients are built on first use.
 */
import type { NetworkInterface, PublicIPAddress } from '@azure/arm-network';
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
import { AzureDriver } from './azure-driver.ts';
import { createAzureErrorMapper } from './azure-errors.ts';
import { azureKinds, resourceKinds } from './azure-resources.ts';
import { type AzureTimings, defaultTimings } from './azure-retry.ts';
import { stateFromInstanceView } from './azure-state.ts';
import { type AzureConfig, type AzureEnvironmentName, azureEnvironments, azureFlags, isLoopbackHost } from './azure-flags.ts';

export { type AzureClientOptions, type AzureClients, createAzureClients, createAzureCredential } from './azure-clients.ts';
export { AzureDriver } from './azure-driver.ts';
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

/** The address `getIP` would give for a machine, from the subscription-wide lists; undefined when they do not carry it. */
function addressFrom(config: AzureConfig, context: BatchStateRequest<AzureConfig>['context'], lists: { publicIps: Map<string, PublicIPAddress>; nics: Map<string, NetworkInterface> }): string | undefined {
  const publicIp = findEntry(context.journal, resourceKinds.publicIp);
  if (config.usePrivateIp || config.noPublicIp || publicIp === undefined) {
    const nic = findEntry(context.journal, resourceKinds.networkInterface);
    const found = nic === undefined ? undefined : lists.nics.get(nic.id.toLowerCase());
    const address = found?.ipConfigurations?.find((ipConfig) => ipConfig.primary !== false)?.privateIPAddress;
    return address === '' ? undefined : address;
  }
  const found = lists.publicIps.get(publicIp.id.toLowerCase());
  const address = config.dnsLabel === undefined ? found?.ipAddress : (found?.dnsSettings?.fqdn ?? found?.ipAddress);
  return address === '' ? undefined : address;
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
          const api = createAzureApi(await clientsFor(first.config), first.config, { machine: first.context.machineName, timings: timingsFor(first.config) });
          const usesPrivate = (machine: BatchStateRequest<AzureConfig>) =>
            machine.config.usePrivateIp || machine.config.noPublicIp || findEntry(machine.context.journal, resourceKinds.publicIp) === undefined;
          const states = new Map<string, State>();
          const lists = { publicIps: new Map<string, PublicIPAddress>(), nics: new Map<string, NetworkInterface>() };
          await Promise.all([
            api.call('the state of every virtual machine', 'getState', options.signal, async (abortSignal) => {
              states.clear();
              for await (const vm of api.clients.compute.virtualMachines.listAll({ statusOnly: 'true', abortSignal })) {
                if (vm.id !== undefined) states.set(vm.id.toLowerCase(), stateFromInstanceView(vm.instanceView?.statuses));
              }
            }),
            // The addresses are a convenience: a failed list leaves them out (the host asks getIP), not the states.
            batch.some((machine) => !usesPrivate(machine))
              ? api
                  .call('every public IP address', 'getIP', options.signal, async (abortSignal) => {
                    lists.publicIps.clear();
                    for await (const ip of api.clients.network.publicIPAddresses.listAll({ abortSignal })) if (ip.id !== undefined) lists.publicIps.set(ip.id.toLowerCase(), ip);
                  })
                  .catch(() => lists.publicIps.clear())
              : undefined,
            batch.some(usesPrivate)
              ? api
                  .call('every network interface', 'getIP', options.signal, async (abortSignal) => {
                    lists.nics.clear();
                    for await (const nic of api.clients.network.networkInterfaces.listAll({ abortSignal })) if (nic.id !== undefined) lists.nics.set(nic.id.toLowerCase(), nic);
                  })
                  .catch(() => lists.nics.clear())
              : undefined,
          ]);
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
  /** Loads the SDK and builds each subscription's clients (credential included), without an API call. */
  async prepare(configs) {
    await Promise.all(configs.map((config) => clientsFor(config).catch(() => undefined)));
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
