import { join } from 'node:path';
import type { NetworkSecurityGroup } from '@azure/arm-network';
import {
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  findEntry,
  InvalidConfigError,
  type MachineError,
  managedByValue,
  NotFoundError,
  type OperationOptions,
  ProviderError,
  type ResourceModel,
  type ResourceRunner,
  removeResources,
  State,
  waitFor,
} from '@machine/driver-core';
import { type AzureApi, createAzureApi } from './azure-api.ts';
import type { AzureClients, LongRunningOptions } from './azure-clients.ts';
import { azureErrorFacts, isAzureNotFound } from './azure-errors.ts';
import type { AzureConfig } from './azure-flags.ts';
import { type CreatePlan, createPlan, securityRules, vmParameters, vnetAddressSpace } from './azure-plan.ts';
import { parseResourceId } from './azure-resource-id.ts';
import {
  availabilitySetKind,
  azureKinds,
  madeByMachine,
  networkInterfaceKind,
  osDiskKind,
  type PendingVm,
  type Placed,
  publicIpKind,
  resourceGroupKind,
  resourceKinds,
  securityGroupKind,
  subnetKind,
  virtualMachineKind,
  virtualNetworkKind,
} from './azure-resources.ts';
import { type AzureTimings, defaultTimings } from './azure-retry.ts';
import { stateFromInstanceView } from './azure-state.ts';

export { resourceKinds } from './azure-resources.ts';

/** How the driver gets its SDK clients: injected (tests, the simulator) or built on first use. */
export type AzureClientSource = () => Promise<AzureClients>;

/** What the driver needs besides its config, context and clients. */
export interface AzureDriverOptions {
  timings?: Partial<AzureTimings>;
  /** Turns raw SDK errors into typed ones (the descriptor's mapper; it knows the secrets). */
  mapError?: (error: unknown, where: { machine: string; operation: string }) => MachineError;
}

/** A key Azure refuses by type: the region takes RSA keys only (before Dec 2023). */
function refusesKeyType(error: unknown): boolean {
  const facts = azureErrorFacts((error as { cause?: unknown })?.cause ?? error);
  return facts.code === 'InvalidParameter' && /publicKeys\.keyData/i.test(facts.message);
}

/**
 * The Azure Resource Manager driver. What create makes is declared as resource kinds
 * (azure-resources.ts): driver-core journals an intent (the deterministic ARM name, the managed-by
 * tag and the intent token) before each PUT and runs rollback and remove. Every call goes through
 * azure-api.ts: within --azure-wait-timeout, retrying what Azure says will pass.
 */
export class AzureDriver implements Driver {
  readonly driverName = 'azure';
  readonly #config: AzureConfig;
  readonly #context: DriverContext;
  readonly #clientSource: AzureClientSource;
  readonly #timings: AzureTimings;
  readonly #model: ResourceModel<AzureApi>;
  #api: Promise<AzureApi> | undefined;

