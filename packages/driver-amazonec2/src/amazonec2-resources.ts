import type { EC2Client, Instance, RunInstancesCommandInput, Tag } from '@aws-sdk/client-ec2';
import { type AnyResourceKind, type FoundResource, NotFoundError, ProviderError, type ResourceCall, type ResourceKind, type ResourceRef, sleep } from '@machine/driver-core';
import { loadEC2Sdk } from './amazonec2-clients.ts';
import { tagSpecifications } from './amazonec2-tags.ts';

/** Journal kinds this driver records (`run-request` only in records of older versions). */
export const resourceKinds = {
  keyPair: 'key-pair',
  securityGroup: 'security-group',
  runRequest: 'run-request',
  spotRequest: 'spot-request',
  instance: 'instance',
} as const;

/** Instance states that still hold their security groups and are not on their way out. */
const usingStates = ['pending', 'running', 'stopping', 'stopped'];
const liveStates = [...usingStates, 'shutting-down'];

/** What the kinds need from the driver's settings. */
export interface AmazonEC2KindSettings {
  region: string;
  /** ms after an instance or group was made in which a NotFound (or an empty lookup) may mean "not visible yet". */
  visibilityTimeout: number;
  /** First delay of the kinds' own polls, ms. */
  pollInterval: number;
  /** ms an instance may take to terminate. */
  terminateTimeout: number;
  /** ms a group may be refused as in use while a terminating instance's interface lets go. */
  dependencyTimeout: number;
}

const codeOf = (error: unknown): string => (error as { name?: string } | null)?.name ?? '';
/** The AWS code of an error or of the one a typed error wraps. */
const hasCode = (error: unknown, codes: readonly string[]): boolean => codes.includes(codeOf(error)) || codes.includes(codeOf((error as { cause?: unknown } | null)?.cause));
/** When a made instance appeared: its launch (recorded at create or found), else when older records journaled it. */
const madeAt = (ref: ResourceRef): string | undefined => ref.meta?.launchedAt ?? (ref as { recordedAt?: string }).recordedAt;

/** Thrown by a terminate that got NotFound inside the visibility window: retried like an in-use refusal. */
class NotVisibleYet extends Error {
  override readonly name = 'NotVisibleYet';
}

/** Until `sinceIso` + the visibility window, polls `look` while it finds nothing (EC2 is eventually consistent). */
async function lookUntilVisible<T>(settings: AmazonEC2KindSettings, sinceIso: string | undefined, look: () => Promise<readonly T[]>): Promise<readonly T[]> {
  const deadline = Date.parse(sinceIso ?? '') + settings.visibilityTimeout;
  let found = await look();
  for (let delay = settings.pollInterval; found.length === 0 && Date.now() < deadline; delay = Math.min(delay * 2, 5000)) {
    await sleep(Math.min(delay, Math.max(deadline - Date.now(), 1)));
    found = await look();
  }
  return found;
}

/** The instances of the region that use a group, in `states`. */
async function instancesUsing(client: EC2Client, groupId: string, states: readonly string[]): Promise<string[]> {
  const { DescribeInstancesCommand } = await loadEC2Sdk();
  const { Reservations = [] } = await client.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance.group-id', Values: [groupId] }, { Name: 'instance-state-name', Values: [...states] }] }),
  );
  return Reservations.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId ?? '');
}

/** The `ClientToken` of the RunInstances an intent stands for: its token first (64 characters at most). */
export function clientTokenOf(call: Pick<ResourceCall, 'token' | 'machineName'>): string {
  return `${call.token}.${call.machineName}`.slice(0, 64);
}

/** What `make(instance)` takes: the launch request, without the token core derives from the intent. */
export type InstanceSpec = Omit<RunInstancesCommandInput, 'ClientToken'>;

