import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../../sim.ts';
import type { AmazonEC2Options } from './amazonec2-backend.ts';

// The EC2 front end's real-cloud windows, through the real AWS SDK (no retries, so every answer is seen).

let sim: Sim | undefined;
let ec2: EC2Client | undefined;

afterEach(async () => {
  ec2?.destroy();
  await sim?.close();
});

async function start(options: { profile?: 'kind'; knobs?: AmazonEC2Options } = {}): Promise<EC2Client> {
  sim = await startSim({ providers: ['amazonec2'], ...(options.profile === undefined ? {} : { profile: options.profile }), providerOptions: { amazonec2: options.knobs ?? {} } });
  ec2 = new EC2Client({ region: 'eu-west-3', endpoint: sim.endpoints.amazonec2, credentials: { accessKeyId: 'AKIDREALISM000000001', secretAccessKey: 'x' }, maxAttempts: 1 });
  return ec2;
}

const launch = (client: EC2Client, extra: Record<string, unknown> = {}) =>
  client.send(new RunInstancesCommand({ ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, ...extra }));

async function errorName(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error as { name?: string }).name,
  );
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const value = await read().catch(() => undefined);
    if (value !== undefined && done(value)) return value;
    if (attempt > 300) throw new Error('condition never became true');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const describeOne = async (client: EC2Client, id: string) => (await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0];

