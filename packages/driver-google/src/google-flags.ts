import { type ConfigOf, cidrProblem, defineFlags } from '@machine/driver-core';

/** Ubuntu 24.04 LTS, the image family (always the newest build; the reference pinned a 2017 image). */
export const defaultMachineImage = 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64';

/** The reference's default service-account scopes. */
export const defaultScopes: readonly string[] = [
  'https://www.googleapis.com/auth/devstorage.read_only',
  'https://www.googleapis.com/auth/logging.write',
  'https://www.googleapis.com/auth/monitoring.write',
];

const projectId = /^(?:[a-z][a-z0-9.-]*\.[a-z]{2,}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const zoneName = /^[a-z]+-[a-z]+\d+-[a-z]$/;
const resourceName = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const labelKey = /^[a-z][a-z0-9_-]{0,62}$/;
const labelValue = /^[a-z0-9_-]{0,63}$/;

/** Flags of the `google` driver: the reference's names, env vars and (updated) defaults. */
export const googleFlags = defineFlags([
  {
    name: 'google-project',
    key: 'project',
    type: 'string',
    envVar: 'GOOGLE_PROJECT',
    required: true,
    description: 'Google Cloud project ID to create the machine in',
    validate: (value: string) => (projectId.test(value) ? undefined : `"${value}" is not a project ID (6-30 of a-z, 0-9 and "-", starting with a letter)`),
  },
  {
    name: 'google-zone',
    key: 'zone',
    type: 'string',
    envVar: 'GOOGLE_ZONE',
    default: 'us-central1-a',
    description: 'Zone of the instance',
    validate: (value: string) => (zoneName.test(value) ? undefined : `"${value}" is not a zone name like us-central1-a`),
  },
  {
    name: 'google-machine-type',
    key: 'machineType',
    type: 'string',
    envVar: 'GOOGLE_MACHINE_TYPE',
    default: 'e2-small',
    description: 'Machine type (e2-small, n2-standard-2, or a custom-N-M type)',
    validate: (value: string) => (/^[a-z0-9][a-z0-9-]*$/.test(value) ? undefined : `"${value}" is not a machine type name`),
  },
  {
    name: 'google-machine-image',
    key: 'machineImage',
    type: 'string',
    envVar: 'GOOGLE_MACHINE_IMAGE',
    default: defaultMachineImage,
    description: 'Boot image: an image or image family URL (projects/P/global/images/family/F) or a full https URL',
    validate: (value: string) => (imagePath(value) === undefined ? `"${value}" is not an image path; write projects/PROJECT/global/images/IMAGE or .../images/family/FAMILY` : undefined),
  },
  {
    name: 'google-username',
    key: 'username',
    type: 'string',
    envVar: 'GOOGLE_USERNAME',
    default: 'docker-user',
    description: 'SSH user; its key goes into the instance ssh-keys metadata',
    validate: (value: string) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(value) ? undefined : `"${value}" is not a Linux user name`),
  },
  {
    name: 'google-service-account',
    key: 'serviceAccount',
    type: 'string',
    envVar: 'GOOGLE_SERVICE_ACCOUNT',
    default: 'default',
    description: 'Service account email the instance runs as ("default" = the Compute Engine default account)',
  },
  {
    name: 'google-scopes',
    key: 'scopes',
    type: 'string[]',
    envVar: 'GOOGLE_SCOPES',
    default: [...defaultScopes],
    description: 'OAuth scopes of the instance service account (comma-separated)',
  },
  {
    name: 'google-disk-size',
    key: 'diskSize',
    type: 'int',
    envVar: 'GOOGLE_DISK_SIZE',
    default: 10,
    min: 10,
    max: 65_536,
    description: 'Boot disk size in GB',
  },
  {
    name: 'google-disk-type',
    key: 'diskType',
    type: 'string',
    envVar: 'GOOGLE_DISK_TYPE',
    default: 'pd-balanced',
    description: 'Boot disk type (pd-balanced, pd-ssd, pd-standard, hyperdisk-balanced)',
    validate: (value: string) => (resourceName.test(value) ? undefined : `"${value}" is not a disk type name`),
  },
  {
    name: 'google-network',
    key: 'network',
    type: 'string',
    envVar: 'GOOGLE_NETWORK',
    default: 'default',
    description: 'VPC network name',
    validate: (value: string) => (resourceName.test(value) ? undefined : `"${value}" is not a network name`),
  },
  {
    name: 'google-subnetwork',
    key: 'subnetwork',
    type: 'string',
    envVar: 'GOOGLE_SUBNETWORK',
    description: "Subnetwork name in the zone's region (for custom-mode networks)",
    validate: (value: string) => (resourceName.test(value) ? undefined : `"${value}" is not a subnetwork name`),
  },
  {
    name: 'google-address',
    key: 'address',
    type: 'string',
    envVar: 'GOOGLE_ADDRESS',
    description: "Reserved static external IP: an IPv4 address or the name of a reserved address in the zone's region",
    validate: (value: string) => (/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || resourceName.test(value) ? undefined : `"${value}" is neither an IPv4 address nor an address name`),
  },
  { name: 'google-preemptible', key: 'preemptible', type: 'bool', envVar: 'GOOGLE_PREEMPTIBLE', description: 'Create a preemptible instance' },
  { name: 'google-spot', key: 'spot', type: 'bool', envVar: 'GOOGLE_SPOT', description: 'Create a Spot instance (stopped, not deleted, when preempted)' },
  {
    name: 'google-tags',
    key: 'tags',
    type: 'string[]',
    envVar: 'GOOGLE_TAGS',
    description: 'Extra network tags (comma-separated); docker-machine is always added',
    validate: (values: string[]) => firstProblem(values, (tag) => (resourceName.test(tag) ? undefined : `tag "${tag}" must match [a-z]([-a-z0-9]*[a-z0-9])?`)),
  },
  {
    name: 'google-labels',
    key: 'labels',
    type: 'string[]',
    envVar: 'GOOGLE_LABELS',
    description: 'Instance labels as key=value (comma-separated)',
    validate: (values: string[]) => firstProblem(values, labelProblem),
  },
  { name: 'google-use-internal-ip', key: 'useInternalIp', type: 'bool', envVar: 'GOOGLE_USE_INTERNAL_IP', description: 'Connect to the internal IP (run from inside the network)' },
  {
    name: 'google-use-internal-ip-only',
    key: 'useInternalIpOnly',
    type: 'bool',
    envVar: 'GOOGLE_USE_INTERNAL_IP_ONLY',
    description: 'Give the instance no external IP (implies --google-use-internal-ip)',
  },
  { name: 'google-use-existing', key: 'useExisting', type: 'bool', envVar: 'GOOGLE_USE_EXISTING', description: 'Adopt an existing instance of the machine name instead of creating one' },
  { name: 'google-open-port', key: 'openPorts', type: 'string[]', envVar: 'GOOGLE_OPEN_PORT', description: 'Extra ports to open in the firewall rule (8080, 8000-8010, 53/udp)' },
  {
    name: 'google-allowed-cidr',
    key: 'allowedCidrs',
    type: 'string[]',
    envVar: 'GOOGLE_ALLOWED_CIDR',
    default: ['0.0.0.0/0'],
    description: 'Source ranges allowed by the firewall rule (IPv4 or IPv6, not both)',
    validate: (values: string[]) => {
      const bad = firstProblem(values, cidrProblem);
      if (bad !== undefined) return bad;
      const families = new Set(values.map((cidr) => (cidr.includes(':') ? 6 : 4)));
      return families.size > 1 ? 'a Compute Engine firewall rule takes IPv4 or IPv6 ranges, not both' : undefined;
    },
  },
  {
    name: 'google-userdata',
    key: 'userdata',
    type: 'string',
    envVar: 'GOOGLE_USERDATA',
    description: 'Path to a user-data (cloud-init) file for the user-data metadata key, combined with the provisioning cloud-config (256 KiB in all)',
  },
  { name: 'google-ssh-port', key: 'sshPort', type: 'int', envVar: 'GOOGLE_SSH_PORT', default: 22, min: 1, max: 65_535, description: 'SSH port of the instance' },
  {
    name: 'google-endpoint',
    key: 'endpoint',
    type: 'string',
    envVar: 'GOOGLE_COMPUTE_ENDPOINT',
    description: 'Compute API endpoint (host:port or URL), e.g. the cloud simulator; plain http only to loopback',
    validate: (value: string) => parseEndpointProblem(value),
  },
  {
    name: 'google-wait-timeout',
    key: 'waitTimeout',
    type: 'int',
    envVar: 'GOOGLE_WAIT_TIMEOUT',
    default: 300,
    min: 1,
    description: 'Seconds to wait for each operation, for the instance to run and for SSH',
  },
] as const);

