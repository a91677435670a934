import { type ConfigOf, cidrProblem, defineFlags, parseOpenPort } from '@machine/driver-core';

const volumeTypes = ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;

/**
 * The amazonec2 flags: the reference's names, env vars and defaults, plus IMDSv2 and EBS
 * encryption (maintained forks), `allowed-cidr` and `wait-timeout`. Where this driver changes a
 * default (instance type, volume type, AMI), the README says why.
 */
export const amazonEC2Flags = defineFlags([
  {
    name: 'amazonec2-access-key',
    key: 'accessKey',
    type: 'string',
    envVar: 'AWS_ACCESS_KEY_ID',
    secret: true,
    description: 'AWS access key id; when unset the default credential chain is used (env, AWS_PROFILE, SSO, role)',
  },
  {
    name: 'amazonec2-secret-key',
    key: 'secretKey',
    type: 'string',
    envVar: 'AWS_SECRET_ACCESS_KEY',
    secret: true,
    description: 'AWS secret access key (with --amazonec2-access-key)',
  },
  {
    name: 'amazonec2-session-token',
    key: 'sessionToken',
    type: 'string',
    envVar: 'AWS_SESSION_TOKEN',
    secret: true,
    description: 'AWS session token (with --amazonec2-access-key)',
  },
  {
    name: 'amazonec2-region',
    key: 'region',
    type: 'string',
    envVar: 'AWS_DEFAULT_REGION',
    default: 'us-east-1',
    validate: (value: string) => (/^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(value) ? undefined : `"${value}" is not an AWS region name (e.g. eu-west-1)`),
    description: 'AWS region; any region works, none is looked up in a table',
  },
  {
    name: 'amazonec2-zone',
    key: 'zone',
    type: 'string',
    envVar: 'AWS_ZONE',
    default: 'a',
    validate: (value: string) =>
      /^[a-z]$/.test(value) || /^[a-z]{2}(-[a-z0-9]+)+-\d+[a-z](-[a-z0-9-]+)?$/.test(value) || /^[a-z]{3,5}\d+-az\d+$/.test(value)
        ? undefined
        : `"${value}" is not a zone letter (a), an availability zone name (us-east-1a) or a zone id (use1-az1)`,
    description: 'Availability zone: a letter (a), a full zone name (us-east-1a) or a zone id (use1-az1)',
  },
  {
    name: 'amazonec2-ami',
    key: 'ami',
    type: 'string',
    envVar: 'AWS_AMI',
    validate: (value: string) => (/^ami-[0-9a-f]{8,17}$/.test(value) ? undefined : `"${value}" is not an AMI id (ami-0123456789abcdef0)`),
    description: 'AMI id; default: the current Ubuntu 24.04 LTS AMI of the region, from the public SSM parameter',
  },
  {
    name: 'amazonec2-instance-type',
    key: 'instanceType',
    type: 'string',
    envVar: 'AWS_INSTANCE_TYPE',
    default: 't3.micro',
    validate: (value: string) => (/^[a-z0-9-]+\.[a-z0-9-]+$/.test(value) ? undefined : `"${value}" is not an instance type (t3.micro)`),
    description: 'Instance type',
  },
  {
    name: 'amazonec2-vpc-id',
    key: 'vpcId',
    type: 'string',
    envVar: 'AWS_VPC_ID',
    validate: (value: string) => (/^vpc-[0-9a-f]{8,17}$/.test(value) ? undefined : `"${value}" is not a VPC id (vpc-…)`),
    description: 'VPC id; default: the account default VPC of the region (or the VPC of --amazonec2-subnet-id)',
  },
  {
    name: 'amazonec2-subnet-id',
    key: 'subnetId',
    type: 'string',
    envVar: 'AWS_SUBNET_ID',
    validate: (value: string) => (/^subnet-[0-9a-f]{8,17}$/.test(value) ? undefined : `"${value}" is not a subnet id (subnet-…)`),
    description: 'Subnet id; default: the default subnet of the zone in the VPC',
  },
  {
    name: 'amazonec2-security-group',
    key: 'securityGroups',
    type: 'string[]',
    envVar: 'AWS_SECURITY_GROUP',
    default: ['docker-machine'],
    validate: (value: string[]) => (value.length === 0 ? 'name at least one security group' : undefined),
    description: 'Security group names (repeatable); made when missing, reused when present',
  },
  {
    name: 'amazonec2-security-group-readonly',
    key: 'securityGroupReadonly',
    type: 'bool',
    envVar: 'AWS_SECURITY_GROUP_READONLY',
    description: 'Never add rules to an existing security group',
  },
  {
    name: 'amazonec2-open-port',
    key: 'openPorts',
    type: 'string[]',
    validate: (value: string[]) => value.map((port) => parseOpenPort(port)).find((parsed) => 'problem' in parsed)?.problem as string | undefined,
    description: 'Extra ports to open (8080, 8000-8010, 53/udp; repeatable)',
  },
  {
    name: 'amazonec2-allowed-cidr',
    key: 'allowedCidrs',
    type: 'string[]',
    envVar: 'AWS_ALLOWED_CIDR',
    validate: (value: string[]) => value.map((cidr) => cidrProblem(cidr)).find((problem) => problem !== undefined),
    description: 'Source CIDRs allowed to reach SSH, Docker and the open ports (default 0.0.0.0/0 and ::/0)',
  },
  {
    name: 'amazonec2-keypair-name',
    key: 'keypairName',
    type: 'string',
    envVar: 'AWS_KEYPAIR_NAME',
    description: 'An existing EC2 key pair to use (needs --amazonec2-ssh-keypath); never deleted',
  },
  {
    name: 'amazonec2-ssh-keypath',
    key: 'sshKeypath',
    type: 'string',
    envVar: 'AWS_SSH_KEYPATH',
    description: 'Your own SSH private key; imported as a key pair unless --amazonec2-keypair-name names it',
  },
  {
    name: 'amazonec2-ssh-user',
    key: 'sshUser',
    type: 'string',
    envVar: 'AWS_SSH_USER',
    default: 'ubuntu',
    description: 'SSH user of the AMI',
  },
  {
    name: 'amazonec2-ssh-port',
    key: 'sshPort',
    type: 'int',
    envVar: 'AWS_SSH_PORT',
    default: 22,
    min: 1,
    max: 65535,
    description: 'SSH port',
  },
  {
    name: 'amazonec2-root-size',
    key: 'rootSize',
    type: 'int',
    envVar: 'AWS_ROOT_SIZE',
    default: 16,
    min: 1,
    max: 65536,
    description: 'Root volume size in GiB',
  },
  {
    name: 'amazonec2-volume-type',
    key: 'volumeType',
    type: 'string',
    envVar: 'AWS_VOLUME_TYPE',
    default: 'gp3',
    choices: volumeTypes,
    description: 'Root volume type',
  },
  {
    name: 'amazonec2-device-name',
    key: 'deviceName',
    type: 'string',
    envVar: 'AWS_DEVICE_NAME',
    validate: (value: string) => (/^\/dev\/[a-z0-9]+$/.test(value) ? undefined : `"${value}" is not a device name (/dev/sda1)`),
    description: 'Root device name; default: the AMI root device (DescribeImages)',
  },
  {
    name: 'amazonec2-encrypt-ebs-volume',
    key: 'encryptEbsVolume',
    type: 'bool',
    envVar: 'AWS_ENCRYPT_EBS_VOLUME',
    description: 'Encrypt the root EBS volume',
  },
  {
    name: 'amazonec2-kms-key',
    key: 'kmsKey',
    type: 'string',
    envVar: 'AWS_KMS_KEY',
    description: 'KMS key id or ARN for the root volume (implies --amazonec2-encrypt-ebs-volume)',
  },
  {
    name: 'amazonec2-iam-instance-profile',
    key: 'iamInstanceProfile',
    type: 'string',
    envVar: 'AWS_INSTANCE_PROFILE',
    description: 'IAM instance profile name or ARN',
  },
  {
    name: 'amazonec2-tags',
    key: 'tags',
    type: 'string',
    envVar: 'AWS_TAGS',
    validate: (value: string) => tagsProblem(value),
    description: 'Extra tags as key1,value1,key2,value2 (on the instance, volumes, key pair and security group)',
  },
  {
    name: 'amazonec2-request-spot-instance',
    key: 'requestSpotInstance',
    type: 'bool',
    description: 'Launch a one-time spot instance',
  },
  {
    name: 'amazonec2-spot-price',
    key: 'spotPrice',
    type: 'string',
    validate: (value: string) => (/^\d+(\.\d+)?$/.test(value) ? undefined : `"${value}" is not a price in USD per hour (0.05)`),
    description: 'Highest spot price in USD per hour; default: the on-demand price',
  },
  {
    name: 'amazonec2-private-address-only',
    key: 'privateAddressOnly',
    type: 'bool',
    description: 'No public IP; reach the machine on its private address',
  },
  {
    name: 'amazonec2-use-private-address',
    key: 'usePrivateAddress',
    type: 'bool',
    description: 'Reach the machine on its private address (it still gets a public one)',
  },
  {
    name: 'amazonec2-monitoring',
    key: 'monitoring',
    type: 'bool',
    description: 'Enable detailed CloudWatch monitoring',
  },
  {
    name: 'amazonec2-use-ebs-optimized-instance',
    key: 'ebsOptimized',
    type: 'bool',
    description: 'Launch an EBS-optimized instance',
  },
  {
    name: 'amazonec2-userdata',
    key: 'userdata',
    type: 'string',
    envVar: 'AWS_USERDATA',
    description: 'File whose contents are passed as user data (cloud-init), combined with the provisioning cloud-config (16 KiB in all)',
  },
  {
    name: 'amazonec2-metadata-token',
    key: 'metadataToken',
    type: 'string',
    default: 'required',
    choices: ['required', 'optional'],
    description: 'Instance metadata (IMDS) tokens: required (IMDSv2 only) or optional',
  },
  {
    name: 'amazonec2-metadata-token-response-hop-limit',
    key: 'metadataTokenHopLimit',
    type: 'int',
    default: 2,
    min: 1,
    max: 64,
    description: 'IMDSv2 response hop limit (2 lets containers reach the metadata service)',
  },
  {
    name: 'amazonec2-retries',
    key: 'retries',
    type: 'int',
    default: 5,
    min: 0,
    max: 20,
    description: 'Retries of throttled or failed API calls (SDK standard retry mode)',
  },
  {
    name: 'amazonec2-endpoint',
    key: 'endpoint',
    type: 'string',
    envVar: 'AWS_ENDPOINT',
    validate: (value: string) => (/^https?:\/\/[^\s/]+/.test(value) ? undefined : `"${value}" is not an http(s) URL`),
    description: 'EC2 endpoint URL (VPC endpoints, the simulator, LocalStack); SSM uses it too unless it is an AWS host',
  },
  {
    name: 'amazonec2-wait-timeout',
    key: 'waitTimeout',
    type: 'int',
    default: 600,
    min: 1,
    description: 'Seconds to wait for the instance to run, stop or terminate, and for SSH',
  },
] as const);

