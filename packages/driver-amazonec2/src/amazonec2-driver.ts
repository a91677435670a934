import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EC2Client, Instance, RunInstancesCommandInput, SecurityGroup } from '@aws-sdk/client-ec2';
import {
  type BootConfig,
  CapacityError,
  type CreateOptions,
  cleanupJournal,
  combineUserData,
  createWithCleanup,
  type Driver,
  type DriverContext,
  type FirewallRule,
  findEntry,
  InvalidConfigError,
  type JournalEntry,
  machineFirewallRules,
  NotFoundError,
  type OperationOptions,
  type ProgressEvent,
  ProviderError,
  type ResourceDeleter,
  type State,
  sleep,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { AmazonEC2ClientOverrides, AmazonEC2Clients } from './amazonec2-clients.ts';
import { LazyClients, loadEC2Sdk } from './amazonec2-clients.ts';
import { mapWaiterError } from './amazonec2-errors.ts';
import { type AmazonEC2Config, crossFlagProblems } from './amazonec2-flags.ts';
import { type LaunchPlan, resolveImage, resolveImageId, resolveNetwork } from './amazonec2-plan.ts';
import { missingPermissions } from './amazonec2-security-group.ts';
import { toMachineState } from './amazonec2-state.ts';
import { machineTags, managedByTag, managedByValue, tagSpecifications } from './amazonec2-tags.ts';

/** Journal kinds this driver records. */
export const resourceKinds = {
  keyPair: 'key-pair',
  securityGroup: 'security-group',
  runRequest: 'run-request',
  spotRequest: 'spot-request',
  instance: 'instance',
} as const;

/** Tuning a host or test may pass: SDK waiter delays (seconds, fractions allowed), SSH and cleanup polling. */
export interface AmazonEC2Tuning {
  /** Client settings added to the flags' (e.g. a fast `retryStrategy` in tests). */
  clientOverrides?: AmazonEC2ClientOverrides;
  /** SDK waiter delays in seconds; defaults 5 and 30. */
  waiterDelays?: { minDelay: number; maxDelay: number };
  /** First and largest delay between SSH tries, ms. */
  sshPoll?: { interval: number; maxInterval: number };
  /**
   * How long DeleteSecurityGroup retries `DependencyViolation` / `InvalidGroup.InUse` while a
   * terminating instance's interface lets go of the group, ms (default 300 000: EC2 takes minutes).
   */
  dependencyTimeout?: number;
  /**
   * How long after an instance (or a RunInstances intent) was recorded a `NotFound` — or an empty
   * client-token lookup — may still mean "not visible yet" rather than "gone", ms (default 180 000).
   * EC2 is eventually consistent: AWS says to back off from seconds up to minutes.
   */
  visibilityTimeout?: number;
}

/** EC2's user-data limit: 16 KiB of raw text (before base64). */
export const userDataLimitBytes = 16 * 1024;

const liveStates = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];
/** States of an instance that still holds its security groups and is not on its way out. */
const usingStates = ['pending', 'running', 'stopping', 'stopped'];
/** RunInstances refusals that certainly made no instance: the client-token intent can go at once. */
const refusedLaunchCodes = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'InsufficientHostCapacity', 'RequestLimitExceeded']);
const privateKeyFile = 'id_ed25519';
const userKeyFile = 'id_user';

/** The amazonec2 driver: a thin mapping of the Driver operations onto EC2 API calls. */
export class AmazonEC2Driver implements Driver {
  readonly driverName = 'amazonec2';
  readonly #config: AmazonEC2Config;
  readonly #context: DriverContext;
  readonly #clients: LazyClients;
  readonly #tuning: AmazonEC2Tuning;
  #plan: Promise<LaunchPlan> | undefined;