/** Parsed config of the `google` driver. */
export type GoogleConfig = ConfigOf<typeof googleFlags>;

/** A Compute API endpoint as the client library takes it. */
export interface GoogleEndpoint {
  apiEndpoint: string;
  port: number;
  protocol: 'http' | 'https';
}

/** Parses `--google-endpoint` (`host:port`, `http://host:port`, `https://host`). */
export function parseEndpoint(text: string): GoogleEndpoint {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  const url = new URL(withScheme);
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (protocol === 'https' ? 443 : 80) : Number(url.port);
  return { apiEndpoint: host, port, protocol };
}

function parseEndpointProblem(text: string): string | undefined {
  let endpoint: GoogleEndpoint;
  try {
    if (!/^(https?:\/\/)?[^/\s]+\/?$/i.test(text)) throw new Error('bad');
    endpoint = parseEndpoint(text);
  } catch {
    return `"${text}" is not host:port or an http(s) URL`;
  }
  if (endpoint.protocol === 'http' && !isLoopback(endpoint.apiEndpoint)) {
    return `plain http is only allowed to a loopback address (credentials would travel in clear); use https://${endpoint.apiEndpoint}`;
  }
  return undefined;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The image as a relative path `projects/P/global/images/...`, from a full URL, a reference-style
 * `P/global/images/...` path or a relative path; undefined when it is none of those.
 */
export function imagePath(value: string): string | undefined {
  const trimmed = value.trim().replace(/^https:\/\/(?:www|compute)\.googleapis\.com\/compute\/(?:v1|beta|alpha)\//, '');
  const relative = trimmed.startsWith('projects/') ? trimmed : `projects/${trimmed}`;
  return /^projects\/[a-z][a-z0-9.:-]*\/global\/images\/(?:family\/)?[a-z]([-a-z0-9]*[a-z0-9])?$/.test(relative) ? relative : undefined;
}

/** Parses `key=value` (or the reference forks' `key:value`) label strings. */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of values) {
    const [key, value] = splitLabel(item);
    labels[key] = value;
  }
  return labels;
}

function splitLabel(item: string): [string, string] {
  const index = item.search(/[=:]/);
  return index === -1 ? [item, ''] : [item.slice(0, index), item.slice(index + 1)];
}

function labelProblem(item: string): string | undefined {
  const [key, value] = splitLabel(item);
  if (!labelKey.test(key)) return `label key "${key}" must start with a-z and hold only a-z, 0-9, "_" and "-" (at most 63)`;
  if (!labelValue.test(value)) return `label value "${value}" may hold only a-z, 0-9, "_" and "-" (at most 63)`;
  return undefined;
}

function firstProblem(values: readonly string[], check: (value: string) => string | undefined): string | undefined {
  for (const value of values) {
    const problem = check(value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