/** The resource kinds of an EC2 machine, in create order. */
export function amazonEC2Kinds(settings: AmazonEC2KindSettings): {
  keyPair: ResourceKind<EC2Client, { publicKey: string; tags: Tag[] }>;
  securityGroup: ResourceKind<EC2Client, { name: string; vpcId: string; tags: Tag[] }>;
  instance: ResourceKind<EC2Client, InstanceSpec>;
  spotRequest: ResourceKind<EC2Client>;
  runRequest: ResourceKind<EC2Client>;
  all: readonly AnyResourceKind<EC2Client>[];
} {
  const region = settings.region;
  const mayBeInvisible = (sinceIso: string | undefined) => Date.now() < Date.parse(sinceIso ?? '') + settings.visibilityTimeout;

  const keyPair: ResourceKind<EC2Client, { publicKey: string; tags: Tag[] }> = {
    kind: resourceKinds.keyPair,
    label: 'key pair',
    step: 'import-key',
    describe: (_spec, call) => `importing key pair ${call.machineName}-${call.token}`,
    intent: (_spec, call) => ({ name: `${call.machineName}-${call.token}` }),
    async create(client, spec, call) {
      const { ImportKeyPairCommand } = await loadEC2Sdk();
      const name = `${call.machineName}-${call.token}`;
      const imported = await client.send(
        new ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(spec.publicKey), TagSpecifications: tagSpecifications(['key-pair'], spec.tags) }),
      );
      return { id: imported.KeyPairId ?? name, region, meta: { name } };
    },
    async delete(client, ref) {
      const { DeleteKeyPairCommand } = await loadEC2Sdk();
      await client.send(new DeleteKeyPairCommand(ref.id.startsWith('key-') ? { KeyPairId: ref.id } : { KeyName: ref.meta?.name ?? ref.id }));
    },
    async find(client, query) {
      const { DescribeKeyPairsCommand } = await loadEC2Sdk();
      const name = query.meta?.name;
      if (name === undefined) return [];
      // A call cut off in flight may still land: nothing found is not trusted inside the visibility window.
      return lookUntilVisible(settings, query.meta?.at, async () => {
        const { KeyPairs = [] } = await client.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }));
        return KeyPairs.map((key) => ({ id: key.KeyPairId ?? name, region, name, meta: { name } }));
      });
    },
    // The name carries the intent's token: a duplicate is this call's own key, imported by a retry whose first reply was lost.
    errors: { exists: (error) => hasCode(error, ['InvalidKeyPair.Duplicate']) },
  };

  const securityGroup: ResourceKind<EC2Client, { name: string; vpcId: string; tags: Tag[] }> = {
    kind: resourceKinds.securityGroup,
    label: 'security group',
    step: 'security-group',
    deleteAfter: [resourceKinds.instance, resourceKinds.runRequest],
    timeouts: { delete: settings.dependencyTimeout },
    describe: (spec) => `creating security group ${spec.name} in ${spec.vpcId}`,
    intent: (spec) => ({ name: spec.name, vpcId: spec.vpcId }),
    async create(client, spec) {
      const { CreateSecurityGroupCommand } = await loadEC2Sdk();
      const made = await client.send(
        new CreateSecurityGroupCommand({
          GroupName: spec.name,
          Description: 'machine: SSH and Docker TLS access',
          VpcId: spec.vpcId,
          TagSpecifications: tagSpecifications(['security-group'], [...spec.tags.filter((tag) => tag.Key !== 'Name'), { Key: 'Name', Value: spec.name }]),
        }),
      );
      if (made.GroupId === undefined) throw new ProviderError('CreateSecurityGroup returned no group id');
      return { id: made.GroupId, region, meta: { name: spec.name } };
    },
    /**
     * Deletes the group unless a live instance (another machine's) still uses it: then it is
     * that machine's to delete. Terminating instances do not count: EC2 refuses with
     * `InvalidGroup.InUse` / `DependencyViolation` until their interfaces let go (minutes), retried.
     */
    async delete(client, ref) {
      if ((await instancesUsing(client, ref.id, usingStates)).length > 0) return;
      const { DeleteSecurityGroupCommand } = await loadEC2Sdk();
      await client.send(new DeleteSecurityGroupCommand({ GroupId: ref.id }));
    },
    usedBy: (client, ref) => instancesUsing(client, ref.id, usingStates),
    // The raced group of a concurrent create (`InvalidGroup.Duplicate`): it may not show for a moment.
    async find(client, query) {
      const { DescribeSecurityGroupsCommand } = await loadEC2Sdk();
      const { name, vpcId } = query.meta ?? {};
      if (name === undefined || vpcId === undefined) return [];
      return lookUntilVisible(settings, query.meta?.at ?? new Date().toISOString(), async () => {
        const { SecurityGroups = [] } = await client.send(
          new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }, { Name: 'vpc-id', Values: [vpcId] }] }),
        );
        return SecurityGroups.filter((group) => group.GroupId !== undefined).map((group) => ({ id: group.GroupId ?? '', region, name, meta: { name } }));
      });
    },
    errors: {
      exists: (error) => hasCode(error, ['InvalidGroup.Duplicate']),
      inUse: (error) => hasCode(error, ['DependencyViolation', 'InvalidGroup.InUse']),
    },
  };

  const foundInstance = (instance: Instance): FoundResource => ({
    id: instance.InstanceId ?? '',
    region,
    ...(instance.LaunchTime instanceof Date ? { createdAt: instance.LaunchTime } : {}),
    meta: {
      launchedAt: (instance.LaunchTime instanceof Date ? instance.LaunchTime : new Date()).toISOString(),
      ...(instance.SpotInstanceRequestId === undefined ? {} : { spotRequestId: instance.SpotInstanceRequestId }),
    },
  });

  /** Terminates; a NotFound inside the visibility window is "not visible yet" (retried), later it is gone. */
  const terminate = async (client: EC2Client, ref: ResourceRef, since: string | undefined): Promise<void> => {
    const { TerminateInstancesCommand, CancelSpotInstanceRequestsCommand } = await loadEC2Sdk();
    try {
      await client.send(new TerminateInstancesCommand({ InstanceIds: [ref.id] }));
    } catch (error) {
      if (codeOf(error) !== 'InvalidInstanceID.NotFound') throw error;
      if (mayBeInvisible(since)) throw new NotVisibleYet(`instance ${ref.id} is not visible yet (EC2 is eventually consistent)`);
      throw new NotFoundError(`instance ${ref.id} is gone`);
    }
    // A lost RunInstances reply left no spot-request record: the found instance names it.
    const spot = ref.meta?.spotRequestId;
    if (spot !== undefined) await client.send(new CancelSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [spot] })).catch(() => undefined);
  };

  const isTerminated = async (client: EC2Client, ids: readonly string[], since: string | undefined): Promise<boolean> => {
    const { DescribeInstancesCommand } = await loadEC2Sdk();
    try {
      const { Reservations = [] } = await client.send(new DescribeInstancesCommand({ InstanceIds: [...ids] }));
      const states = Reservations.flatMap((r) => r.Instances ?? []).map((i) => i.State?.Name);
      return states.length > 0 && states.every((state) => state === 'terminated');
    } catch (error) {
      // No longer listed: gone, unless it may just not show yet.
      if (codeOf(error) === 'InvalidInstanceID.NotFound') return !mayBeInvisible(since);
      throw error;
    }
  };

  const instance: ResourceKind<EC2Client, InstanceSpec> = {
    kind: resourceKinds.instance,
    label: 'instance',
    step: 'create-instance',
    timeouts: { delete: settings.terminateTimeout },
    describe: (spec) => `launching a ${String(spec.InstanceType)}${spec.InstanceMarketOptions === undefined ? '' : ' spot'} instance`,
    async create(client, spec, call) {
      const { RunInstancesCommand } = await loadEC2Sdk();
      const launchedAt = new Date().toISOString();
      // The same ClientToken on every retry: EC2 answers a repeat with the first launch, never a twin.
      const reply = await client.send(new RunInstancesCommand({ ...spec, ClientToken: clientTokenOf(call) }));
      const made = reply.Instances?.[0];
      if (made?.InstanceId === undefined) throw new ProviderError('RunInstances returned no instance');
      const spot = made.SpotInstanceRequestId;
      return {
        id: made.InstanceId,
        region,
        meta: { launchedAt },
        ...(spot === undefined ? {} : { also: [{ kind: resourceKinds.spotRequest, ref: { id: spot, region } }] }),
      };
    },
    delete: (client, ref) => terminate(client, ref, madeAt(ref)),
    isGone: (client, ref) => isTerminated(client, [ref.id], madeAt(ref)),
    /** What a RunInstances whose reply was lost made, by its client token; an empty answer is not trusted inside the visibility window. */
    async find(client, query) {
      const { DescribeInstancesCommand } = await loadEC2Sdk();
      if (query.token === undefined || query.machineName === undefined) return [];
      const token = clientTokenOf({ token: query.token, machineName: query.machineName });
      return lookUntilVisible(settings, query.meta?.at, async () => {
        const { Reservations = [] } = await client.send(
          new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: [token] }, { Name: 'instance-state-name', Values: liveStates }] }),
        );
        return Reservations.flatMap((r) => r.Instances ?? []).map(foundInstance);
      });
    },
    errors: { inUse: (error) => error instanceof NotVisibleYet || (error as { cause?: unknown })?.cause instanceof NotVisibleYet },
  };

  const spotRequest: ResourceKind<EC2Client> = {
    kind: resourceKinds.spotRequest,
    label: 'spot request',
    async delete(client, ref) {
      const { CancelSpotInstanceRequestsCommand } = await loadEC2Sdk();
      await client.send(new CancelSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [ref.id] }));
    },
  };

  /** Records of older versions: a RunInstances client token journaled before the call. */
  const runRequest: ResourceKind<EC2Client> = {
    kind: resourceKinds.runRequest,
    label: 'launch request',
    timeouts: { delete: settings.terminateTimeout },
    async delete(client, ref) {
      const { DescribeInstancesCommand } = await loadEC2Sdk();
      const since = (ref as { recordedAt?: string }).recordedAt;
      const found = await lookUntilVisible(settings, since, async () => {
        const { Reservations = [] } = await client.send(
          new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: [ref.id] }, { Name: 'instance-state-name', Values: liveStates }] }),
        );
        return Reservations.flatMap((r) => r.Instances ?? []).map(foundInstance);
      });
      for (const made of found) await terminate(client, made, since);
      if (found.length > 0 && !(await waitTerminated(client, found, since))) throw new NotVisibleYet(`instance ${found.map((f) => f.id).join(', ')} is still terminating`);
    },
    errors: instance.errors ?? {},
  };

  const waitTerminated = async (client: EC2Client, found: readonly FoundResource[], since: string | undefined): Promise<boolean> => {
    const deadline = Date.now() + settings.terminateTimeout;
    for (let delay = settings.pollInterval; Date.now() < deadline; delay = Math.min(delay * 2, 5000)) {
      if (await isTerminated(client, found.map((f) => f.id), since)) return true;
      await sleep(delay);
    }
    return false;
  };

  return { keyPair, securityGroup, instance, spotRequest, runRequest, all: [keyPair, securityGroup, instance, spotRequest, runRequest] };
}
