/** Test helpers: the real SDK clients against the cloud simulator's Azure front end. Not exported from the package. */
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { type Sim, type SimOptions, startSim } from '@machine/cloud-sim';
import type { RawFlagValues } from '@machine/driver-core';
import { type AzureClientOptions, type AzureClients, azureClientsFrom, createAzureClients, loadAzureSdk } from '../azure-clients.ts';
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

/** Options of real SDK clients pointed at the simulator, with fast polling and retries. */
export function simClientOptions(sim: Sim, credential: TokenCredential): AzureClientOptions {
  return {
    subscriptionId: sim.env().AZURE_SUBSCRIPTION_ID ?? '',
    credential,
    endpoint: sim.endpoints.azure ?? '',
    pollIntervalMs: 5,
    retryOptions: { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  };
}

/** Real SDK clients pointed at the simulator, with fast polling and retries. */
export async function simClients(sim: Sim, credential: TokenCredential = fakeCredential()): Promise<AzureClients> {
  return createAzureClients(simClientOptions(sim, credential));
}

/** The SDK clients of one simulated process (one driver), and its death. */
export interface SimProcess {
  readonly clients: AzureClients;
  /**
   * Ends the process as its death would: what it had sent is still carried out by the simulator,
   * but no answer reaches it any more and it sends nothing else. Without this a "killed" driver
   * lives on in the test process: a held request ends at its own --azure-wait-timeout, a background
   * call it never awaited was not holding it at all, and it carries on creating behind the back of
   * the driver that took over its record.
   */
  kill(): void;
}

/** Opens simulated processes against the simulator: each gets its own clients (over one HTTP client), so one can die alone. */
export async function simProcesses(sim: Sim, credential: TokenCredential = fakeCredential()): Promise<() => SimProcess> {
  const sdk = await loadAzureSdk();
  const base = sdk.pipeline.createDefaultHttpClient();
  const never = () => new Promise<never>(() => undefined);
  return () => {
    let dead = false;
    const httpClient: HttpClient = {
      async sendRequest(request) {
        if (dead) return never();
        try {
          const response = await base.sendRequest(request);
          return dead ? never() : response;
        } catch (error) {
          if (dead) return never();
          throw error;
        }
      },
    };
    return {
      clients: azureClientsFrom(sdk, { ...simClientOptions(sim, credential), httpClient }),
      kill: () => {
        dead = true;
      },
    };
  };
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

/**
 * Deletes every resource group of the simulated subscription through the API (a group's delete takes
 * everything in it) and waits until the leak report is empty: what one failed test left does not
 * fail the next ones. Returns what was there.
 */
export async function clearAzureAccount(sim: Sim, client: AzureClients): Promise<string[]> {
  const left = azureLeaks(sim);
  const groups = sim.leaks().filter((leak) => leak.provider === 'azure' && leak.kind === 'resourceGroups');
  await Promise.all(groups.map((group) => client.resources.resourceGroups.delete(group.name, { updateIntervalInMs: 5 })));
  const deadline = Date.now() + 10_000;
  while (azureLeaks(sim).length > 0) {
    if (Date.now() > deadline) throw new Error(`could not clear the simulated Azure account: ${azureLeaks(sim).join(', ')} still there 10 s after deleting its resource groups`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return left;
}
