import { type ConfigOf, cidrProblem, defineFlags, parseOpenPort } from '@machine/driver-core';

/** The default API endpoint; `--digitalocean-api-url` points the driver elsewhere (the simulator). */
export const defaultApiUrl = 'https://api.digitalocean.com';

/** A current Ubuntu LTS slug (the reference's `ubuntu-16-04-x64` no longer exists). */
export const defaultImage = 'ubuntu-24-04-x64';

const slug =
  (what: string) =>
  (value: string): string | undefined =>
  /^[a-z0-9][a-z0-9-]*$/.test(value) ? undefined : `"${value}" is not a DigitalOcean ${what} slug (lower-case letters, digits and "-")`;

/**
 * The digitalocean driver's flags: the reference's names, env vars and defaults, plus
 * `-vpc-uuid`, `-firewall`, `-allowed-cidr`, `-open-port`, `-api-url` and `-wait-timeout`.
 */
export const digitalOceanFlags = defineFlags([
  {
    name: 'digitalocean-access-token',
    key: 'accessToken',
    type: 'string',
    envVar: 'DIGITALOCEAN_ACCESS_TOKEN',
    secret: true,
    description: 'DigitalOcean API token (else DIGITALOCEAN_TOKEN, else the doctl login)',
  },
  {
    name: 'digitalocean-api-url',
    key: 'apiUrl',
    type: 'string',
    envVar: 'DIGITALOCEAN_API_URL',
    default: defaultApiUrl,
    description: 'DigitalOcean API base URL (for the simulator or a proxy)',
    validate: (value: string) => (/^https?:\/\/[^/\s]+\/?$/.test(value) ? undefined : `"${value}" is not an http(s) base URL like ${defaultApiUrl}`),
  },
  {
    name: 'digitalocean-image',
    key: 'image',
    type: 'string',
    envVar: 'DIGITALOCEAN_IMAGE',
    default: defaultImage,
    description: 'Image slug or numeric image id',
    validate: (value: string) => (/^\d+$/.test(value) ? undefined : slug('image')(value)),
  },
  {
    name: 'digitalocean-region',
    key: 'region',
    type: 'string',
    envVar: 'DIGITALOCEAN_REGION',
    default: 'nyc3',
    description: 'Region slug',
    validate: slug('region'),
  },
  {
    name: 'digitalocean-size',
    key: 'size',
    type: 'string',
    envVar: 'DIGITALOCEAN_SIZE',
    default: 's-1vcpu-1gb',
    description: 'Droplet size slug',
    validate: slug('size'),
  },
  { name: 'digitalocean-ipv6', key: 'ipv6', type: 'bool', envVar: 'DIGITALOCEAN_IPV6', description: 'Enable IPv6' },
  {
    name: 'digitalocean-private-networking',
    key: 'privateNetworking',
    type: 'bool',
    envVar: 'DIGITALOCEAN_PRIVATE_NETWORKING',
    description: 'Enable private networking (droplets always join a VPC today)',
  },
  { name: 'digitalocean-backups', key: 'backups', type: 'bool', envVar: 'DIGITALOCEAN_BACKUPS', description: 'Enable weekly backups' },
  {
    name: 'digitalocean-userdata',
    key: 'userdata',
    type: 'string',
    envVar: 'DIGITALOCEAN_USERDATA',
    description: 'Path to a user-data (cloud-init) file; combined with the provisioning cloud-config (64 KiB in all)',
  },
  { name: 'digitalocean-ssh-user', key: 'sshUser', type: 'string', envVar: 'DIGITALOCEAN_SSH_USER', default: 'root', description: 'SSH user' },
  {
    name: 'digitalocean-ssh-port',
    key: 'sshPort',
    type: 'int',
    envVar: 'DIGITALOCEAN_SSH_PORT',
    default: 22,
    min: 1,
    max: 65535,
    description: 'SSH port',
  },
  {
    name: 'digitalocean-ssh-key-fingerprint',
    key: 'sshKeyFingerprint',
    type: 'string',
    envVar: 'DIGITALOCEAN_SSH_KEY_FINGERPRINT',
    description: 'Use this existing account key (MD5 fingerprint or id) instead of uploading a new one; it is never deleted',
    validate: (value: string) =>
      /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(value) || /^\d+$/.test(value)
        ? undefined
        : `"${value}" is not an MD5 key fingerprint (aa:bb:…, as \`doctl compute ssh-key list\` shows) or a key id`,
  },
  {
    name: 'digitalocean-ssh-key-path',
    key: 'sshKeyPath',
    type: 'string',
    envVar: 'DIGITALOCEAN_SSH_KEY_PATH',
    description: 'Private key of --digitalocean-ssh-key-fingerprint (default: ~/.ssh/id_ed25519 or ~/.ssh/id_rsa if it matches)',
  },
  {
    name: 'digitalocean-tags',
    key: 'tags',
    type: 'string[]',
    envVar: 'DIGITALOCEAN_TAGS',
    description: 'Extra droplet tags, comma-separated (the driver always adds `machine` and `machine-<name>`)',
    validate: (values: string[]) => {
      const bad = values.filter((tag) => !/^[A-Za-z0-9:_-]{1,255}$/.test(tag));
      return bad.length === 0 ? undefined : `${bad.map((tag) => `"${tag}"`).join(', ')}: tags may contain only letters, digits, ":", "-" and "_"`;
    },
  },
  { name: 'digitalocean-monitoring', key: 'monitoring', type: 'bool', envVar: 'DIGITALOCEAN_MONITORING', description: 'Enable the monitoring agent' },
  {
    name: 'digitalocean-vpc-uuid',
    key: 'vpcUuid',
    type: 'string',
    envVar: 'DIGITALOCEAN_VPC_UUID',
    description: 'VPC to place the droplet in (default: the region’s default VPC)',
    validate: (value: string) => (/^[0-9a-f-]{36}$/i.test(value) ? undefined : `"${value}" is not a VPC UUID`),
  },
  {
    name: 'digitalocean-firewall',
    key: 'firewall',
    type: 'bool',
    envVar: 'DIGITALOCEAN_FIREWALL',
    description: 'Create a cloud firewall that only lets in SSH, Docker (2376) and --digitalocean-open-port',
  },
  {
    name: 'digitalocean-allowed-cidr',
    key: 'allowedCidrs',
    type: 'string[]',
    envVar: 'DIGITALOCEAN_ALLOWED_CIDR',
    default: ['0.0.0.0/0', '::/0'],
    description: 'Sources the firewall lets in',
    validate: (values: string[]) => values.map(cidrProblem).find((problem) => problem !== undefined),
  },
  {
    name: 'digitalocean-open-port',
    key: 'openPorts',
    type: 'string[]',
    envVar: 'DIGITALOCEAN_OPEN_PORT',
    description: 'Extra inbound ports the firewall opens (8080, 8000-8010, 53/udp)',
    validate: (values: string[]) => {
      for (const value of values) {
        const parsed = parseOpenPort(value);
        if ('problem' in parsed) return parsed.problem;
      }
      return undefined;
    },
  },
  {
    name: 'digitalocean-wait-timeout',
    key: 'waitTimeout',
    type: 'int',
    envVar: 'DIGITALOCEAN_WAIT_TIMEOUT',
    default: 300,
    min: 1,
    max: 3600,
    description: 'Seconds to wait for the droplet, its actions and SSH',
  },
] as const);

/** The parsed config of the digitalocean driver. */
export type DigitalOceanConfig = ConfigOf<typeof digitalOceanFlags>;
