import { cidrProblem, type ConfigOf, defineFlags, parseOpenPort } from '@machine/driver-core';

/** The Azure clouds the driver knows, with their Resource Manager endpoints and login hosts. */
export const azureEnvironments = {
  AzurePublicCloud: { resourceManager: 'https://management.azure.com', authorityHost: 'https://login.microsoftonline.com' },
  AzureUSGovernmentCloud: { resourceManager: 'https://management.usgovcloudapi.net', authorityHost: 'https://login.microsoftonline.us' },
  AzureChinaCloud: { resourceManager: 'https://management.chinacloudapi.cn', authorityHost: 'https://login.chinacloudapi.cn' },
} as const;

/** One of the supported cloud names (`--azure-environment`). */
export type AzureEnvironmentName = keyof typeof azureEnvironments;

/** Managed disk SKUs an OS disk can use. */
export const managedDiskSkus = ['Standard_LRS', 'StandardSSD_LRS', 'Premium_LRS', 'StandardSSD_ZRS', 'Premium_ZRS'] as const;

/** User names Azure refuses for a Linux administrator. */
const reservedUserNames = new Set([
  'administrator', 'admin', 'user', 'user1', 'test', 'user2', 'test1', 'user3', 'admin1', '1', '123', 'a', 'actuser', 'adm',
  'admin2', 'aspnet', 'backup', 'console', 'david', 'guest', 'john', 'owner', 'root', 'server', 'sql', 'support',
  'support_388945a0', 'sys', 'test2', 'test3', 'user4', 'user5',
]);

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const resourceGroupName = /^[-\w.()]{1,90}$/;
const networkName = /^[A-Za-z0-9][-\w.]{0,78}[\w]$|^[A-Za-z0-9]$/;

function resourceGroupProblem(value: string): string | undefined {
  if (!resourceGroupName.test(value) || value.endsWith('.')) {
    return `"${value}" is not a resource group name (1-90 letters, digits, "-", "_", ".", "(", ")"; not ending in ".")`;
  }
  return undefined;
}

function optionalNameProblem(what: string) {
  return (value: string): string | undefined =>
    value === '' || networkName.test(value) ? undefined : `"${value}" is not a valid ${what} name (letters, digits, "-", "_", "."; 1-80 characters)`;
}

/** Parses `[resource-group:]name` (`--azure-vnet`). */
export function parseQualifiedName(value: string): { resourceGroup?: string; name: string } {
  const colon = value.indexOf(':');
  if (colon < 0) return { name: value };
  return { resourceGroup: value.slice(0, colon), name: value.slice(colon + 1) };
}

/** Parses `publisher:offer:sku:version`, or a resource ID of an image (`/subscriptions/…`). */
export function parseImage(value: string):
  | { kind: 'marketplace'; publisher: string; offer: string; sku: string; version: string }
  | { kind: 'id'; id: string }
  | { problem: string } {
  if (value.startsWith('/')) {
    return /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Compute\/(images|galleries)\//i.test(value)
      ? { kind: 'id', id: value }
      : { problem: `"${value}" is not an image or gallery image resource ID` };
  }
  const parts = value.split(':');
  const [publisher, offer, sku, version] = parts;
  if (parts.length !== 4 || publisher === undefined || offer === undefined || sku === undefined || version === undefined || parts.some((part) => part.trim() === '')) {
    return { problem: `"${value}" is not publisher:offer:sku:version (e.g. Canonical:ubuntu-24_04-lts:server:latest)` };
  }
  return { kind: 'marketplace', publisher, offer, sku, version };
}

/** Parses `key=value` tags. */
export function parseTags(values: readonly string[]): { tags: Record<string, string> } | { problem: string } {
  const tags: Record<string, string> = {};
  for (const item of values) {
    const equals = item.indexOf('=');
    const key = equals < 0 ? item : item.slice(0, equals);
    if (key.trim() === '' || key.length > 512 || /[<>%&\\?/]/.test(key)) return { problem: `"${item}" is not key=value with a valid Azure tag name` };
    tags[key.trim()] = equals < 0 ? '' : item.slice(equals + 1).trim();
  }
  return { tags };
}

