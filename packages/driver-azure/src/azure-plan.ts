import { readFile, stat } from 'node:fs/promises';
import type { VirtualMachine } from '@azure/arm-compute';
import type { SecurityRule } from '@azure/arm-network';
import {
  anywhere,
  assertValidMachineName,
  type BootConfig,
  type ConfigIssue,
  combineUserData,
  type FirewallRule,
  InvalidConfigError,
  machineFirewallRules,
} from '@machine/driver-core';
import { type AzureConfig, parseImage, parseQualifiedName, parseTags } from './azure-flags.ts';
import { resourceId } from './azure-resource-id.ts';

/** Address space of a vnet the driver makes (the reference's), plus the subnet prefix when it lies outside. */
const defaultVnetSpace = ['192.168.0.0/16', '10.0.0.0/8', '172.16.0.0/12'];
/** Azure's custom data limit: the decoded bytes (65 535, about 87 380 characters of base64). */
export const customDataLimitBytes = 65_535;
const compute = 'Microsoft.Compute';
const network = 'Microsoft.Network';

/** Everything create needs, derived from the flags and checked before any API call. */
export async function createPlan(config: AzureConfig, machineName: string, boot?: BootConfig): Promise<CreatePlan> {
  assertValidMachineName(machineName);
  const issues: ConfigIssue[] = [];
  if (config.availabilitySet !== undefined && config.availabilityZone !== undefined) {
    issues.push({ flag: 'azure-availability-set', message: 'cannot be combined with --azure-availability-zone (a VM is in a zone or in an availability set)' });
  }
  if (config.noPublicIp && config.dnsLabel !== undefined) issues.push({ flag: 'azure-dns', message: 'needs a public IP; drop --azure-no-public-ip' });
  if (config.clientSecret !== undefined && (config.clientId === undefined || config.tenantId === undefined)) {
    issues.push({ flag: 'azure-client-secret', message: 'needs --azure-client-id and --azure-tenant-id (or AZURE_CLIENT_ID and AZURE_TENANT_ID)' });
  }
  const tags = parseTags(config.tags);
  if ('problem' in tags) issues.push({ flag: 'azure-tags', message: tags.problem });
  const image = parseImage(config.image);
  if ('problem' in image) issues.push({ flag: 'azure-image', message: image.problem });
  const customData = await customDataOf(config.customData, boot, issues);
  let rules: FirewallRule[] = [];
  try {
    rules = machineFirewallRules({
      sshPort: config.sshPort,
      enginePort: config.dockerPort,
      openPorts: config.openPorts,
      allowedCidrs: config.allowedCidrs,
      openPortFlag: 'azure-open-port',
      allowedCidrFlag: 'azure-allowed-cidr',
    });
  } catch (error) {
    if (error instanceof InvalidConfigError) issues.push(...error.issues);
    else throw error;
  }
  if (issues.length > 0 || 'problem' in tags || 'problem' in image) {
    throw new InvalidConfigError(issues, { machine: machineName, operation: 'config' });
  }
  const { subscriptionId, resourceGroup, location } = config;
  const vnet = parseQualifiedName(config.vnet);
  const vnetResourceGroup = vnet.resourceGroup ?? resourceGroup;
  const name = machineName;
  return {
    subscriptionId,
    resourceGroup,
    location,
    rules,
    image,
    customData,
    zone: config.availabilityZone,
    availabilitySet: config.availabilitySet === '' ? undefined : config.availabilitySet,
    userTags: tags.tags,
    securityGroupName: `${name}-firewall`,
    securityGroupId: resourceId(subscriptionId, resourceGroup, network, 'networkSecurityGroups', `${name}-firewall`),
    vnetResourceGroup,
    vnetName: vnet.name,
    vnetId: resourceId(subscriptionId, vnetResourceGroup, network, 'virtualNetworks', vnet.name),
    subnetName: config.subnet,
    subnetId: resourceId(subscriptionId, vnetResourceGroup, network, 'virtualNetworks', vnet.name, 'subnets', config.subnet),
    subnetPrefix: config.subnetPrefix,
    publicIpName: `${name}-ip`,
    nicName: `${name}-nic`,
    osDiskId: resourceId(subscriptionId, resourceGroup, compute, 'disks', `${name}-os-disk`),
    vmId: resourceId(subscriptionId, resourceGroup, compute, 'virtualMachines', name),
  };
}


/** The VM's PUT body. */
export function vmParameters(
  config: AzureConfig,
  machineName: string,
  plan: CreatePlan,
  parts: { publicKey: string; nicId: string; availabilitySetId: string | undefined; tags: Record<string, string> },
): VirtualMachine {
  const { publicKey, nicId, availabilitySetId } = parts;
    const user = config.sshUser;
    return {
      location: plan.location,
      tags: parts.tags,
      ...(plan.zone === undefined ? {} : { zones: [plan.zone] }),
      hardwareProfile: { vmSize: config.size },
      storageProfile: {
        imageReference:
          plan.image.kind === 'id'
            ? { id: plan.image.id }
            : { publisher: plan.image.publisher, offer: plan.image.offer, sku: plan.image.sku, version: plan.image.version },
        osDisk: {
          name: `${machineName}-os-disk`,
          createOption: 'FromImage',
          caching: 'ReadWrite',
          diskSizeGB: config.diskSize,
          managedDisk: { storageAccountType: config.storageType },
          // Deleting the VM deletes its OS disk: nothing of it can outlive a remove.
          deleteOption: 'Delete',
        },
      },
      osProfile: {
        computerName: machineName,
        adminUsername: user,
        ...(plan.customData === undefined ? {} : { customData: plan.customData }),
        linuxConfiguration: {
          disablePasswordAuthentication: true,
          ssh: { publicKeys: [{ path: `/home/${user}/.ssh/authorized_keys`, keyData: publicKey }] },
        },
      },
      networkProfile: { networkInterfaces: [{ id: nicId, primary: true }] },
      ...(availabilitySetId === undefined ? {} : { availabilitySet: { id: availabilitySetId } }),
    };
  }

