import type { BlockDeviceMapping, EC2Client, Image, RunInstancesCommandInput, Subnet, Tag, VolumeType } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { AuthError, InvalidConfigError, ProviderError } from '@machine/driver-core';
import { loadEC2Sdk, loadSSMSdk } from './amazonec2-clients.ts';
import type { AmazonEC2Config } from './amazonec2-flags.ts';
import { checkKeyMatches } from './amazonec2-local-inputs.ts';
import { tagSpecifications } from './amazonec2-tags.ts';

/** Where and what to launch, resolved from the flags before anything is made. */
export interface LaunchPlan {
  readonly vpcId: string;
  readonly subnetId: string;
  readonly availabilityZone: string;
  readonly imageId: string;
  readonly rootDeviceName: string;
  readonly blockDeviceMappings: BlockDeviceMapping[];
}

/** The Ubuntu LTS release whose current AMI is the default. */
export const defaultUbuntuRelease = '24.04';

/** The public SSM parameter naming the current Canonical Ubuntu AMI of a region. */
export function ubuntuAmiParameter(architecture: 'amd64' | 'arm64', release = defaultUbuntuRelease): string {
  return `/aws/service/canonical/ubuntu/server/${release}/stable/current/${architecture}/hvm/ebs-gp3/ami-id`;
}

/** Graviton families (t4g, m7g, c7gn, r8g, a1, …) run arm64 AMIs; everything else amd64. */
export function architectureOf(instanceType: string): 'amd64' | 'arm64' {
  const family = instanceType.split('.')[0] ?? '';
  return /^[a-z]+\d+g[a-z]*$/.test(family) || family === 'a1' ? 'arm64' : 'amd64';
}

/** The zone filter for `--amazonec2-zone`: a letter, a zone name or a zone id. */
export function zoneFilter(region: string, zone: string): { Name: string; Values: string[] } {
  if (/^[a-z]$/.test(zone)) return { Name: 'availability-zone', Values: [`${region}${zone}`] };
  if (/^[a-z]{3,5}\d+-az\d+$/.test(zone)) return { Name: 'availability-zone-id', Values: [zone] };
  return { Name: 'availability-zone', Values: [zone] };
}

type Send = EC2Client['send'];

/** Resolves subnet, VPC and zone: the given subnet, or the default subnet of the zone in the (default) VPC. */
export async function resolveNetwork(
  ec2: EC2Client,
  config: AmazonEC2Config,
  signal?: AbortSignal,
): Promise<{ vpcId: string; subnetId: string; availabilityZone: string }> {
  const { DescribeSubnetsCommand, DescribeVpcsCommand } = await loadEC2Sdk();
  const send: Send = ec2.send.bind(ec2);
  const options = signal === undefined ? {} : { abortSignal: signal };
  if (config.subnetId !== undefined) {
    const { Subnets = [] } = await send(new DescribeSubnetsCommand({ SubnetIds: [config.subnetId] }), options);
    const subnet = Subnets[0];
    if (subnet?.SubnetId === undefined || subnet.VpcId === undefined) {
      throw new InvalidConfigError([{ flag: 'amazonec2-subnet-id', message: `${config.subnetId} does not exist in ${config.region}` }]);
    }
    if (config.vpcId !== undefined && subnet.VpcId !== config.vpcId) {
      throw new InvalidConfigError([
        { flag: 'amazonec2-subnet-id', message: `${config.subnetId} is in ${subnet.VpcId}, not in --amazonec2-vpc-id ${config.vpcId}` },
      ]);
    }
    return { vpcId: subnet.VpcId, subnetId: subnet.SubnetId, availabilityZone: subnet.AvailabilityZone ?? '' };
  }
  let vpcId = config.vpcId;
  if (vpcId === undefined) {
    const { Vpcs = [] } = await send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }), options);
    vpcId = Vpcs[0]?.VpcId;
    if (vpcId === undefined) {
      throw new InvalidConfigError([
        {
          flag: 'amazonec2-vpc-id',
          message: `the account has no default VPC in ${config.region}; pass --amazonec2-vpc-id or --amazonec2-subnet-id`,
        },
      ]);
    }
  }
  const filter = zoneFilter(config.region, config.zone);
  const { Subnets = [] } = await send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, filter] }),
    options,
  );
  const subnet: Subnet | undefined = Subnets.find((s) => s.DefaultForAz === true) ?? Subnets.find((s) => s.State !== 'pending');
  if (subnet?.SubnetId === undefined) {
    throw new InvalidConfigError([
      {
        flag: 'amazonec2-zone',
        message: `${vpcId} has no subnet in zone ${filter.Values[0]}; pick another --amazonec2-zone or pass --amazonec2-subnet-id`,
      },
    ]);
  }
  return { vpcId, subnetId: subnet.SubnetId, availabilityZone: subnet.AvailabilityZone ?? filter.Values[0] ?? '' };
}

