/**
 * @machine/driver-google: a Compute Engine driver on `@google-cloud/compute`.
 * Importing this module does not load the client library; it is imported when an operation runs.
 */
import { type BatchStateRequest, type BatchStatus, defineDriver, type DriverDescriptor, findEntry, guardDriver, NotFoundError, type OperationOptions, type State } from '@machine/driver-core';
import { type ComputeClients, createComputeClients, defaultAuthClient } from './google-clients.ts';
import { listInstancesOfProject, type RequestingAuthClient } from './google-instance-list.ts';
import { GoogleDriver, ResourceKind, stateOfInstance } from './google-driver.ts';
import { mapGoogleError } from './google-errors.ts';
import { meterAuthClient } from './google-rate-budget.ts';
import { type GoogleConfig, googleFlags, parseEndpoint } from './google-flags.ts';

export {
  type AuthClientLike,
  type ComputeClientOptions,
  type ComputeClients,
  createComputeClients,
  type RetrySettings,
} from './google-clients.ts';
export { GoogleDriver, googleNameProblem, ResourceKind, stateOfInstance } from './google-driver.ts';
export { mapGoogleError } from './google-errors.ts';
export { defaultMachineImage, defaultScopes, type GoogleConfig, googleFlags, parseEndpoint } from './google-flags.ts';
export { type GoogleRateGroup, googleRateBucket, googleRateGroup, googleRateLimits, isGoogleRateLimitAnswer, meterAuthClient } from './google-rate-budget.ts';

const clientCache = new Map<string, Promise<ComputeClients>>();

/**
 * The Compute clients for a config, built once per endpoint and project and shared by every
 * machine of the process. Loads the client library on first call.
 */
export function computeClientsFor(config: Pick<GoogleConfig, 'endpoint' | 'project'>): Promise<ComputeClients> {
  const key = `${config.endpoint ?? ''}|${config.project}`;
  let clients = clientCache.get(key);
  if (clients === undefined) {
    clients = createComputeClients({
      projectId: config.project,
      ...(config.endpoint === undefined ? {} : { endpoint: parseEndpoint(config.endpoint) }),
    });
    // A failed build (e.g. a broken install) is not cached.
    clients.catch(() => clientCache.delete(key));
    clientCache.set(key, clients);
  }
  return clients;
}

/** The `google` driver descriptor. */
const google: DriverDescriptor<GoogleConfig, ComputeClients> = defineDriver<GoogleConfig, ComputeClients>({
  name: 'google',
  specificationVersion: 'v1',
  description: 'Google Compute Engine instances (Application Default Credentials)',
  flags: googleFlags,
  // The Ubuntu images boot with cloud-init: the host's provisioning cloud-config goes in the user-data
  // metadata key. An adopted instance (--google-use-existing) booted long ago and runs no new user
  // data, so the host provisions it over SSH instead.
  capabilities: { userData: (config) => !config.useExisting },
  createDriver: ({ config, context, client }) => {
    const clients = client === undefined ? () => computeClientsFor(config) : () => Promise.resolve(client);
    return guardDriver(new GoogleDriver(config, context, clients), mapGoogleError);
  },
  getStates,
  prepare,
});

const listerCache = new Map<string, Promise<RequestingAuthClient>>();

/**
 * The auth client a fleet listing sends its REST GET with, built once per endpoint and project
 * (google-auth-library only: no Compute client, no protos; see listInstancesOfProject).
 */
function listerFor(config: Pick<GoogleConfig, 'endpoint' | 'project'>): Promise<RequestingAuthClient> {
  const key = `${config.endpoint ?? ''}|${config.project}`;
  let lister = listerCache.get(key);
  if (lister === undefined) {
    lister = defaultAuthClient({ projectId: config.project, ...(config.endpoint === undefined ? {} : { endpoint: parseEndpoint(config.endpoint) }) }).then(
      (client) => meterAuthClient(client) as RequestingAuthClient,
    );
    lister.catch(() => listerCache.delete(key));
    listerCache.set(key, lister);
  }
  return lister;
}

/**
 * `machine ls`: the state and address of many machines with one `instances.aggregatedList` per
 * project (every zone at once; a page per 500 instances), instead of a call per machine (the
 * reference made one per machine and hit rate limits).
 */
async function getStates(machines: readonly BatchStateRequest<GoogleConfig>[], options: OperationOptions = {}): Promise<Map<string, State | BatchStatus | Error>> {
  const states = new Map<string, State | BatchStatus | Error>();
  const groups = new Map<string, { config: GoogleConfig; members: { name: string; instance: string; zone: string; config: GoogleConfig }[] }>();
  for (const { config, context } of machines) {
    const entry = findEntry(context.journal, ResourceKind.instance);
    if (entry === undefined) {
      states.set(context.machineName, new NotFoundError('no instance is recorded for this machine', { machine: context.machineName, operation: 'getState' }));
      continue;
    }
    const key = `${config.endpoint ?? ''}|${config.project}`;
    const group = groups.get(key) ?? { config, members: [] };
    group.members.push({ name: context.machineName, instance: entry.id, zone: entry.region ?? config.zone, config });
    groups.set(key, group);
  }
  await Promise.all(
    [...groups.values()].map(async ({ config, members }) => {
      try {
        options.signal?.throwIfAborted();
        const instances = await listInstancesOfProject(await listerFor(config), {
          project: config.project,
          endpoint: config.endpoint === undefined ? undefined : parseEndpoint(config.endpoint),
          signal: options.signal,
        });
        for (const { name, instance: instanceName, zone, config: machineConfig } of members) {
          const instance = instances.get(`${zone}/${instanceName}`);
          if (instance === undefined) {
            states.set(name, new NotFoundError(`instance ${instanceName} does not exist in ${config.project}/${zone}`, { machine: name, operation: 'getState' }));
            continue;
          }
          const nic = instance.networkInterfaces?.[0];
          const ip = machineConfig.useInternalIp || machineConfig.useInternalIpOnly ? nic?.networkIP : nic?.accessConfigs?.[0]?.natIP;
          const state = stateOfInstance(instance);
          states.set(name, typeof ip === 'string' && ip !== '' ? { state, ip } : { state });
        }
      } catch (error) {
        for (const { name } of members) states.set(name, mapGoogleError(error, { machine: name, operation: 'getState' }));
      }
    }),
  );
  return states;
}

/** Loads google-auth-library and builds each project's auth client for the fleet listing (no API call). */
async function prepare(configs: readonly GoogleConfig[]): Promise<void> {
  await Promise.all(configs.map((config) => listerFor(config).catch(() => undefined)));
}

export default google;
