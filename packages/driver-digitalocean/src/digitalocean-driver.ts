import { join } from 'node:path';
import {
  assertValidMachineName,
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  findEntry,
  InvalidConfigError,
  NotFoundError,
  type OperationOptions,
  ProviderError,
  type ResourceModel,
  type ResourceRunner,
  removeResources,
  type State,
  TimeoutError,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { DigitalOceanClient, DotsDroplet, DotsDropletCreate } from './digitalocean-api-types.ts';
import { resolveAccessToken } from './digitalocean-credentials.ts';
import { mapDigitalOceanError } from './digitalocean-errors.ts';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { type LocalInputs, resolveLocalInputs } from './digitalocean-local-inputs.ts';
import { withRequestSignal } from './digitalocean-rate-budget.ts';
import { digitalOceanKindSet, ResourceKind } from './digitalocean-resources.ts';
import { stateOfDropletStatus, stateWithPendingAction } from './digitalocean-state.ts';
import { type DigitalOceanTimings, defaultTimings, kindSettingsOf } from './digitalocean-timings.ts';

// ssh2 (behind driver-core's keys and ssh helpers) loads only when create needs it, to keep the import cheap.
type PowerAction = 'shutdown' | 'power_off' | 'power_on' | 'reboot' | 'power_cycle';

let clientModule: Promise<typeof import('./digitalocean-client.ts')> | undefined;

/** Loads the SDK (once per process) only when a driver first talks to DigitalOcean. */
export function loadClientModule(): Promise<typeof import('./digitalocean-client.ts')> {
  clientModule ??= import('./digitalocean-client.ts').catch((error: unknown) => {
    clientModule = undefined;
    throw error;
  });
  return clientModule;
}

/** The droplet's public IPv4 address, if it has one yet. */
export function publicIPv4(droplet: DotsDroplet | null | undefined): string | undefined {
  return droplet?.networks?.v4?.find((network) => network.type === 'public' && typeof network.ipAddress === 'string')?.ipAddress ?? undefined;
}

/** What the driver needs besides the parsed config. */
export interface DigitalOceanDriverOptions {
  config: DigitalOceanConfig;
  context: DriverContext;
  /** A dots client to use instead of building one from the token and API URL. */
  client?: DigitalOceanClient;
  timings?: Partial<DigitalOceanTimings>;
}

/**
 * The DigitalOcean droplet driver: a thin mapping of the Driver operations onto the dots client.
 * What create makes is declared as resource kinds (digitalocean-resources.ts): driver-core
 * journals an intent before each create call and runs rollback and remove; power operations wait
 * on the droplet action's own status.
 */
export class DigitalOceanDriver implements Driver {
  readonly driverName = 'digitalocean';
  readonly #config: DigitalOceanConfig;
  readonly #context: DriverContext;
  readonly #timings: DigitalOceanTimings;
  readonly #injected: DigitalOceanClient | undefined;
  #client: Promise<DigitalOceanClient> | undefined;
  #token: string | undefined;
  /** What create makes and remove deletes: ssh key, droplet, firewall (see digitalocean-resources.ts). */
  readonly #model: ResourceModel<DigitalOceanClient>;
  readonly #kinds: ReturnType<typeof digitalOceanKindSet>;

  constructor(options: DigitalOceanDriverOptions) {
    this.#config = options.config;
    this.#context = options.context;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#injected = options.client;
    this.#kinds = digitalOceanKindSet(kindSettingsOf(this.#timings));
    this.#model = {
      kinds: this.#kinds.all,
      client: () => this.#dots(),
      poll: { interval: this.#timings.pollIntervalMs, maxInterval: this.#timings.maxPollIntervalMs },
      mapError: (error, where) => mapDigitalOceanError(error, where, this.secrets()),
    };
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  /** Values that must never appear in errors. */
  secrets(): string[] {
    return [this.#config.accessToken, this.#token].filter((value): value is string => typeof value === 'string' && value !== '');
  }

  preCreateCheck(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#preCreateCheck(options));
  }

  async #preCreateCheck(options: OperationOptions): Promise<void> {
    await resolveLocalInputs(this.#config);
    const client = await this.#dots();
    throwIfAborted(options.signal);
    const { region, size, image } = this.#config;
    const regions = await this.#api('preCreateCheck', 'regions', () => client.v2.regions.get({ queryParameters: { perPage: 200 } }));
    const found = regions?.regions?.find((candidate) => candidate.slug === region);
    if (found === undefined || found.available === false) {
      const available = (regions?.regions ?? []).filter((candidate) => candidate.available !== false).map((candidate) => candidate.slug);
      throw new InvalidConfigError([
        { flag: 'digitalocean-region', message: `"${region}" is not an available region; available: ${available.join(', ')}` },
      ]);
    }
    if (Array.isArray(found.sizes) && found.sizes.length > 0 && !found.sizes.includes(size)) {
      throw new InvalidConfigError([{ flag: 'digitalocean-size', message: `size "${size}" is not offered in ${region}` }]);
    }
    throwIfAborted(options.signal);
    const imageId = /^\d+$/.test(image) ? Number(image) : image;
    try {
      await this.#api('preCreateCheck', `image ${image}`, () => client.v2.images.byImage_id(imageId).get());
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new InvalidConfigError([
          { flag: 'digitalocean-image', message: `image "${image}" does not exist; list images with \`doctl compute image list-distribution\`` },
        ]);
      }
      throw error;
    }
    if (this.#config.sshKeyFingerprint !== undefined) await this.#existingKey(client, 'preCreateCheck');
  }

  create(options: CreateOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#create(options));
  }

  async #create(options: CreateOptions): Promise<void> {
    const { signal, boot } = options;
    assertValidMachineName(this.machineName);
    const existing = findEntry(this.#context.journal, ResourceKind.droplet);
    if (existing !== undefined) {
      throw new InvalidConfigError([
        { flag: 'machine name', kind: 'input', message: `"${this.machineName}" already has droplet ${existing.id}; remove it first` },
      ]);
    }
    const inputs = await resolveLocalInputs(this.#config, boot);
    const { data } = this.#context;
    await createResources(this.#model, this.#context, options, async (run) => {
      const { keyReference, privateKey } = await this.#prepareKey(run, inputs);
      const droplet = await run.make(this.#kinds.droplet, this.#dropletSpec(inputs, keyReference));
      const dropletId = Number(droplet.id);
      await data.write({ dropletId });
      if (this.#config.firewall) await run.make(this.#kinds.firewall, { dropletId, rules: inputs.rules });
      const { ip, ipv6 } = await this.#waitForActive(dropletId, signal);
      await data.write({ dropletId, ip, ipv6: ipv6 ?? null });
      throwIfAborted(signal);
      const { waitForSSH } = await import('@machine/driver-core/ssh');
      const hostKeyFingerprint = await waitForSSH(
        {
          host: ip,
          port: this.#config.sshPort,
          username: this.#config.sshUser,
          privateKey,
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
      await data.write({ hostKeyFingerprint });
    });
  }

  remove(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#remove(options));
  }

  async #remove(options: OperationOptions): Promise<void> {
    await removeResources(this.#model, this.#context, options);
    await this.#context.data.write({ dropletId: null, ip: null, ipv6: null, pendingAction: null, hostKeyFingerprint: null });
  }

  start(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#start(options));
  }

  async #start(options: OperationOptions): Promise<void> {
    const id = this.#dropletId('start');
    const droplet = await this.#getDroplet(id, 'start');
    if (droplet.status === 'active') return;
    this.#refuseArchived(droplet, 'start');
    if (droplet.status === 'new') {
      await this.#waitForStatus(id, 'active', 'start', options.signal);
      return;
    }
    const action = await this.#powerAction(id, 'power_on', 'start', options.signal);
    await this.#finishAction(action, 'start', this.#config.waitTimeout * 1000, options.signal, true);
    await this.#waitForStatus(id, 'active', 'start', options.signal);
  }

  stop(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#stop(options));
  }

  async #stop(options: OperationOptions): Promise<void> {
    const id = this.#dropletId('stop');
    const droplet = await this.#getDroplet(id, 'stop');
    if (droplet.status === 'off') return;
    this.#refuseArchived(droplet, 'stop');
    const timeout = Math.min(this.#timings.shutdownTimeoutMs, this.#config.waitTimeout * 1000);
    const deadline = Date.now() + timeout;
    const shutdown = await this.#powerAction(id, 'shutdown', 'stop', options.signal);
    const graceful = await this.#finishAction(shutdown, 'stop', timeout, options.signal, false);
    // `shutdown` is best effort: DigitalOcean may complete it while the droplet stays active (its
    // guest ignored the signal). Off within the stop timeout, or power_off, as DigitalOcean advises.
    const off = graceful && (await this.#reachesStatus(id, 'off', Math.max(deadline - Date.now(), 0), 'stop', options.signal));
    if (!off) {
      this.#progress(
        'stop',
        'info',
        graceful
          ? `the droplet is still active ${Math.round(timeout / 1000)} s after a completed shutdown; powering off`
          : `the graceful shutdown did not finish within ${Math.round(timeout / 1000)} s; powering off`,
      );
      const powerOff = await this.#powerAction(id, 'power_off', 'stop', options.signal);
      await this.#finishAction(powerOff, 'stop', this.#config.waitTimeout * 1000, options.signal, true);
    }
    await this.#waitForStatus(id, 'off', 'stop', options.signal);
  }

  kill(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#kill(options));
  }

  async #kill(options: OperationOptions): Promise<void> {
    const id = this.#dropletId('kill');
    const droplet = await this.#getDroplet(id, 'kill');
    if (droplet.status === 'off') return;
    this.#refuseArchived(droplet, 'kill');
    const action = await this.#powerAction(id, 'power_off', 'kill', options.signal);
    await this.#finishAction(action, 'kill', this.#config.waitTimeout * 1000, options.signal, true);
    await this.#waitForStatus(id, 'off', 'kill', options.signal);
  }

  restart(options: OperationOptions = {}): Promise<void> {
    return withRequestSignal(options.signal, () => this.#restart(options));
  }

  async #restart(options: OperationOptions): Promise<void> {
    const id = this.#dropletId('restart');
    const droplet = await this.#getDroplet(id, 'restart');
    this.#refuseArchived(droplet, 'restart');
    if (droplet.status === 'off') {
      const action = await this.#powerAction(id, 'power_on', 'restart', options.signal);
      await this.#finishAction(action, 'restart', this.#config.waitTimeout * 1000, options.signal, true);
    } else {
      const reboot = await this.#powerAction(id, 'reboot', 'restart', options.signal);
      const timeout = Math.min(this.#timings.rebootTimeoutMs, this.#config.waitTimeout * 1000);
      const rebooted = await this.#finishAction(reboot, 'restart', timeout, options.signal, false);
      if (!rebooted) {
        this.#progress('restart', 'info', 'the reboot did not finish; power-cycling');
        const cycle = await this.#powerAction(id, 'power_cycle', 'restart', options.signal);
        await this.#finishAction(cycle, 'restart', this.#config.waitTimeout * 1000, options.signal, true);
      }
    }
    await this.#waitForStatus(id, 'active', 'restart', options.signal);
  }

  async getState(): Promise<State> {
    const id = this.#dropletId('getState');
    const droplet = await this.#getDroplet(id, 'getState');
    const state = stateOfDropletStatus(droplet.status);
    const pending = this.#context.data.read().pendingAction;
    if (typeof pending !== 'object' || pending === null || Array.isArray(pending)) return state;
    const { id: actionId, type } = pending as { id?: unknown; type?: unknown };
    if (typeof actionId !== 'number' || typeof type !== 'string') return state;
    const client = await this.#dots();
    const action = await this.#api('getState', `action ${actionId}`, () => client.v2.actions.byAction_id(actionId).get());
    return stateWithPendingAction(state, type, action?.action?.status);
  }

  async getIP(): Promise<string> {
    const id = this.#dropletId('getIP');
    const cached = this.#context.data.read().ip;
    if (typeof cached === 'string' && cached !== '') return cached;
    const ip = publicIPv4(await this.#getDroplet(id, 'getIP'));
    if (ip === undefined) {
      throw new ProviderError(`droplet ${id} has no public IPv4 address yet`, { machine: this.machineName, operation: 'getIP', retryable: true });
    }
    await this.#context.data.write({ ip });
    return ip;
  }

  async getSSHHostname(): Promise<string> {
    return this.getIP();
  }

  async getSSHPort(): Promise<number> {
    return this.#config.sshPort;
  }

  getSSHUsername(): string {
    return this.#config.sshUser;
  }

  getSSHKeyPath(): string {
    const stored = this.#context.data.read().sshKeyPath;
    if (typeof stored === 'string' && stored !== '') return stored;
    return this.#config.sshKeyPath ?? join(this.#context.machineDir, 'id_ed25519');
  }

  async getURL(): Promise<string> {
    return `tcp://${await this.getIP()}:2376`;
  }

  // ---- create steps ----

  async #existingKey(client: DigitalOceanClient, operation: string) {
    const fingerprint = this.#config.sshKeyFingerprint as string;
    const identifier = /^\d+$/.test(fingerprint) ? Number(fingerprint) : fingerprint;
    try {
      const response = await this.#api(operation, `ssh key ${fingerprint}`, () => client.v2.account.keys.bySsh_key_identifier(identifier).get());
      const key = response?.sshKey;
      if (key?.id === undefined || key.id === null) throw new ProviderError(`DigitalOcean returned no key for ${fingerprint}`);
      return key;
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new InvalidConfigError([
          { flag: 'digitalocean-ssh-key-fingerprint', message: `no key ${fingerprint} in this DigitalOcean account (\`doctl compute ssh-key list\`)` },
        ]);
      }
      throw error;
    }
  }

  async #prepareKey(run: ResourceRunner<DigitalOceanClient>, inputs: LocalInputs) {
    const { data } = this.#context;
    if (inputs.userKey !== undefined) {
      const key = await this.#existingKey(run.client, 'create');
      await run.adopt(this.#kinds.sshKey, { id: String(key.id), meta: { fingerprint: key.fingerprint ?? '' } });
      await data.write({ sshKeyPath: inputs.userKey.path });
      return { keyReference: String(key.id), privateKey: inputs.userKey.privateKey };
    }
    const { generateSSHKeyPair, writeSSHKeyPair } = await import('@machine/driver-core/keys');
    const keyPair = generateSSHKeyPair({ comment: `machine-${this.machineName}` });
    const keyPath = await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_ed25519');
    await data.write({ sshKeyPath: keyPath });
    const key = await run.make(this.#kinds.sshKey, { publicKey: keyPair.publicKey, fingerprint: keyPair.md5Fingerprint });
    return { keyReference: key.id, privateKey: keyPair.privateKey };
  }

  #dropletSpec(inputs: LocalInputs, keyReference: string): DotsDropletCreate {
    const { image, region, size, ipv6, privateNetworking, backups, monitoring, vpcUuid, tags } = this.#config;
    return {
      name: this.machineName,
      region,
      size,
      image: /^\d+$/.test(image) ? Number(image) : image,
      sshKeys: [keyReference],
      ipv6,
      privateNetworking,
      backups,
      monitoring,
      tags: [...tags],
      ...(inputs.userData === undefined ? {} : { userData: inputs.userData }),
      ...(vpcUuid === undefined ? {} : { vpcUuid }),
    };
  }

  async #waitForActive(dropletId: number, signal: AbortSignal | undefined): Promise<{ ip: string; ipv6: string | undefined }> {
    this.#progress('wait-running', 'start', `waiting for droplet ${dropletId} to be active with a public IPv4 address`);
    const { ip, ipv6 } = await waitFor<{ ip: string; ipv6: string | undefined }>(
      async () => {
        const droplet = await this.#getDroplet(dropletId, 'create');
        const address = publicIPv4(droplet);
        if (droplet.status === 'active' && address !== undefined) {
          const v6 = droplet.networks?.v6?.find((network) => network.type === 'public')?.ipAddress ?? undefined;
          return { done: true, value: { ip: address, ipv6: v6 } };
        }
        this.#refuseArchived(droplet, 'create');
        return { done: false, reason: `status ${droplet.status ?? 'unknown'}${address === undefined ? ', no public IPv4 yet' : ''}` };
      },
      this.#waitOptions(`droplet ${dropletId} to be active with a public IPv4 address`, 'create', this.#config.waitTimeout * 1000, signal),
    );
    this.#progress('wait-running', 'done', `droplet ${dropletId} is active at ${ip}`);
    return { ip, ipv6 };
  }

  // ---- power actions ----

  async #powerAction(dropletId: number, type: PowerAction, operation: string, signal: AbortSignal | undefined): Promise<number> {
    const client = await this.#dots();
    this.#progress(operation, 'start', `${type} droplet ${dropletId}`);
    // DigitalOcean refuses an action while another is pending (422 "pending event"): wait for it.
    const response = await waitFor(
      async () => {
        try {
          const value = await this.#api(operation, `droplet ${dropletId}`, () => client.v2.droplets.byDroplet_id(dropletId).actions.post({ type }));
          return { done: true, value };
        } catch (error) {
          if (error instanceof ProviderError && error.statusCode === 422 && /pending event/i.test(error.message)) {
            return { done: false, reason: error.detail };
          }
          throw error;
        }
      },
      this.#waitOptions(`droplet ${dropletId} to accept a ${type} action`, operation, this.#config.waitTimeout * 1000, signal),
    );
    const actionId = response?.action?.id;
    if (typeof actionId !== 'number') throw new ProviderError(`DigitalOcean did not return the ${type} action`, { operation });
    await this.#context.data.write({ pendingAction: { id: actionId, type } });
    return actionId;
  }

  /**
   * Waits for a droplet action to end. Returns true when it completed; false when it errored or
   * timed out and `mustSucceed` is false (the caller falls back); throws otherwise.
   */
  async #finishAction(actionId: number, operation: string, timeoutMs: number, signal: AbortSignal | undefined, mustSucceed: boolean): Promise<boolean> {
    const client = await this.#dots();
    let status: string;
    try {
      status = await waitFor<string>(
        async () => {
          const response = await this.#api(operation, `action ${actionId}`, () => client.v2.actions.byAction_id(actionId).get());
          const current = response?.action?.status ?? 'in-progress';
          return current === 'in-progress' ? { done: false, reason: 'in progress' } : { done: true, value: current };
        },
        this.#waitOptions(`action ${actionId} to finish`, operation, timeoutMs, signal),
      );
    } catch (error) {
      if (!mustSucceed && error instanceof TimeoutError) return false;
      throw error;
    }
    await this.#context.data.write({ pendingAction: null });
    if (status === 'completed') return true;
    if (!mustSucceed) return false;
    throw new ProviderError(`DigitalOcean action ${actionId} ended with status "${status}"`, { machine: this.machineName, operation });
  }

  /**
   * Waits for the droplet's status. Once it is active again, the cached public address is refreshed
   * from the same answer: a power cycle may move it, and the host reissues the TLS certificate when
   * the address it reads afterwards changed.
   */
  async #waitForStatus(dropletId: number, wanted: 'active' | 'off', operation: string, signal: AbortSignal | undefined): Promise<void> {
    const droplet = await waitFor<DotsDroplet>(
      async () => {
        const current = await this.#getDroplet(dropletId, operation);
        return current.status === wanted ? { done: true, value: current } : { done: false, reason: `status ${current.status ?? 'unknown'}` };
      },
      this.#waitOptions(`droplet ${dropletId} to be ${wanted}`, operation, this.#config.waitTimeout * 1000, signal),
    );
    const ip = wanted === 'active' ? publicIPv4(droplet) : undefined;
    if (ip !== undefined && ip !== this.#context.data.read().ip) await this.#context.data.write({ ip });
  }

  /** True once the droplet shows `wanted` within `timeoutMs` (at least one look); false when the time runs out. */
  async #reachesStatus(dropletId: number, wanted: 'active' | 'off', timeoutMs: number, operation: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await waitFor<true>(
        async () => {
          const current = await this.#getDroplet(dropletId, operation);
          return current.status === wanted ? { done: true, value: true } : { done: false, reason: `status ${current.status ?? 'unknown'}` };
        },
        this.#waitOptions(`droplet ${dropletId} to be ${wanted}`, operation, Math.max(timeoutMs, 1), signal),
      );
      return true;
    } catch (error) {
      if (error instanceof TimeoutError) return false;
      throw error;
    }
  }

  #refuseArchived(droplet: DotsDroplet, operation: string): void {
    if (droplet.status === 'archive') {
      throw new ProviderError(`droplet ${droplet.id} is archived by DigitalOcean and cannot be used`, {
        machine: this.machineName,
        operation,
        hint: 'archived droplets belong to suspended or locked accounts; contact DigitalOcean support',
      });
    }
  }

  // ---- plumbing ----

  async #getDroplet(dropletId: number, operation: string): Promise<DotsDroplet> {
    const client = await this.#dots();
    const response = await this.#api(operation, `droplet ${dropletId}`, () => client.v2.droplets.byDroplet_id(dropletId).get());
    const droplet = response?.droplet;
    if (droplet === undefined || droplet === null) {
      throw new NotFoundError(`droplet ${dropletId} not found`, { machine: this.machineName, operation, resource: `droplet ${dropletId}` });
    }
    return droplet;
  }

  #dropletId(operation: string): number {
    const entry = findEntry(this.#context.journal, ResourceKind.droplet);
    if (entry === undefined) {
      throw new NotFoundError('no droplet is recorded for this machine', { machine: this.machineName, operation, resource: 'droplet' });
    }
    return Number(entry.id);
  }

  /** The dots client: the injected one, or one built (once) from the resolved token. */
  #dots(): Promise<DigitalOceanClient> {
    if (this.#injected !== undefined) return Promise.resolve(this.#injected);
    this.#client ??= (async () => {
      const { token } = await resolveAccessToken({ flagValue: this.#config.accessToken });
      this.#token = token;
      const { createDotsClient } = await loadClientModule();
      return await createDotsClient({ token, apiUrl: this.#config.apiUrl, retry: this.#timings.retry });
    })().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  /** Runs one API call and turns what dots throws into a typed error naming the resource. */
  async #api<T>(operation: string, resource: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw mapDigitalOceanError(error, { machine: this.machineName, operation, resource }, this.secrets());
    }
  }

  #waitOptions(description: string, operation: string, timeout: number, signal: AbortSignal | undefined) {
    return {
      interval: this.#timings.pollIntervalMs,
      maxInterval: this.#timings.maxPollIntervalMs,
      timeout,
      description,
      machine: this.machineName,
      operation,
      ...(signal === undefined ? {} : { signal }),
    };
  }

  #progress(step: string, phase: 'start' | 'done' | 'info', message: string): void {
    this.#context.onProgress?.({ step, phase, message });
  }
}

/** The State of a droplet in a list response (used by the batch state query). */
export function stateOfDroplet(droplet: DotsDroplet): State {
  return stateOfDropletStatus(droplet.status);
}
