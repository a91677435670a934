import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeVpcsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { type AmazonEC2Realism, type Sim, type SimInstance, startSim } from '@machine/cloud-sim';
import {
  AuthError,
  CancelledError,
  CapacityError,
  CleanupError,
  createMemoryContext,
  findEntry,
  InvalidConfigError,
  MachineError,
  NotFoundError,
  ProviderError,
  parseFlags,
  QuotaError,
  SSHError,
  State,
  TimeoutError,
} from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { hostKeyCloudConfig } from '@machine/driver-core/testing';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { amazonEC2Flags, createAmazonEC2Descriptor } from './index.ts';

const region = 'eu-west-3';
const credentials = { accessKeyId: 'AKIDSIMTESTS00000001', secretAccessKey: 'sim-test-secret' };
const fast = {
  clientOverrides: { retryStrategy: new ConfiguredRetryStrategy(3, 10) },
  waiterDelays: { minDelay: 0.02, maxDelay: 0.1 },
  sshPoll: { interval: 20, maxInterval: 100 },
  dependencyTimeout: 2000,
  // The simulator hides new resources for 20 ms (2 s real × 0.01): a NotFound is trusted after 500 ms.
  visibilityTimeout: 500,
};
const descriptor = createAmazonEC2Descriptor(fast);

let sim: Sim;
/** The simulator's EC2 knobs (real-cloud durations, × 0.01), read on every call: tests turn them and afterEach resets them. */
const knobs: AmazonEC2Realism = {};
let root: string;
let ec2: EC2Client;
let counter = 0;

beforeAll(async () => {
  sim = await startSim({ providers: ['amazonec2'], providerOptions: { amazonec2: knobs } });
  root = await mkdtemp(join(tmpdir(), 'amazonec2-sim-'));
  ec2 = new EC2Client({ region, endpoint: sim.endpoints.amazonec2, credentials, maxAttempts: 1 });
});

afterAll(async () => {
  ec2.destroy();
  await sim.close();
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  sim.faults.clear();
  for (const key of Object.keys(knobs)) delete knobs[key as keyof AmazonEC2Realism];
  sim.lifecycle.delays.stoppingMs = 30;
  // A failed test must not make the next ones fail on its leftovers: each test checks its own leaks.
  for (const leak of sim.leaks()) {
    const instance = sim.store.getInstance(leak.provider, leak.id);
    if (instance !== undefined) void sim.lifecycle.terminate(instance);
    else sim.store.deleteResource(leak.provider, leak.kind, leak.id);
  }
});

function flags(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'amazonec2-endpoint': sim.endpoints.amazonec2,
    'amazonec2-access-key': credentials.accessKeyId,
    'amazonec2-secret-key': credentials.secretAccessKey,
    'amazonec2-region': region,
    'amazonec2-ssh-port': sim.sshPort,
    'amazonec2-wait-timeout': 10,
    ...extra,
  };
}

function machine(extra: Record<string, unknown> = {}, name = `m${++counter}`) {
  const context = createMemoryContext(name, join(root, name));
  const config = parseFlags(amazonEC2Flags, flags(extra), { env: {} });
  return { driver: descriptor.createDriver({ config, context }), context, config };
}

function leaks(): string[] {
  return sim.leaks().map((leak) => `${leak.kind} ${leak.id} ${leak.name}`);
}

function instanceOf(context: { journal: Parameters<typeof findEntry>[0] }): SimInstance {
  const id = findEntry(context.journal, 'instance')?.id ?? '';
  const instance = sim.store.getInstance('amazonec2', id);
  if (instance === undefined) throw new Error(`no instance ${id}`);
  return instance;
}

function attributes(instance: SimInstance): Record<string, unknown> & { tags: { key: string; value: string }[] } {
  return instance.attributes as Record<string, unknown> & { tags: { key: string; value: string }[] };
}

/**
 * Retries a raw SDK call through the simulator's real-cloud windows, as a careful script would: a
 * group made a moment ago is not visible yet, and one a terminated instance used is in use a while.
 */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (attempt >= 100 || !/\.NotFound$|^DependencyViolation$|^InvalidGroup\.InUse$/.test(name)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<MachineError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!MachineError.isInstance(error)) throw new Error(`expected a MachineError, got ${String(error)}`);
  return error;
}

