/**
 * @machine/driver-amazonec2: the Amazon EC2 driver. Importing it loads neither the AWS SDK nor
 * ssh2: the SDK is imported on the first API call.
 */
import type { Instance } from '@aws-sdk/client-ec2';
import {
  type BatchStateRequest,
  type BatchStatus,
  defineDriver,
  type DriverDescriptor,
  findEntry,
  guardDriver,
  NotFoundError,
  parseFlags,
  type RawFlagValues,
  type State,
  secretValues,
} from '@machine/driver-core';
import { type AmazonEC2Clients, clientsFor, type LazyClients, loadEC2Sdk } from './amazonec2-clients.ts';
import { AmazonEC2Driver, type AmazonEC2Tuning, resourceKinds } from './amazonec2-driver.ts';
import { amazonEC2ErrorMapper, mapAmazonEC2Error } from './amazonec2-errors.ts';
import { describeInstancesLight, fleetListEndpoint, type ListedInstance, loadFleetListParts } from './amazonec2-fleet-list.ts';
import { type AmazonEC2Config, amazonEC2Flags } from './amazonec2-flags.ts';
import { toMachineState } from './amazonec2-state.ts';

export type { AmazonEC2ClientOverrides, AmazonEC2Clients } from './amazonec2-clients.ts';
export { AmazonEC2Driver, type AmazonEC2Tuning, resourceKinds, userDataLimitBytes } from './amazonec2-driver.ts';
export { amazonEC2Kinds, clientTokenOf } from './amazonec2-resources.ts';
export { credentialSources, mapAmazonEC2Error } from './amazonec2-errors.ts';
export { type AmazonEC2Config, amazonEC2Flags, parseTags } from './amazonec2-flags.ts';
export {
  type AmazonEC2RateCategory,
  addRateBudgetMiddleware,
  amazonEC2RateBucket,
  amazonEC2RateCategory,
  amazonEC2RateLimits,
  isAmazonEC2Throttle,
} from './amazonec2-rate-budget.ts';
export { architectureOf, defaultUbuntuRelease, ubuntuAmiParameter } from './amazonec2-plan.ts';
export { toMachineState } from './amazonec2-state.ts';

/** Options of {@link createAmazonEC2Descriptor}: clients to use instead of building them, and tuning. */
export interface AmazonEC2DescriptorOptions extends AmazonEC2Tuning {
  /** Used when `createDriver`/`getStates` are given no client (tests, the simulator). */
  clients?: Partial<AmazonEC2Clients>;
}

/** Builds the amazonec2 descriptor; the default export is this with no options. */
export function createAmazonEC2Descriptor(options: AmazonEC2DescriptorOptions = {}): DriverDescriptor<AmazonEC2Config, Partial<AmazonEC2Clients>> {
  const { clients: defaultClients, ...tuning } = options;
  return defineDriver<AmazonEC2Config, Partial<AmazonEC2Clients>>({
    name: 'amazonec2',
    specificationVersion: 'v1',
    description: 'Amazon EC2 instances (AWS SDK v3; default AMI: current Ubuntu LTS)',
    flags: amazonEC2Flags,
    // EC2 images boot with cloud-init: the host's provisioning cloud-config goes in as user data.
    capabilities: { userData: true },
    createDriver: ({ config, context, client }) =>
      guardDriver(new AmazonEC2Driver(config, context, client ?? defaultClients, tuning), amazonEC2ErrorMapper(secretValues(amazonEC2Flags, config))),
    getStates: (machines, stateOptions) => getStates(machines, defaultClients, tuning, stateOptions?.signal),
    prepare: (configs) => prepare(configs, defaultClients, tuning),
  });
}

/** Parses amazonec2 flag values (by flag name) into a config; throws InvalidConfigError listing every problem. */
export function parseAmazonEC2Flags(values: RawFlagValues, env?: Readonly<Record<string, string | undefined>>): AmazonEC2Config {
  return parseFlags(amazonEC2Flags, values, env === undefined ? {} : { env });
}

/**
 * One DescribeInstances per region (and endpoint/credentials) for many machines, filtered by
 * instance id so a missing instance does not fail the batch. Each answer carries the address too
 * (public, or private with --amazonec2-use-private-address / --amazonec2-private-address-only), so
 * a host listing a fleet needs no call per machine.
 */
