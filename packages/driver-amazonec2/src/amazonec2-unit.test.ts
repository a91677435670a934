import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { EC2Client, Image, RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import {
  AuthError,
  CancelledError,
  CapacityError,
  createMemoryContext,
  type FlagDefinition,
  InvalidConfigError,
  machineFirewallRules,
  NotFoundError,
  ProviderError,
  parseFlags,
  QuotaError,
  SSHError,
  State,
} from '@machine/driver-core';
import { startSSHServer } from '@machine/driver-core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsFor, ssmEndpoint } from './amazonec2-clients.ts';
import { crossFlagProblems, parseTags } from './amazonec2-flags.ts';
import { architectureOf, blockDeviceMappingsFor, ubuntuAmiParameter, zoneFilter } from './amazonec2-plan.ts';
import { missingPermissions } from './amazonec2-security-group.ts';
import { machineTags } from './amazonec2-tags.ts';
import { type AmazonEC2Config, amazonEC2Flags, createAmazonEC2Descriptor, mapAmazonEC2Error, parseAmazonEC2Flags, toMachineState } from './index.ts';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('flags', () => {
  it('defaults match the reference, with the newer defaults the issue sets', () => {
    const config = parseAmazonEC2Flags({});
    expect(config).toMatchObject({
      region: 'us-east-1',
      zone: 'a',
      instanceType: 't3.micro',
      securityGroups: ['docker-machine'],
      sshUser: 'ubuntu',
      sshPort: 22,
      rootSize: 16,
      volumeType: 'gp3',
      metadataToken: 'required',
      metadataTokenHopLimit: 2,
      retries: 5,
      requestSpotInstance: false,
      encryptEbsVolume: false,
    });
    expect(config.ami).toBeUndefined();
    expect(config.deviceName).toBeUndefined();
    expect(config.accessKey).toBeUndefined();
  });

  it('reads the reference env vars', () => {
    const config = parseAmazonEC2Flags({}, { AWS_DEFAULT_REGION: 'ap-south-2', AWS_SECURITY_GROUP: 'a,b', AWS_ROOT_SIZE: '40', AWS_ZONE: 'c' });
    expect(config).toMatchObject({ region: 'ap-south-2', securityGroups: ['a', 'b'], rootSize: 40, zone: 'c' });
  });

  it('lists every bad flag at once, before any API call', () => {
    let error: unknown;
    try {
      parseAmazonEC2Flags({
        'amazonec2-ami': 'ubuntu',
        'amazonec2-zone': 'Z',
        'amazonec2-volume-type': 'ssd',
        'amazonec2-tags': 'a,b,c',
        'amazonec2-open-port': ['http'],
        'amazonec2-allowed-cidr': ['10.0.0.0/33'],
        'amazonec2-metadata-token': 'maybe',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidConfigError);
    const flagsWithIssues = (error as InvalidConfigError).issues.map((issue) => issue.flag).sort();
    expect(flagsWithIssues).toEqual(
      [
      'amazonec2-zone',
      'amazonec2-ami',
      'amazonec2-volume-type',
      'amazonec2-open-port',
      'amazonec2-allowed-cidr',
      'amazonec2-tags',
      'amazonec2-metadata-token',
      ].sort(),
    );
  });

  it('checks flags that depend on each other', () => {
    const problems = crossFlagProblems(parseAmazonEC2Flags({ 'amazonec2-keypair-name': 'k', 'amazonec2-access-key': 'AKIDONLY' }));
    expect(problems.map((problem) => problem.flag)).toEqual(['amazonec2-keypair-name', 'amazonec2-access-key']);
  });

  it('the README documents every flag with its env var and default', async () => {
    const readme = await readFile(join(packageDir, 'README.md'), 'utf8');
    for (const definition of amazonEC2Flags as readonly FlagDefinition[]) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`--${definition.name}\``));
      expect(row, `--${definition.name}`).toBeDefined();
      if (definition.envVar !== undefined) expect(row).toContain(`\`${definition.envVar}\``);
      const fallback = (definition as { default?: unknown }).default;
      if (fallback !== undefined) expect(row).toContain(`\`${Array.isArray(fallback) ? fallback.join(',') : String(fallback)}\``);
    }
  });

  it('parses tags and lets user tags override the defaults but keeps the machine tag', () => {
    expect(parseTags('a,1,b,2')).toEqual([
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
    ]);
    const tags = machineTags('web1', 'Name,custom,team,x');
    expect(tags).toEqual([
      { Key: 'Name', Value: 'custom' },
      { Key: 'docker-machine-name', Value: 'web1' },
      { Key: 'managed-by', Value: 'machine' },
      { Key: 'team', Value: 'x' },
    ]);
  });
});