  constructor(config: AmazonEC2Config, context: DriverContext, clients?: Partial<AmazonEC2Clients>, tuning: AmazonEC2Tuning = {}) {
    // A machine's resources live in the region it was created in, whatever the flags say later.
    const recorded = context.journal.entries().find((entry) => entry.region !== undefined)?.region;
    this.#config = recorded === undefined || recorded === config.region ? config : { ...config, region: recorded };
    this.#context = context;
    this.#tuning = tuning;
    this.#clients = new LazyClients(this.#config, tuning.clientOverrides, clients);
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    this.#checkFlags();
    await this.#userData();
    if (this.#config.sshKeypath !== undefined) await this.#loadUserKey();
    this.#plan = this.#resolvePlan(options.signal);
    try {
      await this.#plan;
    } catch (error) {
      this.#plan = undefined;
      throw error;
    }
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { signal, boot } = options;
    this.#checkFlags();
    const rules = this.#rules();
    const userData = await this.#userData(boot);
    const { journal } = this.#context;
    await createWithCleanup(
      journal,
      async () => {
        this.#progress('plan', 'start', `resolving subnet and AMI in ${this.#config.region}`);
        const plan = await (this.#plan ?? this.#resolvePlan(signal));
        this.#plan = undefined;
        this.#progress('plan', 'done', `subnet ${plan.subnetId} (${plan.availabilityZone}), AMI ${plan.imageId}, root ${plan.rootDeviceName}`);
        throwIfAborted(signal);
        const keyName = await this.#setUpKey(signal);
        throwIfAborted(signal);
        const groupIds = await this.#setUpSecurityGroups(plan.vpcId, rules, signal);
        throwIfAborted(signal);
        const instance = await this.#runInstance(plan, keyName, groupIds, userData, signal);
        const ip = await this.#waitForAddress(await this.#waitForInstance('running', instance, signal), signal);
        await this.#context.data.write({ ip });
        // The host key the boot user data installs is pinned from the first connection.
        const fingerprint = await this.#waitForSSH(ip, signal, boot?.hostKeyFingerprint);
        await this.#context.data.write({ hostKeyFingerprint: fingerprint });
      },
      { deleters: this.#deleters(), machine: this.machineName, operation: 'create' },
    );
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    this.#progress('remove', 'start', `deleting what ${this.machineName} made`);
    await cleanupJournal(this.#context.journal, {
      deleters: this.#deleters(),
      machine: this.machineName,
      operation: 'remove',
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onDeleted: (entry) => this.#progress('remove', 'info', `deleted ${entry.kind} ${entry.meta?.name ?? entry.id}`),
    });
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

  #checkFlags(): void {
    const problems = crossFlagProblems(this.#config);
    const zone = this.#config.zone;
    if (/^[a-z]{2}-/.test(zone) && !zone.startsWith(this.#config.region)) {
      problems.push({ flag: 'amazonec2-zone', message: `${zone} is not a zone of --amazonec2-region ${this.#config.region}` });
    }
    if (problems.length > 0) throw new InvalidConfigError(problems, { machine: this.machineName, operation: 'config' });
    this.#rules();
  }

  #rules(): FirewallRule[] {
    return machineFirewallRules({
      sshPort: this.#config.sshPort,
      openPorts: this.#config.openPorts,
      allowedCidrs: this.#config.allowedCidrs,
      openPortFlag: 'amazonec2-open-port',
      allowedCidrFlag: 'amazonec2-allowed-cidr',
    });
  }

  /**
   * The user data to launch with, base64: the host's boot user data and --amazonec2-userdata
   * combined (the file's bytes unchanged when it is alone, so gzipped user data still works).
   */
  async #userData(boot?: BootConfig): Promise<string | undefined> {
    const path = this.#config.userdata;
    let own: Buffer | undefined;
    if (path !== undefined && path !== '') {
      try {
        own = await readFile(path);
      } catch (error) {
        throw new InvalidConfigError([{ flag: 'amazonec2-userdata', message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
      }
    }
    const bytes = boot?.userData === undefined ? own : Buffer.from(combineUserData([boot.userData, own?.toString('utf8')]) ?? '', 'utf8');
    if (bytes === undefined || bytes.length === 0) return undefined;
    // EC2 limits user data to 16 KiB raw, before base64.
    if (bytes.length > userDataLimitBytes) {
      throw new InvalidConfigError([
        boot?.userData === undefined
          ? { flag: 'amazonec2-userdata', message: `${path} is ${bytes.length} bytes; EC2 takes at most 16 KiB of user data` }
          : {
              flag: 'user data',
              kind: 'input',
              message: `${own === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus ${path}`} is ${bytes.length} bytes; EC2 takes at most 16 KiB of user data`,
            },
      ]);
    }
    return bytes.toString('base64');
  }

  async #loadUserKey() {
    const { loadSSHPrivateKey } = await import('@machine/driver-core/keys');
    return loadSSHPrivateKey(this.#config.sshKeypath ?? '', 'amazonec2-ssh-keypath');
  }

  async #resolvePlan(signal?: AbortSignal): Promise<LaunchPlan> {
    const ec2 = await this.#clients.ec2();
    // The two lookups run side by side; when one fails the other is cancelled, not left running.
    const sibling = new AbortController();
    const both = signal === undefined ? sibling.signal : AbortSignal.any([signal, sibling.signal]);
    const [network, imageId] = await Promise.all([
      resolveNetwork(ec2, this.#config, both),
      resolveImageId(() => this.#clients.ssm(), this.#config, both),
    ]).catch((error: unknown) => {
      sibling.abort();
      throw error;
    });
    const image = await resolveImage(ec2, this.#config, imageId, signal);
    if (this.#config.keypairName !== undefined) {
      const { DescribeKeyPairsCommand } = await loadEC2Sdk();
      const { KeyPairs = [] } = await (await this.#ec2())
        .send(new DescribeKeyPairsCommand({ KeyNames: [this.#config.keypairName] }), abortOptions(signal))
        .catch((error: unknown) => {
          if ((error as { name?: string }).name === 'InvalidKeyPair.NotFound') {
            throw new InvalidConfigError([{ flag: 'amazonec2-keypair-name', message: `no key pair named ${this.#config.keypairName} in ${this.#config.region}` }]);
          }
          throw error;
        });
      await this.#checkKeyMatches(KeyPairs[0]?.KeyFingerprint);
    }
    return { ...network, imageId, ...image };
  }

  /**
   * Fails early when --amazonec2-ssh-keypath is not the private half of --amazonec2-keypair-name
   * (SSH would otherwise time out much later). Only fingerprints computable from a public key are
   * compared: MD5 (imported RSA) and SHA-256 (ED25519); AWS-generated RSA keys use a SHA-1 of the
   * private key and are skipped.
   */
  async #checkKeyMatches(fingerprint: string | undefined): Promise<void> {
    if (fingerprint === undefined || this.#config.sshKeypath === undefined) return;
    const key = await this.#loadUserKey();
    const md5 = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(fingerprint);
    const sha256 = /^[A-Za-z0-9+/]{43}=?$/.test(fingerprint);
    if (!md5 && !sha256) return;
    const matches = md5
      ? key.md5Fingerprint.toLowerCase() === fingerprint.toLowerCase()
      : key.sha256Fingerprint.replace(/^SHA256:/, '').replace(/=+$/, '') === fingerprint.replace(/=+$/, '');
    if (!matches) {
      throw new InvalidConfigError([
        { flag: 'amazonec2-ssh-keypath', message: `${this.#config.sshKeypath} is not the private key of key pair ${this.#config.keypairName} (fingerprint ${fingerprint})` },
      ]);
    }
  }

  /** Writes the machine's private key and imports its public half (unless the user named an existing key pair). */
  async #setUpKey(signal?: AbortSignal): Promise<string> {
    const { journal, machineDir } = this.#context;
    let publicKey: string;
    if (this.#config.sshKeypath !== undefined) {
      const key = await this.#loadUserKey();
      await mkdir(machineDir, { recursive: true, mode: 0o700 });
      const path = join(machineDir, userKeyFile);
      await writeFile(path, key.privateKey, { mode: 0o600 });
      await this.#context.data.write({ sshKeyPath: path });
      publicKey = key.publicKey;
    } else {
      const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
      const keyPair = generateSSHKeyPair({ comment: this.machineName });
      const path = await writeSSHKeyPair(machineDir, keyPair, privateKeyFile);
      await this.#context.data.write({ sshKeyPath: path });
      publicKey = keyPair.publicKey;
    }
    if (this.#config.keypairName !== undefined) {
      await journal.record({ kind: resourceKinds.keyPair, id: this.#config.keypairName, region: this.#config.region, preExisting: true, meta: { name: this.#config.keypairName } });
      return this.#config.keypairName;
    }
    const { ImportKeyPairCommand } = await loadEC2Sdk();
    const keyName = `${this.machineName}-${randomBytes(4).toString('hex')}`;
    this.#progress('import-key', 'start', `importing key pair ${keyName}`);
    const imported = await (await this.#ec2()).send(
      new ImportKeyPairCommand({
        KeyName: keyName,
        PublicKeyMaterial: Buffer.from(publicKey),
        TagSpecifications: tagSpecifications(['key-pair'], this.#tags()),
      }),
      abortOptions(signal),
    );
    await journal.record({ kind: resourceKinds.keyPair, id: imported.KeyPairId ?? keyName, region: this.#config.region, meta: { name: keyName } });
    this.#progress('import-key', 'done', `key pair ${keyName}`);
    return keyName;
  }

  /** Finds or makes each named group; adds the missing ingress rules unless read-only. */
  async #setUpSecurityGroups(vpcId: string, rules: FirewallRule[], signal?: AbortSignal): Promise<string[]> {
    const names = this.#config.securityGroups;
    this.#progress('security-group', 'start', `security groups ${names.join(', ')} in ${vpcId}`);
    const found = await this.#describeGroups(vpcId, names, signal);
    const ids: string[] = [];
    for (const name of names) {
      let group = found.find((candidate) => candidate.GroupName === name && candidate.GroupId !== undefined);
      if (group === undefined) {
        if (this.#config.securityGroupReadonly) {
          throw new InvalidConfigError([
            { flag: 'amazonec2-security-group-readonly', message: `security group ${name} does not exist in ${vpcId}, and read-only groups are not made` },
          ]);
        }
        group = await this.#createGroup(vpcId, name, signal);
      } else {
        await this.#adoptGroup(group, name);
      }
      const groupId = group.GroupId ?? '';
      if (!this.#config.securityGroupReadonly) await this.#authorize(vpcId, group, rules, signal);
      ids.push(groupId);
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
   * Records an existing group. One an earlier machine create made (our tag) is shared: whichever
   * machine is removed last deletes it, so the default `docker-machine` group does not leak.
   * Groups made by anyone else, and read-only ones, are never deleted.
   */
  async #adoptGroup(group: SecurityGroup, name: string): Promise<void> {
    const madeByMachine = group.Tags?.some((tag) => tag.Key === managedByTag && tag.Value === managedByValue) === true;
    const adopt = madeByMachine && !this.#config.securityGroupReadonly;
    await this.#context.journal.record({
      kind: resourceKinds.securityGroup,
      id: group.GroupId ?? '',
      region: this.#config.region,
      preExisting: !adopt,
      meta: adopt ? { name, shared: 'true' } : { name },
    });
  }

  /** Makes a group; when a concurrent create made it first (`InvalidGroup.Duplicate`), uses that one. */
  async #createGroup(vpcId: string, name: string, signal?: AbortSignal): Promise<SecurityGroup> {
    const sdk = await loadEC2Sdk();
    let groupId: string | undefined;
    try {
      const created = await (await this.#ec2()).send(
        new sdk.CreateSecurityGroupCommand({
          GroupName: name,
          Description: 'machine: SSH and Docker TLS access',
          VpcId: vpcId,
          TagSpecifications: tagSpecifications(['security-group'], [...this.#tags().filter((tag) => tag.Key !== 'Name'), { Key: 'Name', Value: name }]),
        }),
        abortOptions(signal),
      );
      groupId = created.GroupId;
    } catch (error) {
      if ((error as { name?: string }).name !== 'InvalidGroup.Duplicate') throw error;
      // A concurrent create made it a moment ago: it may not be visible yet, by name or by id.
      const since = new Date().toISOString();
      let raced: SecurityGroup | undefined;
      for (let delay = this.#pollInterval(); ; delay = Math.min(delay * 2, 5000)) {
        [raced] = await this.#describeGroups(vpcId, [name], signal);
        if (raced?.GroupId !== undefined || !this.#mayBeInvisible(since)) break;
        await sleep(delay, signal);
      }
      if (raced?.GroupId === undefined) throw error;
      await this.#waitForGroup(raced.GroupId, signal);
      await this.#adoptGroup(raced, name);
      return raced;
    }
    if (groupId === undefined) throw new ProviderError('CreateSecurityGroup returned no group id');
    const id = groupId;
    await this.#context.journal.record({ kind: resourceKinds.securityGroup, id, region: this.#config.region, meta: { name } });
    await this.#waitForGroup(id, signal);
    return { GroupId: id, GroupName: name, IpPermissions: [] };
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
      {
        interval: this.#pollInterval(),
        maxInterval: 5000,
        timeout: 60_000,
        description: `security group ${groupId} to exist`,
        machine: this.machineName,
        ...(signal === undefined ? {} : { signal }),
      },
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

  async #runInstance(plan: LaunchPlan, keyName: string, groupIds: string[], userData: string | undefined, signal?: AbortSignal): Promise<string> {
    const { RunInstancesCommand } = await loadEC2Sdk();
    const { journal } = this.#context;
    const config = this.#config;
    const clientToken = randomUUID();
    // Recorded before the call: if the reply is lost, remove still finds the instance by its token.
    await journal.record({ kind: resourceKinds.runRequest, id: clientToken, region: config.region });
    const tags = this.#tags();
    const input: RunInstancesCommandInput = {
      ClientToken: clientToken,
      ImageId: plan.imageId,
      InstanceType: config.instanceType as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: 1,
      KeyName: keyName,
      NetworkInterfaces: [
        {
          DeviceIndex: 0,
          SubnetId: plan.subnetId,
          Groups: groupIds,
          AssociatePublicIpAddress: !config.privateAddressOnly,
          DeleteOnTermination: true,
        },
      ],
      BlockDeviceMappings: plan.blockDeviceMappings,
      MetadataOptions: {
        HttpEndpoint: 'enabled',
        HttpTokens: config.metadataToken as 'required' | 'optional',
        HttpPutResponseHopLimit: config.metadataTokenHopLimit,
      },
      Monitoring: { Enabled: config.monitoring },
      EbsOptimized: config.ebsOptimized,
      TagSpecifications: tagSpecifications(['instance', 'volume', 'network-interface'], tags),
      ...(config.iamInstanceProfile === undefined
        ? {}
        : { IamInstanceProfile: config.iamInstanceProfile.startsWith('arn:') ? { Arn: config.iamInstanceProfile } : { Name: config.iamInstanceProfile } }),
      ...(userData === undefined ? {} : { UserData: userData }),
      ...(config.requestSpotInstance
        ? {
            InstanceMarketOptions: {
              MarketType: 'spot',
              SpotOptions: {
                SpotInstanceType: 'one-time',
                InstanceInterruptionBehavior: 'terminate',
                // An empty price is left out: AWS rejects MaxPrice="" and the on-demand price caps it.
                ...(config.spotPrice === undefined ? {} : { MaxPrice: config.spotPrice }),
              },
            },
          }
        : {}),
    };
    this.#progress('create-instance', 'start', `launching a ${config.instanceType}${config.requestSpotInstance ? ' spot' : ''} instance`);
    const reply = await (await this.#ec2()).send(new RunInstancesCommand(input), abortOptions(signal)).catch(async (error: unknown) => {
      // A refusal (4xx, or no capacity) made nothing: the intent goes. A lost reply or a 5xx keeps it for remove.
      const aws = error as { name?: string; $fault?: string; $metadata?: { httpStatusCode?: number } };
      const status = aws.$metadata?.httpStatusCode;
      if ((aws.$fault === 'client' && status !== undefined && status < 500) || refusedLaunchCodes.has(aws.name ?? '')) await journal.forget(resourceKinds.runRequest, clientToken);
      throw error;
    });
    const instance = reply.Instances?.[0];
    if (instance?.InstanceId === undefined) throw new ProviderError('RunInstances returned no instance');
    if (instance.SpotInstanceRequestId !== undefined) {
      await journal.record({ kind: resourceKinds.spotRequest, id: instance.SpotInstanceRequestId, region: config.region });
    }
    await journal.record({ kind: resourceKinds.instance, id: instance.InstanceId, region: config.region });
    await journal.forget(resourceKinds.runRequest, clientToken);
    await this.#context.data.write({ instanceId: instance.InstanceId, region: config.region });
    this.#progress('create-instance', 'done', `instance ${instance.InstanceId}`);
    return instance.InstanceId;
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
    return Math.min((this.#tuning.waiterDelays?.minDelay ?? 5) * 1000, 500);
  }

  /** True while a NotFound for something recorded at `recordedAt` may still mean "not visible yet". */
  #mayBeInvisible(recordedAt: string): boolean {
    return Date.now() < Date.parse(recordedAt) + (this.#tuning.visibilityTimeout ?? 180_000);
  }

  async #waiterParams(signal: AbortSignal | undefined, maxWaitTime: number) {
    return {
      client: await this.#ec2(),
      maxWaitTime,
      minDelay: this.#tuning.waiterDelays?.minDelay ?? 5,
      maxDelay: this.#tuning.waiterDelays?.maxDelay ?? 30,
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

  // ---- cleanup ----

  #deleters(): Record<string, ResourceDeleter> {
    return {
      [resourceKinds.instance]: (entry) => this.#terminate([entry.id], entry.recordedAt),
      [resourceKinds.runRequest]: (entry) => this.#terminateByClientToken(entry),
      [resourceKinds.spotRequest]: (entry) => this.#cancelSpotRequest(entry.id),
      [resourceKinds.securityGroup]: (entry) => this.#deleteSecurityGroup(entry),
      [resourceKinds.keyPair]: (entry) => this.#deleteKeyPair(entry),
    };
  }

  /**
   * Terminates and waits for `terminated`. A NotFound for an instance recorded less than the
   * visibility window ago means "not visible yet" (EC2 is eventually consistent; the instance
   * exists and runs): it is retried, never taken as gone, or rollback would leak it.
   */
  async #terminate(ids: string[], recordedAt: string): Promise<void> {
    const sdk = await loadEC2Sdk();
    const what = `instance ${ids.join(', ')}`;
    for (let delay = this.#pollInterval(); ; delay = Math.min(delay * 2, 5000)) {
      try {
        await (await this.#ec2()).send(new sdk.TerminateInstancesCommand({ InstanceIds: ids }));
        break;
      } catch (error) {
        if ((error as { name?: string }).name !== 'InvalidInstanceID.NotFound') throw error;
        if (!this.#mayBeInvisible(recordedAt)) throw new NotFoundError(`${what} is gone`);
        this.#progress('terminate', 'info', `${what} is not visible yet (EC2 is eventually consistent); trying again`);
        await sleep(delay);
      }
    }
    this.#progress('terminate', 'info', `terminating ${ids.join(', ')}`);
    await waitFor(
      async () => {
        try {
          const { Reservations = [] } = await (await this.#ec2()).send(new sdk.DescribeInstancesCommand({ InstanceIds: ids }));
          const states = Reservations.flatMap((r) => r.Instances ?? []).map((i) => i.State?.Name);
          if (states.length > 0 && states.every((state) => state === 'terminated')) return { done: true, value: undefined };
          return { done: false, reason: `state ${states.join(', ')}` };
        } catch (error) {
          // Terminated long ago (no longer listed) is gone; inside the visibility window it may just not show yet.
          if ((error as { name?: string }).name === 'InvalidInstanceID.NotFound' && !this.#mayBeInvisible(recordedAt)) return { done: true, value: undefined };
          if ((error as { name?: string }).name === 'InvalidInstanceID.NotFound') return { done: false, reason: 'not visible yet' };
          throw error;
        }
      },
      {
        interval: this.#pollInterval(),
        maxInterval: (this.#tuning.waiterDelays?.maxDelay ?? 30) * 1000,
        timeout: this.#config.waitTimeout * 1000,
        description: `${what} to terminate`,
        machine: this.machineName,
      },
    );
  }

  /**
   * Finds what a RunInstances whose reply was lost made, by its client token. An empty answer
   * inside the visibility window is not trusted: the instance may exist without showing yet.
   */
  async #terminateByClientToken(entry: JournalEntry): Promise<void> {
    const { DescribeInstancesCommand } = await loadEC2Sdk();
    const lookup = async () => {
      const { Reservations = [] } = await (await this.#ec2()).send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'client-token', Values: [entry.id] },
            { Name: 'instance-state-name', Values: liveStates },
          ],
        }),
      );
      return Reservations.flatMap((r) => r.Instances ?? []);
    };
    let instances = await lookup();
    for (let delay = this.#pollInterval(); instances.length === 0 && this.#mayBeInvisible(entry.recordedAt); delay = Math.min(delay * 2, 5000)) {
      await sleep(delay);
      instances = await lookup();
    }
    const ids = instances.map((i) => i.InstanceId).filter((id): id is string => id !== undefined);
    if (ids.length > 0) await this.#terminate(ids, entry.recordedAt);
    for (const spot of instances.map((i) => i.SpotInstanceRequestId).filter((id): id is string => id !== undefined)) {
      await this.#cancelSpotRequest(spot).catch((error: unknown) => {
        if (!(error instanceof NotFoundError)) throw error;
      });
    }
  }

  async #cancelSpotRequest(id: string): Promise<void> {
    const { CancelSpotInstanceRequestsCommand } = await loadEC2Sdk();
    try {
      await (await this.#ec2()).send(new CancelSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [id] }));
    } catch (error) {
      if ((error as { name?: string }).name === 'InvalidSpotInstanceRequestID.NotFound') throw new NotFoundError(`spot request ${id} is gone`);
      throw error;
    }
  }

  /**
   * Deletes a group this machine made, unless an instance still uses it. Instances on their way out
   * (`shutting-down`, `terminated`) do not count: EC2 refuses with `InvalidGroup.InUse` or
   * `DependencyViolation` until their interfaces let go, which can take minutes; both are retried.
   */
  async #deleteSecurityGroup(entry: JournalEntry): Promise<void> {
    const { DeleteSecurityGroupCommand, DescribeInstancesCommand } = await loadEC2Sdk();
    const { Reservations = [] } = await (await this.#ec2()).send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'instance.group-id', Values: [entry.id] },
          { Name: 'instance-state-name', Values: usingStates },
        ],
      }),);
    const users = Reservations.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId);
    if (users.length > 0) {
      this.#progress('remove', 'info', `kept security group ${entry.meta?.name ?? entry.id}: still used by ${users.join(', ')}`);
      return;
    }
    await waitFor(
      async () => {
        try {
          await (await this.#ec2()).send(new DeleteSecurityGroupCommand({ GroupId: entry.id }));
          return { done: true, value: undefined };
        } catch (error) {
          const name = (error as { name?: string }).name;
          if (name === 'InvalidGroup.NotFound') throw new NotFoundError(`security group ${entry.id} is gone`);
          if (name === 'DependencyViolation' || name === 'InvalidGroup.InUse') return { done: false, reason: `${name}: a terminating instance still holds the group` };
          throw error;
        }
      },
      {
        interval: this.#pollInterval(),
        maxInterval: 5000,
        timeout: this.#tuning.dependencyTimeout ?? 300_000,
        description: `security group ${entry.id} to be deletable`,
        machine: this.machineName,
      },
    );
  }

  async #deleteKeyPair(entry: JournalEntry): Promise<void> {
    const { DeleteKeyPairCommand } = await loadEC2Sdk();
    try {
      await (await this.#ec2()).send(new DeleteKeyPairCommand(entry.id.startsWith('key-') ? { KeyPairId: entry.id } : { KeyName: entry.meta?.name ?? entry.id }));
    } catch (error) {
      if ((error as { name?: string }).name === 'InvalidKeyPair.NotFound') throw new NotFoundError(`key pair ${entry.id} is gone`);
      throw error;
    }
  }

  // ---- misc ----

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
