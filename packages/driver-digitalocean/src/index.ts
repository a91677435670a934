/**
 * @machine/driver-digitalocean: DigitalOcean droplets for machine, on the official
 * @digitalocean/dots SDK. Importing this module does not load the SDK; the first API call does.
 */
import {
  type BatchStateRequest,
  type BatchStatus,
  defineDriver,
  type DriverDescriptor,
  findEntry,
  guardDriver,
  NotFoundError,
  type OperationOptions,
  type State,
  type SweepReport,
  type SweepRequest,
  sweepResources,
  throwIfAborted,
} from '@machine/driver-core';
import type { DigitalOceanClient } from './digitalocean-api-types.ts';
import { resolveAccessToken } from './digitalocean-credentials.ts';
import { DigitalOceanDriver, loadClientModule, publicIPv4, stateOfDroplet } from './digitalocean-driver.ts';
import { type DigitalOceanTimings, defaultTimings, kindSettingsOf } from './digitalocean-timings.ts';
import { digitalOceanErrorMapper, mapDigitalOceanError } from './digitalocean-errors.ts';
import { hasNextPage, maxPerPage } from './digitalocean-paging.ts';
import { withRequestSignal } from './digitalocean-rate-budget.ts';
import { digitalOceanKindSet, machineTag, ResourceKind } from './digitalocean-resources.ts';
import { type DigitalOceanConfig, digitalOceanFlags } from './digitalocean-flags.ts';

export type { DigitalOceanClient } from './digitalocean-api-types.ts';
export type { DotsClientOptions, RetryPolicy } from './digitalocean-client.ts';
export { doctlConfigPath, readDoctlToken, resolveAccessToken } from './digitalocean-credentials.ts';
export { DigitalOceanDriver } from './digitalocean-driver.ts';
export { userDataLimitBytes } from './digitalocean-local-inputs.ts';
export { digitalOceanRateBucket, digitalOceanRateLimit, rateSignalOf, windowRateLimit, withRequestSignal } from './digitalocean-rate-budget.ts';
export { type DigitalOceanTimings, defaultTimings } from './digitalocean-timings.ts';
export { type DigitalOceanKindSettings, digitalOceanKindSet, digitalOceanKinds, dropletKind, firewallKind, machineTag, managedByTag, managedName, parseManagedName, ResourceKind, sshKeyKind } from './digitalocean-resources.ts';
export { isDigitalOceanApiError, mapDigitalOceanError } from './digitalocean-errors.ts';
export { type DigitalOceanConfig, defaultApiUrl, defaultImage, digitalOceanFlags } from './digitalocean-flags.ts';
export { stateOfDropletStatus } from './digitalocean-state.ts';

/** Options for {@link createDigitalOceanDescriptor}. */
export interface DigitalOceanDescriptorOptions {
  /** Poll, fallback and retry timing (tests shrink it). */
  timings?: Partial<DigitalOceanTimings>;
  /** A client for `getStates` (createDriver takes its own `client`). */
  client?: DigitalOceanClient;
}

/** Builds the SDK client on first use; the SDK module is loaded only here. */
export async function createDigitalOceanClient(options: { token: string; apiUrl: string; retry?: DigitalOceanTimings['retry'] }): Promise<DigitalOceanClient> {
  const { createDotsClient } = await loadClientModule();
  return createDotsClient(options);
}

/** A digitalocean descriptor with custom timing; the default export uses production timing. */
export function createDigitalOceanDescriptor(options: DigitalOceanDescriptorOptions = {}): DriverDescriptor<DigitalOceanConfig, DigitalOceanClient> {
  const timings = { ...defaultTimings, ...options.timings };
  return defineDriver<DigitalOceanConfig, DigitalOceanClient>({
    name: 'digitalocean',
    specificationVersion: 'v1',
    description: 'DigitalOcean droplets (API token from DIGITALOCEAN_ACCESS_TOKEN or doctl)',
    flags: digitalOceanFlags,
    // Droplets boot with cloud-init: the host's provisioning cloud-config goes in as user data.
    capabilities: { userData: true },
    createDriver: ({ config, context, client }) => {
      const driver = new DigitalOceanDriver({ config, context, timings, ...(client === undefined ? {} : { client }) });
      return guardDriver(driver, digitalOceanErrorMapper(() => driver.secrets()));
    },
    getStates: (machines, operationOptions) => withRequestSignal(operationOptions?.signal, () => getStates(machines, timings, options.client, operationOptions)),
    // Loads what getStates uses (no API call), so a host's timeout (ls -t) counts DigitalOcean's time, not module loading.
    prepare: async () => {
      if (options.client === undefined) await loadClientModule().then(({ loadDropletListModules }) => loadDropletListModules()).catch(() => undefined);
    },
    sweep: (request) => withRequestSignal(request.signal, () => sweep(request, timings, options.client)),
  });
}

