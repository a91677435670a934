/** Test helpers: the real SDK clients against the cloud simulator's Azure front end. Not exported from the package. */
import type { TokenCredential } from '@azure/core-auth';
import { type Sim, type SimOptions, startSim } from '@machine/cloud-sim';
import type { RawFlagValues } from '@machine/driver-core';
import { type AzureClients, createAzureClients } from '../azure-clients.ts';
import type { AzureTimings } from '../azure-retry.ts';

/** Retry and poll timing for tests against the simulator (its windows are scaled to milliseconds). */
export const fastTimings: AzureTimings = { retryMs: 10, maxRetryMs: 50, authorizationGraceMs: 1_500, inUseMs: 3_000, pollMs: 10 };

/** A fake credential: tokens the simulator accepts (or refuses, with `invalid`). */
export function fakeCredential(token = 'sim-token'): TokenCredential & { calls: number } {
  const credential = {
    calls: 0,
    getToken: async () => {
      credential.calls++;
      return { token, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  return credential;
}

/** A simulator with only the Azure front end (realistic profile unless `options` say otherwise), fast lifecycle. */
export async function startAzureSim(options: Omit<SimOptions, 'providers'> = {}): Promise<Sim> {
  return startSim({ providers: ['azure'], delays: { pendingMs: 20, stoppingMs: 10 }, ...options });
}

/** Real SDK clients pointed at the simulator, with fast polling and retries. */
export async function simClients(sim: Sim, credential: TokenCredential = fakeCredential()): Promise<AzureClients> {
  return createAzureClients({
    subscriptionId: sim.env().AZURE_SUBSCRIPTION_ID ?? '',
    credential,
    endpoint: sim.endpoints.azure ?? '',
    pollIntervalMs: 5,
    retryOptions: { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  });
}

/** Flags of a valid create against the simulator. */
export function simFlags(sim: Sim, extra: RawFlagValues = {}): RawFlagValues {
  return {
    'azure-subscription-id': sim.env().AZURE_SUBSCRIPTION_ID,
    'azure-endpoint': sim.endpoints.azure,
    'azure-ssh-port': sim.sshPort,
    'azure-wait-timeout': 20,
    ...extra,
  };
}

/** Leaks of the Azure front end only, as readable strings. */
export function azureLeaks(sim: Sim): string[] {
  return sim
    .leaks()
    .filter((leak) => leak.provider === 'azure')
    .map((leak) => `${leak.kind} ${leak.name}${leak.state === undefined ? '' : ` (${leak.state})`}`);
}
