import { homedir } from 'node:os';
import {
  CancelledError,
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  InvalidConfigError,
  NotFoundError,
  NotSupportedError,
  type OperationOptions,
  removeResources,
  SSHError,
  State,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { GenericDriverConfig } from './generic-flags.ts';
import { genericResources, keyCopyKind } from './generic-key-copy.ts';
import { type SSHAccess, type SSHEndpoint, sshAccess } from './generic-ssh-access.ts';
import { type CredentialSources, resolveSSHCredentials, type SSHCredentials } from './generic-ssh-credentials.ts';

/** Timings of the generic driver; the defaults suit real hosts, tests shorten them. */
export interface GenericDriverTimeouts {
  /** SSH handshake timeout, ms (default 10 000). */
  readonly sshReadyTimeout: number;
  /** How long Status waits for the TCP port to answer, ms (default 3000). */
  readonly tcpTimeout: number;
  /** How long create, restart and stop wait for SSH to come up or go down, ms (default 180 000, the reference's WaitForSSH). */
  readonly waitTimeout: number;
  /** First delay between polls, ms (default 1000). */
  readonly pollInterval: number;
}

/** What {@link GenericDriver} takes besides config and context. */
export interface GenericDriverOptions {
  readonly timeouts?: Partial<GenericDriverTimeouts>;
  /** Where the default key and `SSH_AUTH_SOCK` are looked up (default: the process's). */
  readonly credentialSources?: CredentialSources;
}

const defaultTimeouts: GenericDriverTimeouts = { sshReadyTimeout: 10_000, tcpTimeout: 3000, waitTimeout: 180_000, pollInterval: 1000 };

/** Keys of the driver's machine data. */
interface GenericMachineData {
  ipAddress: string;
  sshPort: number;
  sshUser: string;
  /** The copied key in the machine's folder; null when logging in through an ssh-agent. */
  sshKeyPath: string | null;
  /** Pinned at create; every later connection must present this host key. */
  hostKeyFingerprint: string;
}

/**
 * The generic driver: turns an existing host reachable over SSH into a machine. It has no power
 * control: Stop and Kill run `sudo poweroff`, Restart runs `sudo reboot`, Start cannot power a
 * host on, and Remove deletes only what create made locally (the key copy and the machine data).
 */
export class GenericDriver implements Driver {
  readonly driverName = 'generic';
  readonly #config: GenericDriverConfig;
  readonly #context: DriverContext;
  readonly #timeouts: GenericDriverTimeouts;
  readonly #sources: CredentialSources;

  constructor(config: GenericDriverConfig, context: DriverContext, options: GenericDriverOptions = {}) {
    this.#config = config;
    this.#context = context;
    this.#timeouts = { ...defaultTimeouts, ...options.timeouts };
    this.#sources = options.credentialSources ?? { env: process.env, homeDir: homedir() };
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(): Promise<void> {
    await resolveSSHCredentials(this.#config.sshKey, this.#sources);
  }

  /**
   * Checks that the host answers SSH with the key and records it. A generic host has no cloud-init
   * run by this driver (`capabilities.userData: false`): `boot.userData` is left to the host, which
   * provisions over SSH; `boot.hostKeyFingerprint`, when given, is the only host key accepted.
   */
  async create(options: CreateOptions = {}): Promise<void> {
    const { signal, boot } = options;
    const { onProgress } = this.#context;
    await createResources(genericResources, this.#context, options, async ({ make }) => {
      const credentials = await resolveSSHCredentials(this.#config.sshKey, this.#sources);
      throwIfAborted(signal, this.#where('create'));
      let sshKeyPath: string | null = null;
      if (credentials.kind === 'key') {
        const spec = { dir: this.#context.machineDir, fileName: keyFileName(credentials.key.publicKey), credentials };
        sshKeyPath = (await make(keyCopyKind, spec)).id;
      }
      throwIfAborted(signal, this.#where('create'));
      const access = await sshAccess(this.#endpoint(this.#config.ipAddress, this.#config.sshPort, boot?.hostKeyFingerprint), credentials);
      let fingerprint: string;
      try {
        fingerprint = await access.waitUntilReady({
          timeout: this.#timeouts.waitTimeout,
          interval: this.#timeouts.pollInterval,
          retryAuth: false, // an existing host: a refused key will not start working by itself
          operation: 'create',
          ...(signal === undefined ? {} : { signal }),
          ...(onProgress === undefined ? {} : { onProgress }),
        });
      } catch (error) {
        throw this.#explainAuth(error, credentials, 'create');
      }
      const data: GenericMachineData = {
        ipAddress: this.#config.ipAddress,
        sshPort: this.#config.sshPort,
        sshUser: this.#config.sshUser,
        sshKeyPath,
        hostKeyFingerprint: fingerprint,
      };
      await this.#context.data.write({ ...data });
    });
  }

  async remove(options: OperationOptions = {}): Promise<void> {
    await removeResources(genericResources, this.#context, options);
    await this.#context.data.write({ ipAddress: null, sshPort: null, sshUser: null, sshKeyPath: null, hostKeyFingerprint: null });
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const ip = this.#recorded('start').ipAddress;
    const state = await this.getState(options);
    if (state === State.Running) return;
    throw new NotSupportedError(`the generic driver cannot power on ${ip}: it has no power control over the host (status: ${state})`, {
      ...this.#where('start'),
      hint: 'start the host yourself (console, hypervisor, provider panel), then run `machine status`',
    });
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    await this.#powerOff('stop', options.signal);
  }

  /** The generic driver has no forced power-off: Kill runs `sudo poweroff` like Stop. */
  async kill(options: OperationOptions = {}): Promise<void> {
    await this.#powerOff('kill', options.signal);
  }

  async restart(options: OperationOptions = {}): Promise<void> {
    const { signal } = options;
    const data = this.#recorded('restart');
    const state = await this.getState(options);
    if (state === State.Stopped) {
      throw new NotSupportedError(`cannot restart ${data.ipAddress}: it does not answer on port ${data.sshPort} and the generic driver cannot power it on`, {
        ...this.#where('restart'),
        hint: 'start the host yourself, then run `machine status`',
      });
    }
    const access = await this.#access(data);
    await this.#runPowerCommand(access, 'sudo reboot', 'restart', signal);
    await this.#waitForState((current) => current !== State.Running, 'to go down after `sudo reboot`', 'restart', signal);
    await access.waitUntilReady({
      timeout: this.#timeouts.waitTimeout,
      interval: Math.min(this.#timeouts.pollInterval, 250),
      retryAuth: false,
      operation: 'restart',
      ...(signal === undefined ? {} : { signal }),
      ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
    });
  }

  /**
   * Running when an SSH handshake with the pinned host key succeeds and `exit 0` returns 0; Stopped
   * when the SSH port does not accept TCP (refused, unreachable, no answer). A changed host key or a
   * refused login rejects with that SSHError (`host-key`, `auth`): the host is up, and only the user
   * can fix it (`machine trust-host-key`, the authorized key), so it must not read as Stopped or a
   * bare Error. Error otherwise (the port answers but it is not SSH, `exit 0` fails).
   */
  async getState(options: OperationOptions = {}): Promise<State> {
    const data = this.#recorded('getState');
    return this.#probe(data, options.signal);
  }

  async getIP(): Promise<string> {
    return this.#recorded('getIP').ipAddress;
  }

  async getSSHHostname(): Promise<string> {
    return this.#recorded('getSSHHostname').ipAddress;
  }

  async getSSHPort(): Promise<number> {
    return this.#recordedData()?.sshPort ?? this.#config.sshPort;
  }

  getSSHUsername(): string {
    return this.#recordedData()?.sshUser ?? this.#config.sshUser;
  }

  /** The key copied into the machine's folder at create; '' before create or with an ssh-agent. */
  getSSHKeyPath(): string {
    return this.#recordedData()?.sshKeyPath ?? '';
  }

  async getURL(): Promise<string> {
    const ip = this.#recorded('getURL').ipAddress;
    const host = ip.includes(':') ? `[${ip}]` : ip;
    return `tcp://${host}:${this.#config.enginePort}`;
  }

  async #powerOff(operation: 'stop' | 'kill', signal: AbortSignal | undefined): Promise<void> {
    const data = this.#recorded(operation);
    if ((await this.#probe(data, signal)) === State.Stopped) return;
    await this.#runPowerCommand(await this.#access(data), 'sudo poweroff', operation, signal);
    await this.#waitForState((current) => current === State.Stopped, 'to power off after `sudo poweroff`', operation, signal);
  }

  /** Runs `sudo reboot`/`sudo poweroff`; the host may drop the connection before the command returns. */
  async #runPowerCommand(access: SSHAccess, command: string, operation: string, signal: AbortSignal | undefined): Promise<void> {
    this.#context.onProgress?.({ step: operation, phase: 'start', message: `running \`${command}\`` });
    try {
      const result = await access.run(command, signal);
      // -1: the session ended without an exit status, as when the host goes down under it.
      if (result.code === 0 || result.code === -1) return;
      const output = result.stderr.trim() || result.stdout.trim() || 'no output';
      throw new SSHError(`\`${command}\` exited with ${result.code}: ${output}`, {
        failure: 'command',
        ...this.#where(operation),
        hint: 'the SSH user needs passwordless sudo for reboot and poweroff (or log in as root with sudo installed)',
      });
    } catch (error) {
      // The connection was cut while the host went down: the wait that follows decides. A handshake
      // that timed out never ran the command, so it stays an error.
      if (error instanceof SSHError && error.failure === 'handshake' && !/timed out/i.test(error.message)) return;
      throw error;
    }
  }

  async #waitForState(done: (state: State) => boolean, what: string, operation: string, signal: AbortSignal | undefined): Promise<void> {
    const data = this.#recorded(operation);
    await waitFor(
      async () => {
        const state = await this.#probe(data, signal);
        return done(state) ? { done: true, value: undefined } : { done: false, reason: `status ${state}` };
      },
      {
        interval: Math.min(this.#timeouts.pollInterval, 250),
        maxInterval: 3000,
        timeout: this.#timeouts.waitTimeout,
        description: `${data.ipAddress} ${what}`,
        ...this.#where(operation),
        ...(signal === undefined ? {} : { signal }),
      },
    );
  }

  async #probe(data: GenericMachineData, signal: AbortSignal | undefined): Promise<State> {
    const { probeTcp } = await import('@machine/driver-core/ssh');
    try {
      await probeTcp(data.ipAddress, data.sshPort, this.#timeouts.tcpTimeout, signal);
    } catch (error) {
      if (error instanceof CancelledError) throw error;
      return State.Stopped;
    }
    try {
      const result = await (await this.#access(data)).run('exit 0', signal);
      if (result.code === 0) return State.Running;
      return this.#errorState(`\`exit 0\` returned ${result.code}`);
    } catch (error) {
      if (error instanceof CancelledError) throw error;
      if (error instanceof SSHError && error.failure === 'refused') return State.Stopped;
      if (error instanceof SSHError && (error.failure === 'host-key' || error.failure === 'auth')) throw error;
      if (error instanceof InvalidConfigError) throw error; // the key copy is gone or unreadable: say so
      return this.#errorState(error instanceof Error ? error.message : String(error));
    }
  }

  /** Status has no room for the reason, so it goes to the progress sink. */
  #errorState(reason: string): State {
    this.#context.onProgress?.({ step: 'status', phase: 'info', message: `status is Error: ${reason}` });
    return State.Error;
  }

  async #access(data: GenericMachineData): Promise<SSHAccess> {
    const endpoint = this.#endpoint(data.ipAddress, data.sshPort, data.hostKeyFingerprint, data.sshUser);
    if (data.sshKeyPath !== null) {
      const { loadSSHPrivateKey } = await import('@machine/driver-core/keys');
      return sshAccess(endpoint, { kind: 'key', key: await loadSSHPrivateKey(data.sshKeyPath, 'generic-ssh-key') });
    }
    const socket = this.#sources.env.SSH_AUTH_SOCK;
    if (socket === undefined || socket === '') {
      throw new InvalidConfigError([{ flag: 'SSH_AUTH_SOCK', kind: 'input', message: 'this machine logs in through an ssh-agent, but SSH_AUTH_SOCK is not set' }], {
        ...this.#where('ssh'),
      });
    }
    return sshAccess(endpoint, { kind: 'agent', socket });
  }

  #endpoint(host: string, port: number, hostKeyFingerprint: string | undefined, username = this.#config.sshUser): SSHEndpoint {
    return {
      host,
      port,
      username,
      readyTimeout: this.#timeouts.sshReadyTimeout,
      machine: this.machineName,
      ...(hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint }),
    };
  }

  #explainAuth(error: unknown, credentials: SSHCredentials, operation: string): unknown {
    if (!(error instanceof SSHError) || error.failure !== 'auth') return error;
    const what = credentials.kind === 'key' ? `the key ${credentials.key.path} (${credentials.key.sha256Fingerprint})` : 'every key of the ssh-agent';
    return new SSHError(`${this.#config.sshUser}@${this.#config.ipAddress}:${this.#config.sshPort} refused ${what}`, {
      failure: 'auth',
      ...this.#where(operation),
      cause: error,
      hint: `check --generic-ssh-user and --generic-ssh-key; the public key must be in ~${this.#config.sshUser}/.ssh/authorized_keys on the host`,
    });
  }

  #recordedData(): GenericMachineData | undefined {
    const data = this.#context.data.read();
    if (typeof data.ipAddress !== 'string' || typeof data.hostKeyFingerprint !== 'string') return undefined;
    return {
      ipAddress: data.ipAddress,
      sshPort: typeof data.sshPort === 'number' ? data.sshPort : this.#config.sshPort,
      sshUser: typeof data.sshUser === 'string' ? data.sshUser : this.#config.sshUser,
      sshKeyPath: typeof data.sshKeyPath === 'string' ? data.sshKeyPath : null,
      hostKeyFingerprint: data.hostKeyFingerprint,
    };
  }

  #recorded(operation: string): GenericMachineData {
    const data = this.#recordedData();
    if (data === undefined) {
      throw new NotFoundError('no host is recorded for this machine: it was never created or has been removed', {
        ...this.#where(operation),
        resource: `generic host ${this.#config.ipAddress}`,
        hint: 'run `machine create -d generic` first',
      });
    }
    return data;
  }

  #where(operation: string): { machine: string; operation: string } {
    return { machine: this.machineName, operation };
  }
}

function keyFileName(publicKey: string): string {
  const type = publicKey.split(' ')[0] ?? '';
  if (type === 'ssh-ed25519') return 'id_ed25519';
  if (type === 'ssh-rsa') return 'id_rsa';
  if (type.startsWith('ecdsa-')) return 'id_ecdsa';
  return 'id_ssh';
}