describe('EC2 front end, realistic profile (default)', () => {
  it('a new instance is NotFound by id and missing from filtered lists at first; then pending without a public IP; State.Code carries the high byte', async () => {
    const client = await start({ knobs: { visibilityLagMs: 30_000, publicIpLagMs: 30_000 } });
    const id = (await launch(client, { ClientToken: 'token-1' })).Instances?.[0]?.InstanceId ?? '';
    expect(await errorName(describeOne(client, id))).toBe('InvalidInstanceID.NotFound');
    expect(await errorName(client.send(new TerminateInstancesCommand({ InstanceIds: [id] })))).toBe('InvalidInstanceID.NotFound');
    const byToken = await client.send(new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: ['token-1'] }] }));
    expect(byToken.Reservations).toEqual([]);
    const running = await until(
      () => describeOne(client, id),
      (instance) => instance?.State?.Name === 'running',
    );
    expect(running?.State?.Code).toBe(272); // 16 + EC2's internal high byte
    expect(running?.PublicIpAddress).toBeUndefined(); // running, IP not yet assigned
    const withIp = await until(
      () => describeOne(client, id),
      (instance) => instance?.PublicIpAddress !== undefined,
    );
    expect(withIp?.PublicIpAddress).toMatch(/^127\.1\./);
  });

  it('reboot shows no transient state; start while stopping is IncorrectInstanceState; each start gives a new public IP', async () => {
    const client = await start();
    const id = (await launch(client)).Instances?.[0]?.InstanceId ?? '';
    const first = await until(
      () => describeOne(client, id),
      (instance) => instance?.PublicIpAddress !== undefined,
    );
    await client.send(new RebootInstancesCommand({ InstanceIds: [id] }));
    expect((await describeOne(client, id))?.State?.Name).toBe('running');
    sim!.lifecycle.delays.stoppingMs = 200;
    await client.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(await errorName(client.send(new StartInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
    await until(
      () => describeOne(client, id),
      (instance) => instance?.State?.Name === 'stopped',
    );
    expect((await describeOne(client, id))?.StateReason?.Code).toBe('Client.UserInitiatedShutdown');
    await client.send(new StartInstancesCommand({ InstanceIds: [id] }));
    const again = await until(
      () => describeOne(client, id),
      (instance) => instance?.PublicIpAddress !== undefined,
    );
    expect(again?.PublicIpAddress).not.toBe(first?.PublicIpAddress);
    expect(again?.PrivateIpAddress).toBe(first?.PrivateIpAddress);
  });

  it('terminate: shutting-down, then terminated and still listed; its group is InvalidGroup.InUse, then DependencyViolation, then deletable', async () => {
    const client = await start({ knobs: { shuttingDownMs: 20_000, interfaceReleaseMs: 20_000 } });
    const vpcId = (await client.send(new DescribeVpcsCommand({}))).Vpcs?.[0]?.VpcId;
    const { GroupId } = await client.send(new CreateSecurityGroupCommand({ GroupName: 'g', Description: 'g', VpcId: vpcId }));
    expect(await errorName(client.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId ?? ''] })))).toBe('InvalidGroup.NotFound'); // read-after-create
    await until(
      () => client.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId ?? ''] })),
      () => true,
    );
    const id = (await launch(client, { SecurityGroupIds: [GroupId ?? ''] })).Instances?.[0]?.InstanceId ?? '';
    await until(
      () => describeOne(client, id),
      (instance) => instance?.State?.Name === 'running',
    );
    await client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect((await describeOne(client, id))?.State?.Name).toBe('shutting-down');
    expect(await errorName(client.send(new DeleteSecurityGroupCommand({ GroupId })))).toBe('InvalidGroup.InUse');
    const terminated = await until(
      () => describeOne(client, id),
      (instance) => instance?.State?.Name === 'terminated',
    );
    expect(terminated?.StateReason?.Code).toBe('Client.UserInitiatedShutdown');
    expect(await errorName(client.send(new DeleteSecurityGroupCommand({ GroupId })))).toBe('DependencyViolation');
    await until(
      () => client.send(new DeleteSecurityGroupCommand({ GroupId })),
      () => true,
    );
    expect(await errorName(client.send(new TerminateInstancesCommand({ InstanceIds: [id] })))).toBeUndefined(); // terminate twice = success
  });

  it('knobs: a launch that dies with a StateReason, InsufficientInstanceCapacity, RequestLimitExceeded buckets', async () => {
    const client = await start({
      knobs: {
        launchFailure: { name: 'dies', stateReason: 'Client.VolumeLimitExceeded' },
        insufficientCapacity: { name: 'full' },
        requestBuckets: { size: 2, refillPerSecond: 0.001, actions: ['DescribeVpcs'] },
      },
    });
    const nameTag = (name: string) => ({ TagSpecifications: [{ ResourceType: 'instance' as const, Tags: [{ Key: 'Name', Value: name }] }] });
    const id = (await launch(client, nameTag('dies'))).Instances?.[0]?.InstanceId ?? '';
    const dead = await until(
      () => describeOne(client, id),
      (instance) => instance?.State?.Name === 'terminated',
    );
    expect(dead?.StateReason).toEqual({ Code: 'Client.VolumeLimitExceeded', Message: 'Client.VolumeLimitExceeded: Volume limit exceeded' });
    const full = await launch(client, nameTag('full')).catch((error: unknown) => error as { name: string; $metadata: { httpStatusCode: number }; message: string });
    expect(full).toMatchObject({ name: 'InsufficientInstanceCapacity', $metadata: { httpStatusCode: 500 } });
    expect((full as { message: string }).message).toContain('We currently do not have sufficient t3.micro capacity');
    await client.send(new DescribeVpcsCommand({}));
    await client.send(new DescribeVpcsCommand({}));
    expect(await errorName(client.send(new DescribeVpcsCommand({})))).toBe('RequestLimitExceeded');
  });

  it('ClientToken replays the first launch, and a different request with it is IdempotentParameterMismatch; a duplicate key pair names the key', async () => {
    const client = await start();
    const first = await launch(client, { ClientToken: 'same' });
    const again = await launch(client, { ClientToken: 'same' });
    expect(again.Instances?.[0]?.InstanceId).toBe(first.Instances?.[0]?.InstanceId);
    expect(await errorName(launch(client, { ClientToken: 'same', InstanceType: 't3.small' }))).toBe('IdempotentParameterMismatch');
    const material = Buffer.from(generateSSHKeyPair().publicKey);
    await client.send(new ImportKeyPairCommand({ KeyName: 'k', PublicKeyMaterial: material }));
    const duplicate = await client.send(new ImportKeyPairCommand({ KeyName: 'k', PublicKeyMaterial: material })).catch((error: unknown) => error as Error);
    expect(duplicate).toMatchObject({ name: 'InvalidKeyPair.Duplicate', message: "The keypair 'k' already exists." });
  });
});

describe('EC2 front end, account profiles', () => {
  it('a region without a default VPC: RunInstances without a subnet is VPCIdNotSpecified', async () => {
    const client = await start({ knobs: { regionsWithoutDefaultVpc: ['eu-west-3'] } });
    expect((await client.send(new DescribeVpcsCommand({}))).Vpcs).toEqual([]);
    const error = await launch(client).catch((caught: unknown) => caught as Error);
    expect(error).toMatchObject({ name: 'VPCIdNotSpecified', message: 'No default VPC for this user' });
  });
});

describe('EC2 front end, kind profile', () => {
  it('answers at once and consistently: visible at once, the public IP while pending, no shutting-down, no high byte', async () => {
    const client = await start({ profile: 'kind' });
    const id = (await launch(client)).Instances?.[0]?.InstanceId ?? '';
    const pending = await describeOne(client, id);
    expect(pending?.State).toEqual({ Code: 0, Name: 'pending' });
    expect(pending?.PublicIpAddress).toMatch(/^127\.1\./);
    await client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect((await describeOne(client, id))?.State).toEqual({ Code: 48, Name: 'terminated' });
  });
});