  constructor(config: AzureConfig, context: DriverContext, clientSource: AzureClientSource, options: AzureDriverOptions = {}) {
    this.#config = config;
    this.#context = context;
    this.#clientSource = clientSource;
    this.#timings = { ...defaultTimings, ...options.timings };
    const mapError = options.mapError;
    this.#model = {
      kinds: azureKinds.map((kind) => ({ ...kind, timeouts: { delete: this.#timings.inUseMs } })),
      client: () => this.#getApi(),
      poll: { interval: this.#timings.pollMs, maxInterval: this.#timings.pollMs * 4 },
      ...(mapError === undefined ? {} : { mapError: (error: unknown, where: { machine: string; operation: string }) => mapError(error, where) }),
    };
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    const plan = await createPlan(this.#config, this.machineName);
    const api = await this.#getApi();
    const existing = await api.find(`virtual machine ${this.machineName}`, 'preCreateCheck', options.signal, (abortSignal) =>
      api.clients.compute.virtualMachines.get(plan.resourceGroup, this.machineName, { abortSignal }),
    );
    if (existing !== undefined) {
      throw new InvalidConfigError(
        [{ flag: 'machine name', kind: 'input', message: `a virtual machine named "${this.machineName}" already exists in resource group "${plan.resourceGroup}"` }],
        { machine: this.machineName, operation: 'preCreateCheck' },
      );
    }
    if (this.#config.nsg !== undefined) await this.#existingSecurityGroup(api, plan, options.signal);
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { boot, signal } = options;
    const plan = await createPlan(this.#config, this.machineName, boot);
    const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
    await createResources(this.#model, this.#context, options, async (run) => {
      const api = run.client;
      let keyPair = generateSSHKeyPair({ comment: `${this.machineName}@machine` });
      await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_ed25519');
      const at = (resourceGroup: string, name: string): Placed => ({
        subscriptionId: plan.subscriptionId,
        resourceGroup,
        name,
        location: plan.location,
        userTags: plan.userTags,
      });
      await this.#shared(run, resourceGroupKind, at(plan.resourceGroup, plan.resourceGroup), (abortSignal) =>
        api.clients.resources.resourceGroups.get(plan.resourceGroup, { abortSignal }),
      );
      const availabilitySet = plan.availabilitySet;
      const availabilitySetId =
        availabilitySet === undefined
          ? undefined
          : await this.#shared(run, availabilitySetKind, at(plan.resourceGroup, availabilitySet), (abortSignal) =>
              api.clients.compute.availabilitySets.get(plan.resourceGroup, availabilitySet, { abortSignal }),
            );
      const securityGroupId =
        this.#config.nsg === undefined
          ? (await run.make(securityGroupKind, { ...at(plan.resourceGroup, plan.securityGroupName), rules: securityRules(plan.rules) })).id
          : (await run.adopt(securityGroupKind, { id: (await this.#existingSecurityGroup(api, plan, signal)).id ?? plan.securityGroupId })).id;
      await this.#shared(run, virtualNetworkKind, { ...at(plan.vnetResourceGroup, plan.vnetName), addressPrefixes: vnetAddressSpace(plan.subnetPrefix) }, (abortSignal) =>
        api.clients.network.virtualNetworks.get(plan.vnetResourceGroup, plan.vnetName, { abortSignal }),
      );
      await this.#shared(run, subnetKind, { ...at(plan.vnetResourceGroup, plan.subnetName), vnet: plan.vnetName, addressPrefix: plan.subnetPrefix }, async (abortSignal) => {
        const subnet = await api.clients.network.subnets.get(plan.vnetResourceGroup, plan.vnetName, plan.subnetName, { abortSignal });
        const vnet = await api.clients.network.virtualNetworks.get(plan.vnetResourceGroup, plan.vnetName, { abortSignal });
        return { ...subnet, ...(vnet.tags === undefined ? {} : { tags: vnet.tags }) };
      });
      const publicIpId = this.#config.noPublicIp
        ? undefined
        : (
            await run.make(publicIpKind, {
              ...at(plan.resourceGroup, plan.publicIpName),
              ...(plan.zone === undefined ? {} : { zone: plan.zone }),
              ...(this.#config.dnsLabel === undefined ? {} : { dnsLabel: this.#config.dnsLabel }),
            })
          ).id;
      const nicId = (await run.make(networkInterfaceKind, { ...at(plan.resourceGroup, plan.nicName), body: this.#nicBody(plan, securityGroupId, publicIpId) })).id;
      await run.make(osDiskKind, at(plan.resourceGroup, `${this.machineName}-os-disk`));
      const vm = (publicKey: string) => {
        const pending: PendingVm = {};
        const body = vmParameters(this.#config, this.machineName, plan, { publicKey, nicId, availabilitySetId, tags: {} });
        return { spec: { ...at(plan.resourceGroup, this.machineName), body, pending }, pending };
      };
      let attempt = vm(keyPair.publicKey);
      try {
        await run.make(virtualMachineKind, attempt.spec);
      } catch (error) {
        if (!refusesKeyType(error)) throw error;
        this.#progress('create', 'Azure refused the ed25519 SSH key (this region takes RSA keys only): using a 3072-bit RSA key');
        keyPair = generateSSHKeyPair({ type: 'rsa', bits: 3072, comment: `${this.machineName}@machine` });
        await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_rsa');
        await this.#context.data.write({ sshKeyFile: 'id_rsa' });
        attempt = vm(keyPair.publicKey);
        await run.make(virtualMachineKind, attempt.spec);
      }
      const { poller } = attempt.pending;
      // The address is asked while the VM is provisioned (a Standard static IP has it from its own
      // PUT on; the NIC's private address from the NIC's): create notices the VM running one call
      // sooner. An answer without an address is asked again below.
      const early = this.getIP(signal === undefined ? {} : { signal }).catch(() => undefined);
      // Failures such as AllocationFailed arrive only here, in the poll: the VM is journaled already.
      if (poller !== undefined) await api.call(`virtual machine ${this.machineName} to be provisioned`, 'create', signal, () => poller);
      // The instance view shows the power state a while after the VM's operation ends: it is awaited
      // while SSH is tried (a machine that answers SSH runs), and the address is asked meanwhile (the
      // Standard static IP has it from the VM's PUT on). Whichever fails first stops the other.
      const stop = new AbortController();
      const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
      const power = this.#waitForPower(State.Running, 'create', both);
      const host =
        (await early) ??
        (await this.getIP({ signal: both }).catch(async () => {
          await power;
          return this.getIP({ ...(signal === undefined ? {} : { signal }) });
        }));
      const { waitForSSH } = await import('@machine/driver-core/ssh');
      const ssh = waitForSSH(
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
          signal: both,
          ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
        },
      );
      const [fingerprint] = await Promise.all([ssh, power]).catch((error: unknown) => {
        stop.abort();
        throw error;
      });
      await this.#context.data.write({ ip: host, hostKeyFingerprint: fingerprint });
    });
  }

  /** A shared piece (group, availability set, vnet, subnet): made when missing, else adopted (shared when this tool made it, kept forever when it is the user's). */
  async #shared<Spec extends Placed>(
    run: ResourceRunner<AzureApi>,
    kind: typeof resourceGroupKind | typeof availabilitySetKind | typeof virtualNetworkKind | typeof subnetKind,
    spec: Spec,
    get: (abortSignal: AbortSignal) => Promise<{ id?: string; tags?: Record<string, string> }>,
  ): Promise<string> {
    const existing = await run.client.find(`${kind.label} ${spec.name}`, 'create', run.signal, get);
    if (existing?.id === undefined) return (await run.make(kind as typeof resourceGroupKind, spec)).id;
    const shared = madeByMachine(existing.tags, managedByValue(this.#context.storeId));
    return (await run.adopt(kind, { id: existing.id }, { shared })).id;
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    await removeResources(this.#model, this.#context, options);
    await this.#context.data.write({ ip: null, hostKeyFingerprint: null });
  }

  async start(options: OperationOptions = {}): Promise<void> {
    await this.#power('start', options.signal, (vms, vm, lro) => vms.start(vm.resourceGroup, vm.name, lro));
    await this.#waitForPower(State.Running, 'start', options.signal);
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    await this.#power('stop', options.signal, (vms, vm, lro) => vms.powerOff(vm.resourceGroup, vm.name, lro));
    if (this.#config.stopDeallocate) await this.#power('stop', options.signal, (vms, vm, lro) => vms.deallocate(vm.resourceGroup, vm.name, lro), 'deallocate');
  }

  async kill(options: OperationOptions = {}): Promise<void> {
    await this.#power('kill', options.signal, (vms, vm, lro) => vms.powerOff(vm.resourceGroup, vm.name, { ...lro, skipShutdown: true }), 'power off');
  }

  async restart(options: OperationOptions = {}): Promise<void> {
    await this.#power('restart', options.signal, (vms, vm, lro) => vms.restart(vm.resourceGroup, vm.name, lro));
    await this.#waitForPower(State.Running, 'restart', options.signal);
  }

  /** Runs one power operation on the recorded VM. */
  async #power(
    operation: string,
    signal: AbortSignal | undefined,
    run: (vms: AzureClients['compute']['virtualMachines'], vm: { resourceGroup: string; name: string }, lro: LongRunningOptions) => PromiseLike<void>,
    verb = operation,
  ): Promise<void> {
    const vm = this.#vm(operation);
    const api = await this.#getApi();
    await this.#notFoundAsTyped(operation, () => api.lro(`virtual machine ${vm.name} to ${verb}`, operation, signal, (lro) => run(api.clients.compute.virtualMachines, vm, lro)));
  }

  /**
   * Waits until the instance view shows the power state (it is missing for a while after a create
   * or start): polls after 0.25 s, growing by half each time up to `pollMs` (5 s), so the first polls notice a
   * quick boot at once and a slow one costs about 12 instance views a minute, CRP's per-VM
   * GetVM3Min refill (its bucket of 36 covers the fast start).
   */
  async #waitForPower(target: State, operation: string, signal: AbortSignal | undefined): Promise<void> {
    await waitFor(
      async () => {
        const state = await this.getState({ ...(signal === undefined ? {} : { signal }) });
        return state === target ? { done: true, value: undefined } : { done: false, reason: `it is ${state === State.None ? 'in no power state yet' : state}` };
      },
      {
        interval: Math.min(this.#timings.pollMs, 250),
        maxInterval: this.#timings.pollMs,
        timeout: this.#config.waitTimeout * 1000,
        description: `virtual machine ${this.machineName} to be ${target.toLowerCase()}`,
        machine: this.machineName,
        operation,
        ...(signal === undefined ? {} : { signal }),
      },
    );
  }

  async getState(options: OperationOptions = {}): Promise<State> {
    const vm = this.#vm('getState');
    const api = await this.#getApi();
    const view = await this.#notFoundAsTyped('getState', () =>
      api.call(`the state of virtual machine ${vm.name}`, 'getState', options.signal, (abortSignal) =>
        api.clients.compute.virtualMachines.instanceView(vm.resourceGroup, vm.name, { abortSignal }),
      ),
    );
    return stateFromInstanceView(view.statuses);
  }

  async getIP(options: OperationOptions = {}): Promise<string> {
    const vm = this.#vm('getIP');
    const api = await this.#getApi();
    const publicIp = findEntry(this.#context.journal, resourceKinds.publicIp);
    if (this.#config.usePrivateIp || this.#config.noPublicIp || publicIp === undefined) {
      const nic = findEntry(this.#context.journal, resourceKinds.networkInterface);
      if (nic === undefined) throw new NotFoundError('no network interface is recorded for this machine', { machine: this.machineName, operation: 'getIP' });
      const { resourceGroup, names } = parseResourceId(nic.id);
      const found = await this.#notFoundAsTyped('getIP', () =>
        api.call('the private IP address', 'getIP', options.signal, (abortSignal) => api.clients.network.networkInterfaces.get(resourceGroup, names.at(-1) ?? '', { abortSignal })),
      );
      const address = found.ipConfigurations?.find((config) => config.primary !== false)?.privateIPAddress;
      if (address === undefined || address === '') throw this.#noAddress('private', vm.name);
      return address;
    }
    const { resourceGroup, names } = parseResourceId(publicIp.id);
    const found = await this.#notFoundAsTyped('getIP', () =>
      api.call('the public IP address', 'getIP', options.signal, (abortSignal) => api.clients.network.publicIPAddresses.get(resourceGroup, names.at(-1) ?? '', { abortSignal })),
    );
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
    const file = this.#context.data.read().sshKeyFile;
    return join(this.#context.machineDir, typeof file === 'string' ? file : 'id_ed25519');
  }

  async getURL(options: OperationOptions = {}): Promise<string> {
    return `tcp://${await this.getIP(options)}:${this.#config.dockerPort}`;
  }

  #nicBody(plan: CreatePlan, securityGroupId: string, publicIpId: string | undefined) {
    const privateIp = this.#config.privateIpAddress;
    return {
      location: plan.location,
      networkSecurityGroup: { id: securityGroupId },
      ipConfigurations: [
        {
          name: 'ip',
          primary: true,
          subnet: { id: plan.subnetId },
          privateIPAllocationMethod: privateIp === undefined ? ('Dynamic' as const) : ('Static' as const),
          ...(privateIp === undefined ? {} : { privateIPAddress: privateIp }),
          ...(publicIpId === undefined ? {} : { publicIPAddress: { id: publicIpId } }),
        },
      ],
    };
  }

  async #existingSecurityGroup(api: AzureApi, plan: CreatePlan, signal: AbortSignal | undefined): Promise<NetworkSecurityGroup> {
    const value = this.#config.nsg ?? '';
    const parsed = value.startsWith('/') ? parseResourceId(value) : undefined;
    const resourceGroup = parsed?.resourceGroup ?? plan.resourceGroup;
    const name = parsed === undefined ? value : (parsed.names.at(-1) ?? '');
    const found = await api.find(`network security group ${name}`, 'create', signal, (abortSignal) => api.clients.network.networkSecurityGroups.get(resourceGroup, name, { abortSignal }));
    if (found !== undefined) return found;
    throw new InvalidConfigError([{ flag: 'azure-nsg', message: `network security group "${name}" was not found in resource group "${resourceGroup}"` }], {
      machine: this.machineName,
      operation: 'create',
    });
  }

  #getApi(): Promise<AzureApi> {
    this.#api ??= this.#clientSource().then(
      (clients) =>
        createAzureApi(clients, this.#config, {
          machine: this.machineName,
          timings: this.#timings,
          recorded: () => this.#context.journal.entries().filter((entry) => entry.state !== 'intended').map((entry) => entry.id.toLowerCase()),
          ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
        }),
      (error: unknown) => {
        this.#api = undefined;
        throw error;
      },
    );
    return this.#api;
  }

  /** The VM's group and name, from the journal; NotFoundError when no VM was made. */
  #vm(operation: string): { resourceGroup: string; name: string } {
    const entry = findEntry(this.#context.journal, resourceKinds.virtualMachine);
    if (entry === undefined) throw new NotFoundError('no virtual machine is recorded for this machine', { machine: this.machineName, operation });
    const { resourceGroup, names } = parseResourceId(entry.id);
    return { resourceGroup, name: names.at(-1) ?? this.machineName };
  }

  async #notFoundAsTyped<T>(operation: string, get: () => Promise<T>): Promise<T> {
    try {
      return await get();
    } catch (error) {
      if (!isAzureNotFound(error) || error instanceof NotFoundError) throw error;
      throw new NotFoundError(`the virtual machine or its network resources are gone (${error instanceof Error ? error.message : String(error)})`, {
        machine: this.machineName,
        operation,
        cause: error,
      });
    }
  }

  #progress(step: string, message: string): void {
    this.#context.onProgress?.({ step, message, phase: 'info' });
  }

  #noAddress(kind: 'public' | 'private', vm: string): ProviderError {
    return new ProviderError(`virtual machine ${vm} has no ${kind} IP address yet`, { machine: this.machineName, operation: 'getIP', retryable: true });
  }
}
