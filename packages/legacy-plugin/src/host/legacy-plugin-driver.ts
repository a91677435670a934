import { basename, dirname } from 'node:path';
import {
  CancelledError,
  type CreateOptions,
  type Driver,
  type DriverContext,
  type FlagDefinition,
  type JsonValue,
  MachineError,
  NotFoundError,
  type OperationOptions,
  ProviderError,
  type State,
} from '@machine/driver-core';
import { LegacyRemoteError } from '../errors/legacy-remote-error.ts';
import { gob } from '../gob/gob-types.ts';
import { rpcFlags, stateFromNumber } from '../protocol/driver-rpc-types.ts';
import { redactConfig, restoreConfig } from './legacy-config.ts';
import { PluginSession, type SessionOptions } from './plugin-session.ts';

/** The key of the machine data where the plugin's config JSON is kept. */
export const legacyDataKey = 'legacyPlugin';

/** What the driver keeps in its machine data between commands. */
export interface LegacyPluginData {
  /** The plugin's GetConfigRaw JSON, credentials replaced by markers. */
  readonly config: JsonValue;
  readonly sshUser: string;
  readonly sshKeyPath: string;
}

/** Everything a {@link LegacyPluginDriver} needs. */
export interface LegacyPluginDriverOptions extends Omit<SessionOptions, 'onStdout' | 'onStderr' | 'driverName'> {
  readonly path: string;
  readonly driverName: string;
  readonly flags: readonly FlagDefinition[];
  /** The parsed config, keyed by flag name. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly context: DriverContext;
  /** libmachine's StorePath (default: the folder above `machines/NAME`). */
  readonly storePath?: string;
  /** The plugin's stderr lines (libmachine shows them only with --debug). */
  readonly onDebug?: (line: string) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const notFoundPattern = /not (?:be )?found|does not exist|doesn't exist|no such|404/i;

/**
 * A driver-core Driver that runs a `docker-machine-driver-NAME` binary. Each operation is one
 * plugin process (start, GetVersion, heartbeats, SetConfigRaw, the call, GetConfigRaw, Close,
 * reaped), so no plugin outlives the command. The plugin's config JSON lives in the machine
 * data under `legacyPlugin`.
 */
export class LegacyPluginDriver implements Driver {
  readonly driverName: string;
  readonly #options: LegacyPluginDriverOptions;

  constructor(options: LegacyPluginDriverOptions) {
    this.driverName = options.driverName;
    this.#options = options;
  }

  get machineName(): string {
    return this.#options.context.machineName;
  }