/**
 * Lists (and with `delete`, deletes) the droplets tagged `managed-by:<value>` and the keys and
 * firewalls named `<value>.<machine>.<token>` that no record of the store claims.
 */
async function sweep(request: SweepRequest<DigitalOceanConfig, DigitalOceanClient>, timings: DigitalOceanTimings, injected: DigitalOceanClient | undefined): Promise<SweepReport> {
  const secrets: string[] = [];
  const client = async (): Promise<DigitalOceanClient> => {
    const given = request.client ?? injected;
    if (given !== undefined) return given;
    const { token } = await resolveAccessToken({ flagValue: request.config.accessToken });
    secrets.push(token);
    return createDigitalOceanClient({ token, apiUrl: request.config.apiUrl, retry: timings.retry });
  };
  return sweepResources(
    {
      kinds: digitalOceanKindSet(kindSettingsOf(timings)).all,
      client,
      poll: { interval: timings.pollIntervalMs, maxInterval: timings.maxPollIntervalMs },
      mapError: (error, where) => mapDigitalOceanError(error, where, secrets),
    },
    request,
  );
}

/** A batch state query reads at most this many pages (10 000 droplets): a bound, should an answer keep saying there is more. */
const maxListPages = 50;

/**
 * One droplet listing (`tag_name=machine`, a call per 200 droplets) per token and API URL, instead
 * of a GET per machine. A machine whose droplet is not in the list gets a NotFoundError. In-progress
 * power actions are not looked up here (getState does that).
 */
async function getStates(
  machines: readonly BatchStateRequest<DigitalOceanConfig>[],
  timings: DigitalOceanTimings,
  injected: DigitalOceanClient | undefined,
  options: OperationOptions = {},
): Promise<Map<string, State | BatchStatus | Error>> {
  const results = new Map<string, State | BatchStatus | Error>();
  const groups = new Map<string, { token: string; apiUrl: string; machines: BatchStateRequest<DigitalOceanConfig>[] }>();
  for (const machine of machines) {
    const name = machine.context.machineName;
    try {
      const { token } = await resolveAccessToken({ flagValue: machine.config.accessToken });
      const key = `${machine.config.apiUrl}\n${token}`;
      const group = groups.get(key) ?? { token, apiUrl: machine.config.apiUrl, machines: [] };
      group.machines.push(machine);
      groups.set(key, group);
    } catch (error) {
      results.set(name, error instanceof Error ? error : new Error(String(error)));
    }
  }
  for (const group of groups.values()) {
    throwIfAborted(options.signal);
    const secrets = [group.token];
    try {
      // Only the droplets request builder: loading the whole dots client would cost more than the listing.
      const lister =
        injected !== undefined ? injected.v2.droplets : await (await loadClientModule()).createDropletLister({ token: group.token, apiUrl: group.apiUrl, retry: timings.retry });
      const byId = new Map<string, BatchStatus>();
      const perPage = maxPerPage;
      const listPage = (page: number) => lister.get({ queryParameters: { tagName: machineTag, perPage, page } });
      // The pages these machines need at least are asked together (one round trip for the store's
      // own fleet); more, when the account has more tagged droplets, follow one after the other.
      const surePages = Math.min(maxListPages, Math.max(1, Math.ceil(group.machines.length / perPage)));
      const sure = await Promise.all(Array.from({ length: surePages }, (_, index) => listPage(index + 1)));
      for (let page = 1; page <= maxListPages; page++) {
        const response = page <= sure.length ? sure[page - 1] : await listPage(page);
        const droplets = response?.droplets ?? [];
        for (const droplet of droplets) {
          if (typeof droplet.id !== 'number') continue;
          const ip = publicIPv4(droplet);
          // The list answer carries the address too: ls needs no GET per machine for it.
          byId.set(String(droplet.id), { state: stateOfDroplet(droplet), ...(ip === undefined ? {} : { ip }) });
        }
        if (!hasNextPage(response, page, perPage, droplets.length)) break;
      }
      for (const machine of group.machines) {
        const name = machine.context.machineName;
        const entry = findEntry(machine.context.journal, ResourceKind.droplet);
        const state = entry === undefined ? undefined : byId.get(entry.id);
        results.set(
          name,
          state ??
            new NotFoundError(entry === undefined ? 'no droplet is recorded for this machine' : `droplet ${entry.id} not found`, {
              machine: name,
              operation: 'getState',
            }),
        );
      }
    } catch (error) {
      for (const machine of group.machines) {
        results.set(machine.context.machineName, mapDigitalOceanError(error, { machine: machine.context.machineName, operation: 'getState' }, secrets));
      }
    }
  }
  return results;
}

/** The digitalocean driver descriptor (plain data; the SDK loads on first use). */
const digitalOceanDriver = createDigitalOceanDescriptor();
export default digitalOceanDriver;
