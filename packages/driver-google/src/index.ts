/**
 * @machine/driver-google: a Compute Engine driver on `@google-cloud/compute`.
 * Importing this module does not load the client library; it is imported when an operation runs.
 */
import { defineDriver, type DriverDescriptor, guardDriver } from '@machine/driver-core';
import { type ComputeClients, createComputeClients } from './google-clients.ts';
import { GoogleDriver } from './google-driver.ts';
import { mapGoogleError } from './google-errors.ts';
import { type GoogleConfig, googleFlags, parseEndpoint } from './google-flags.ts';

export {
  type AuthClientLike,
  type ComputeClientOptions,
  type ComputeClients,
  createComputeClients,
  type RetrySettings,
} from './google-clients.ts';
export { GoogleDriver, googleNameProblem, ResourceKind } from './google-driver.ts';
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
  createDriver: ({ config, context, client }) => {
    const clients = client === undefined ? () => computeClientsFor(config) : () => Promise.resolve(client);
    return guardDriver(new GoogleDriver(config, context, clients), mapGoogleError);
  },
});

export default google;