/** What create works from. */
export interface CreatePlan {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  rules: FirewallRule[];
  image: { kind: 'marketplace'; publisher: string; offer: string; sku: string; version: string } | { kind: 'id'; id: string };
  customData: string | undefined;
  zone: string | undefined;
  availabilitySet: string | undefined;
  /** --azure-tags; the driver's own tags (managed-by, machine-name, machine-token) are added per resource. */
  userTags: Record<string, string>;
  securityGroupName: string;
  securityGroupId: string;
  vnetResourceGroup: string;
  vnetName: string;
  vnetId: string;
  subnetName: string;
  subnetId: string;
  subnetPrefix: string;
  publicIpName: string;
  nicName: string;
  osDiskId: string;
  vmId: string;
}

/** The NSG rules for the machine's firewall rules: the reference's names and priorities. */
export function securityRules(rules: readonly FirewallRule[]): SecurityRule[] {
  const out: SecurityRule[] = [];
  let userIndex = 0;
  for (const rule of rules) {
    const basePriority = rule.purpose === 'ssh' ? 100 : rule.purpose === 'docker' ? 300 : 1000 + 10 * userIndex++;
    const ports = rule.fromPort === rule.toPort ? String(rule.fromPort) : `${rule.fromPort}-${rule.toPort}`;
    const label = rule.purpose === 'ssh' ? 'SSH' : rule.purpose === 'docker' ? 'Docker' : `Port${ports}-${rule.protocol}`;
    const everywhere = rule.sources.length === anywhere.length && anywhere.every((source) => rule.sources.includes(source));
    // One NSG rule cannot mix IPv4 and IPv6 sources: split them.
    const families: [string, string[]][] = everywhere
      ? [['Any', ['*']]]
      : [
          ['IPv4', rule.sources.filter((source) => !source.includes(':'))],
          ['IPv6', rule.sources.filter((source) => source.includes(':'))],
        ];
    let offset = 0;
    for (const [family, sources] of families) {
      if (sources.length === 0) continue;
      out.push({
        name: `${label}Allow${family}`,
        protocol: rule.protocol === 'udp' ? 'Udp' : 'Tcp',
        access: 'Allow',
        direction: 'Inbound',
        priority: basePriority + offset++,
        sourcePortRange: '*',
        destinationAddressPrefix: '*',
        destinationPortRange: ports,
        ...(sources.length === 1 ? { sourceAddressPrefix: sources[0] } : { sourceAddressPrefixes: sources }),
      });
    }
  }
  return out;
}

/** The reference's vnet address space, plus the subnet prefix when none of it holds the prefix. */
export function vnetAddressSpace(subnetPrefix: string): string[] {
  return defaultVnetSpace.some((space) => cidrContains(space, subnetPrefix)) ? [...defaultVnetSpace] : [...defaultVnetSpace, subnetPrefix];
}

function cidrContains(outer: string, inner: string): boolean {
  const [outerAddress = '', outerBits = '0'] = outer.split('/');
  const [innerAddress = '', innerBits = '0'] = inner.split('/');
  const toNumber = (address: string) => address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const bits = Number(outerBits);
  if (Number(innerBits) < bits) return false;
  const masked = (value: number) => Math.floor(value / 2 ** (32 - bits));
  return masked(toNumber(outerAddress)) === masked(toNumber(innerAddress));
}

/**
 * `osProfile.customData` (base64): the host's boot user data and the --azure-custom-data file
 * combined (the file's bytes unchanged when it is alone). Problems go to `issues`.
 */
async function customDataOf(path: string | undefined, boot: BootConfig | undefined, issues: ConfigIssue[]): Promise<string | undefined> {
  let own: Buffer | undefined;
  if (path !== undefined) {
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new Error('not a file');
      own = await readFile(path);
    } catch (error) {
      issues.push({ flag: 'azure-custom-data', message: `cannot read "${path}": ${error instanceof Error ? error.message : String(error)}` });
      return undefined;
    }
  }
  const bytes = boot?.userData === undefined ? own : Buffer.from(combineUserData([boot.userData, own?.toString('utf8')]) ?? '', 'utf8');
  if (bytes === undefined || bytes.length === 0) return undefined;
  if (bytes.length > customDataLimitBytes) {
    issues.push(
      boot?.userData === undefined
        ? { flag: 'azure-custom-data', message: `"${path}" is ${bytes.length} bytes, over Azure's 64 KiB (65 535 bytes) custom data limit` }
        : {
            flag: 'custom data',
            kind: 'input',
            message: `${own === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus "${path}"`} is ${bytes.length} bytes, over Azure's 64 KiB (65 535 bytes) custom data limit`,
          },
    );
    return undefined;
  }
  return bytes.toString('base64');
}
