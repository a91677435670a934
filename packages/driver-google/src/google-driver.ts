
import { join } from 'node:path';
import {
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  InvalidConfigError,
  findEntry,
  type machineFirewallRules,
  NotFoundError,
  type OperationOptions,
  ProviderError,
  type ResourceModel,
  type ResourceRunner,
  removeResources,
  State,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import { type ClientSource, ComputeApi } from './google-api.ts';
import type { ComputeInstance } from './google-clients.ts';
import { isNotFound, mapGoogleError } from './google-errors.ts';
import { firewallPatch, firewallRuleName, lastSegment, machineTag, managedMarker, newFirewall } from './google-firewall.ts';
import { type GoogleConfig, imagePath, parseLabels } from './google-flags.ts';
import { googleKinds, ResourceKind } from './google-resources.ts';
import { googleUserData, validateGoogleConfig } from './google-local-inputs.ts';
import { sshKeysLine } from './google-metadata.ts';

export { googleNameProblem, keepPinnedHostKeyCloudConfig, userDataLimitBytes } from './google-local-inputs.ts';

export type { ClientSource } from './google-api.ts';
export { ResourceKind } from './google-resources.ts';

const stateByStatus: Readonly<Record<string, State>> = {
  PENDING: State.Starting,
  PROVISIONING: State.Starting,
  STAGING: State.Starting,
  RUNNING: State.Running,
  STOPPING: State.Stopping,
  PENDING_STOP: State.Stopping,
  DEPROVISIONING: State.Stopping,
  SUSPENDING: State.Stopping,
  SUSPENDED: State.Saved,
  STOPPED: State.Stopped,
  TERMINATED: State.Stopped,
  REPAIRING: State.Error,
};

/** The State of a Compute instance resource. */
export function stateOfInstance(instance: ComputeInstance): State {
  return stateByStatus[String(instance.status ?? '')] ?? State.None;
}

/** Statuses on the way to RUNNING (REPAIRING returns to RUNNING when the repair works). */
const startingStatuses = new Set(['PENDING', 'PROVISIONING', 'STAGING', 'REPAIRING']);

/**
 * The Compute Engine driver: a thin mapping of the Driver operations onto the Compute v1 API
 * through `@google-cloud/compute` (REST transport). Instance name = machine name.
 */
export class GoogleDriver implements Driver {
  readonly driverName = 'google';
  readonly #config: GoogleConfig;
  readonly #context: DriverContext;
  readonly #api: ComputeApi;
  readonly #kinds: ReturnType<typeof googleKinds>;
  readonly #model: ResourceModel<ComputeApi>;

  constructor(config: GoogleConfig, context: DriverContext, clients: ClientSource) {
    this.#config = config;
    this.#context = context;
    this.#api = new ComputeApi(clients, { project: config.project, waitTimeoutSeconds: config.waitTimeout, machine: context.machineName });
    this.#kinds = googleKinds({ project: config.project, zone: config.zone });
    this.#model = {
      kinds: this.#kinds.all,
      client: async () => this.#api,
      poll: { interval: 250, maxInterval: 3000 },
      mapError: (error, where) => mapGoogleError(error, where),
    };
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  get #region(): string {
    return this.#config.zone.replace(/-[a-z]$/, '');
  }

  get #networkUrl(): string {
    return `projects/${this.#config.project}/global/networks/${this.#config.network}`;
  }

  /** Checks flags and the name, then that the instance does (use-existing) or does not exist. */
  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    validateGoogleConfig(this.#config, this.machineName);
    await googleUserData(this.#config, undefined);
    const existing = await this.#api.findInstance(this.machineName, this.#config.zone, options.signal);
    if (this.#config.useExisting && existing === undefined) {
      throw new NotFoundError(`--google-use-existing: there is no instance "${this.machineName}" in ${this.#config.project}/${this.#config.zone}`, {
        machine: this.machineName,
        operation: 'preCreateCheck',
        hint: 'check --google-project and --google-zone, or drop --google-use-existing to create it',
      });
    }
    if (!this.#config.useExisting && existing !== undefined) {
      throw new InvalidConfigError(
        [{ flag: 'machine name', kind: 'input', message: `an instance "${this.machineName}" already exists in ${this.#config.project}/${this.#config.zone}; pass --google-use-existing to adopt it` }],
        { machine: this.machineName, operation: 'preCreateCheck' },
      );
    }
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const rules = validateGoogleConfig(this.#config, this.machineName);
    const { signal, boot } = options;
    const userData = await googleUserData(this.#config, boot);
    await createResources(this.#model, this.#context, options, async (run) => {
        const natIP = await this.#resolveAddress(signal);
        this.#progress('ssh-key', 'start', 'generating an ed25519 SSH key');
        // Loaded here, not at import: keys and ssh pull in ssh2, which `machine ls` never needs.
        const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
        const keyPair = generateSSHKeyPair({ comment: this.#config.username });
        await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_ed25519');
        const keyLine = sshKeysLine(this.#config.username, keyPair.publicKey);
        this.#progress('ssh-key', 'done', `key ${keyPair.sha256Fingerprint} written to ${this.getSSHKeyPath()}`);
        throwIfAborted(signal);

        let existing: ComputeInstance | undefined;
        if (this.#config.useExisting) {
          existing = await this.#api.findInstance(this.machineName, this.#config.zone, signal);
          if (existing === undefined) {
            throw new NotFoundError(`--google-use-existing: there is no instance "${this.machineName}" in ${this.#config.project}/${this.#config.zone}`);
          }
          await run.adopt(this.#kinds.instance, { id: this.machineName, region: this.#config.zone });
        }

        await this.#ensureFirewall(run, rules, signal);
        throwIfAborted(signal);

        if (existing === undefined) {
          await run.make(this.#kinds.instance, { resource: this.#instanceResource(keyLine, natIP, userData) });
        } else {
          await this.#adoptInstance(run, existing, keyLine, signal);
        }

        this.#progress('wait-running', 'start', `waiting for instance ${this.machineName} to run`);
        const instance = await this.#waitForStatus(['RUNNING'], signal);
        const ip = this.#addressOf(instance);
        if (ip === undefined) throw new ProviderError('the instance runs but has no IP address', { machine: this.machineName, operation: 'create' });
        this.#progress('wait-running', 'done', `instance ${this.machineName} is running at ${ip}`);
        await this.#context.data.write({ ip, stopRequested: false });
        const { waitForSSH } = await import('@machine/driver-core/ssh');
        const fingerprint = await waitForSSH(
          {
            host: ip,
            port: this.#config.sshPort,
            username: this.#config.username,
            privateKey: keyPair.privateKey,
            machine: this.machineName,
            // The host key the boot user data installs: any other key is refused.
            ...(boot?.hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint: boot.hostKeyFingerprint }),
          },
          {
            timeout: this.#config.waitTimeout * 1000,
            operation: 'create',
            ...(signal === undefined ? {} : { signal }),
            ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
          },
        );
        await this.#context.data.write({ hostKeyFingerprint: fingerprint });
    });
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    await removeResources(this.#model, this.#context, options);
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const zone = this.#instanceZone('start');
    await this.#context.data.write({ stopRequested: false });
    await this.#api.zoneCall('start', zone, options.signal, (c, requestId) =>
      c.instances.start({ project: this.#config.project, zone, instance: this.machineName, requestId }),
    );
    const instance = await this.#waitForStatus(['RUNNING'], options.signal);
    const ip = this.#addressOf(instance);
    if (ip !== undefined) await this.#context.data.write({ ip });
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    await this.#stop(false, options.signal);
  }

  /** Stops without the guest's graceful shutdown (`noGracefulShutdown`): a power-off. Local SSDs are kept. */
  async kill(options: OperationOptions = {}): Promise<void> {
    await this.#stop(true, options.signal);
  }

  /** `instances.reset`: a hard reset, like pressing the reset button; the guest is not shut down first. */
  async restart(options: OperationOptions = {}): Promise<void> {
    const zone = this.#instanceZone('restart');
    await this.#api.zoneCall('restart', zone, options.signal, (c, requestId) =>
      c.instances.reset({ project: this.#config.project, zone, instance: this.machineName, requestId }),
    );
    await this.#waitForStatus(['RUNNING'], options.signal);
  }

  async getState(options: OperationOptions = {}): Promise<State> {
    const instance = await this.#getInstance('getState', options.signal);
    const state = stateOfInstance(instance);
    if (state === State.Stopped && this.#isPreemptible(instance) && this.#context.data.read().stopRequested !== true) {
      const reason = `Compute Engine preempted the ${instance.scheduling?.provisioningModel === 'SPOT' ? 'Spot' : 'preemptible'} instance; \`machine start\` starts it again`;
      if (this.#context.data.read().stateReason !== reason) {
        await this.#context.data.write({ stateReason: reason });
        this.#progress('state', 'info', reason);
      }
    }
    return state;
  }

  async getIP(options: OperationOptions = {}): Promise<string> {
    const instance = await this.#getInstance('getIP', options.signal);
    const ip = this.#addressOf(instance);
    if (ip === undefined) {
      throw new ProviderError(`the instance has no ${this.#useInternal ? 'internal' : 'external'} IP address (status ${String(instance.status)})`, {
        machine: this.machineName,
        operation: 'getIP',
        hint: 'Host is not running: `machine start` it first',
      });
    }
    return ip;
  }

  async getSSHHostname(options: OperationOptions = {}): Promise<string> {
    return this.getIP(options);
  }

  async getSSHPort(): Promise<number> {
    return this.#config.sshPort;
  }

  getSSHUsername(): string {
    return this.#config.username;
  }

  getSSHKeyPath(): string {
    return join(this.#context.machineDir, 'id_ed25519');
  }

  async getURL(options: OperationOptions = {}): Promise<string> {
    return `tcp://${await this.getIP(options)}:2376`;
  }

  // ---- steps ----

  /** `--google-address`: an IP as given, or a reserved address name resolved in the zone's region. */
  async #resolveAddress(signal: AbortSignal | undefined): Promise<string | undefined> {
    const address = this.#config.address;
    if (address === undefined || /^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return address;
    const [reserved] = await this.#api.call(signal, (c) => c.addresses.get({ project: this.#config.project, region: this.#region, address }));
    if (!reserved.address) {
      throw new InvalidConfigError([{ flag: 'google-address', message: `the reserved address "${address}" in ${this.#region} has no IP` }]);
    }
    return reserved.address;
  }

  /**
   * Creates the network's rule if missing (adopting the one a concurrent create made first), or
   * widens an existing one with the ports and sources this machine needs.
   */
  async #ensureFirewall(run: ResourceRunner<ComputeApi>, rules: ReturnType<typeof machineFirewallRules>, signal: AbortSignal | undefined): Promise<void> {
    const name = firewallRuleName(this.#config.network);
    const sources = rules[0]?.sources ?? this.#config.allowedCidrs;
    const project = this.#config.project;
    this.#progress('firewall', 'start', `checking firewall rule ${name}`);
    const existing = await this.#api.call(signal, (c) => c.firewalls.get({ project, firewall: name })).then(
      ([rule]) => rule,
      (error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      },
    );
    if (existing === undefined) {
      await run.make(this.#kinds.firewall, { resource: newFirewall(name, this.#networkUrl, rules, sources) });
      this.#progress('firewall', 'done', `firewall rule ${name} is in place`);
      return;
    }
    if (lastSegment(existing.network) !== this.#config.network) {
      throw new ProviderError(`firewall rule ${name} exists but belongs to network ${lastSegment(existing.network)}, not ${this.#config.network}`, {
        hint: `rename or delete that rule, or pass --google-network ${lastSegment(existing.network)}`,
      });
    }
    // A rule this tool made is shared (the last machine removed deletes it); anyone else's is never deleted.
    const managed = (existing.description ?? '').includes(managedMarker);
    await run.adopt(this.#kinds.firewall, { id: name, meta: { network: this.#config.network } }, { shared: managed });
    const patch = firewallPatch(existing, rules, sources);
    if (patch !== undefined) {
      await this.#api.globalCall('create', signal, (c, requestId) => c.firewalls.patch({ project, firewall: name, firewallResource: patch, requestId }));
      this.#progress('firewall', 'done', `added this machine's ports and sources to firewall rule ${name}`);
    } else {
      this.#progress('firewall', 'done', `firewall rule ${name} already allows what this machine needs`);
    }
  }

  /** The instance to insert: named after the machine, tagged for the rule, our key in `ssh-keys`. */
  #instanceResource(keyLine: string, natIP: string | undefined, userData: string | undefined): ComputeInstance {
    const { project, zone } = this.#config;
    const labels = parseLabels(this.#config.labels);
    const scheduling = this.#config.spot
      ? { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false, onHostMaintenance: 'TERMINATE' }
      : this.#config.preemptible
        ? { preemptible: true, automaticRestart: false, onHostMaintenance: 'TERMINATE' }
        : { automaticRestart: true, onHostMaintenance: 'MIGRATE' };
    return {
      name: this.machineName,
      description: 'docker host vm (created by machine)',
      machineType: `zones/${zone}/machineTypes/${this.#config.machineType}`,
      disks: [
        {
          boot: true,
          autoDelete: true,
          type: 'PERSISTENT',
          mode: 'READ_WRITE',
          initializeParams: {
            sourceImage: imagePath(this.#config.machineImage) ?? this.#config.machineImage,
            diskSizeGb: this.#config.diskSize,
            diskType: `zones/${zone}/diskTypes/${this.#config.diskType}`,
            labels,
          },
        },
      ],
      networkInterfaces: [
        {
          network: this.#networkUrl,
          ...(this.#config.subnetwork === undefined ? {} : { subnetwork: `projects/${project}/regions/${this.#region}/subnetworks/${this.#config.subnetwork}` }),
          accessConfigs: this.#config.useInternalIpOnly ? [] : [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT', ...(natIP === undefined ? {} : { natIP }) }],
        },
      ],
      tags: { items: [...new Set([machineTag, ...this.#config.tags])] },
      labels,
      metadata: {
        items: [
          { key: 'ssh-keys', value: keyLine },
          // Project-wide keys would otherwise also open this machine.
          { key: 'block-project-ssh-keys', value: 'true' },
          // cloud-init on the Ubuntu images reads its user data from this key.
          ...(userData === undefined ? [] : [{ key: 'user-data', value: userData }]),
        ],
      },
      serviceAccounts: [{ email: this.#config.serviceAccount, scopes: this.#config.scopes }],
      scheduling,
    };
  }

  /** `--google-use-existing`: adds the tag and our key to the instance, merging, never replacing; starts it if stopped. */
  async #adoptInstance(run: ResourceRunner<ComputeApi>, existing: ComputeInstance, keyLine: string, signal: AbortSignal | undefined): Promise<void> {
    const { project, zone } = this.#config;
    let instance = existing;
    if (!(instance.tags?.items ?? []).includes(machineTag)) {
      await run.make(this.#kinds.instanceTag, { instance });
      instance = (await this.#api.findInstance(this.machineName, zone, signal)) ?? instance;
    }
    await run.make(this.#kinds.instanceSSHKey, { instance, line: keyLine });
    if (!['RUNNING', 'PROVISIONING', 'STAGING'].includes(String(instance.status))) {
      await this.#api.zoneCall('create', zone, signal, (c, requestId) => c.instances.start({ project, zone, instance: this.machineName, requestId }));
    }
  }

  async #stop(force: boolean, signal: AbortSignal | undefined): Promise<void> {
    const operation = force ? 'kill' : 'stop';
    const zone = this.#instanceZone(operation);
    await this.#context.data.write({ stopRequested: true, stateReason: null });
    await this.#api.zoneCall(operation, zone, signal, (c, requestId) =>
      c.instances.stop({
        project: this.#config.project,
        zone,
        instance: this.machineName,
        requestId,
        ...(force ? { noGracefulShutdown: true } : {}),
      }),
    );
    await this.#waitForStatus(['TERMINATED', 'STOPPED'], signal);
  }

  /** The recorded instance, or NotFoundError (never created, or deleted outside the tool). */
  async #getInstance(operation: string, signal: AbortSignal | undefined): Promise<ComputeInstance> {
    const zone = this.#instanceZone(operation);
    const instance = await this.#api.findInstance(this.machineName, zone, signal);
    if (instance === undefined) {
      throw new NotFoundError(`instance ${this.machineName} does not exist in ${this.#config.project}/${zone}`, {
        machine: this.machineName,
        operation,
        resource: `instance ${this.machineName}`,
      });
    }
    return instance;
  }

  #instanceZone(operation: string): string {
    const entry = findEntry(this.#context.journal, ResourceKind.instance);
    if (entry === undefined) {
      throw new NotFoundError('no instance is recorded for this machine', { machine: this.machineName, operation, resource: `instance ${this.machineName}` });
    }
    return entry.region ?? this.#config.zone;
  }

  async #waitForStatus(wanted: readonly string[], signal: AbortSignal | undefined): Promise<ComputeInstance> {
    return waitFor(
      async () => {
        const instance = await this.#getInstance('wait', signal);
        const status = String(instance.status);
        if (wanted.includes(status)) return { done: true, value: instance };
        // Waiting for RUNNING, any status that does not lead there fails at once, with Compute Engine's reason.
        if (wanted.includes('RUNNING') && !startingStatuses.has(status)) throw this.#notStarting(instance, status);
        return { done: false, reason: `status ${status}` };
      },
      {
        interval: 250,
        maxInterval: 3000,
        timeout: this.#config.waitTimeout * 1000,
        description: `instance ${this.machineName} to be ${wanted.join(' or ')}`,
        machine: this.machineName,
        ...(signal === undefined ? {} : { signal }),
      },
    );
  }

  /** Why an instance that should be starting is not: stopped, preempted, or a status this driver does not know. */
  #notStarting(instance: ComputeInstance, status: string): ProviderError {
    const reason = instance.statusMessage ? `: ${instance.statusMessage}` : '';
    const known = status in stateByStatus;
    const detail =
      (status === 'TERMINATED' || status === 'STOPPED') && this.#isPreemptible(instance)
        ? `the instance stopped while starting (status ${status}); Compute Engine may have preempted it${reason}`
        : known
          ? `the instance is ${status} instead of starting${reason}`
          : `the instance reports status ${status}, which this driver does not know, instead of RUNNING${reason}`;
    return new ProviderError(detail, {
      machine: this.machineName,
      providerCode: status,
      hint: known ? 'look at the instance in the Cloud console (serial port output), then `machine start` or re-create it' : 'upgrade the machine driver, or look at the instance in the Cloud console',
    });
  }

  get #useInternal(): boolean {
    return this.#config.useInternalIp || this.#config.useInternalIpOnly;
  }

  #addressOf(instance: ComputeInstance): string | undefined {
    const nic = instance.networkInterfaces?.[0];
    const ip = this.#useInternal ? nic?.networkIP : nic?.accessConfigs?.[0]?.natIP;
    return ip ? ip : undefined;
  }

  #isPreemptible(instance: ComputeInstance): boolean {
    return instance.scheduling?.preemptible === true || instance.scheduling?.provisioningModel === 'SPOT';
  }

  #progress(step: string, phase: 'start' | 'done' | 'info', message: string): void {
    this.#context.onProgress?.({ step, phase, message });
  }
}