describe('launch plan helpers', () => {
  it('picks the Ubuntu AMI parameter by architecture', () => {
    expect(architectureOf('t3.micro')).toBe('amd64');
    expect(architectureOf('t4g.small')).toBe('arm64');
    expect(architectureOf('c7gn.large')).toBe('arm64');
    expect(architectureOf('a1.medium')).toBe('arm64');
    expect(architectureOf('g5.xlarge')).toBe('amd64');
    expect(ubuntuAmiParameter('arm64')).toBe('/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id');
  });

  it('turns --amazonec2-zone into the right subnet filter (no concatenation bug)', () => {
    expect(zoneFilter('us-east-1', 'c')).toEqual({ Name: 'availability-zone', Values: ['us-east-1c'] });
    expect(zoneFilter('us-east-1', 'us-east-1c')).toEqual({ Name: 'availability-zone', Values: ['us-east-1c'] });
    expect(zoneFilter('us-east-1', 'use1-az4')).toEqual({ Name: 'availability-zone-id', Values: ['use1-az4'] });
  });

  const image: Image = {
    ImageId: 'ami-0123456789abcdef0',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-1', VolumeSize: 8 } },
      { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: 'snap-2', VolumeSize: 4, DeleteOnTermination: false } },
      { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
    ],
  };

  it('maps the root device of the AMI, sized and typed; encryption reaches every EBS volume', () => {
    const plain = blockDeviceMappingsFor(image, parseAmazonEC2Flags({ 'amazonec2-root-size': 30 }));
    expect(plain).toEqual({
      rootDeviceName: '/dev/xvda',
      blockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 30, VolumeType: 'gp3', DeleteOnTermination: true } }],
    });
    const encrypted = blockDeviceMappingsFor(image, parseAmazonEC2Flags({ 'amazonec2-kms-key': 'alias/k' }));
    expect(encrypted.blockDeviceMappings).toEqual([
      { DeviceName: '/dev/xvda', Ebs: { VolumeSize: 16, VolumeType: 'gp3', DeleteOnTermination: true, Encrypted: true, KmsKeyId: 'alias/k' } },
      { DeviceName: '/dev/xvdb', Ebs: { DeleteOnTermination: false, Encrypted: true, KmsKeyId: 'alias/k' } },
    ]);
    expect(blockDeviceMappingsFor(image, parseAmazonEC2Flags({ 'amazonec2-device-name': '/dev/sda1' })).rootDeviceName).toBe('/dev/sda1');
    expect(() => blockDeviceMappingsFor(image, parseAmazonEC2Flags({ 'amazonec2-root-size': 4 }))).toThrow(InvalidConfigError);
  });

  it('adds only the ingress permissions a group lacks', () => {
    const rules = machineFirewallRules({ sshPort: 22, openPorts: ['8080'], allowedCidrs: ['203.0.113.0/24', '2001:db8::/32'] });
    const group = {
      IpPermissions: [
        { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, IpRanges: [{ CidrIp: '203.0.113.0/24' }] },
        { IpProtocol: 'tcp', FromPort: 2376, ToPort: 2376, Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32' }] },
      ],
    };
    expect(missingPermissions(group, rules, 'machine web1')).toEqual([
      { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32', Description: 'machine web1 ssh' }] },
      { IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32', Description: 'machine web1 user' }] },
    ]);
    expect(missingPermissions({ IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '203.0.113.0/24' }], Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32' }] }] }, rules, 'x')).toEqual([]);
  });

  it('builds one set of clients per region, endpoint and credentials and shares it; injected clients and overrides are never shared', async () => {
    const config = parseFlags(amazonEC2Flags, { 'amazonec2-region': 'eu-north-1', 'amazonec2-access-key': 'AKIDSHARED0000000001', 'amazonec2-secret-key': 's' }, { env: {} });
    const shared = clientsFor(config);
    expect(clientsFor({ ...config })).toBe(shared);
    expect(await clientsFor({ ...config }).ec2()).toBe(await shared.ec2());
    expect(clientsFor({ ...config, region: 'eu-south-1' })).not.toBe(shared);
    expect(clientsFor({ ...config, accessKey: 'AKIDSHARED0000000002' })).not.toBe(shared);
    expect(clientsFor(config, {}, { ec2: {} as EC2Client })).not.toBe(shared);
    expect(clientsFor(config, { logger: console })).not.toBe(shared);
  });

  it('sends SSM to a custom endpoint (simulator, LocalStack) but not to an AWS EC2 endpoint', () => {
    expect(ssmEndpoint(undefined)).toBeUndefined();
    expect(ssmEndpoint('http://127.0.0.1:4566')).toBe('http://127.0.0.1:4566');
    expect(ssmEndpoint('https://ec2.cn-north-1.amazonaws.com.cn')).toBeUndefined();
    expect(ssmEndpoint('https://vpce-0a1b-2c3d.ec2.eu-west-1.vpce.amazonaws.com')).toBeUndefined();
    expect(ssmEndpoint('https://ec2-fips.us-gov-west-1.amazonaws.com')).toBeUndefined();
  });

  it('maps every EC2 state; shutting-down and terminated mean gone', () => {
    expect(['pending', 'running', 'stopping', 'stopped', 'weird'].map(toMachineState)).toEqual([State.Starting, State.Running, State.Stopping, State.Stopped, State.Error]);
    expect(toMachineState('terminated')).toBeUndefined();
    expect(toMachineState('shutting-down')).toBeUndefined();
  });
});

describe('error mapping', () => {
  const awsError = (name: string, status = 400) =>
    Object.assign(new Error(`${name} happened for key AKIAABCDEFGHIJKLMNOP and secret s3cr3t-value`), {
      name,
      $fault: 'client',
      $metadata: { httpStatusCode: status, requestId: 'req-42' },
    });

  it('maps auth, quota, not-found, throttling and other errors to typed errors with the request id', () => {
    const where = { machine: 'web1', operation: 'create', secrets: ['s3cr3t-value'] };
    expect(mapAmazonEC2Error(awsError('AuthFailure', 401), where)).toBeInstanceOf(AuthError);
    expect(mapAmazonEC2Error(awsError('UnauthorizedOperation', 403), where)).toBeInstanceOf(AuthError);
    expect(mapAmazonEC2Error(awsError('VcpuLimitExceeded'), where)).toBeInstanceOf(QuotaError);
    expect(mapAmazonEC2Error(awsError('InstanceLimitExceeded'), where)).toBeInstanceOf(QuotaError);
    // No capacity is not a quota: another zone, type or time may work, a higher limit does not.
    const capacity = mapAmazonEC2Error(awsError('InsufficientInstanceCapacity', 500), where);
    expect(capacity).toBeInstanceOf(CapacityError);
    expect(capacity.message).toContain('try another zone');
    expect(mapAmazonEC2Error(awsError('InvalidInstanceID.NotFound'), where)).toBeInstanceOf(NotFoundError);
    expect(mapAmazonEC2Error(Object.assign(new Error('aborted'), { name: 'AbortError' }), where)).toBeInstanceOf(CancelledError);
    const throttled = mapAmazonEC2Error(awsError('RequestLimitExceeded', 503), where) as ProviderError;
    expect(throttled.isRetryable).toBe(true);
    const other = mapAmazonEC2Error(awsError('InvalidParameterValue'), where) as ProviderError;
    expect(other).toBeInstanceOf(ProviderError);
    expect(other.requestId).toBe('req-42');
    expect(other.statusCode).toBe(400);
    expect(other.providerCode).toBe('InvalidParameterValue');
    for (const error of [throttled, other]) {
      expect(error.message).not.toContain('s3cr3t-value');
      expect(error.message).not.toContain('AKIAABCDEFGHIJKLMNOP');
    }
  });

  it('a missing credential is one line naming every place the chain looked', () => {
    const error = mapAmazonEC2Error(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), {});
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain('\n');
    for (const place of ['--amazonec2-access-key', 'AWS_ACCESS_KEY_ID', 'AWS_PROFILE', '~/.aws/credentials', 'SSO', 'instance role']) {
      expect(error.message).toContain(place);
    }
  });
});

/** A stand-in EC2 client: answers from a table by command name and records every input. */
function fakeClients(answers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const name = command.constructor.name.replace(/Command$/, '');
    calls.push({ command: name, input: command.input });
    const answer = answers[name];
    if (answer === undefined) throw new Error(`unexpected ${name}`);
    return answer(command.input);
  };
  // Only `send` is used by the driver, the SDK waiters and the SSM lookup.
  const ec2 = { send } as unknown as EC2Client;
  const ssm = { send } as unknown as SSMClient;
  return { clients: { ec2, ssm }, calls };
}

