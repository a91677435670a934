import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BootConfig,
  CancelledError,
  type CreateOptions,
  cleanupJournal,
  combineUserData,
  createWithCleanup,
  type Driver,
  type DriverContext,
  findEntry,
  InvalidConfigError,
  type JournalEntry,
  machineFirewallRules,
  NotFoundError,
  type OperationOptions,
  ProviderError,
  type ResourceDeleter,
  sleep,
  State,
  throwIfAborted,
  TimeoutError,
  waitFor,
} from '@machine/driver-core';
import type { ComputeClients, ComputeInstance, ComputeOperation, RetrySettings, StartedOperation } from './google-clients.ts';
import { googleErrorInfo, isAlreadyExists, isFingerprintConflict, isNotFound, isRetryableGoogleError, isWaitOutError, operationError } from './google-errors.ts';
import { firewallPatch, firewallRuleName, lastSegment, machineTag, managedMarker, newFirewall } from './google-firewall.ts';
import { type GoogleConfig, imagePath, parseLabels } from './google-flags.ts';
import { hasSSHKey, sshKeysLine, withoutSSHKey, withSSHKey } from './google-metadata.ts';

/** Journal kinds this driver records. */
export const ResourceKind = {
  instance: 'instance',
  firewall: 'firewall',
  /** Our line in an adopted instance's `ssh-keys` metadata (`--google-use-existing`). */
  instanceSSHKey: 'instance-ssh-key',
  /** The `docker-machine` tag we added to an adopted instance. */
  instanceTag: 'instance-tag',
} as const;

/** Compute Engine's limit on one metadata value (the `user-data` item): 256 KiB. */
export const userDataLimitBytes = 256 * 1024;

const instanceName = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Why `name` cannot be a Compute Engine instance name, or undefined. */
export function googleNameProblem(name: string): string | undefined {
  if (instanceName.test(name)) return undefined;
  if (name.length > 63) return `"${name}" is ${name.length} characters long; Compute Engine allows at most 63`;
  if (!/^[a-z]/.test(name)) return `"${name}" must start with a lower-case letter for Compute Engine (names match [a-z]([-a-z0-9]*[a-z0-9])?)`;
  return `"${name}" is not a Compute Engine name: use a-z, 0-9 and "-", starting with a letter and not ending with "-"`;
}

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

const operationDone = new Set(['DONE', '2104194']);
const defaultRetry: RetrySettings = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 20_000, budgetMs: 120_000 };

/** Statuses on the way to RUNNING (REPAIRING returns to RUNNING when the repair works). */
const startingStatuses = new Set(['PENDING', 'PROVISIONING', 'STAGING', 'REPAIRING']);

/**
 * Settles with `promise`, or rejects with CancelledError as soon as `signal` aborts (an operations
 * `wait` can block for two minutes server-side; Ctrl-C must not).
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CancelledError('the operation was cancelled'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** True when Compute Engine answered the call with a 4xx (it made nothing); lost connections and 5xx may have made something. */
function isRefusal(error: unknown): boolean {
  const status = googleErrorInfo(error).status;
  return status !== undefined && status >= 400 && status < 500 && !isWaitOutError(error);
}

/** The SDK clients, built on first use. */
export type ClientSource = () => Promise<ComputeClients>;

/**
 * The Compute Engine driver: a thin mapping of the Driver operations onto the Compute v1 API
 * through `@google-cloud/compute` (REST transport). Instance name = machine name.
 */
/**
 * Compute Engine's guest agent makes new SSH host keys on an instance's first boot
 * (`[InstanceSetup] set_host_keys`), which would replace the host key the host pinned through
 * cloud-init. This part switches that off; cloud-init writes it (write_files) before its ssh module
 * installs the pinned key, in the same boot stage.
 */
export const keepPinnedHostKeyCloudConfig = [
  '#cloud-config',
  'write_files:',
  '  - path: /etc/default/instance_configs.cfg',
  "    permissions: '0644'",
  '    content: |',
  '      [InstanceSetup]',
  '      set_host_keys = false',
  '',
].join('\n');

export class GoogleDriver implements Driver {
  readonly driverName = 'google';
  readonly #config: GoogleConfig;
  readonly #context: DriverContext;
  readonly #clients: ClientSource;

