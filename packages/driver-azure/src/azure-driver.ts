import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { VirtualMachine } from '@azure/arm-compute';
import type { NetworkSecurityGroup, SecurityRule } from '@azure/arm-network';
import {
  anywhere,
  assertValidMachineName,
  type BootConfig,
  CancelledError,
  type ConfigIssue,
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
  ProviderError,
  type ResourceDeleter,
  type State,
  TimeoutError,
  waitFor,
} from '@machine/driver-core';
import type { AzureClients, LongRunningOptions } from './azure-clients.ts';
import { azureErrorFacts, isAzureNotFound } from './azure-errors.ts';
import { type AzureConfig, parseImage, parseQualifiedName, parseTags } from './azure-flags.ts';
import { parseResourceId, resourceId } from './azure-resource-id.ts';
import { stateFromInstanceView } from './azure-state.ts';

/** The kinds of resource the driver records in the machine's journal. */
export const resourceKinds = {
  resourceGroup: 'resource-group',
  availabilitySet: 'availability-set',
  securityGroup: 'network-security-group',
  virtualNetwork: 'virtual-network',
  subnet: 'subnet',
  publicIp: 'public-ip',
  networkInterface: 'network-interface',
  osDisk: 'os-disk',
  virtualMachine: 'virtual-machine',
} as const;

/** Kinds that belong to one machine only (everything but the shared network pieces and groups). */
const ownKinds: ReadonlySet<string> = new Set([
  resourceKinds.virtualMachine,
  resourceKinds.osDisk,
  resourceKinds.networkInterface,
  resourceKinds.publicIp,
  resourceKinds.securityGroup,
]);

/** The shared pieces several machines may use. */
const sharedKinds: ReadonlySet<string> = new Set([resourceKinds.resourceGroup, resourceKinds.availabilitySet, resourceKinds.virtualNetwork, resourceKinds.subnet]);
/** The tag create puts on everything it makes. */
const createdByTag = 'created-by';
const createdByValue = 'machine';

function resourceNameOf(entry: JournalEntry): string {
  const parsed = parseResourceId(entry.id);
  return parsed.names.at(-1) ?? parsed.resourceGroup;
}

/** Address space of a vnet the driver makes (the reference's), plus the subnet prefix when it lies outside. */
const defaultVnetSpace = ['192.168.0.0/16', '10.0.0.0/8', '172.16.0.0/12'];
/** Azure's custom data limit: the decoded bytes (65 535, about 87 380 characters of base64). */
export const customDataLimitBytes = 65_535;
const compute = 'Microsoft.Compute';
const network = 'Microsoft.Network';

/** How the driver gets its SDK clients: injected (tests, the simulator) or built on first use. */
export type AzureClientSource = () => Promise<AzureClients>;

/**
 * The Azure Resource Manager driver: a thin mapping of the spec's operations onto the Azure SDK.
 * Every resource is recorded in the journal by its ARM ID before the PUT that makes it, so a
 * create that dies half-way (or an aborted long-running operation) is still cleaned up.
 */
export class AzureDriver implements Driver {
  readonly driverName = 'azure';
  readonly #config: AzureConfig;
  readonly #context: DriverContext;
  readonly #clientSource: AzureClientSource;
  #clients: Promise<AzureClients> | undefined;