async function getStates(
  machines: readonly BatchStateRequest<AmazonEC2Config>[],
  clients: Partial<AmazonEC2Clients> | undefined,
  tuning: AmazonEC2Tuning,
  signal?: AbortSignal,
): Promise<Map<string, State | BatchStatus | Error>> {
  const results = new Map<string, State | BatchStatus | Error>();
  const groups = new Map<string, { config: AmazonEC2Config; ids: Map<string, { machine: string; config: AmazonEC2Config }[]> }>();
  for (const { config, context } of machines) {
    const entry = findEntry(context.journal, resourceKinds.instance);
    if (entry === undefined) {
      results.set(context.machineName, new NotFoundError('no EC2 instance is recorded for this machine', { machine: context.machineName, operation: 'getState' }));
      continue;
    }
    const region = entry.region ?? config.region;
    const key = JSON.stringify([region, config.endpoint ?? '', config.accessKey ?? ''], null, 0);
    const group = groups.get(key) ?? { config: { ...config, region }, ids: new Map<string, { machine: string; config: AmazonEC2Config }[]>() };
    group.ids.set(entry.id, [...(group.ids.get(entry.id) ?? []), { machine: context.machineName, config }]);
    groups.set(key, group);
  }
  await Promise.all(
    [...groups.values()].map(async ({ config, ids }) => {
      try {
        const instances = await describeForListing(config, clients, tuning, [...ids.keys()], signal);
        for (const [id, { machine, config: machineConfig }] of [...ids].flatMap(([id, members]) => members.map((member) => [id, member] as const))) {
          const instance = instances.get(id);
          const state = toMachineState(instance?.state);
          if (instance === undefined || state === undefined) {
            results.set(machine, new NotFoundError(`EC2 instance ${id} ${instance === undefined ? 'does not exist' : 'was terminated'}`, { machine, operation: 'getState' }));
            continue;
          }
          const ip = machineConfig.privateAddressOnly || machineConfig.usePrivateAddress ? instance.privateIp : instance.publicIp;
          results.set(machine, ip === undefined || ip === '' ? { state } : { state, ip });
        }
      } catch (error) {
        for (const { machine } of [...ids.values()].flat()) {
          results.set(machine, mapAmazonEC2Error(error, { machine, operation: 'getState', secrets: secretValues(amazonEC2Flags, config) }));
        }
      }
    }),
  );
  return results;
}

/**
 * Loads what `getStates` will use (no API call): the light listing's SDK parts where its endpoint
 * is plain, else the SDK and the shared EC2 client of each config's region and account.
 */
async function prepare(configs: readonly AmazonEC2Config[], clients: Partial<AmazonEC2Clients> | undefined, tuning: AmazonEC2Tuning): Promise<void> {
  await Promise.all(
    configs.map((config) => (lightListing(config, clients, tuning) ? loadFleetListParts() : clientsFor(config, tuning.clientOverrides, clients).ec2()).catch(() => undefined)),
  );
}

/** A listing goes the light way (amazonec2-fleet-list.ts) unless clients or client settings were injected, or the endpoint needs the SDK's rules. */
function lightListing(config: AmazonEC2Config, clients: Partial<AmazonEC2Clients> | undefined, tuning: AmazonEC2Tuning): URL | undefined {
  if (clients !== undefined || Object.keys(tuning.clientOverrides ?? {}).length > 0) return undefined;
  return fleetListEndpoint(config);
}

async function describeForListing(
  config: AmazonEC2Config,
  clients: Partial<AmazonEC2Clients> | undefined,
  tuning: AmazonEC2Tuning,
  ids: readonly string[],
  signal?: AbortSignal,
): Promise<Map<string, ListedInstance>> {
  const endpoint = lightListing(config, clients, tuning);
  if (endpoint !== undefined) return describeInstancesLight(config, endpoint, ids, signal);
  const instances = await describeMany(clientsFor(config, tuning.clientOverrides, clients), ids, signal);
  return new Map(
    [...instances].map(([id, instance]) => [id, { id, state: instance.State?.Name, publicIp: instance.PublicIpAddress, privateIp: instance.PrivateIpAddress }]),
  );
}

async function describeMany(clients: LazyClients, ids: readonly string[], signal?: AbortSignal): Promise<Map<string, Instance>> {
  const { DescribeInstancesCommand } = await loadEC2Sdk();
  const ec2 = await clients.ec2();
  const found = new Map<string, Instance>();
  // EC2 takes at most 200 values per filter.
  for (let start = 0; start < ids.length; start += 200) {
    let nextToken: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: 'instance-id', Values: ids.slice(start, start + 200) }],
          MaxResults: 1000,
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        }),
        signal === undefined ? {} : { abortSignal: signal },
      );
      for (const instance of page.Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
        if (instance.InstanceId !== undefined) found.set(instance.InstanceId, instance);
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined && nextToken !== '');
  }
  return found;
}

/** The amazonec2 driver descriptor. */
const amazonec2: DriverDescriptor<AmazonEC2Config, Partial<AmazonEC2Clients>> = createAmazonEC2Descriptor();
export default amazonec2;