function awsFailure(name: string, status = 400): Error {
  return Object.assign(new Error(`${name} from the fake`), { name, $metadata: { httpStatusCode: status, requestId: 'fake-1' } });
}

describe('create with a mocked SDK client', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'amazonec2-unit-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const answers = (run: (input: Record<string, unknown>) => unknown) => ({
    DescribeVpcs: () => ({ Vpcs: [{ VpcId: 'vpc-0a1b2c3d' }] }),
    DescribeSubnets: () => ({ Subnets: [{ SubnetId: 'subnet-1a2b3c4d', VpcId: 'vpc-0a1b2c3d', AvailabilityZone: 'us-east-1a', DefaultForAz: true }] }),
    GetParameter: () => ({ Parameter: { Value: 'ami-0123456789abcdef0' } }),
    DescribeImages: () => ({ Images: [{ ImageId: 'ami-0123456789abcdef0', RootDeviceName: '/dev/sda1', BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }] }] }),
    ImportKeyPair: (input: Record<string, unknown>) => ({ KeyPairId: 'key-0123456789abcdef0', KeyName: input.KeyName }),
    DescribeSecurityGroups: () => ({ SecurityGroups: [{ GroupId: 'sg-0123456789abcdef0', GroupName: 'docker-machine', IpPermissions: [] }] }),
    CreateSecurityGroup: () => ({ GroupId: 'sg-0fedcba9876543210' }),
    AuthorizeSecurityGroupIngress: () => ({ Return: true }),
    RunInstances: run,
    DescribeInstances: () => ({ Reservations: [] }),
    DeleteSecurityGroup: () => ({}),
    DeleteKeyPair: () => ({}),
  });

  function driverWith(clients: ReturnType<typeof fakeClients>['clients'], values: Record<string, unknown> = {}) {
    const context = createMemoryContext('unit1', join(root, `unit-${Math.random().toString(36).slice(2)}`));
    const config: AmazonEC2Config = parseFlags(amazonEC2Flags, values, { env: {} });
    return { driver: createAmazonEC2Descriptor({ clients }).createDriver({ config, context }), context };
  }

  it('sends RunInstances with a ClientToken, IMDSv2, tags on instance/volume/ENI and no empty spot price; cleans up in reverse on failure', async () => {
    let runInput: RunInstancesCommandInput | undefined;
    const { clients, calls } = fakeClients(
      answers((input) => {
        runInput = input as unknown as RunInstancesCommandInput;
        throw awsFailure('InsufficientInstanceCapacity', 500);
      }),
    );
    const { driver, context } = driverWith(clients, { 'amazonec2-request-spot-instance': true, 'amazonec2-iam-instance-profile': 'arn:aws:iam::1:instance-profile/p' });
    await expect(driver.create()).rejects.toBeInstanceOf(CapacityError);
    expect(runInput?.ClientToken).toMatch(/^[0-9a-f]{8}\.unit1$/);
    expect(runInput?.MetadataOptions).toEqual({ HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 2 });
    expect(runInput?.InstanceMarketOptions).toEqual({ MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } });
    expect(runInput?.IamInstanceProfile).toEqual({ Arn: 'arn:aws:iam::1:instance-profile/p' });
    expect(runInput?.TagSpecifications?.map((spec) => spec.ResourceType)).toEqual(['instance', 'volume', 'network-interface']);
    expect(runInput?.NetworkInterfaces?.[0]).toMatchObject({ SubnetId: 'subnet-1a2b3c4d', Groups: ['sg-0123456789abcdef0'], AssociatePublicIpAddress: true });
    expect(runInput?.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 16, VolumeType: 'gp3', DeleteOnTermination: true } }]);
    // The existing `docker-machine` group has no machine tag: it is not ours, so cleanup leaves it.
    const after = calls.slice(calls.findIndex((call) => call.command === 'RunInstances') + 1).map((call) => call.command);
    // No capacity means nothing was launched: the client-token intent goes at once, without a lookup.
    expect(after).toEqual(['DeleteKeyPair']);
    expect(calls.find((call) => call.command === 'DeleteKeyPair')?.input).toEqual({ KeyPairId: 'key-0123456789abcdef0' });
    expect(context.journal.entries()).toEqual([]);
  });

  describe('boot user data and host key (provisioning)', () => {
    const hostCloudConfig = '#cloud-config\nssh_deletekeys: true\n';

    /** Runs create until RunInstances (which fails) and returns the user data it got, decoded. */
    async function userDataSent(values: Record<string, unknown>, boot?: { userData?: string }): Promise<string | undefined> {
      let runInput: RunInstancesCommandInput | undefined;
      const { clients } = fakeClients(
        answers((input) => {
          runInput = input as unknown as RunInstancesCommandInput;
          throw awsFailure('InsufficientInstanceCapacity', 500);
        }),
      );
      const { driver } = driverWith(clients, values);
      await expect(driver.create(boot === undefined ? {} : { boot })).rejects.toBeInstanceOf(CapacityError);
      expect(runInput).toBeDefined();
      return runInput?.UserData === undefined ? undefined : Buffer.from(runInput.UserData, 'base64').toString('utf8');
    }

    it('sends the host cloud-config and --amazonec2-userdata as one MIME multipart (base64), host part first', async () => {
      const path = join(root, 'user-data-both.sh');
      await writeFile(path, '#!/bin/sh\necho user\n');
      const sent = String(await userDataSent({ 'amazonec2-userdata': path }, { userData: hostCloudConfig }));
      expect(sent).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
      const hostAt = sent.indexOf('Content-Type: text/cloud-config');
      expect(hostAt).toBeGreaterThan(0);
      expect(sent.indexOf('Content-Type: text/x-shellscript')).toBeGreaterThan(hostAt);
      expect(sent).toContain('ssh_deletekeys: true');
      expect(sent).toContain('echo user');
    });

    it('sends the host cloud-config alone, unchanged, without --amazonec2-userdata; the file alone without boot user data', async () => {
      expect(await userDataSent({}, { userData: hostCloudConfig })).toBe(hostCloudConfig);
      const path = join(root, 'user-data-only.yaml');
      await writeFile(path, '#cloud-config\npackages: [htop]\n');
      expect(await userDataSent({ 'amazonec2-userdata': path })).toBe('#cloud-config\npackages: [htop]\n');
      expect(await userDataSent({})).toBeUndefined();
    });

    it('sends a gzipped --amazonec2-userdata file byte for byte', async () => {
      const { gzipSync } = await import('node:zlib');
      const gzipped = gzipSync('#cloud-config\npackages: [htop]\n');
      const path = join(root, 'user-data.gz');
      await writeFile(path, gzipped);
      let runInput: RunInstancesCommandInput | undefined;
      const { clients } = fakeClients(
        answers((input) => {
          runInput = input as unknown as RunInstancesCommandInput;
          throw awsFailure('InsufficientInstanceCapacity', 500);
        }),
      );
      const { driver } = driverWith(clients, { 'amazonec2-userdata': path });
      await expect(driver.create()).rejects.toBeInstanceOf(CapacityError);
      expect(Buffer.from(runInput?.UserData ?? '', 'base64')).toEqual(gzipped);
    });

    it('refuses user data over 16 KiB raw before any API call; 16 KiB exactly passes', async () => {
      const { clients, calls } = fakeClients({});
      const path = join(root, 'user-data-10k.yaml');
      await writeFile(path, `#cloud-config\n#${'x'.repeat(10 * 1024)}\n`);
      const { driver } = driverWith(clients, { 'amazonec2-userdata': path });
      const error = await driver.create({ boot: { userData: `${hostCloudConfig}#${'y'.repeat(8 * 1024)}\n` } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message).toMatch(/^user data: the provisioning cloud-config plus .* is \d+ bytes; EC2 takes at most 16 KiB of user data$/);
      expect(calls).toEqual([]);
      // The limit is on the raw text: 16 KiB of it (about 21.3 KiB base64) is accepted.
      const exact = `#cloud-config\n#${'z'.repeat(16 * 1024 - 16)}\n`;
      expect(Buffer.byteLength(exact)).toBe(16 * 1024);
      expect(await userDataSent({}, { userData: exact })).toBe(exact);
    });

    /** A whole create against fake clients whose instance answers SSH on a real loopback ssh2 server. */
    async function createAgainstSSH(hostKeyFingerprint: (real: string) => string) {
      const publicKeys: string[] = [];
      const server = await startSSHServer({ authorizedKeys: () => publicKeys, host: '127.0.0.1' });
      let state = 'pending';
      const instance = () => ({ InstanceId: 'i-0123456789abcdef0', State: { Name: state }, PublicIpAddress: '127.0.0.1' });
      const { clients, calls } = fakeClients({
        ...answers(() => {
          state = 'running';
          return { Instances: [instance()] };
        }),
        ImportKeyPair: (input: Record<string, unknown>) => {
          publicKeys.push(Buffer.from(input.PublicKeyMaterial as Uint8Array).toString('utf8'));
          return { KeyPairId: 'key-0123456789abcdef0', KeyName: input.KeyName };
        },
        DescribeInstances: () => ({ Reservations: [{ Instances: [instance()] }] }),
        TerminateInstances: () => {
          state = 'terminated';
          return { TerminatingInstances: [{ InstanceId: 'i-0123456789abcdef0' }] };
        },
      });
      const { driver, context } = driverWith(clients, { 'amazonec2-ssh-port': server.port, 'amazonec2-wait-timeout': 10 });
      const fingerprint = hostKeyFingerprint(server.hostKeyFingerprint);
      const outcome = await driver.create({ boot: { userData: hostCloudConfig, hostKeyFingerprint: fingerprint } }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await server.close();
      return { outcome, context, calls, fingerprint, state: () => state };
    }

    it('pins the given host key at the first SSH connection and stores it', async () => {
      const { outcome, context, fingerprint } = await createAgainstSSH((real) => real);
      expect(outcome).toBeUndefined();
      expect(context.data.read().hostKeyFingerprint).toBe(fingerprint);
    });

    it('another host key fails create with an SSHError, and what create made is deleted', async () => {
      const { outcome, context, calls, state } = await createAgainstSSH(() => 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      expect(outcome).toBeInstanceOf(SSHError);
      expect((outcome as SSHError).failure).toBe('host-key');
      expect(context.journal.entries()).toEqual([]);
      expect(state()).toBe('terminated');
      expect(calls.map((call) => call.command)).toContain('DeleteKeyPair');
      expect(context.data.read().hostKeyFingerprint).toBeUndefined();
    });
  });

  it('never calls the API when a flag combination is wrong', async () => {
    const { clients, calls } = fakeClients({});
    const { driver } = driverWith(clients, { 'amazonec2-keypair-name': 'k' });
    await expect(driver.create()).rejects.toBeInstanceOf(InvalidConfigError);
    expect(calls).toEqual([]);
  });
});

describe('package', () => {
  it('importing the driver loads neither the AWS SDK nor ssh2', async () => {
    const script = `
      const { registerHooks } = await import('node:module');
      const seen = new Set();
      registerHooks({ resolve(specifier, context, next) { seen.add(specifier); return next(specifier, context); } });
      const driver = (await import(${JSON.stringify(join(packageDir, 'src/index.ts'))})).default;
      if (driver.name !== 'amazonec2') throw new Error('no descriptor');
      console.log(JSON.stringify([...seen]));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', script], { cwd: packageDir });
    const loaded = JSON.parse(stdout) as string[];
    expect(loaded.some((specifier) => specifier.includes('@machine/driver-core'))).toBe(true);
    expect(loaded.filter((specifier) => specifier.startsWith('@aws-sdk') || specifier.startsWith('@smithy') || specifier === 'ssh2')).toEqual([]);
  });
});