  #stored(): LegacyPluginData | undefined {
    const value = this.#options.context.data.read()[legacyDataKey];
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !('config' in value)) return undefined;
    return value as unknown as LegacyPluginData;
  }

  #storePath(): string {
    if (this.#options.storePath !== undefined) return this.#options.storePath;
    const machines = dirname(this.#options.context.machineDir);
    return basename(machines) === 'machines' ? dirname(machines) : machines;
  }

  /** One plugin process around `work`; saves the plugin's config afterwards (also after a failure, so rm can clean up). */
  async #withPlugin<T>(operation: string, signal: AbortSignal | undefined, save: boolean, work: (session: PluginSession) => Promise<T>): Promise<T> {
    const where = { machine: this.machineName, operation };
    if (signal?.aborted === true) throw new CancelledError(`${operation} was cancelled`, where);
    const { context } = this.#options;
    let session: PluginSession;
    try {
      session = await PluginSession.open(this.#options.path, {
        ...this.#options,
        onStdout: (line) => context.onProgress?.({ step: 'plugin', phase: 'info', message: line }),
        onStderr: (line) => this.#options.onDebug?.(line),
      });
    } catch (error) {
      throw this.#typed(error, where, signal);
    }
    const abort = () => session.kill();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      const stored = this.#stored();
      if (stored !== undefined) {
        const config = restoreConfig(stored.config, this.#options.flags, this.#options.config);
        await session.call('SetConfigRaw', gob.bytes, encoder.encode(JSON.stringify(config)));
      } else {
        await session.call('SetConfigRaw', gob.bytes, encoder.encode(JSON.stringify({ MachineName: this.machineName, StorePath: this.#storePath() })));
        await session.call('SetConfigFromFlags', gob.interface, rpcFlags(this.#options.config));
      }
      let result: T;
      try {
        result = await work(session);
      } catch (error) {
        if (save) await this.#save(session).catch(() => {});
        throw error;
      }
      if (save) await this.#save(session);
      return result;
    } catch (error) {
      throw this.#typed(error, where, signal);
    } finally {
      signal?.removeEventListener('abort', abort);
      await session.close();
    }
  }

  async #save(session: PluginSession): Promise<void> {
    const raw = (await session.call('GetConfigRaw')).value;
    const parsed: unknown = JSON.parse(raw instanceof Uint8Array ? decoder.decode(raw) : 'null');
    const sshUser = await session.call('GetSSHUsername').then((reply) => String(reply.value), () => '');
    const sshKeyPath = await session.call('GetSSHKeyPath').then((reply) => String(reply.value), () => '');
    const next: LegacyPluginData = { config: redactConfig(parsed, this.#options.flags, this.#options.config), sshUser, sshKeyPath };
    if (JSON.stringify(next) === JSON.stringify(this.#stored())) return;
    await this.#options.context.data.write({ [legacyDataKey]: next as unknown as JsonValue });
  }

  #typed(error: unknown, where: { machine: string; operation: string }, signal: AbortSignal | undefined): MachineError {
    if (signal?.aborted === true) return new CancelledError(`${where.operation} was cancelled; the plugin was stopped`, { ...where, cause: error });
    if (LegacyRemoteError.isInstance(error)) {
      const remote = error as LegacyRemoteError;
      if (where.operation === 'getState' && notFoundPattern.test(remote.remoteMessage)) return new NotFoundError(remote.remoteMessage, { ...where, cause: error });
      return new ProviderError(remote.remoteMessage, { ...where, cause: error });
    }
    if (MachineError.isInstance(error)) return error;
    return new ProviderError(error instanceof Error ? error.message : String(error), { ...where, cause: error });
  }

  #void(operation: string, method: string, save = true) {
    return (options?: OperationOptions) => this.#withPlugin(operation, options?.signal, save, async (session) => {
      await session.call(method);
    });
  }

  #string(operation: string, method: string) {
    return (options?: OperationOptions) => this.#withPlugin(operation, options?.signal, false, async (session) => String((await session.call(method)).value));
  }

  preCreateCheck = this.#void('preCreateCheck', 'PreCreateCheck', false);
  create = (options?: CreateOptions) => this.#void('create', 'Create')(options);
  remove = this.#void('remove', 'Remove');
  start = this.#void('start', 'Start');
  stop = this.#void('stop', 'Stop');
  kill = this.#void('kill', 'Kill');
  restart = this.#void('restart', 'Restart');
  getIP = this.#string('getIP', 'GetIP');
  getSSHHostname = this.#string('getSSHHostname', 'GetSSHHostname');
  getURL = this.#string('getURL', 'GetURL');

  getState(options?: OperationOptions): Promise<State> {
    return this.#withPlugin('getState', options?.signal, false, async (session) => {
      const value = Number((await session.call('GetState')).value);
      const state = stateFromNumber(value);
      if (state === undefined) throw new NotFoundError('the plugin reports the machine as not found', { machine: this.machineName, operation: 'getState' });
      return state;
    });
  }

  getSSHPort(options?: OperationOptions): Promise<number> {
    return this.#withPlugin('getSSHPort', options?.signal, false, async (session) => Number((await session.call('GetSSHPort')).value));
  }

  /** From the last saved config (this accessor is synchronous; the plugin answered it at the last save). */
  getSSHUsername(): string {
    const stored = this.#stored();
    if (stored === undefined) return '';
    if (stored.sshUser !== '') return stored.sshUser;
    const config = stored.config as Record<string, unknown> | null;
    return typeof config?.SSHUser === 'string' ? config.SSHUser : '';
  }

  getSSHKeyPath(): string {
    const stored = this.#stored();
    if (stored === undefined) return '';
    if (stored.sshKeyPath !== '') return stored.sshKeyPath;
    const config = stored.config as Record<string, unknown> | null;
    return typeof config?.SSHKeyPath === 'string' ? config.SSHKeyPath : '';
  }
}
