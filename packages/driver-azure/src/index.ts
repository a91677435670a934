/**
 * @machine/driver-azure: the Azure Resource Manager driver. Importing this module loads no Azure
 * SDK code: the SDK clients are built on first use.
 */
import { defineDriver, type DriverDescriptor, guardDriver, secretValues } from '@machine/driver-core';
import type { AzureClients } from './azure-clients.ts';
import { AzureDriver } from './azure-driver.ts';
import { createAzureErrorMapper } from './azure-errors.ts';
import { type AzureConfig, type AzureEnvironmentName, azureEnvironments, azureFlags, isLoopbackHost } from './azure-flags.ts';

export { type AzureClientOptions, type AzureClients, createAzureClients, createAzureCredential } from './azure-clients.ts';
export { AzureDriver, resourceKinds, securityRules } from './azure-driver.ts';
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

const azure: DriverDescriptor<AzureConfig, AzureClients> = defineDriver<AzureConfig, AzureClients>({
  name: 'azure',
  specificationVersion: 'v1',
  description: 'Microsoft Azure virtual machines (Azure Resource Manager, managed disks)',
  flags: azureFlags,
  createDriver: ({ config, context, client }) => {
    const clientSource = async (): Promise<AzureClients> => {
      if (client !== undefined) return client;
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
    };
    const secrets = () => secretValues(azureFlags, config);
    return guardDriver(new AzureDriver(config, context, clientSource), createAzureErrorMapper(secrets));
  },
});

export default azure;