/** The AMI to launch: `--amazonec2-ami`, or the current Ubuntu LTS AMI from the public SSM parameter. */
export async function resolveImageId(ssm: () => Promise<SSMClient>, config: AmazonEC2Config, signal?: AbortSignal): Promise<string> {
  if (config.ami !== undefined) return config.ami;
  const { GetParameterCommand } = await loadSSMSdk();
  const name = ubuntuAmiParameter(architectureOf(config.instanceType));
  const client = await ssm();
  let Parameter: { Value?: string } | undefined;
  try {
    ({ Parameter } = await client.send(new GetParameterCommand({ Name: name }), signal === undefined ? {} : { abortSignal: signal }));
  } catch (error) {
    const code = (error as { name?: string }).name ?? '';
    if (code === 'ParameterNotFound') {
      throw new InvalidConfigError([
        { flag: 'amazonec2-ami', message: `no Ubuntu ${defaultUbuntuRelease} AMI is published in ${config.region} (SSM parameter ${name}); pass --amazonec2-ami` },
      ]);
    }
    if (code === 'AccessDeniedException') {
      throw new AuthError(`reading the public SSM parameter ${name} was denied`, {
        hint: 'allow ssm:GetParameter on arn:aws:ssm:*::parameter/aws/service/canonical/*, or pass --amazonec2-ami',
        cause: error,
      });
    }
    throw error;
  }
  const value = Parameter?.Value;
  if (value === undefined || !value.startsWith('ami-')) {
    throw new ProviderError(`the SSM parameter ${name} has no AMI id in ${config.region}`, {
      hint: 'pass --amazonec2-ami',
    });
  }
  return value;
}

/** Describes the AMI and builds the block-device mappings from it: its root device, sized, typed and encrypted as asked. */
export async function resolveImage(
  ec2: EC2Client,
  config: AmazonEC2Config,
  imageId: string,
  signal?: AbortSignal,
): Promise<{ rootDeviceName: string; blockDeviceMappings: BlockDeviceMapping[] }> {
  const { DescribeImagesCommand } = await loadEC2Sdk();
  const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), signal === undefined ? {} : { abortSignal: signal });
  const image = Images[0];
  if (image === undefined) {
    throw new InvalidConfigError([{ flag: 'amazonec2-ami', message: `${imageId} does not exist in ${config.region} or is not shared with this account` }]);
  }
  return blockDeviceMappingsFor(image, config);
}

