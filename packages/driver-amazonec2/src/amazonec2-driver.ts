import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EC2Client, Instance, SecurityGroup } from '@aws-sdk/client-ec2';
import {
  CapacityError,
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  type FirewallRule,
  findEntry,
  InvalidConfigError,
  NotFoundError,
  type OperationOptions,
  type ProgressEvent,
  ProviderError,
  type ResourceModel,
  type ResourceRunner,
  removeResources,
  type State,
  secretValues,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { AmazonEC2ClientOverrides, AmazonEC2Clients } from './amazonec2-clients.ts';
import { clientsFor, type LazyClients, loadEC2Sdk } from './amazonec2-clients.ts';
import { amazonEC2ErrorMapper, mapWaiterError } from './amazonec2-errors.ts';
import { type AmazonEC2Config, amazonEC2Flags } from './amazonec2-flags.ts';
import { checkFlags, launchUserData, loadUserKey } from './amazonec2-local-inputs.ts';
import { type LaunchPlan, launchSpec, resolveLaunchPlan } from './amazonec2-plan.ts';
import { amazonEC2Kinds, resourceKinds } from './amazonec2-resources.ts';
import { missingPermissions } from './amazonec2-security-group.ts';
import { toMachineState } from './amazonec2-state.ts';
import { machineTags, managedByTag, managedByValue } from './amazonec2-tags.ts';

export { userDataLimitBytes } from './amazonec2-local-inputs.ts';
export { resourceKinds } from './amazonec2-resources.ts';

/** Tuning a host or test may pass: SDK waiter delays (seconds, fractions allowed), SSH and cleanup polling. */
export interface AmazonEC2Tuning {
  /** Client settings added to the flags' (e.g. a fast `retryStrategy` in tests). */
  clientOverrides?: AmazonEC2ClientOverrides;
  /** SDK waiter delays in seconds; defaults {@link defaultWaiterDelays}. */
  waiterDelays?: { minDelay: number; maxDelay: number };
  /** First and largest delay between SSH tries, ms. */
  sshPoll?: { interval: number; maxInterval: number };
  /**
   * How long DeleteSecurityGroup retries `DependencyViolation` / `InvalidGroup.InUse` while a
   * terminating instance's interface lets go of the group, ms (default 300 000: EC2 takes minutes).
   */
  dependencyTimeout?: number;
  /**
   * How long after an instance (or a RunInstances intent) was made a `NotFound` — or an empty
   * client-token lookup — may still mean "not visible yet" rather than "gone", ms (default 180 000).
   * EC2 is eventually consistent: AWS says to back off from seconds up to minutes.
   */
  visibilityTimeout?: number;
}

/**
 * The instance waiters' delays, seconds: the first poll at once, the next after 0.25 s, doubling
 * (with the SDK's jitter) up to 2 s. The SDK's own 5 s minimum made create notice a running
 * instance up to 5 s late. Even at 2 s a machine polls DescribeInstances 0.5 times a second, so
 * about 40 creates at once stay within EC2's documented refill of 20 non-mutating calls a second
 * per account (bucket 100).
 */
export const defaultWaiterDelays = { minDelay: 0.25, maxDelay: 2 } as const;

const privateKeyFile = 'id_ed25519';
const userKeyFile = 'id_user';

/**
 * The amazonec2 driver: a thin mapping of the Driver operations onto EC2 API calls. What create
 * makes is declared as resource kinds (amazonec2-resources.ts): driver-core journals an intent
 * before each create call and runs rollback and remove.
 */
export class AmazonEC2Driver implements Driver {
  readonly driverName = 'amazonec2';
  readonly #config: AmazonEC2Config;
  readonly #context: DriverContext;
  readonly #clients: LazyClients;
  readonly #tuning: AmazonEC2Tuning;
  readonly #kinds: ReturnType<typeof amazonEC2Kinds>;
  readonly #model: ResourceModel<EC2Client>;
  #plan: Promise<LaunchPlan> | undefined;

  constructor(config: AmazonEC2Config, context: DriverContext, clients?: Partial<AmazonEC2Clients>, tuning: AmazonEC2Tuning = {}) {
    // A machine's resources live in the region it was created in, whatever the flags say later.
    const recorded = context.journal.entries().find((entry) => entry.region !== undefined)?.region;
    this.#config = recorded === undefined || recorded === config.region ? config : { ...config, region: recorded };
    this.#context = context;
    this.#tuning = tuning;
    this.#clients = clientsFor(this.#config, tuning.clientOverrides, clients);
    this.#kinds = amazonEC2Kinds({
      region: this.#config.region,
      visibilityTimeout: tuning.visibilityTimeout ?? 180_000,
      pollInterval: this.#pollInterval(),
      terminateTimeout: this.#config.waitTimeout * 1000,
      dependencyTimeout: tuning.dependencyTimeout ?? 300_000,
    });
    this.#model = {
      kinds: this.#kinds.all,
      client: () => this.#clients.ec2(),
      poll: { interval: this.#pollInterval(), maxInterval: (tuning.waiterDelays?.maxDelay ?? 10) * 1000 },
      mapError: (error, where) => amazonEC2ErrorMapper(secretValues(amazonEC2Flags, this.#config))(error, where),
    };
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    checkFlags(this.#config, this.machineName);
    await launchUserData(this.#config);
    if (this.#config.sshKeypath !== undefined) await loadUserKey(this.#config);
    this.#plan = resolveLaunchPlan(this.#clients, this.#config, options.signal);
    try {
      await this.#plan;
    } catch (error) {
      this.#plan = undefined;
      throw error;
    }
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { signal, boot } = options;
    const rules = checkFlags(this.#config, this.machineName);
    const userData = await launchUserData(this.#config, boot);
    await createResources(this.#model, this.#context, options, async (run) => {
      this.#progress('plan', 'start', `resolving subnet and AMI in ${this.#config.region}`);
      const plan = await (this.#plan ?? resolveLaunchPlan(this.#clients, this.#config, signal));
      this.#plan = undefined;
      this.#progress('plan', 'done', `subnet ${plan.subnetId} (${plan.availabilityZone}), AMI ${plan.imageId}, root ${plan.rootDeviceName}`);
      throwIfAborted(signal);
      const keyName = await this.#setUpKey(run);
      const groupIds = await this.#setUpSecurityGroups(run, plan.vpcId, rules, signal);
      const tags = this.#tags();
      const instance = await run.make(this.#kinds.instance, launchSpec(this.#config, plan, { keyName, groupIds, userData, tags }));
      await this.#context.data.write({ instanceId: instance.id, region: this.#config.region });
      const ip = await this.#waitForAddress(await this.#waitForInstance('running', instance.id, signal), signal);
      await this.#context.data.write({ ip });
      // The host key the boot user data installs is pinned from the first connection.
      const fingerprint = await this.#waitForSSH(ip, signal, boot?.hostKeyFingerprint);
      await this.#context.data.write({ hostKeyFingerprint: fingerprint });
    });
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    this.#progress('remove', 'start', `deleting what ${this.machineName} made`);
    await removeResources(this.#model, this.#context, options);
    this.#progress('remove', 'done', `${this.machineName} is gone`);
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const id = this.#instanceId('start');
    const { signal } = options;
    const { StartInstancesCommand } = await loadEC2Sdk();
    const send = async () => (await this.#ec2()).send(new StartInstancesCommand({ InstanceIds: [id] }), abortOptions(signal));
    try {
      await send();
    } catch (error) {
      // Started right after a stop: EC2 refuses while the instance is still `stopping`. Wait for `stopped`, then start.
      if ((error as { name?: string }).name !== 'IncorrectInstanceState' || (await this.#describe('start', signal)).State?.Name !== 'stopping') throw error;
      this.#progress('start', 'info', `${id} is still stopping; starting it once it has stopped`);
      await this.#waitForInstance('stopped', id, signal);
      await send();
    }
    const ip = await this.#waitForAddress(await this.#waitForInstance('running', id, signal), signal);
    await this.#context.data.write({ ip });
    await this.#waitForSSH(ip, signal);
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    await this.#stop(false, 'stop', options.signal);
  }

  async kill(options: OperationOptions = {}): Promise<void> {
    await this.#stop(true, 'kill', options.signal);
  }

  async restart(options: OperationOptions = {}): Promise<void> {
    const id = this.#instanceId('restart');
    const { RebootInstancesCommand } = await loadEC2Sdk();
    await (await this.#ec2()).send(new RebootInstancesCommand({ InstanceIds: [id] }), abortOptions(options.signal));
    const running = await this.#waitForInstance('running', id, options.signal);
    await this.#waitForSSH(await this.#waitForAddress(running, options.signal), options.signal);
  }

  async getState(options: OperationOptions = {}): Promise<State> {
    const instance = await this.#describe('getState', options.signal);
    const state = toMachineState(instance.State?.Name);
    if (state === undefined) throw this.#gone(instance.InstanceId ?? '', 'getState');
    return state;
  }

  async getIP(options: OperationOptions = {}): Promise<string> {
    const instance = await this.#describe('getIP', options.signal);
    if (toMachineState(instance.State?.Name) === undefined) throw this.#gone(instance.InstanceId ?? '', 'getIP');
    const ip = this.#addressOf(instance);
    if (ip !== this.#context.data.read().ip) await this.#context.data.write({ ip });
    return ip;
  }

  async getSSHHostname(options: OperationOptions = {}): Promise<string> {
    return this.getIP(options);
  }

  async getSSHPort(): Promise<number> {
    return this.#config.sshPort;
  }

  getSSHUsername(): string {
    return this.#config.sshUser;
  }

  getSSHKeyPath(): string {
    const recorded = this.#context.data.read().sshKeyPath;
    return typeof recorded === 'string' ? recorded : join(this.#context.machineDir, privateKeyFile);
  }

  async getURL(options: OperationOptions = {}): Promise<string> {
    return `tcp://${await this.getIP(options)}:2376`;
  }

  // ---- create steps ----

  /** Writes the machine's private key and imports its public half (unless the user named an existing key pair). */
  async #setUpKey(run: ResourceRunner<EC2Client>): Promise<string> {
    const { machineDir } = this.#context;
    let publicKey: string;
    if (this.#config.sshKeypath !== undefined) {
      const key = await loadUserKey(this.#config);
      await mkdir(machineDir, { recursive: true, mode: 0o700 });
      const path = join(machineDir, userKeyFile);
      await writeFile(path, key.privateKey, { mode: 0o600 });
      await this.#context.data.write({ sshKeyPath: path });
      publicKey = key.publicKey;
    } else {
      const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
      const keyPair = generateSSHKeyPair({ comment: this.machineName });
      await this.#context.data.write({ sshKeyPath: await writeSSHKeyPair(machineDir, keyPair, privateKeyFile) });
      publicKey = keyPair.publicKey;
    }
    const named = this.#config.keypairName;
    if (named !== undefined) return (await run.adopt(this.#kinds.keyPair, { id: named, region: this.#config.region, meta: { name: named } })).id;
    const imported = await run.make(this.#kinds.keyPair, { publicKey, tags: this.#tags() });
    return imported.meta?.name ?? imported.id;
  }

  /**
   * Finds or makes each named group; adds the missing ingress rules unless read-only. A group an
   * earlier machine create made (our tag) is shared: whichever machine is removed last deletes it.
   * Groups made by anyone else, and read-only ones, are never deleted.
   */
  async #setUpSecurityGroups(run: ResourceRunner<EC2Client>, vpcId: string, rules: FirewallRule[], signal?: AbortSignal): Promise<string[]> {
    const names = this.#config.securityGroups;
    const readonly = this.#config.securityGroupReadonly;
    this.#progress('security-group', 'start', `security groups ${names.join(', ')} in ${vpcId}`);
    const found = await this.#describeGroups(vpcId, names, signal);
    const ids: string[] = [];
    for (const name of names) {
      const existing = found.find((candidate) => candidate.GroupName === name && candidate.GroupId !== undefined);
      let group: SecurityGroup;
      if (existing !== undefined) {
        const shared = !readonly && existing.Tags?.some((tag) => tag.Key === managedByTag && tag.Value === managedByValue) === true;
        await run.adopt(this.#kinds.securityGroup, { id: existing.GroupId ?? '', region: this.#config.region, meta: { name } }, { shared });
        group = existing;
      } else {
        if (readonly) throw new InvalidConfigError([{ flag: 'amazonec2-security-group-readonly', message: `security group ${name} does not exist in ${vpcId}, and read-only groups are not made` }]);
        // A concurrent create that made it first (InvalidGroup.Duplicate) is adopted as shared by core.
        const made = await run.make(this.#kinds.securityGroup, { name, vpcId, tags: this.#tags() });
        await this.#waitForGroup(made.id, signal);
        group = { GroupId: made.id, GroupName: name, IpPermissions: [] };
      }
      if (!readonly) await this.#authorize(vpcId, group, rules, signal);
      ids.push(group.GroupId ?? '');
    }
    this.#progress('security-group', 'done', `security groups ${ids.join(', ')}`);
    return ids;
  }

  async #describeGroups(vpcId: string, names: readonly string[], signal?: AbortSignal): Promise<SecurityGroup[]> {
    const { DescribeSecurityGroupsCommand } = await loadEC2Sdk();
    const { SecurityGroups = [] } = await (await this.#ec2()).send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [...names] }, { Name: 'vpc-id', Values: [vpcId] }] }),
      abortOptions(signal),
    );
    return SecurityGroups;
  }

  /**
   * Waits until a group just made shows by id (EC2 is eventually consistent: `InvalidGroup.NotFound`
   * meanwhile). Its own poll, from half a second, not the SDK waiter's 5 s first delay.
   */
  async #waitForGroup(groupId: string, signal?: AbortSignal): Promise<void> {
    const { DescribeSecurityGroupsCommand } = await loadEC2Sdk();
    await waitFor(
      async () => {
        try {
          await (await this.#ec2()).send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }), abortOptions(signal));
          return { done: true, value: undefined };
        } catch (error) {
          if ((error as { name?: string }).name === 'InvalidGroup.NotFound') return { done: false, reason: 'not visible yet' };
          throw error;
        }
      },
      { interval: this.#pollInterval(), maxInterval: 5000, timeout: 60_000, description: `security group ${groupId} to exist`, machine: this.machineName, ...(signal === undefined ? {} : { signal }) },
    );
  }

  /** Adds the rules the group lacks; if another create added some meanwhile, looks again once. */
  async #authorize(vpcId: string, group: SecurityGroup, rules: FirewallRule[], signal?: AbortSignal): Promise<void> {
    const { AuthorizeSecurityGroupIngressCommand } = await loadEC2Sdk();
    const description = `machine ${this.machineName}`;
    let current: SecurityGroup | undefined = group;
    for (let attempt = 1; attempt <= 2 && current !== undefined; attempt++) {
      const permissions = missingPermissions(current, rules, description);
      if (permissions.length === 0) return;
      try {
        await (await this.#ec2()).send(new AuthorizeSecurityGroupIngressCommand({ GroupId: group.GroupId, IpPermissions: permissions }), abortOptions(signal));
        return;
      } catch (error) {
        if ((error as { name?: string }).name !== 'InvalidPermission.Duplicate' || attempt === 2) throw error;
        [current] = (await this.#describeGroups(vpcId, [group.GroupName ?? ''], signal)).filter((candidate) => candidate.GroupId === group.GroupId);
      }
    }
  }

  async #waitForSSH(ip: string, signal?: AbortSignal, expectedHostKey?: string): Promise<string> {
    const { waitForSSH } = await import('@machine/driver-core/ssh');
    const pinned = expectedHostKey ?? this.#context.data.read().hostKeyFingerprint;
    const privateKey = await readFile(this.getSSHKeyPath(), 'utf8');
    return waitForSSH(
      {
        host: ip,
        port: this.#config.sshPort,
        username: this.#config.sshUser,
        privateKey,
        machine: this.machineName,
        ...(typeof pinned === 'string' ? { hostKeyFingerprint: pinned } : {}),
      },
      {
        timeout: this.#config.waitTimeout * 1000,
        ...(this.#tuning.sshPoll ?? {}),
        ...(signal === undefined ? {} : { signal }),
        ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
      },
    );
  }

  // ---- lifecycle helpers ----

  async #stop(force: boolean, operation: string, signal?: AbortSignal): Promise<void> {
    const id = this.#instanceId(operation);
    const { StopInstancesCommand } = await loadEC2Sdk();
    await (await this.#ec2()).send(new StopInstancesCommand({ InstanceIds: [id], Force: force }), abortOptions(signal));
    await this.#waitForInstance('stopped', id, signal);
  }

  /**
   * Waits with the SDK's waiter; returns the instance as the last poll saw it. When the instance
   * reaches a state it cannot leave (a launch that went `pending → terminated`), the error says
   * why, from the instance's `StateReason`.
   */
  async #waitForInstance(wanted: 'running' | 'stopped', instanceId: string, signal?: AbortSignal): Promise<Instance> {
    const sdk = await loadEC2Sdk();
    const waiter = wanted === 'running' ? sdk.waitUntilInstanceRunning : sdk.waitUntilInstanceStopped;
    const timeout = this.#config.waitTimeout;
    this.#progress(`wait-${wanted}`, 'start', `waiting for ${instanceId} to be ${wanted}`);
    const result = await this.#wait(
      async () => waiter(await this.#waiterParams(signal, timeout), { InstanceIds: [instanceId] }),
      `instance ${instanceId} to be ${wanted}`,
      timeout,
    ).catch(async (error: unknown) => {
      if (!ProviderError.isInstance(error)) throw error;
      throw (await this.#stateReasonError(instanceId, wanted, signal)) ?? error;
    });
    this.#progress(`wait-${wanted}`, 'done', `${instanceId} is ${wanted}`);
    const instances = (result.final?.Reservations ?? []).flatMap((reservation) => reservation.Instances ?? []);
    return instances.find((instance) => instance.InstanceId === instanceId) ?? { InstanceId: instanceId };
  }

  /** The typed error for an instance that died on the way to `wanted`, from its `StateReason`; undefined if it has none. */
  async #stateReasonError(instanceId: string, wanted: string, signal?: AbortSignal): Promise<Error | undefined> {
    const instance = await this.#describe('wait', signal).catch(() => undefined);
    const reason = instance?.StateReason;
    if (reason?.Code === undefined) return undefined;
    const detail = `instance ${instanceId} went ${instance?.State?.Name ?? 'away'} instead of ${wanted}: ${reason.Message ?? reason.Code}`;
    const where = { machine: this.machineName, operation: 'wait', providerCode: reason.Code };
    if (/InsufficientInstanceCapacity|InsufficientCapacity/.test(reason.Code)) {
      return new CapacityError(detail, { ...where, hint: 'EC2 had no capacity for this instance type in this zone: try another zone (--amazonec2-zone) or instance type, or later' });
    }
    return new ProviderError(detail, where);
  }

  /**
   * The address of a running instance. EC2 may report `running` before the public IP is
   * assigned: then the instance is polled until it has one (up to the wait timeout).
   */
  async #waitForAddress(instance: Instance, signal?: AbortSignal): Promise<string> {
    if (this.#config.privateAddressOnly || this.#config.usePrivateAddress || (instance.PublicIpAddress ?? '') !== '') return this.#addressOf(instance);
    const id = instance.InstanceId ?? '';
    this.#progress('wait-ip', 'start', `waiting for ${id} to get its public IP`);
    const ip = await waitFor(
      async () => {
        const current = await this.#describe('wait', signal);
        if ((current.PublicIpAddress ?? '') !== '') return { done: true, value: current.PublicIpAddress ?? '' };
        if (current.State?.Name !== 'running') return { done: true, value: this.#addressOf(current) };
        return { done: false, reason: 'running without a public IP yet' };
      },
      {
        interval: this.#pollInterval(),
        maxInterval: 5000,
        timeout: this.#config.waitTimeout * 1000,
        description: `instance ${id} to get a public IP (the subnet may not assign public addresses; use --amazonec2-use-private-address from inside the VPC)`,
        machine: this.machineName,
        ...(signal === undefined ? {} : { signal }),
      },
    );
    this.#progress('wait-ip', 'done', `${id} has public IP ${ip}`);
    return ip;
  }

  /** First delay of the driver's own polls, ms: the waiters' `minDelay`, at most half a second. */
  #pollInterval(): number {
    return Math.min((this.#tuning.waiterDelays?.minDelay ?? defaultWaiterDelays.minDelay) * 1000, 500);
  }

  async #waiterParams(signal: AbortSignal | undefined, maxWaitTime: number) {
    return {
      client: await this.#ec2(),
      maxWaitTime,
      minDelay: this.#tuning.waiterDelays?.minDelay ?? defaultWaiterDelays.minDelay,
      maxDelay: this.#tuning.waiterDelays?.maxDelay ?? defaultWaiterDelays.maxDelay,
      ...(signal === undefined ? {} : { abortSignal: signal }),
    };
  }

  async #wait<T>(run: () => Promise<T>, what: string, timeoutSeconds: number): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw mapWaiterError(error, what, { machine: this.machineName, operation: 'wait', timeoutSeconds });
    }
  }

  #addressOf(instance: Instance): string {
    const usePrivate = this.#config.privateAddressOnly || this.#config.usePrivateAddress;
    const ip = usePrivate ? instance.PrivateIpAddress : instance.PublicIpAddress;
    if (ip === undefined || ip === '') {
      const state = instance.State?.Name;
      if (state !== undefined && state !== 'running' && state !== 'pending') {
        throw new ProviderError(`instance ${instance.InstanceId} is ${state} and has no address`, { hint: '`machine start` it first' });
      }
      throw new ProviderError(
        `instance ${instance.InstanceId} has no ${usePrivate ? 'private' : 'public'} IP address`,
        usePrivate ? {} : { hint: 'the subnet may not assign public addresses; use --amazonec2-use-private-address from inside the VPC' },
      );
    }
    return ip;
  }

  #instanceId(operation: string): string {
    const entry = findEntry(this.#context.journal, resourceKinds.instance);
    if (entry === undefined) throw new NotFoundError('no EC2 instance is recorded for this machine', { machine: this.machineName, operation });
    return entry.id;
  }

  #gone(instanceId: string, operation: string): NotFoundError {
    return new NotFoundError(`EC2 instance ${instanceId} was terminated`, { machine: this.machineName, operation, resource: 'instance' });
  }

  async #describe(operation: string, signal?: AbortSignal): Promise<Instance> {
    const id = this.#instanceId(operation);
    const { DescribeInstancesCommand } = await loadEC2Sdk();
    try {
      const { Reservations = [] } = await (await this.#ec2()).send(new DescribeInstancesCommand({ InstanceIds: [id] }), abortOptions(signal));
      const instance = Reservations.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
      if (instance === undefined) throw this.#gone(id, operation);
      return instance;
    } catch (error) {
      if ((error as { name?: string }).name === 'InvalidInstanceID.NotFound') {
        throw new NotFoundError(`EC2 instance ${id} does not exist`, { machine: this.machineName, operation, resource: 'instance', cause: error });
      }
      throw error;
    }
  }

  #ec2(): Promise<EC2Client> {
    return this.#clients.ec2();
  }

  #tags() {
    return machineTags(this.machineName, this.#config.tags);
  }

  #progress(step: string, phase: ProgressEvent['phase'], message: string): void {
    this.#context.onProgress?.({ step, phase, message });
  }
}

function abortOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}
