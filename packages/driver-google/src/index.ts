/**
 * @machine/driver-google: a Compute Engine driver on `@google-cloud/compute`.
 * Importing this module does not load the client library; it is imported when an operation runs.
 */
import { type BatchStateRequest, defineDriver, type DriverDescriptor, findEntry, guardDriver, NotFoundError, type OperationOptions, type State } from '@machine/driver-core';
import { type ComputeClients, createComputeClients } from './google-clients.ts';
import { GoogleDriver, ResourceKind, stateOfInstance } from './google-driver.ts';
import { mapGoogleError } from './google-errors.ts';
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
});

/**
 * `machine ls`: the state of many machines with one `instances.list` per project and zone (the
 * reference made one call per machine and hit rate limits).
 */
async function getStates(machines: readonly BatchStateRequest<GoogleConfig>[], options: OperationOptions = {}): Promise<Map<string, State | Error>> {
  const states = new Map<string, State | Error>();
  const groups = new Map<string, { config: GoogleConfig; zone: string; names: string[] }>();
  for (const { config, context } of machines) {
    const entry = findEntry(context.journal, ResourceKind.instance);
    if (entry === undefined) {
      states.set(context.machineName, new NotFoundError('no instance is recorded for this machine', { machine: context.machineName, operation: 'getState' }));
      continue;
    }
    const zone = entry.region ?? config.zone;
    const key = `${config.endpoint ?? ''}|${config.project}|${zone}`;
    const group = groups.get(key) ?? { config, zone, names: [] };
    group.names.push(context.machineName);
    groups.set(key, group);
  }
  await Promise.all(
    [...groups.values()].map(async ({ config, zone, names }) => {
      try {
        options.signal?.throwIfAborted();
        const clients = await computeClientsFor(config);
        const [instances] = await clients.instances.list({ project: config.project, zone });
        const byName = new Map(instances.map((instance) => [instance.name ?? '', instance]));
        for (const name of names) {
          const instance = byName.get(name);
          states.set(
            name,
            instance === undefined
              ? new NotFoundError(`instance ${name} does not exist in ${config.project}/${zone}`, { machine: name, operation: 'getState' })
              : stateOfInstance(instance),
          );
        }
      } catch (error) {
        for (const name of names) states.set(name, mapGoogleError(error, { machine: name, operation: 'getState' }));
      }
    }),
  );
  return states;
}

export default google;