  constructor(config: AzureConfig, context: DriverContext, clientSource: AzureClientSource) {
    this.#config = config;
    this.#context = context;
    this.#clientSource = clientSource;
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    const plan = await this.#plan();
    const clients = await this.#getClients();
    const existing = await this.#getOrUndefined(() => clients.compute.virtualMachines.get(plan.resourceGroup, this.machineName, this.#call(options)));
    if (existing !== undefined) {
      throw new InvalidConfigError(
        [{ flag: 'machine name', kind: 'input', message: `a virtual machine named "${this.machineName}" already exists in resource group "${plan.resourceGroup}"` }],
        { machine: this.machineName, operation: 'preCreateCheck' },
      );
    }
    if (this.#config.nsg !== undefined) await this.#existingSecurityGroup(clients, plan, options);
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { boot } = options;
    const plan = await this.#plan(boot);
    const clients = await this.#getClients();
    const { journal } = this.#context;
    const signal = options.signal;
    await createWithCleanup(
      journal,
      async () => {
        const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
        const keyPair = generateSSHKeyPair({ comment: `${this.machineName}@machine` });
        await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_ed25519');

        await this.#step('resource-group', `resource group ${plan.resourceGroup}`, async () => {
          const id = resourceId(plan.subscriptionId, plan.resourceGroup);
          const existing = await this.#getOrUndefined(() => clients.resources.resourceGroups.get(plan.resourceGroup, this.#call(options)));
          await journal.record({ kind: resourceKinds.resourceGroup, id, preExisting: existing !== undefined });
          if (existing === undefined) {
            await clients.resources.resourceGroups.createOrUpdate(plan.resourceGroup, { location: plan.location, tags: plan.sharedTags }, this.#call(options));
          }
        });

        let availabilitySetId: string | undefined;
        if (plan.availabilitySet !== undefined) {
          const name = plan.availabilitySet;
          await this.#step('availability-set', `availability set ${name}`, async () => {
            availabilitySetId = resourceId(plan.subscriptionId, plan.resourceGroup, compute, 'availabilitySets', name);
            const existing = await this.#getOrUndefined(() => clients.compute.availabilitySets.get(plan.resourceGroup, name, this.#call(options)));
            await journal.record({ kind: resourceKinds.availabilitySet, id: availabilitySetId, preExisting: existing !== undefined });
            if (existing === undefined) {
              const made = await clients.compute.availabilitySets.createOrUpdate(
                plan.resourceGroup,
                name,
                { location: plan.location, tags: plan.sharedTags, sku: { name: 'Aligned' }, platformFaultDomainCount: 2, platformUpdateDomainCount: 5 },
                this.#call(options),
              );
              availabilitySetId = made.id ?? availabilitySetId;
            } else {
              availabilitySetId = existing.id ?? availabilitySetId;
            }
          });
        }

        let securityGroupId: string;
        if (this.#config.nsg !== undefined) {
          const existing = await this.#existingSecurityGroup(clients, plan, options);
          securityGroupId = existing.id ?? plan.securityGroupId;
          await journal.record({ kind: resourceKinds.securityGroup, id: securityGroupId, preExisting: true });
        } else {
          securityGroupId = plan.securityGroupId;
          await this.#step('network-security-group', `network security group ${plan.securityGroupName}`, async () => {
            await journal.record({ kind: resourceKinds.securityGroup, id: securityGroupId });
            await this.#lro(`network security group ${plan.securityGroupName}`, signal, (lro) =>
              clients.network.networkSecurityGroups.createOrUpdate(
                plan.resourceGroup,
                plan.securityGroupName,
                { location: plan.location, tags: plan.machineTags, securityRules: securityRules(plan.rules) },
                lro,
              ),
            );
          });
        }

        await this.#step('virtual-network', `virtual network ${plan.vnetName}`, async () => {
          const existing = await this.#getOrUndefined(() => clients.network.virtualNetworks.get(plan.vnetResourceGroup, plan.vnetName, this.#call(options)));
          await journal.record({ kind: resourceKinds.virtualNetwork, id: plan.vnetId, preExisting: existing !== undefined });
          if (existing === undefined) {
            await this.#lro(`virtual network ${plan.vnetName}`, signal, (lro) =>
              clients.network.virtualNetworks.createOrUpdate(
                plan.vnetResourceGroup,
                plan.vnetName,
                { location: plan.location, tags: plan.sharedTags, addressSpace: { addressPrefixes: vnetAddressSpace(plan.subnetPrefix) } },
                lro,
              ),
            );
          }
        });
        await this.#step('subnet', `subnet ${plan.subnetName}`, async () => {
          const existing = await this.#getOrUndefined(() =>
            clients.network.subnets.get(plan.vnetResourceGroup, plan.vnetName, plan.subnetName, this.#call(options)),
          );
          await journal.record({ kind: resourceKinds.subnet, id: plan.subnetId, preExisting: existing !== undefined });
          if (existing === undefined) {
            await this.#lro(`subnet ${plan.subnetName}`, signal, (lro) =>
              clients.network.subnets.createOrUpdate(plan.vnetResourceGroup, plan.vnetName, plan.subnetName, { addressPrefix: plan.subnetPrefix }, lro),
            );
          }
        });

        let publicIpId: string | undefined;
        if (!this.#config.noPublicIp) {
          publicIpId = resourceId(plan.subscriptionId, plan.resourceGroup, network, 'publicIPAddresses', plan.publicIpName);
          const id = publicIpId;
          await this.#step('public-ip', `public IP address ${plan.publicIpName}`, async () => {
            await journal.record({ kind: resourceKinds.publicIp, id });
            await this.#lro(`public IP address ${plan.publicIpName}`, signal, (lro) =>
              clients.network.publicIPAddresses.createOrUpdate(
                plan.resourceGroup,
                plan.publicIpName,
                {
                  location: plan.location,
                  tags: plan.machineTags,
                  // Basic SKU addresses are retired; Standard ones are always static.
                  sku: { name: 'Standard', tier: 'Regional' },
                  publicIPAllocationMethod: 'Static',
                  publicIPAddressVersion: 'IPv4',
                  ...(plan.zone === undefined ? {} : { zones: [plan.zone] }),
                  ...(this.#config.dnsLabel === undefined ? {} : { dnsSettings: { domainNameLabel: this.#config.dnsLabel } }),
                },
                lro,
              ),
            );
          });
        }

        const nicId = resourceId(plan.subscriptionId, plan.resourceGroup, network, 'networkInterfaces', plan.nicName);
        await this.#step('network-interface', `network interface ${plan.nicName}`, async () => {
          await journal.record({ kind: resourceKinds.networkInterface, id: nicId });
          await this.#lro(`network interface ${plan.nicName}`, signal, (lro) =>
            clients.network.networkInterfaces.createOrUpdate(
              plan.resourceGroup,
              plan.nicName,
              {
                location: plan.location,
                tags: plan.machineTags,
                networkSecurityGroup: { id: securityGroupId },
                ipConfigurations: [
                  {
                    name: 'ip',
                    primary: true,
                    subnet: { id: plan.subnetId },
                    privateIPAllocationMethod: this.#config.privateIpAddress === undefined ? 'Dynamic' : 'Static',
                    ...(this.#config.privateIpAddress === undefined ? {} : { privateIPAddress: this.#config.privateIpAddress }),
                    ...(publicIpId === undefined ? {} : { publicIPAddress: { id: publicIpId } }),
                  },
                ],
              },
              lro,
            ),
          );
        });

        await this.#step('virtual-machine', `virtual machine ${this.machineName} (${this.#config.size})`, async () => {
          await journal.record({ kind: resourceKinds.osDisk, id: plan.osDiskId });
          await journal.record({ kind: resourceKinds.virtualMachine, id: plan.vmId });
          const made = await this.#lro(`virtual machine ${this.machineName}`, signal, (lro) =>
            clients.compute.virtualMachines.createOrUpdate(plan.resourceGroup, this.machineName, this.#vmParameters(plan, keyPair.publicKey, nicId, availabilitySetId), lro),
          );
          const diskId = made.storageProfile?.osDisk?.managedDisk?.id;
          if (diskId !== undefined && diskId.toLowerCase() !== plan.osDiskId.toLowerCase()) {
            await journal.record({ kind: resourceKinds.osDisk, id: diskId });
          }
        });

        const host = await this.getIP({ ...(signal === undefined ? {} : { signal }) });
        const { waitForSSH } = await import('@machine/driver-core/ssh');
        const fingerprint = await this.#step('wait-ssh', `SSH on ${host}:${this.#config.sshPort}`, () =>
          waitForSSH(
            {
              host,
              port: this.#config.sshPort,
              username: this.#config.sshUser,
              privateKey: keyPair.privateKey,
              machine: this.machineName,
              // The host key the boot custom data installs: any other key is refused.
              ...(boot?.hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint: boot.hostKeyFingerprint }),
            },
            {
              timeout: this.#config.waitTimeout * 1000,
              interval: 250,
              machine: this.machineName,
              operation: 'create',
              ...(signal === undefined ? {} : { signal }),
              ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
            },
          ),
        );
        await this.#context.data.write({ ip: host, hostKeyFingerprint: fingerprint });
      },
      { deleters: this.#deleters(), machine: this.machineName, operation: 'create' },
    );
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    const adopted = this.#context.journal.entries().filter((entry) => entry.preExisting && sharedKinds.has(entry.kind));
    const deleters = this.#deleters();
    await cleanupJournal(this.#context.journal, {
      deleters,
      machine: this.machineName,
      operation: 'remove',
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onDeleted: (entry) => this.#progress('remove', `deleted ${entry.kind} ${parseResourceId(entry.id).names.at(-1) ?? entry.id}`, 'info'),
    });
    // Shared pieces this machine found rather than made: another machine's create made them when they
    // carry its `created-by=machine` tag. The last machine to go deletes them once nothing uses them,
    // so `create a, create b, rm a, rm b` leaves nothing behind. Anything untagged is the user's: kept.
    for (const entry of [...adopted].reverse()) {
      try {
        if (!(await this.#madeByMachine(entry, options))) continue;
        await deleters[entry.kind]?.(entry, options.signal);
      } catch (error) {
        this.#progress('remove', `kept shared ${entry.kind} ${resourceNameOf(entry)}: ${error instanceof Error ? error.message : String(error)}`, 'info');
      }
    }
  }

  /** True when a shared piece (or, for a subnet, its vnet) carries the tag create puts on what it makes. */
  async #madeByMachine(entry: JournalEntry, options: OperationOptions): Promise<boolean> {
    const clients = await this.#getClients();
    const { resourceGroup, names } = parseResourceId(entry.id);
    const call = this.#call(options);
    const found = await this.#getOrUndefined<{ tags?: Record<string, string> }>(() => {
      switch (entry.kind) {
        case resourceKinds.subnet:
        case resourceKinds.virtualNetwork:
          return clients.network.virtualNetworks.get(resourceGroup, names[0] ?? '', call);
        case resourceKinds.availabilitySet:
          return clients.compute.availabilitySets.get(resourceGroup, names[0] ?? '', call);
        default:
          return clients.resources.resourceGroups.get(resourceGroup, call);
      }
    });
    return found?.tags?.[createdByTag] === createdByValue;
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const vm = this.#vm('start');
    const clients = await this.#getClients();
    await this.#lro(`virtual machine ${vm.name} to start`, options.signal, (lro) => clients.compute.virtualMachines.start(vm.resourceGroup, vm.name, lro), 'start');
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    const vm = this.#vm('stop');
    const clients = await this.#getClients();
    await this.#lro(`virtual machine ${vm.name} to power off`, options.signal, (lro) => clients.compute.virtualMachines.powerOff(vm.resourceGroup, vm.name, lro), 'stop');
    if (this.#config.stopDeallocate) {
      await this.#lro(`virtual machine ${vm.name} to deallocate`, options.signal, (lro) => clients.compute.virtualMachines.deallocate(vm.resourceGroup, vm.name, lro), 'stop');
    }
  }

  async kill(options: OperationOptions = {}): Promise<void> {
    const vm = this.#vm('kill');
    const clients = await this.#getClients();
    await this.#lro(
      `virtual machine ${vm.name} to power off`,
      options.signal,
      (lro) => clients.compute.virtualMachines.powerOff(vm.resourceGroup, vm.name, { ...lro, skipShutdown: true }),
      'kill',
    );
  }

  async restart(options: OperationOptions = {}): Promise<void> {
    const vm = this.#vm('restart');
    const clients = await this.#getClients();
    await this.#lro(`virtual machine ${vm.name} to restart`, options.signal, (lro) => clients.compute.virtualMachines.restart(vm.resourceGroup, vm.name, lro), 'restart');
  }

  async getState(options: OperationOptions = {}): Promise<State> {
    const vm = this.#vm('getState');
    const clients = await this.#getClients();
    const view = await this.#notFoundAsTyped('getState', () => clients.compute.virtualMachines.instanceView(vm.resourceGroup, vm.name, this.#call(options)));
    return stateFromInstanceView(view.statuses);
  }

  async getIP(options: OperationOptions = {}): Promise<string> {
    const vm = this.#vm('getIP');
    const clients = await this.#getClients();
    const publicIp = findEntry(this.#context.journal, resourceKinds.publicIp);
    if (this.#config.usePrivateIp || this.#config.noPublicIp || publicIp === undefined) {
      const nic = findEntry(this.#context.journal, resourceKinds.networkInterface);
      if (nic === undefined) throw new NotFoundError('no network interface is recorded for this machine', { machine: this.machineName, operation: 'getIP' });
      const { resourceGroup, names } = parseResourceId(nic.id);
      const found = await this.#notFoundAsTyped('getIP', () => clients.network.networkInterfaces.get(resourceGroup, names.at(-1) ?? '', this.#call(options)));
      const address = found.ipConfigurations?.find((config) => config.primary !== false)?.privateIPAddress;
      if (address === undefined || address === '') throw this.#noAddress('private', vm.name);
      return address;
    }
    const { resourceGroup, names } = parseResourceId(publicIp.id);
    const found = await this.#notFoundAsTyped('getIP', () => clients.network.publicIPAddresses.get(resourceGroup, names.at(-1) ?? '', this.#call(options)));
    const address = this.#config.dnsLabel === undefined ? found.ipAddress : (found.dnsSettings?.fqdn ?? found.ipAddress);
    if (address === undefined || address === '') throw this.#noAddress('public', vm.name);
    return address;
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
    return join(this.#context.machineDir, 'id_ed25519');
  }

  async getURL(options: OperationOptions = {}): Promise<string> {
    return `tcp://${await this.getIP(options)}:${this.#config.dockerPort}`;
  }

  /** Everything create needs, derived from the flags and checked before any API call. */
  async #plan(boot?: BootConfig): Promise<CreatePlan> {
    assertValidMachineName(this.machineName);
    const config = this.#config;
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
      throw new InvalidConfigError(issues, { machine: this.machineName, operation: 'config' });
    }
    const { subscriptionId, resourceGroup, location } = config;
    const vnet = parseQualifiedName(config.vnet);
    const vnetResourceGroup = vnet.resourceGroup ?? resourceGroup;
    const name = this.machineName;
    const sharedTags = { ...tags.tags, [createdByTag]: createdByValue };
    return {
      subscriptionId,
      resourceGroup,
      location,
      rules,
      image,
      customData,
      zone: config.availabilityZone,
      availabilitySet: config.availabilitySet === '' ? undefined : config.availabilitySet,
      sharedTags,
      machineTags: { ...sharedTags, 'machine-name': name },
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

  #vmParameters(plan: CreatePlan, publicKey: string, nicId: string, availabilitySetId: string | undefined): VirtualMachine {
    const user = this.#config.sshUser;
    return {
      location: plan.location,
      tags: plan.machineTags,
      ...(plan.zone === undefined ? {} : { zones: [plan.zone] }),
      hardwareProfile: { vmSize: this.#config.size },
      storageProfile: {
        imageReference:
          plan.image.kind === 'id'
            ? { id: plan.image.id }
            : { publisher: plan.image.publisher, offer: plan.image.offer, sku: plan.image.sku, version: plan.image.version },
        osDisk: {
          name: `${this.machineName}-os-disk`,
          createOption: 'FromImage',
          caching: 'ReadWrite',
          diskSizeGB: this.#config.diskSize,
          managedDisk: { storageAccountType: this.#config.storageType },
        },
      },
      osProfile: {
        computerName: this.machineName,
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

  async #existingSecurityGroup(clients: AzureClients, plan: CreatePlan, options: OperationOptions): Promise<NetworkSecurityGroup> {
    const value = this.#config.nsg ?? '';
    const { resourceGroup, name } = value.startsWith('/')
      ? (() => {
          const parsed = parseResourceId(value);
          return { resourceGroup: parsed.resourceGroup, name: parsed.names.at(-1) ?? '' };
        })()
      : { resourceGroup: plan.resourceGroup, name: value };
    try {
      return await clients.network.networkSecurityGroups.get(resourceGroup, name, this.#call(options));
    } catch (error) {
      if (!isAzureNotFound(error)) throw error;
      throw new InvalidConfigError([{ flag: 'azure-nsg', message: `network security group "${name}" was not found in resource group "${resourceGroup}"` }], {
        machine: this.machineName,
        operation: 'create',
      });
    }
  }

  #deleters(): Record<string, ResourceDeleter> {
    const clients = () => this.#getClients();
    const named = (entry: JournalEntry) => {
      const parsed = parseResourceId(entry.id);
      return { resourceGroup: parsed.resourceGroup, names: parsed.names, name: parsed.names.at(-1) ?? parsed.resourceGroup };
    };
    const ignoringNotFound = async (run: () => PromiseLike<unknown>) => {
      try {
        await run();
      } catch (error) {
        if (!isAzureNotFound(error)) throw error;
      }
    };
    const lroDelete = (what: string, run: (c: AzureClients, id: ReturnType<typeof named>, lro: LongRunningOptions) => PromiseLike<void>) =>
      (async (entry, signal) => {
        const c = await clients();
        const id = named(entry);
        await ignoringNotFound(() => this.#lro(`${what} ${id.name} to be deleted`, signal, (lro) => run(c, id, lro), 'remove'));
      }) satisfies ResourceDeleter;
    return {
      [resourceKinds.virtualMachine]: lroDelete('virtual machine', (c, id, lro) => c.compute.virtualMachines.delete(id.resourceGroup, id.name, lro)),
      [resourceKinds.osDisk]: lroDelete('OS disk', (c, id, lro) => c.compute.disks.delete(id.resourceGroup, id.name, lro)),
      [resourceKinds.networkInterface]: async (entry, signal) => {
        const c = await clients();
        const id = named(entry);
        // Azure keeps a NIC reserved for a while after a failed VM create; retry that one error.
        await waitFor(
          async () => {
            try {
              await ignoringNotFound(() =>
                this.#lro(`network interface ${id.name} to be deleted`, signal, (lro) => c.network.networkInterfaces.delete(id.resourceGroup, id.name, lro), 'remove'),
              );
              return { done: true, value: undefined };
            } catch (error) {
              if (azureErrorFacts(error).code === 'NicReservedForAnotherVm') return { done: false, reason: 'the NIC is reserved for another VM' };
              throw error;
            }
          },
          { interval: 10_000, maxInterval: 30_000, timeout: 240_000, description: `network interface ${id.name} to be released`, machine: this.machineName, operation: 'remove', ...(signal === undefined ? {} : { signal }) },
        );
      },
      [resourceKinds.publicIp]: lroDelete('public IP address', (c, id, lro) => c.network.publicIPAddresses.delete(id.resourceGroup, id.name, lro)),
      [resourceKinds.securityGroup]: lroDelete('network security group', (c, id, lro) => c.network.networkSecurityGroups.delete(id.resourceGroup, id.name, lro)),
      // Shared pieces: deleted only when this machine's create made them and nothing else uses them now.
      [resourceKinds.subnet]: async (entry, signal) => {
        this.#assertOwnResourcesGone(entry);
        const c = await clients();
        const { resourceGroup, names } = named(entry);
        const [vnet = '', subnet = ''] = names;
        const found = await this.#getOrUndefined(() => c.network.subnets.get(resourceGroup, vnet, subnet, this.#call({ ...(signal === undefined ? {} : { signal }) })));
        if (found === undefined || (found.ipConfigurations?.length ?? 0) > 0) return;
        await ignoringNotFound(() => this.#lro(`subnet ${subnet} to be deleted`, signal, (lro) => c.network.subnets.delete(resourceGroup, vnet, subnet, lro), 'remove'));
      },
      [resourceKinds.virtualNetwork]: async (entry, signal) => {
        this.#assertOwnResourcesGone(entry);
        const c = await clients();
        const { resourceGroup, name } = named(entry);
        const found = await this.#getOrUndefined(() => c.network.virtualNetworks.get(resourceGroup, name, this.#call({ ...(signal === undefined ? {} : { signal }) })));
        if (found === undefined || (found.subnets?.length ?? 0) > 0) return;
        await ignoringNotFound(() => this.#lro(`virtual network ${name} to be deleted`, signal, (lro) => c.network.virtualNetworks.delete(resourceGroup, name, lro), 'remove'));
      },
      [resourceKinds.availabilitySet]: async (entry, signal) => {
        this.#assertOwnResourcesGone(entry);
        const c = await clients();
        const { resourceGroup, name } = named(entry);
        const call = this.#call({ ...(signal === undefined ? {} : { signal }) });
        const found = await this.#getOrUndefined(() => c.compute.availabilitySets.get(resourceGroup, name, call));
        if (found === undefined || (found.virtualMachines?.length ?? 0) > 0) return;
        await ignoringNotFound(() => c.compute.availabilitySets.delete(resourceGroup, name, call));
      },
      [resourceKinds.resourceGroup]: async (entry, signal) => {
        this.#assertOwnResourcesGone(entry);
        const c = await clients();
        const { resourceGroup } = named(entry);
        const call = this.#call({ ...(signal === undefined ? {} : { signal }) });
        try {
          for await (const _resource of c.resources.resources.listByResourceGroup(resourceGroup, { ...call, top: 1 })) return;
        } catch (error) {
          if (isAzureNotFound(error)) return;
          throw error;
        }
        await ignoringNotFound(() => this.#lro(`resource group ${resourceGroup} to be deleted`, signal, (lro) => c.resources.resourceGroups.delete(resourceGroup, lro), 'remove'));
      },
    };
  }

  /**
   * A shared piece (subnet, vnet, availability set, group) in use by this machine's own resources
   * that failed to delete must stay in the journal, so the next remove deletes it too.
   */
  #assertOwnResourcesGone(shared: JournalEntry): void {
    const entries = this.#context.journal.entries();
    const left = entries.slice(entries.indexOf(shared) + 1).filter((entry) => !entry.preExisting && ownKinds.has(entry.kind));
    if (left.length > 0) {
      throw new ProviderError(`kept ${shared.kind} ${parseResourceId(shared.id).names.at(-1) ?? shared.id} for now: this machine's ${left.map((entry) => entry.kind).join(', ')} still exist`, {
        machine: this.machineName,
        operation: 'remove',
        retryable: true,
      });
    }
  }

  #getClients(): Promise<AzureClients> {
    this.#clients ??= this.#clientSource().catch((error: unknown) => {
      this.#clients = undefined;
      throw error;
    });
    return this.#clients;
  }

  /** The VM's group and name, from the journal; NotFoundError when no VM was made. */
  #vm(operation: string): { resourceGroup: string; name: string } {
    const entry = findEntry(this.#context.journal, resourceKinds.virtualMachine);
    if (entry === undefined) throw new NotFoundError('no virtual machine is recorded for this machine', { machine: this.machineName, operation });
    const { resourceGroup, names } = parseResourceId(entry.id);
    return { resourceGroup, name: names.at(-1) ?? this.machineName };
  }

  #call(options: OperationOptions): { abortSignal?: AbortSignal } {
    return options.signal === undefined ? {} : { abortSignal: options.signal };
  }

  async #getOrUndefined<T>(get: () => Promise<T>): Promise<T | undefined> {
    try {
      return await get();
    } catch (error) {
      if (isAzureNotFound(error)) return undefined;
      throw error;
    }
  }

  async #notFoundAsTyped<T>(operation: string, get: () => Promise<T>): Promise<T> {
    try {
      return await get();
    } catch (error) {
      if (isAzureNotFound(error)) {
        throw new NotFoundError(`the virtual machine or its network resources are gone (${error instanceof Error ? error.message : String(error)})`, {
          machine: this.machineName,
          operation,
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * Runs one long-running operation through the SDK's poller, with the wait timeout and the
   * caller's signal: a timeout becomes TimeoutError, an abort CancelledError.
   */
  async #lro<T>(what: string, signal: AbortSignal | undefined, run: (options: LongRunningOptions) => PromiseLike<T>, operation = 'create'): Promise<T> {
    const timeoutMs = this.#config.waitTimeout * 1000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const abortSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const pollIntervalMs = (await this.#getClients()).pollIntervalMs;
    try {
      if (signal?.aborted) throw new CancelledError('the operation was cancelled', { machine: this.machineName, operation });
      return await run({ abortSignal, ...(pollIntervalMs === undefined ? {} : { updateIntervalInMs: pollIntervalMs }) });
    } catch (error) {
      if (signal?.aborted) throw new CancelledError('the operation was cancelled', { machine: this.machineName, operation, cause: error });
      if (timeout.aborted) {
        throw new TimeoutError(`gave up waiting for ${what} after ${this.#config.waitTimeout} s`, {
          machine: this.machineName,
          operation,
          cause: error,
          hint: 'raise --azure-wait-timeout, or check the resource in the Azure portal',
        });
      }
      throw error;
    }
  }

  async #step<T>(step: string, what: string, run: () => Promise<T>): Promise<T> {
    this.#progress(step, `making ${what}`, 'start');
    const result = await run();
    this.#progress(step, `${what} ready`, 'done');
    return result;
  }

  #progress(step: string, message: string, phase: 'start' | 'done' | 'info'): void {
    this.#context.onProgress?.({ step, message, phase });
  }

  #noAddress(kind: 'public' | 'private', vm: string): ProviderError {
    return new ProviderError(`virtual machine ${vm} has no ${kind} IP address yet`, { machine: this.machineName, operation: 'getIP', retryable: true });
  }
}

/** What create works from. */
interface CreatePlan {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  rules: FirewallRule[];
  image: { kind: 'marketplace'; publisher: string; offer: string; sku: string; version: string } | { kind: 'id'; id: string };
  customData: string | undefined;
  zone: string | undefined;
  availabilitySet: string | undefined;
  sharedTags: Record<string, string>;
  machineTags: Record<string, string>;
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