/** The parsed amazonec2 config. */
export type AmazonEC2Config = ConfigOf<typeof amazonEC2Flags>;

/** Parses `k1,v1,k2,v2` into pairs. */
export function parseTags(text: string | undefined): { Key: string; Value: string }[] {
  if (text === undefined || text.trim() === '') return [];
  const parts = text.split(',').map((part) => part.trim());
  const tags: { Key: string; Value: string }[] = [];
  for (let index = 0; index + 1 < parts.length; index += 2) tags.push({ Key: parts[index] ?? '', Value: parts[index + 1] ?? '' });
  return tags;
}

function tagsProblem(text: string): string | undefined {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length % 2 !== 0) return `"${text}" must be key,value pairs (key1,value1,key2,value2)`;
  const keys = parts.filter((_, index) => index % 2 === 0);
  if (keys.some((key) => key === '')) return 'a tag key is empty';
  if (keys.some((key) => key.toLowerCase().startsWith('aws:'))) return 'tag keys starting with "aws:" are reserved by AWS';
  return undefined;
}

/** Problems between flags that parseFlags cannot see one flag at a time. */
export function crossFlagProblems(config: AmazonEC2Config): { flag: string; message: string }[] {
  const problems: { flag: string; message: string }[] = [];
  if (config.keypairName !== undefined && config.sshKeypath === undefined) {
    problems.push({ flag: 'amazonec2-keypair-name', message: 'needs --amazonec2-ssh-keypath (the private key of that key pair)' });
  }
  if ((config.accessKey === undefined) !== (config.secretKey === undefined)) {
    problems.push({ flag: 'amazonec2-access-key', message: 'pass both --amazonec2-access-key and --amazonec2-secret-key, or neither (to use the credential chain)' });
  }
  if (config.spotPrice !== undefined && !config.requestSpotInstance) {
    problems.push({ flag: 'amazonec2-spot-price', message: 'only applies with --amazonec2-request-spot-instance' });
  }
  return problems;
}