/** The azure driver's flags: the reference's names, env vars and defaults, with newer defaults from the issue. */
export const azureFlags = defineFlags([
  {
    name: 'azure-subscription-id',
    key: 'subscriptionId',
    type: 'string',
    envVar: 'AZURE_SUBSCRIPTION_ID',
    required: true,
    description: 'Azure subscription ID (a UUID)',
    validate: (value: string) => (uuid.test(value) ? undefined : `"${value}" is not a subscription ID (a UUID)`),
  },
  {
    name: 'azure-environment',
    key: 'environment',
    type: 'string',
    envVar: 'AZURE_ENVIRONMENT',
    default: 'AzurePublicCloud',
    choices: Object.keys(azureEnvironments),
    description: 'Azure cloud: AzurePublicCloud, AzureUSGovernmentCloud or AzureChinaCloud',
  },
  {
    name: 'azure-endpoint',
    key: 'endpoint',
    type: 'string',
    envVar: 'AZURE_RESOURCE_MANAGER_ENDPOINT',
    description: 'Resource Manager endpoint override (sovereign clouds, simulators); plain http only on loopback',
    validate: (value: string) => endpointProblem(value),
  },
  { name: 'azure-location', key: 'location', type: 'string', envVar: 'AZURE_LOCATION', default: 'westus2', description: 'Azure region (location) to create the machine in' },
  {
    name: 'azure-size',
    key: 'size',
    type: 'string',
    envVar: 'AZURE_SIZE',
    default: 'Standard_B2s',
    description: 'Virtual machine size',
    validate: (value: string) => (/^[A-Za-z0-9_-]+$/.test(value) ? undefined : `"${value}" is not a VM size such as Standard_B2s`),
  },
  {
    name: 'azure-image',
    key: 'image',
    type: 'string',
    envVar: 'AZURE_IMAGE',
    default: 'Canonical:ubuntu-24_04-lts:server:latest',
    description: 'Image: publisher:offer:sku:version, or an image resource ID',
    validate: (value: string) => {
      const parsed = parseImage(value);
      return 'problem' in parsed ? parsed.problem : undefined;
    },
  },
  {
    name: 'azure-resource-group',
    key: 'resourceGroup',
    type: 'string',
    envVar: 'AZURE_RESOURCE_GROUP',
    default: 'docker-machine',
    description: 'Resource group for the machine (made if missing, deleted on remove only if made and then empty)',
    validate: resourceGroupProblem,
  },
  {
    name: 'azure-vnet',
    key: 'vnet',
    type: 'string',
    envVar: 'AZURE_VNET',
    default: 'docker-machine-vnet',
    description: 'Virtual network, [resource-group:]name (made if missing)',
    validate: (value: string) => {
      const { resourceGroup, name } = parseQualifiedName(value);
      return (resourceGroup === undefined ? undefined : resourceGroupProblem(resourceGroup)) ?? (name === '' ? 'the vnet name is empty' : optionalNameProblem('vnet')(name));
    },
  },
  { name: 'azure-subnet', key: 'subnet', type: 'string', envVar: 'AZURE_SUBNET', default: 'docker-machine', description: 'Subnet of the vnet (made if missing)', validate: optionalNameProblem('subnet') },
  {
    name: 'azure-subnet-prefix',
    key: 'subnetPrefix',
    type: 'string',
    envVar: 'AZURE_SUBNET_PREFIX',
    default: '192.168.0.0/16',
    description: 'Address prefix of a subnet the driver makes',
    validate: (value: string) => (value.includes(':') ? 'only IPv4 subnet prefixes are supported' : cidrProblem(value)),
  },
  {
    name: 'azure-availability-set',
    key: 'availabilitySet',
    type: 'string',
    envVar: 'AZURE_AVAILABILITY_SET',
    description: 'Availability set to put the machine in (made if missing); none by default',
    validate: optionalNameProblem('availability set'),
  },
  {
    name: 'azure-availability-zone',
    key: 'availabilityZone',
    type: 'string',
    envVar: 'AZURE_AVAILABILITY_ZONE',
    description: 'Availability zone (1, 2 or 3) for the VM and its public IP; excludes --azure-availability-set',
    validate: (value: string) => (/^[1-9]$/.test(value) ? undefined : `"${value}" is not a zone number such as 1`),
  },
  {
    name: 'azure-ssh-user',
    key: 'sshUser',
    type: 'string',
    envVar: 'AZURE_SSH_USER',
    default: 'docker-user',
    description: 'Administrator user name on the VM',
    validate: (value: string) => {
      if (!/^[a-z_][a-z0-9_-]{0,63}$/.test(value)) return `"${value}" is not a Linux user name (lower-case letters, digits, "_", "-")`;
      return reservedUserNames.has(value) ? `Azure does not allow "${value}" as the administrator name` : undefined;
    },
  },
  { name: 'azure-ssh-port', key: 'sshPort', type: 'int', envVar: 'AZURE_SSH_PORT', default: 22, min: 1, max: 65535, description: 'SSH port of the VM' },
  { name: 'azure-docker-port', key: 'dockerPort', type: 'int', envVar: 'AZURE_DOCKER_PORT', default: 2376, min: 1, max: 65535, description: 'Docker daemon TLS port opened in the network security group' },
  {
    name: 'azure-private-ip-address',
    key: 'privateIpAddress',
    type: 'string',
    description: 'Static private IP address of the VM in the subnet (dynamic when not set)',
    validate: (value: string) => (/^\d{1,3}(\.\d{1,3}){3}$/.test(value) && cidrProblem(`${value}/32`) === undefined ? undefined : `"${value}" is not an IPv4 address`),
  },
  { name: 'azure-use-private-ip', key: 'usePrivateIp', type: 'bool', description: 'Reach the machine at its private IP address (SSH and Docker)' },
  { name: 'azure-no-public-ip', key: 'noPublicIp', type: 'bool', description: 'Make no public IP address (implies --azure-use-private-ip)' },
  {
    name: 'azure-static-public-ip',
    key: 'staticPublicIp',
    type: 'bool',
    description: 'Static public IP allocation (Standard SKU public IPs are always static; kept for compatibility)',
  },
  {
    name: 'azure-dns',
    key: 'dnsLabel',
    type: 'string',
    envVar: 'AZURE_DNS_LABEL',
    description: 'DNS label of the public IP (<label>.<location>.cloudapp.azure.com); the machine is then reached by that name',
    validate: (value: string) => (/^[a-z][a-z0-9-]{1,61}[a-z0-9]$/.test(value) ? undefined : `"${value}" is not a DNS label (3-63 lower-case letters, digits, "-", starting with a letter)`),
  },
  {
    name: 'azure-storage-type',
    key: 'storageType',
    type: 'string',
    envVar: 'AZURE_STORAGE_TYPE',
    default: 'Standard_LRS',
    choices: managedDiskSkus,
    description: 'Managed disk SKU of the OS disk',
  },
  { name: 'azure-disk-size', key: 'diskSize', type: 'int', envVar: 'AZURE_DISK_SIZE', default: 30, min: 30, max: 4095, description: 'OS disk size, GiB' },
  { name: 'azure-custom-data', key: 'customData', type: 'string', envVar: 'AZURE_CUSTOM_DATA_FILE', description: 'File with cloud-init custom data for the VM, combined with the provisioning cloud-config (64 KiB in all)' },
  {
    name: 'azure-open-port',
    key: 'openPorts',
    type: 'string[]',
    description: 'Extra inbound ports to open: 8080, 8000-8010, 53/udp (repeatable)',
    validate: (values: string[]) => values.map((value) => parseOpenPort(value)).find((parsed) => 'problem' in parsed)?.problem,
  },
  {
    name: 'azure-allowed-cidr',
    key: 'allowedCidrs',
    type: 'string[]',
    envVar: 'AZURE_ALLOWED_CIDR',
    description: 'Source CIDRs allowed to reach SSH, Docker and the open ports (default: anywhere)',
    validate: (values: string[]) => values.map((value) => cidrProblem(value)).find((problem) => problem !== undefined),
  },
  {
    name: 'azure-nsg',
    key: 'nsg',
    type: 'string',
    envVar: 'AZURE_NSG',
    description: 'Existing network security group (name in the resource group, or resource ID) to use instead of making one; never deleted',
  },
  {
    name: 'azure-tags',
    key: 'tags',
    type: 'string[]',
    envVar: 'AZURE_TAGS',
    description: 'Tags for every resource the driver makes: key=value (repeatable or comma-separated)',
    validate: (values: string[]) => {
      const parsed = parseTags(values);
      return 'problem' in parsed ? parsed.problem : undefined;
    },
  },
  { name: 'azure-client-id', key: 'clientId', type: 'string', envVar: 'AZURE_CLIENT_ID', description: 'Service principal (or user-assigned managed identity) client ID' },
  { name: 'azure-client-secret', key: 'clientSecret', type: 'string', envVar: 'AZURE_CLIENT_SECRET', secret: true, description: 'Service principal client secret (needs the client and tenant IDs)' },
  {
    name: 'azure-tenant-id',
    key: 'tenantId',
    type: 'string',
    envVar: 'AZURE_TENANT_ID',
    description: 'Microsoft Entra tenant ID for the service principal',
    validate: (value: string) => (uuid.test(value) || /^[a-z0-9.-]+\.[a-z]{2,}$/i.test(value) ? undefined : `"${value}" is not a tenant ID or domain`),
  },
  {
    name: 'azure-stop-deallocate',
    key: 'stopDeallocate',
    type: 'bool',
    envVar: 'AZURE_STOP_DEALLOCATE',
    default: true,
    description: 'Deallocate on stop so a stopped machine is not billed for compute (false: power off only)',
  },
  {
    name: 'azure-wait-timeout',
    key: 'waitTimeout',
    type: 'int',
    envVar: 'AZURE_WAIT_TIMEOUT',
    default: 900,
    min: 1,
    description: 'Seconds to wait for each long-running operation and for SSH',
  },
] as const);

/** The parsed azure config. */
export type AzureConfig = ConfigOf<typeof azureFlags>;

/** Why an endpoint override is unsafe or malformed, or undefined. Plain http is allowed only on loopback. */
export function endpointProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return `"${value}" must be an https URL (plain http only on loopback, where no token can leak)`;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