/** The mappings for RunInstances: the root device from the AMI (or --amazonec2-device-name), plus encryption on the AMI's other EBS volumes when asked. */
export function blockDeviceMappingsFor(image: Image, config: AmazonEC2Config): { rootDeviceName: string; blockDeviceMappings: BlockDeviceMapping[] } {
  const rootDeviceName = config.deviceName ?? image.RootDeviceName ?? '/dev/sda1';
  const encrypted = config.encryptEbsVolume || config.kmsKey !== undefined;
  const encryption = encrypted ? { Encrypted: true, ...(config.kmsKey === undefined ? {} : { KmsKeyId: config.kmsKey }) } : {};
  const imageRoot = (image.BlockDeviceMappings ?? []).find((mapping) => mapping.DeviceName === rootDeviceName);
  const snapshotSize = imageRoot?.Ebs?.VolumeSize;
  if (snapshotSize !== undefined && config.rootSize < snapshotSize) {
    throw new InvalidConfigError([
      { flag: 'amazonec2-root-size', message: `${config.rootSize} GiB is smaller than the ${snapshotSize} GiB root snapshot of ${image.ImageId}` },
    ]);
  }
  const mappings: BlockDeviceMapping[] = [
    {
      DeviceName: rootDeviceName,
      Ebs: { VolumeSize: config.rootSize, VolumeType: config.volumeType as VolumeType, DeleteOnTermination: true, ...encryption },
    },
  ];
  if (encrypted) {
    for (const mapping of image.BlockDeviceMappings ?? []) {
      if (mapping.DeviceName === rootDeviceName || mapping.Ebs === undefined || mapping.DeviceName === undefined) continue;
      mappings.push({ DeviceName: mapping.DeviceName, Ebs: { DeleteOnTermination: mapping.Ebs.DeleteOnTermination ?? true, ...encryption } });
    }
  }
  return { rootDeviceName, blockDeviceMappings: mappings };
}

/** The RunInstances request of a machine (without its ClientToken, which the instance kind derives from the intent). */
export function launchSpec(
  config: AmazonEC2Config,
  plan: LaunchPlan,
  launch: { keyName: string; groupIds: string[]; userData: string | undefined; tags: Tag[] },
): Omit<RunInstancesCommandInput, 'ClientToken'> {
  return {
    ImageId: plan.imageId,
    InstanceType: config.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    KeyName: launch.keyName,
    NetworkInterfaces: [
      {
        DeviceIndex: 0,
        SubnetId: plan.subnetId,
        Groups: launch.groupIds,
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
    TagSpecifications: tagSpecifications(['instance', 'volume', 'network-interface'], launch.tags),
    ...(config.iamInstanceProfile === undefined
      ? {}
      : { IamInstanceProfile: config.iamInstanceProfile.startsWith('arn:') ? { Arn: config.iamInstanceProfile } : { Name: config.iamInstanceProfile } }),
    ...(launch.userData === undefined ? {} : { UserData: launch.userData }),
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
}

/**
 * Subnet, AMI and root device for a launch, and the check that --amazonec2-ssh-keypath is the
 * private half of --amazonec2-keypair-name. The network and AMI lookups run side by side; when one
 * fails the other is cancelled, not left running.
 */
export async function resolveLaunchPlan(clients: { ec2(): Promise<EC2Client>; ssm(): Promise<SSMClient> }, config: AmazonEC2Config, signal?: AbortSignal): Promise<LaunchPlan> {
  const ec2 = await clients.ec2();
  const sibling = new AbortController();
  const both = signal === undefined ? sibling.signal : AbortSignal.any([signal, sibling.signal]);
  const [network, imageId] = await Promise.all([resolveNetwork(ec2, config, both), resolveImageId(() => clients.ssm(), config, both)]).catch((error: unknown) => {
    sibling.abort();
    throw error;
  });
  const image = await resolveImage(ec2, config, imageId, signal);
  if (config.keypairName !== undefined) {
    const { DescribeKeyPairsCommand } = await loadEC2Sdk();
    const { KeyPairs = [] } = await ec2.send(new DescribeKeyPairsCommand({ KeyNames: [config.keypairName] }), signal === undefined ? {} : { abortSignal: signal }).catch((error: unknown) => {
      if ((error as { name?: string }).name === 'InvalidKeyPair.NotFound') {
        throw new InvalidConfigError([{ flag: 'amazonec2-keypair-name', message: `no key pair named ${config.keypairName} in ${config.region}` }]);
      }
      throw error;
    });
    await checkKeyMatches(config, KeyPairs[0]?.KeyFingerprint);
  }
  return { ...network, imageId, ...image };
}