describe('amazonec2 against the simulator', () => {
  it('one create and one remove: the API calls, from the request log', async () => {
    const { driver } = machine();
    sim.requestLog.clear();
    await driver.create();
    const create = sim.requestLog.counts('amazonec2');
    sim.requestLog.clear();
    await driver.remove();
    const remove = sim.requestLog.counts('amazonec2');
    expect(create).toMatchObject({
      DescribeVpcs: 1,
      DescribeSubnets: 1,
      'ssm:GetParameter': 1,
      DescribeImages: 1,
      ImportKeyPair: 1,
      CreateSecurityGroup: 1,
      AuthorizeSecurityGroupIngress: 1,
      RunInstances: 1,
    });
    // The lookup, then the SDK's securityGroupExists waiter until the new group shows (EC2 is eventually consistent).
    expect(create.DescribeSecurityGroups).toBeGreaterThanOrEqual(2);
    expect(create.DescribeInstances).toBeGreaterThanOrEqual(1);
    expect(remove).toMatchObject({ TerminateInstances: 1, DeleteKeyPair: 1 });
    // Retried while the terminated instance's interface still holds the group (DependencyViolation).
    expect(remove.DeleteSecurityGroup).toBeGreaterThanOrEqual(1);
    expect(remove.RunInstances).toBeUndefined();
    console.info(`amazonec2 create: ${JSON.stringify(create)}\namazonec2 remove: ${JSON.stringify(remove)}`);
    expect(leaks()).toEqual([]);
  });

  it('launches what the flags say: tags everywhere, IMDSv2 required, encrypted gp3 root from the AMI root device, user data', async () => {
    const userdata = join(root, 'cloud-init.yaml');
    await writeFile(userdata, '#cloud-config\npackages: [htop]\n');
    const { driver, context } = machine({
      'amazonec2-tags': 'team,infra,env,test',
      'amazonec2-encrypt-ebs-volume': true,
      'amazonec2-kms-key': 'alias/machine',
      'amazonec2-root-size': 20,
      'amazonec2-userdata': userdata,
      'amazonec2-monitoring': true,
      'amazonec2-iam-instance-profile': 'docker-host',
    });
    await driver.create();
    const instance = instanceOf(context);
    const a = attributes(instance);
    const tagPairs = a.tags.map((tag) => `${tag.key}=${tag.value}`);
    expect(tagPairs).toEqual(expect.arrayContaining([`Name=${context.machineName}`, `docker-machine-name=${context.machineName}`, 'managed-by=machine', 'team=infra', 'env=test']));
    expect(a.metadataOptions).toEqual({ httpTokens: 'required', httpPutResponseHopLimit: 2, httpEndpoint: 'enabled' });
    expect(a.monitoring).toBe(true);
    expect(a.iamInstanceProfile).toContain('instance-profile/docker-host');
    // The intent's token, then the machine name: a retry (or a lost reply's lookup) uses the same one.
    expect(a.clientToken).toMatch(/^[0-9a-f]{8}\.m\d+$/);
    // The simulator keeps the user data decoded, as cloud-init reads it.
    expect(String(a.userData)).toBe('#cloud-config\npackages: [htop]\n');
    expect(instance.filesystem.readFile('/var/lib/cloud/instance/user-data.txt').toString()).toContain('#cloud-config');
    const volumes = sim.store.listResources('amazonec2', 'volume').filter((volume) => volume.attributes.instanceId === instance.id);
    expect(volumes).toHaveLength(1);
    expect(volumes[0]?.name).toBe('/dev/sda1');
    expect(volumes[0]?.attributes).toMatchObject({ size: 20, volumeType: 'gp3', encrypted: true, kmsKeyId: 'alias/machine', deleteOnTermination: true });
    expect(((volumes[0]?.attributes.tags ?? []) as { key: string }[]).map((tag) => tag.key)).toContain('docker-machine-name');
    const [key] = sim.store.listResources('amazonec2', 'key_pair');
    expect(key?.name).toMatch(new RegExp(`^${context.machineName}-[0-9a-f]{8}$`));
    expect(((key?.attributes.tags ?? []) as { key: string; value: string }[]).find((tag) => tag.key === 'docker-machine-name')?.value).toBe(context.machineName);
    const [group] = sim.store.listResources('amazonec2', 'security_group');
    expect(group?.name).toBe('docker-machine');
    expect(((group?.attributes.tags ?? []) as { key: string }[]).map((tag) => tag.key)).toContain('docker-machine-name');
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('takes the root device from the AMI (/dev/xvda), and an arm64 Ubuntu AMI for Graviton types', async () => {
    const amazonLinux = machine({ 'amazonec2-ami': 'ami-0d1e2f3a4b5c60718' });
    await amazonLinux.driver.create();
    expect((attributes(instanceOf(amazonLinux.context)).blockDevices as { deviceName: string }[]).map((device) => device.deviceName)).toEqual(['/dev/xvda']);
    await amazonLinux.driver.remove();

    const graviton = machine({ 'amazonec2-instance-type': 't4g.micro' });
    await graviton.driver.create();
    expect(attributes(instanceOf(graviton.context)).architecture).toBe('arm64');
    await graviton.driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('accepts a zone letter, a full zone name and a zone id, and rejects another region’s zone before any call', async () => {
    for (const [zone, expected] of [
      ['b', 'eu-west-3b'],
      ['eu-west-3c', 'eu-west-3c'],
      ['euw3-az1', 'eu-west-3a'],
    ] as const) {
      const { driver, context } = machine({ 'amazonec2-zone': zone });
      await driver.create();
      expect(attributes(instanceOf(context)).availabilityZone).toBe(expected);
      await driver.remove();
    }
    const before = sim.requestLog.total;
    const { driver } = machine({ 'amazonec2-zone': 'us-east-1a' });
    expect(await rejection(driver.create())).toBeInstanceOf(InvalidConfigError);
    expect(sim.requestLog.total).toBe(before);
    expect(leaks()).toEqual([]);
  });

  it('reuses an existing group, adds only the missing rules, and never deletes it', async () => {
    const { GroupId } = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'shared-web', Description: 'mine', VpcId: await defaultVpc() }));
    await eventually(() =>
      ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId,
        IpPermissions: [{ IpProtocol: 'tcp', FromPort: sim.sshPort, ToPort: sim.sshPort, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
      }),
      ),
    );
    const { driver, context } = machine({ 'amazonec2-security-group': ['shared-web'] });
    await driver.create();
    expect(findEntry(context.journal, 'security-group')).toMatchObject({ id: GroupId, preExisting: true });
    const group = sim.store.getResource('amazonec2', 'security_group', GroupId ?? '');
    const rules = ((group?.attributes.ingress ?? []) as { fromPort: number; ipRanges: { cidrIp: string }[]; ipv6Ranges: { cidrIpv6: string }[] }[]).map(
      (rule) => `${rule.fromPort} ${rule.ipRanges.map((r) => r.cidrIp).join(',')} ${rule.ipv6Ranges.map((r) => r.cidrIpv6).join(',')}`,
    );
    expect(rules).toEqual([`${sim.sshPort} 0.0.0.0/0 `, `${sim.sshPort}  ::/0`, '2376 0.0.0.0/0 ::/0']);
    await driver.remove();
    expect(sim.store.getResource('amazonec2', 'security_group', GroupId ?? '')).toBeDefined();

    sim.requestLog.clear();
    const readonly = machine({ 'amazonec2-security-group': ['shared-web'], 'amazonec2-security-group-readonly': true, 'amazonec2-open-port': ['8080'] });
    await readonly.driver.create();
    expect(sim.requestLog.count('AuthorizeSecurityGroupIngress')).toBe(0);
    await readonly.driver.remove();
    await eventually(() => ec2.send(new DeleteSecurityGroupCommand({ GroupId })));

    const missing = machine({ 'amazonec2-security-group': ['no-such-group'], 'amazonec2-security-group-readonly': true });
    expect(await rejection(missing.driver.create())).toBeInstanceOf(InvalidConfigError);
    expect(leaks()).toEqual([]);
  });

  it('shares the group it made: kept while another machine uses it, deleted by the last one removed', async () => {
    const first = machine();
    const second = machine();
    await first.driver.create();
    await second.driver.create();
    expect(findEntry(second.context.journal, 'security-group')).toMatchObject({ preExisting: false, shared: true, meta: { name: 'docker-machine' } });
    await first.driver.remove();
    expect(sim.store.listResources('amazonec2', 'security_group').map((group) => group.name)).toEqual(['docker-machine']);
    await second.driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('parallel creates share one new group (the loser of the CreateSecurityGroup race adopts it)', async () => {
    const fleet = [machine(), machine(), machine()];
    // Slow creates so that every machine looks the group up before any create of it lands.
    sim.faults.add({ provider: 'amazonec2', operation: 'CreateSecurityGroup', latencyMs: 150 });
    sim.requestLog.clear();
    await Promise.all(fleet.map(({ driver }) => driver.create()));
    expect(sim.store.listResources('amazonec2', 'security_group')).toHaveLength(1);
    expect(sim.requestLog.count('CreateSecurityGroup')).toBeGreaterThanOrEqual(2);
    await Promise.all(fleet.map(({ driver }) => driver.remove()));
    expect(leaks()).toEqual([]);
  });

  it('a leftover key pair named after the machine does not block re-creating it', async () => {
    const name = `web${++counter}`;
    const { publicKey } = generateSSHKeyPair();
    await ec2.send(new ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(publicKey) }));
    const { driver } = machine({}, name);
    await driver.create();
    await driver.remove();
    expect(leaks()).toEqual([`key_pair ${sim.store.listResources('amazonec2', 'key_pair')[0]?.id} ${name}`]);
    await ec2.send(new DeleteKeyPairCommand({ KeyName: name }));
  });

  it('uses --amazonec2-keypair-name with --amazonec2-ssh-keypath and never deletes that key pair', async () => {
    const keyPair = generateSSHKeyPair();
    const keyPath = join(root, 'own_key');
    await writeFile(keyPath, keyPair.privateKey, { mode: 0o600 });
    const { KeyPairId } = await ec2.send(new ImportKeyPairCommand({ KeyName: 'my-key', PublicKeyMaterial: Buffer.from(keyPair.publicKey) }));
    const { driver } = machine({ 'amazonec2-keypair-name': 'my-key', 'amazonec2-ssh-keypath': keyPath });
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
    expect(sim.store.getResource('amazonec2', 'key_pair', KeyPairId ?? '')).toBeDefined();
    await ec2.send(new DeleteKeyPairCommand({ KeyPairId }));
    const unknown = machine({ 'amazonec2-keypair-name': 'nobody', 'amazonec2-ssh-keypath': keyPath });
    expect(await rejection(unknown.driver.preCreateCheck())).toBeInstanceOf(InvalidConfigError);
    const other = generateSSHKeyPair();
    const { KeyPairId: otherId } = await ec2.send(new ImportKeyPairCommand({ KeyName: 'not-mine', PublicKeyMaterial: Buffer.from(other.publicKey) }));
    const mismatched = machine({ 'amazonec2-keypair-name': 'not-mine', 'amazonec2-ssh-keypath': keyPath });
    const error = await rejection(mismatched.driver.preCreateCheck());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain('is not the private key of key pair not-mine');
    await ec2.send(new DeleteKeyPairCommand({ KeyPairId: otherId }));
    const rsa = generateSSHKeyPair({ type: 'rsa', bits: 2048 });
    const rsaPath = join(root, 'own_rsa');
    await writeFile(rsaPath, rsa.privateKey, { mode: 0o600 });
    const { KeyPairId: rsaId } = await ec2.send(new ImportKeyPairCommand({ KeyName: 'rsa-key', PublicKeyMaterial: Buffer.from(rsa.publicKey) }));
    await machine({ 'amazonec2-keypair-name': 'rsa-key', 'amazonec2-ssh-keypath': rsaPath }).driver.preCreateCheck();
    await ec2.send(new DeleteKeyPairCommand({ KeyPairId: rsaId }));
    expect(leaks()).toEqual([]);
  });

  it('spot: journals the request, cancels it on remove and after a failed create', async () => {
    const { driver, context } = machine({ 'amazonec2-request-spot-instance': true, 'amazonec2-spot-price': '0.05' });
    await driver.create();
    expect(findEntry(context.journal, 'spot-request')?.id).toMatch(/^sir-/);
    sim.requestLog.clear();
    await driver.remove();
    expect(sim.requestLog.count('CancelSpotInstanceRequests')).toBe(1);

    sim.faults.sshNeverOpens({ provider: 'amazonec2' });
    const failing = machine({ 'amazonec2-request-spot-instance': true, 'amazonec2-wait-timeout': 1 });
    sim.requestLog.clear();
    expect(await rejection(failing.driver.create())).toBeInstanceOf(TimeoutError);
    expect(sim.requestLog.count('CancelSpotInstanceRequests')).toBe(1);
    expect(failing.context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('works on the region the machine was made in, whatever --amazonec2-region says later; spot instances cannot stop', async () => {
    const { driver, context } = machine({ 'amazonec2-region': 'ap-southeast-4', 'amazonec2-request-spot-instance': true });
    await driver.create();
    const config = parseFlags(amazonEC2Flags, flags({ 'amazonec2-region': 'us-west-2' }), { env: {} });
    const later = descriptor.createDriver({ config, context });
    expect(await later.getState()).toBe(State.Running);
    expect((await rejection(later.stop())).code).toBe('NOT_SUPPORTED');
    await later.remove();
    expect(leaks()).toEqual([]);
  });

  it('finds and terminates an instance whose RunInstances reply was lost, by its client token, also while EC2 does not list it yet', async () => {
    // 200 ms in which the new instance is missing from the client-token lookup (read-after-create): an empty answer is not "gone".
    knobs.visibilityLagMs = 20_000;
    const { driver, context } = machine();
    const token = '3b2e5b1c-9d7a-4c7e-8a55-0f3c0c1d2e3f';
    await context.journal.record({ kind: 'run-request', id: token, region });
    await ec2.send(
      new RunInstancesCommand({ ClientToken: token, ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }),
    );
    expect(leaks()).toHaveLength(2); // the instance and its root volume
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('batch state: one DescribeInstances for many machines of a region answers state and address (public, or private where the machine uses it), nothing per machine', async () => {
    const machines = [machine(), machine(), machine()];
    for (const { driver } of machines) await driver.create();
    const gone = machines[1]!;
    const neverMade = machine();
    const addresses = await Promise.all(machines.map(({ driver }) => driver.getIP()));
    // One with --amazonec2-use-private-address (the simulator's private addresses are not reachable: it shares machine 0's instance).
    const instanceId = findEntry(machines[0]!.context.journal, 'instance')?.id ?? '';
    const privately = machine({ 'amazonec2-use-private-address': true });
    await privately.context.journal.record({ kind: 'instance', id: instanceId, region });
    machines.push(privately);
    addresses.push(sim.store.getInstance('amazonec2', instanceId)?.privateIp ?? '');
    expect(addresses[3]).toMatch(/^10\./);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [findEntry(gone.context.journal, 'instance')?.id ?? ''] }));
    sim.requestLog.clear();
    const all = [...machines, neverMade];
    const states = await descriptor.getStates!(all.map(({ config, context }) => ({ config, context })));
    expect(sim.requestLog.counts('amazonec2')).toEqual({ DescribeInstances: 1 });
    expect(states.get(machines[0]!.context.machineName)).toEqual({ state: State.Running, ip: addresses[0] });
    expect(states.get(machines[2]!.context.machineName)).toEqual({ state: State.Running, ip: addresses[2] });
    expect(states.get(machines[3]!.context.machineName)).toEqual({ state: State.Running, ip: addresses[3] });
    expect(states.get(gone.context.machineName)).toBeInstanceOf(NotFoundError);
    expect(states.get(neverMade.context.machineName)).toBeInstanceOf(NotFoundError);
    await machines[2]!.driver.stop();
    sim.requestLog.clear();
    // A stopped instance has no public address: the answer is its state alone.
    expect((await descriptor.getStates!([machines[2]!].map(({ config, context }) => ({ config, context })))).get(machines[2]!.context.machineName)).toEqual({ state: State.Stopped });
    expect(sim.requestLog.counts('amazonec2')).toEqual({ DescribeInstances: 1 });
    for (const { driver } of machines.slice(0, 3)) await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('batch state through the clients the descriptor builds: prepare makes no call; one DescribeInstances per region, whatever the number of machines', async () => {
    const plain = createAmazonEC2Descriptor();
    knobs.publicIpLagMs = 0;
    const made = await Promise.all(
      [region, region, region, 'us-west-2', 'us-west-2'].map(async (where) => {
        const { Instances = [] } = await new EC2Client({ region: where, endpoint: sim.endpoints.amazonec2, credentials, maxAttempts: 1 }).send(
          new RunInstancesCommand({ ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }),
        );
        const name = `batch-${++counter}`;
        const context = createMemoryContext(name, join(root, name));
        await context.journal.record({ kind: 'instance', id: Instances[0]?.InstanceId ?? '', region: where });
        return { context, config: parseFlags(amazonEC2Flags, flags({ 'amazonec2-region': where }), { env: {} }) };
      }),
    );
    const ids = made.map(({ context }) => findEntry(context.journal, 'instance')?.id ?? '');
    // They boot on the simulator's timers; EC2 lists a new instance after its visibility lag (shorter than the boot).
    while (!ids.every((id) => sim.store.getInstance('amazonec2', id)?.state === 'running')) await new Promise((resolve) => setTimeout(resolve, 10));
    sim.requestLog.clear();
    await plain.prepare!(made.map(({ config }) => config));
    expect(sim.requestLog.entries('amazonec2')).toEqual([]);
    const states = await plain.getStates!(made);
    expect(sim.requestLog.counts('amazonec2')).toEqual({ DescribeInstances: 2 });
    for (const { context } of made) expect(states.get(context.machineName)).toEqual({ state: State.Running, ip: expect.stringMatching(/^127\.1\./) });
    for (const { context } of made) {
      const id = findEntry(context.journal, 'instance')?.id ?? '';
      const where = findEntry(context.journal, 'instance')?.region ?? region;
      await new EC2Client({ region: where, endpoint: sim.endpoints.amazonec2, credentials, maxAttempts: 1 }).send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    }
    while (leaks().length > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  });

  it('batch state: a refused credential is a typed AuthError for each machine of that region', async () => {
    const { context } = machine();
    await context.journal.record({ kind: 'instance', id: 'i-0123456789abcdef0', region });
    const config = parseFlags(amazonEC2Flags, flags({ 'amazonec2-access-key': 'invalidAKID000000002' }), { env: {} });
    const states = await descriptor.getStates!([{ config, context }]);
    expect(states.get(context.machineName)).toBeInstanceOf(AuthError);
  });
});

describe('amazonec2 and the real clouds’ windows (realistic simulator)', () => {
  it('rollback terminates an instance EC2 does not show yet: TerminateInstances NotFound inside the visibility window is retried, not taken as gone', async () => {
    knobs.visibilityLagMs = 20_000; // 200 ms
    const { driver, context } = machine();
    const { Instances = [] } = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 }));
    await context.journal.record({ kind: 'instance', id: Instances[0]?.InstanceId ?? '', region });
    await driver.remove();
    expect(leaks()).toEqual([]);
    expect(context.journal.entries()).toEqual([]);
  });

  it('every RunInstances reply lost (the SDK retries included): core finds the instance by its client token, inside the visibility window, and create carries on with it; no twin', async () => {
    sim.faults.add({ provider: 'amazonec2', operation: 'RunInstances', reply: 'drop', times: 10 });
    const { driver, context } = machine();
    await driver.create();
    const launched = sim.store.listInstances('amazonec2').filter((instance) => attributes(instance).tags.some((tag) => tag.key === 'Name' && tag.value === context.machineName));
    expect(launched).toHaveLength(1);
    expect(findEntry(context.journal, 'instance')?.id).toBe(launched[0]?.id);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a running instance without a public IP yet: create waits for the IP instead of failing', async () => {
    knobs.publicIpLagMs = 30_000; // the IP shows 300 ms after `running`
    const { driver, context } = machine();
    await driver.create();
    expect(context.data.read().ip).toBe(instanceOf(context).publicIp);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('no capacity is a CapacityError, not a quota: synchronous InsufficientInstanceCapacity, and a launch that dies with its StateReason', async () => {
    knobs.insufficientCapacity = { name: 'cap-run' };
    const refused = machine({}, 'cap-run');
    const error = await rejection(refused.driver.create());
    expect(error).toBeInstanceOf(CapacityError);
    expect(error.message).toContain('InsufficientInstanceCapacity');
    expect(error.message).toContain('try another zone');
    expect(refused.context.journal.entries()).toEqual([]);

    knobs.launchFailure = { name: 'cap-die' };
    const dying = machine({}, 'cap-die');
    const died = await rejection(dying.driver.create());
    expect(died).toBeInstanceOf(CapacityError);
    expect(died.message).toContain('Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request');
    expect(dying.context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('start while the instance is still stopping waits for stopped, then starts it (IncorrectInstanceState); the public IP changes', async () => {
    const { driver, context } = machine();
    await driver.create();
    const before = context.data.read().ip;
    sim.lifecycle.delays.stoppingMs = 1000; // still stopping when start comes, even on a loaded machine
    await ec2.send(new StopInstancesCommand({ InstanceIds: [findEntry(context.journal, 'instance')?.id ?? ''] }));
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    // EC2 gives a new public IPv4 on each start after a stop (no Elastic IP).
    expect(context.data.read().ip).not.toBe(before);
    expect(await driver.getIP()).toBe(instanceOf(context).publicIp);
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('the security group is deleted although this machine’s instance is still shutting down (InvalidGroup.InUse, then DependencyViolation, retried)', async () => {
    const { driver, context } = machine({ 'amazonec2-wait-timeout': 1 });
    await driver.create();
    const groupId = findEntry(context.journal, 'security-group')?.id ?? '';
    knobs.shuttingDownMs = 150_000; // 1.5 s of shutting-down: longer than the 1 s the remove waits for `terminated`
    const first = await rejection(driver.remove());
    expect(first).toBeInstanceOf(CleanupError);
    // The group was not forgotten as "still used": it is gone, and only the instance is left to confirm.
    expect(sim.store.getResource('amazonec2', 'security_group', groupId)).toBeUndefined();
    expect(context.journal.entries().map((entry) => entry.kind)).toEqual(['instance']);
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });
});

describe('amazonec2 fault injection', () => {
  it('refused credentials: AuthError, nothing made, no secret in the message', async () => {
    const { driver } = machine({ 'amazonec2-access-key': 'invalidAKID000000001', 'amazonec2-secret-key': 'very-secret-value' });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain('AuthFailure');
    expect(error.message).not.toContain('very-secret-value');
    expect(error.message).not.toContain('invalidAKID000000001');
    expect(leaks()).toEqual([]);
  });

  it('no Ubuntu AMI published in the region: a config error that says to pass --amazonec2-ami', async () => {
    sim.faults.add({ provider: 'amazonec2', operation: 'ssm:GetParameter', error: 'not_found', times: 3 });
    const { driver } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain('--amazonec2-ami');
    expect(leaks()).toEqual([]);
  });

  it('vCPU limit: QuotaError with the EC2 code, and what was made is removed', async () => {
    sim.faults.add({ provider: 'amazonec2', operation: 'RunInstances', error: 'quota' });
    const { driver, context } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(QuotaError);
    expect(error.message).toContain('VcpuLimitExceeded');
    expect(error.message).toMatch(/request id [0-9a-f-]{36}/);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('throttling is retried by the SDK (RequestLimitExceeded), and a lasting one fails as a retryable ProviderError', async () => {
    sim.faults.add({ provider: 'amazonec2', operation: 'RunInstances', throttle: { times: 2 } });
    const { driver } = machine();
    sim.requestLog.clear();
    await driver.create();
    expect(sim.requestLog.count('RunInstances')).toBe(3);
    await driver.remove();

    sim.faults.add({ provider: 'amazonec2', operation: 'ImportKeyPair', throttle: { times: 10 } });
    const throttled = machine();
    const error = await rejection(throttled.driver.create());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.isRetryable).toBe(true);
    expect((error as ProviderError).providerCode).toBe('RequestLimitExceeded');
    expect(leaks()).toEqual([]);
  });

  it.each([
    'DescribeVpcs',
    'DescribeSubnets',
    'ssm:GetParameter',
    'DescribeImages',
    'ImportKeyPair',
    'DescribeSecurityGroups',
    'CreateSecurityGroup',
    'AuthorizeSecurityGroupIngress',
    'RunInstances',
  ])('a failure at %s leaves nothing behind and an empty journal', async (operation) => {
    sim.faults.add({ provider: 'amazonec2', operation, error: 'server', times: 5 });
    const { driver, context } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).statusCode).toBe(500);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('an instance that never runs: TimeoutError from the SDK waiter, then cleanup', async () => {
    sim.faults.instanceNeverRuns({ provider: 'amazonec2' });
    const { driver, context } = machine({ 'amazonec2-wait-timeout': 1 });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toContain('to be running');
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });

  it('SSH that never opens, or rejects the key: a typed error, then cleanup', async () => {
    sim.faults.sshNeverOpens({ provider: 'amazonec2', times: 1 });
    const silent = machine({ 'amazonec2-wait-timeout': 1 });
    expect(await rejection(silent.driver.create())).toBeInstanceOf(TimeoutError);
    sim.faults.sshRejectsKey({ provider: 'amazonec2', times: 1 });
    const rejecting = machine({ 'amazonec2-wait-timeout': 1 });
    const error = await rejection(rejecting.driver.create());
    expect(['TIMEOUT', 'SSH']).toContain(error.code);
    expect(leaks()).toEqual([]);
  });

  it('an abort during create cleans up and rejects with CancelledError', async () => {
    sim.faults.add({ provider: 'amazonec2', operation: 'AuthorizeSecurityGroupIngress', latencyMs: 200 });
    const { driver, context } = machine();
    const controller = new AbortController();
    const created = driver.create({ signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(await rejection(created)).toBeInstanceOf(CancelledError);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });
});

describe('amazonec2 credentials', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('uses the AWS_PROFILE profile through the SDK chain on every run, never frozen', async () => {
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) delete process.env[name];
    const file = join(root, 'credentials');
    process.env.AWS_SHARED_CREDENTIALS_FILE = file;
    process.env.AWS_CONFIG_FILE = join(root, 'no-config');
    process.env.AWS_PROFILE = 'simulated';
    await writeFile(file, '[simulated]\naws_access_key_id = invalidPROFILEKEY001\naws_secret_access_key = profile-secret\n');
    const noKeys = { 'amazonec2-access-key': undefined, 'amazonec2-secret-key': undefined };
    const refused = machine(noKeys);
    expect(await rejection(refused.driver.preCreateCheck())).toBeInstanceOf(AuthError);
    expect(refused.context.data.read()).toEqual({});

    // The SDK caches a shared file per path within one process; a new CLI run re-reads it.
    const rotated = join(root, 'credentials-rotated');
    await writeFile(rotated, '[simulated]\naws_access_key_id = AKIDPROFILEKEY000001\naws_secret_access_key = profile-secret\n');
    process.env.AWS_SHARED_CREDENTIALS_FILE = rotated;
    const accepted = machine(noKeys);
    await accepted.driver.preCreateCheck();
    expect(JSON.stringify(accepted.context.data.read())).not.toContain('AKIDPROFILEKEY000001');

    process.env.AWS_PROFILE = 'nobody';
    const missing = machine(noKeys);
    const error = await rejection(missing.driver.preCreateCheck());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain('AWS_ACCESS_KEY_ID');
    expect(error.message).toContain('AWS_PROFILE');
  });
});

describe('amazonec2 provisioning boot data (the simulator applies the cloud-config host key)', () => {
  it('boots with the host cloud-config plus --amazonec2-userdata, and pins the host key it installs', async () => {
    const hostKey = generateSSHKeyPair({ comment: 'host' });
    const path = join(root, 'user-data.sh');
    await writeFile(path, '#!/bin/sh\necho from-the-user\n');
    const { driver, context } = machine({ 'amazonec2-userdata': path });
    await driver.create({ boot: { userData: hostKeyCloudConfig(hostKey), hostKeyFingerprint: hostKey.sha256Fingerprint } });
    const userData = String(attributes(instanceOf(context)).userData);
    expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
    expect(userData).toContain(hostKey.publicKey);
    expect(userData).toContain('echo from-the-user');
    expect(context.data.read().hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
    // start and restart connect with the pinned key.
    await driver.restart();
    await driver.remove();
    expect(leaks()).toEqual([]);
  });

  it('a machine presenting another host key than the expected one fails create with an SSHError and leaks nothing', async () => {
    const installed = generateSSHKeyPair({ comment: 'host' });
    const expected = generateSSHKeyPair({ comment: 'host' }).sha256Fingerprint;
    const { driver, context } = machine();
    const error = await rejection(driver.create({ boot: { userData: hostKeyCloudConfig(installed), hostKeyFingerprint: expected } }));
    expect(error).toBeInstanceOf(SSHError);
    expect((error as SSHError).failure).toBe('host-key');
    expect(error.message).toContain(`expected ${expected}, got ${installed.sha256Fingerprint}`);
    expect(context.journal.entries()).toEqual([]);
    expect(leaks()).toEqual([]);
  });
});

async function defaultVpc(): Promise<string> {
  const { Vpcs } = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }));
  return Vpcs?.[0]?.VpcId ?? '';
}