  constructor(config: GoogleConfig, context: DriverContext, clients: ClientSource) {
    this.#config = config;
    this.#context = context;
    this.#clients = clients;
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
    this.#validate();
    await this.#userData(undefined);
    const existing = await this.#findInstance(options.signal);
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
    const rules = this.#validate();
    const { signal, boot } = options;
    const userData = await this.#userData(boot);
    const { journal } = this.#context;
    await createWithCleanup(
      journal,
      async () => {
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
          existing = await this.#findInstance(signal);
          if (existing === undefined) {
            throw new NotFoundError(`--google-use-existing: there is no instance "${this.machineName}" in ${this.#config.project}/${this.#config.zone}`);
          }
          await journal.record({ kind: ResourceKind.instance, id: this.machineName, region: this.#config.zone, preExisting: true });
        }

        await this.#ensureFirewall(rules, signal);
        throwIfAborted(signal);

        if (existing === undefined) {
          await this.#insertInstance(keyLine, natIP, userData, signal);
        } else {
          await this.#adoptInstance(existing, keyLine, signal);
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
      },
      { deleters: this.#deleters(), machine: this.machineName, operation: 'create' },
    );
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    await cleanupJournal(this.#context.journal, {
      deleters: this.#deleters(),
      machine: this.machineName,
      operation: 'remove',
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onDeleted: (entry) => this.#progress('remove', 'info', `deleted ${entry.kind} ${entry.id}`),
    });
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const zone = this.#instanceZone('start');
    await this.#context.data.write({ stopRequested: false });
    await this.#zoneCall('start', zone, options.signal, (c, requestId) =>
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
    await this.#zoneCall('restart', zone, options.signal, (c, requestId) =>
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

  /**
   * The `user-data` metadata value: the host's boot user data and --google-userdata combined.
   * Checked before any API call.
   */
  async #userData(boot: BootConfig | undefined): Promise<string | undefined> {
    const path = this.#config.userdata;
    let own: string | undefined;
    if (path !== undefined && path !== '') {
      try {
        own = await readFile(path, 'utf8');
      } catch (error) {
        throw new InvalidConfigError([{ flag: 'google-userdata', message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
      }
    }
    const pinned = boot?.hostKeyFingerprint === undefined ? undefined : keepPinnedHostKeyCloudConfig;
    const userData = combineUserData([boot?.userData, pinned, own]);
    if (userData === undefined) return undefined;
    if (this.#config.useExisting) {
      // cloud-init reads user data on an instance's first boot only: an adopted instance would never run it.
      throw new InvalidConfigError([
        {
          flag: 'google-use-existing',
          message: `an existing instance does not run new user data (${boot?.userData === undefined ? '--google-userdata' : 'the provisioning cloud-config'}); create a new instance, or pass --no-provision${own === undefined ? '' : ' and drop --google-userdata'}`,
        },
      ]);
    }
    const size = Buffer.byteLength(userData);
    if (size > userDataLimitBytes) {
      throw new InvalidConfigError([
        boot?.userData === undefined
          ? { flag: 'google-userdata', message: `${path} is ${size} bytes, over Compute Engine's 256 KiB limit for a metadata value` }
          : {
              flag: 'user data',
              kind: 'input',
              message: `${own === undefined ? 'the provisioning cloud-config' : `the provisioning cloud-config plus ${path}`} is ${size} bytes, over Compute Engine's 256 KiB limit for a metadata value`,
            },
      ]);
    }
    return userData;
  }

  #validate(): ReturnType<typeof machineFirewallRules> {
    const issues: { flag: string; kind?: 'input'; message: string }[] = [];
    const nameProblem = googleNameProblem(this.machineName);
    if (nameProblem !== undefined) issues.push({ flag: 'machine name', kind: 'input', message: nameProblem });
    if (this.#config.preemptible && this.#config.spot) {
      issues.push({ flag: 'google-spot', message: 'use either --google-preemptible or --google-spot, not both' });
    }
    if (this.#config.useInternalIpOnly && this.#config.address !== undefined) {
      issues.push({ flag: 'google-address', message: 'a static external address makes no sense with --google-use-internal-ip-only' });
    }
    if (imagePath(this.#config.machineImage) === undefined) {
      issues.push({ flag: 'google-machine-image', message: `"${this.#config.machineImage}" is not an image path` });
    }
    if (issues.length > 0) throw new InvalidConfigError(issues, { machine: this.machineName, operation: 'config' });
    return machineFirewallRules({
      sshPort: this.#config.sshPort,
      openPorts: this.#config.openPorts,
      allowedCidrs: this.#config.allowedCidrs,
      openPortFlag: 'google-open-port',
      allowedCidrFlag: 'google-allowed-cidr',
    });
  }

  /** `--google-address`: an IP as given, or a reserved address name resolved in the zone's region. */
  async #resolveAddress(signal: AbortSignal | undefined): Promise<string | undefined> {
    const address = this.#config.address;
    if (address === undefined || /^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return address;
    const [reserved] = await this.#call(signal, (c) => c.addresses.get({ project: this.#config.project, region: this.#region, address }));
    if (!reserved.address) {
      throw new InvalidConfigError([{ flag: 'google-address', message: `the reserved address "${address}" in ${this.#region} has no IP` }]);
    }
    return reserved.address;
  }

  /** Creates the network's rule if missing, or widens it with the ports and sources this machine needs. */
  async #ensureFirewall(rules: ReturnType<typeof machineFirewallRules>, signal: AbortSignal | undefined, raced = false): Promise<void> {
    const name = firewallRuleName(this.#config.network);
    const sources = rules[0]?.sources ?? this.#config.allowedCidrs;
    const project = this.#config.project;
    this.#progress('firewall', 'start', `checking firewall rule ${name}`);
    const existing = await this.#call(signal, (c) => c.firewalls.get({ project, firewall: name })).then(
      ([rule]) => rule,
      (error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      },
    );
    if (existing === undefined) {
      try {
        await this.#globalCall('create', signal, async (c, requestId) => {
          const started = await c.firewalls.insert({ project, firewallResource: newFirewall(name, this.#networkUrl, rules, sources), requestId });
          await this.#context.journal.record({ kind: ResourceKind.firewall, id: name, meta: { network: this.#config.network } });
          return started;
        });
        this.#progress('firewall', 'done', `created firewall rule ${name}`);
        return;
      } catch (error) {
        if (raced || !isAlreadyExists(error)) throw error;
        // Another create made it first: adopt it.
        return this.#ensureFirewall(rules, signal, true);
      }
    }
    if (lastSegment(existing.network) !== this.#config.network) {
      throw new ProviderError(`firewall rule ${name} exists but belongs to network ${lastSegment(existing.network)}, not ${this.#config.network}`, {
        hint: `rename or delete that rule, or pass --google-network ${lastSegment(existing.network)}`,
      });
    }
    const managed = (existing.description ?? '').includes(managedMarker);
    await this.#context.journal.record({ kind: ResourceKind.firewall, id: name, preExisting: !managed, meta: { network: this.#config.network } });
    const patch = firewallPatch(existing, rules, sources);
    if (patch !== undefined) {
      await this.#globalCall('create', signal, (c, requestId) => c.firewalls.patch({ project, firewall: name, firewallResource: patch, requestId }));
      this.#progress('firewall', 'done', `added this machine's ports and sources to firewall rule ${name}`);
    } else {
      this.#progress('firewall', 'done', `firewall rule ${name} already allows what this machine needs`);
    }
  }

  async #insertInstance(keyLine: string, natIP: string | undefined, userData: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const { project, zone } = this.#config;
    const labels = parseLabels(this.#config.labels);
    const scheduling = this.#config.spot
      ? { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false, onHostMaintenance: 'TERMINATE' }
      : this.#config.preemptible
        ? { preemptible: true, automaticRestart: false, onHostMaintenance: 'TERMINATE' }
        : { automaticRestart: true, onHostMaintenance: 'MIGRATE' };
    const instanceResource: ComputeInstance = {
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
    this.#progress('create-instance', 'start', `creating instance ${this.machineName} (${this.#config.machineType}) in ${zone}`);
    // Recorded before the call (the name is the instance's identity): a lost reply still leaves a
    // trace that rollback and remove delete by name. A refusal (an answered 4xx: another's
    // instance of that name, a bad field) made nothing of ours, and the record goes again.
    await this.#context.journal.record({ kind: ResourceKind.instance, id: this.machineName, region: zone });
    await this.#zoneCall('create', zone, signal, (c, requestId) => c.instances.insert({ project, zone, instanceResource, requestId })).catch(
      async (error: unknown) => {
        if (isRefusal(error)) await this.#context.journal.forget(ResourceKind.instance, this.machineName);
        throw error;
      },
    );
    this.#progress('create-instance', 'done', `instance ${this.machineName} created`);
  }

  /** `--google-use-existing`: adds the tag and our key to the instance, merging, never replacing. */
  async #adoptInstance(existing: ComputeInstance, keyLine: string, signal: AbortSignal | undefined): Promise<void> {
    const { project, zone } = this.#config;
    let instance = existing;
    if (!(instance.tags?.items ?? []).includes(machineTag)) {
      await this.#context.journal.record({ kind: ResourceKind.instanceTag, id: this.machineName, region: zone, meta: { tag: machineTag } });
      await this.#withFingerprintRetry(signal, async (fresh) => {
        const current = fresh ?? instance;
        const items = [...new Set([...(current.tags?.items ?? []), machineTag])];
        return this.#zoneCall('create', zone, signal, (c, requestId) =>
          c.instances.setTags({ project, zone, instance: this.machineName, tagsResource: { items, fingerprint: current.tags?.fingerprint ?? null }, requestId }),
        );
      });
      instance = (await this.#findInstance(signal)) ?? instance;
    }
    await this.#context.journal.record({ kind: ResourceKind.instanceSSHKey, id: this.machineName, region: zone, meta: { line: keyLine } });
    await this.#withFingerprintRetry(signal, async (fresh) => {
      const current = fresh ?? instance;
      if (hasSSHKey(current.metadata, keyLine)) return undefined;
      return this.#zoneCall('create', zone, signal, (c, requestId) =>
        c.instances.setMetadata({
          project,
          zone,
          instance: this.machineName,
          metadataResource: { items: withSSHKey(current.metadata, keyLine), fingerprint: current.metadata?.fingerprint ?? null },
          requestId,
        }),
      );
    });
    if (!['RUNNING', 'PROVISIONING', 'STAGING'].includes(String(instance.status))) {
      await this.#zoneCall('create', zone, signal, (c, requestId) => c.instances.start({ project, zone, instance: this.machineName, requestId }));
    }
  }

  /** Runs a read-modify-write; on a fingerprint conflict re-reads the instance and tries again. */
  async #withFingerprintRetry(signal: AbortSignal | undefined, write: (fresh: ComputeInstance | undefined) => Promise<unknown>): Promise<void> {
    let fresh: ComputeInstance | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        await write(fresh);
        return;
      } catch (error) {
        if (attempt >= 5 || !isFingerprintConflict(error)) throw error;
        fresh = await this.#findInstance(signal);
        if (fresh === undefined) throw error;
      }
    }
  }

  async #stop(force: boolean, signal: AbortSignal | undefined): Promise<void> {
    const operation = force ? 'kill' : 'stop';
    const zone = this.#instanceZone(operation);
    await this.#context.data.write({ stopRequested: true, stateReason: null });
    await this.#zoneCall(operation, zone, signal, (c, requestId) =>
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

  // ---- deleters ----

  #deleters(): Record<string, ResourceDeleter> {
    return {
      [ResourceKind.instance]: (entry, signal) => this.#deleteInstance(entry, signal),
      [ResourceKind.firewall]: (entry, signal) => this.#deleteFirewallIfUnused(entry, signal),
      [ResourceKind.instanceSSHKey]: (entry, signal) => this.#removeKeyFromInstance(entry, signal),
      [ResourceKind.instanceTag]: (entry, signal) => this.#removeTagFromInstance(entry, signal),
    };
  }

  async #deleteInstance(entry: JournalEntry, signal: AbortSignal | undefined): Promise<void> {
    const zone = entry.region ?? this.#config.zone;
    this.#progress('remove', 'start', `deleting instance ${entry.id} and its boot disk`);
    await this.#notFoundIsDone(() =>
      this.#zoneCall('remove', zone, signal, (c, requestId) => c.instances.delete({ project: this.#config.project, zone, instance: entry.id, requestId })),
    );
  }

  /** Deletes the shared rule only if this tool made it and no instance on its network carries the tag. */
  async #deleteFirewallIfUnused(entry: JournalEntry, signal: AbortSignal | undefined): Promise<void> {
    const project = this.#config.project;
    const rule = await this.#call(signal, (c) => c.firewalls.get({ project, firewall: entry.id })).then(
      ([found]) => found,
      (error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      },
    );
    if (rule === undefined || !(rule.description ?? '').includes(managedMarker)) return;
    const network = lastSegment(rule.network);
    const users = await this.#call(signal, async (c) => {
      const names: string[] = [];
      for await (const [, scoped] of c.instances.aggregatedListAsync({ project }, { autoPaginate: false })) {
        for (const instance of scoped.instances ?? []) {
          const onNetwork = (instance.networkInterfaces ?? []).some((nic) => lastSegment(nic.network) === network);
          if (onNetwork && (instance.tags?.items ?? []).includes(machineTag)) names.push(instance.name ?? '');
        }
      }
      return names;
    });
    if (users.length > 0) {
      this.#progress('remove', 'info', `keeping firewall rule ${entry.id}: still used by ${users.join(', ')}`);
      return;
    }
    await this.#notFoundIsDone(() =>
      this.#globalCall('remove', signal, (c, requestId) => c.firewalls.delete({ project, firewall: entry.id, requestId })),
    );
  }

  async #removeKeyFromInstance(entry: JournalEntry, signal: AbortSignal | undefined): Promise<void> {
    const line = entry.meta?.line;
    const zone = entry.region ?? this.#config.zone;
    if (line === undefined) return;
    await this.#withFingerprintRetry(signal, async (fresh) => {
      const current = fresh ?? (await this.#findInstance(signal, zone));
      if (current === undefined || !hasSSHKey(current.metadata, line)) return;
      await this.#zoneCall('remove', zone, signal, (c, requestId) =>
        c.instances.setMetadata({
          project: this.#config.project,
          zone,
          instance: entry.id,
          metadataResource: { items: withoutSSHKey(current.metadata, line), fingerprint: current.metadata?.fingerprint ?? null },
          requestId,
        }),
      );
    });
  }

  async #removeTagFromInstance(entry: JournalEntry, signal: AbortSignal | undefined): Promise<void> {
    const zone = entry.region ?? this.#config.zone;
    const tag = entry.meta?.tag ?? machineTag;
    await this.#withFingerprintRetry(signal, async (fresh) => {
      const current = fresh ?? (await this.#findInstance(signal, zone));
      if (current === undefined || !(current.tags?.items ?? []).includes(tag)) return;
      const items = (current.tags?.items ?? []).filter((item) => item !== tag);
      await this.#zoneCall('remove', zone, signal, (c, requestId) =>
        c.instances.setTags({ project: this.#config.project, zone, instance: entry.id, tagsResource: { items, fingerprint: current.tags?.fingerprint ?? null }, requestId }),
      );
    });
  }

  // ---- API plumbing ----

  /**
   * One API call through the lazily built clients, retried with backoff: transient 5xx and lost
   * connections up to `attempts` tries; throttling and `resourceNotReady` for `budgetMs` (rate
   * quotas are per minute, so a few quick tries would give up before the next minute refills them).
   */
  async #call<T>(signal: AbortSignal | undefined, run: (clients: ComputeClients) => Promise<T>, interruptible = true): Promise<T> {
    const clients = await this.#clients();
    const retry = { ...defaultRetry, ...clients.retry };
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal, { machine: this.machineName });
      try {
        return await (interruptible ? abortable(run(clients), signal) : run(clients));
      } catch (error) {
        if (!isRetryableGoogleError(error)) throw error;
        const waitOut = isWaitOutError(error);
        if (waitOut ? Date.now() >= deadline : attempt >= retry.attempts) throw error;
        const cap = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
        // Waiting out a quota: at least half the cap, so the budget is spent waiting, not hammering.
        const delay = waitOut ? cap / 2 + (Math.random() * cap) / 2 : Math.random() * cap;
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now()) + 1), signal);
      }
    }
  }

  /** A zonal write: one requestId for every retry (so a repeated call is not done twice), then waits for its operation. */
  async #zoneCall(
    operation: string,
    zone: string,
    signal: AbortSignal | undefined,
    run: (clients: ComputeClients, requestId: string) => Promise<[StartedOperation, ...unknown[]]>,
  ): Promise<ComputeOperation> {
    const requestId = randomUUID();
    // Not interrupted by an abort: the write's result must reach the journal before cleanup runs.
    const [started] = await this.#call(signal, (c) => run(c, requestId), false);
    return this.#waitOperation(operation, started, signal, (c, name) => c.zoneOperations.wait({ project: this.#config.project, zone, operation: name }));
  }

  /** A global write (firewall rules), waited on through the global operations API. */
  async #globalCall(
    operation: string,
    signal: AbortSignal | undefined,
    run: (clients: ComputeClients, requestId: string) => Promise<[StartedOperation, ...unknown[]]>,
  ): Promise<ComputeOperation> {
    const requestId = randomUUID();
    // Not interrupted by an abort: the write's result must reach the journal before cleanup runs.
    const [started] = await this.#call(signal, (c) => run(c, requestId), false);
    return this.#waitOperation(operation, started, signal, (c, name) => c.globalOperations.wait({ project: this.#config.project, operation: name }));
  }

  /**
   * Loops on the operations API's `wait` (which itself blocks up to ~2 minutes server-side) until
   * the operation is DONE, then turns its `error` into a typed error: a failed operation does not
   * throw in the client library.
   */
  async #waitOperation(
    operation: string,
    started: StartedOperation,
    signal: AbortSignal | undefined,
    wait: (clients: ComputeClients, name: string) => Promise<[ComputeOperation, ...unknown[]]>,
  ): Promise<ComputeOperation> {
    let current = (started.latestResponse ?? started) as ComputeOperation;
    const name = current.name;
    if (!name) throw new ProviderError('the API returned no operation name', { machine: this.machineName, operation });
    const clients = await this.#clients();
    const pause = clients.pollIntervalMs ?? 1000;
    const deadline = Date.now() + this.#config.waitTimeout * 1000;
    while (!operationDone.has(String(current.status))) {
      if (Date.now() > deadline) {
        throw new TimeoutError(`operation ${name} (${current.operationType ?? operation}) was not done after ${this.#config.waitTimeout} s`, {
          machine: this.machineName,
          operation,
        });
      }
      const before = Date.now();
      [current] = await this.#call(signal, (c) => wait(c, name));
      // `wait` returns early when the operation is done or its own deadline passes; a server that
      // answers at once (an emulator) must not be hammered.
      if (!operationDone.has(String(current.status)) && Date.now() - before < pause) await sleep(pause, signal);
    }
    if (current.error?.errors?.length || current.httpErrorStatusCode) {
      throw operationError(current, { machine: this.machineName, operation });
    }
    return current;
  }

  async #notFoundIsDone(run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      if (isNotFound(error) || NotFoundError.isInstance(error)) {
        throw new NotFoundError('already gone', { machine: this.machineName, operation: 'remove', cause: error });
      }
      throw error;
    }
  }

  /** The instance, or undefined on 404. */
  async #findInstance(signal: AbortSignal | undefined, zone = this.#config.zone): Promise<ComputeInstance | undefined> {
    try {
      const [instance] = await this.#call(signal, (c) => c.instances.get({ project: this.#config.project, zone, instance: this.machineName }));
      return instance;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // A 404 naming the project or the zone itself (not the instance) is a configuration error.
      const message = googleErrorInfo(error).message;
      const { project } = this.#config;
      if (message.includes(`'projects/${project}'`)) {
        throw new InvalidConfigError([{ flag: 'google-project', message: `project "${project}" was not found (or the account cannot see it)` }], {
          machine: this.machineName,
          cause: error,
        });
      }
      if (message.includes(`/zones/${zone}'`)) {
        throw new InvalidConfigError([{ flag: 'google-zone', message: `zone "${zone}" does not exist in project "${project}"` }], { machine: this.machineName, cause: error });
      }
      return undefined;
    }
  }

  /** The recorded instance, or NotFoundError (never created, or deleted outside the tool). */
  async #getInstance(operation: string, signal: AbortSignal | undefined): Promise<ComputeInstance> {
    const zone = this.#instanceZone(operation);
    const instance = await this.#findInstance(signal, zone);
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
