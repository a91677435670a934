import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import type { GobDecoded } from '../gob/gob-decoder.ts';
import type { GobType, GobValue } from '../gob/gob-types.ts';
import { legacyApiVersion, legacyServiceNames } from '../protocol/driver-rpc-types.ts';
import { RpcClient } from '../rpc/rpc-client.ts';
import { emptyStructType } from '../rpc/rpc-types.ts';
import { type LaunchOptions, launchPluginProcess, type PluginProcess } from './plugin-process.ts';

/** Options of a session: the launch options plus timing. */
export interface SessionOptions extends LaunchOptions {
  /** Heartbeat period, ms (libmachine: 5000). */
  readonly heartbeatInterval?: number;
  /** How long to wait for the plugin to exit after Close before killing it, ms (default 5000). */
  readonly exitTimeout?: number;
}

/**
 * One plugin process for one command, as libmachine's `NewRPCClientDriver` runs it: start,
 * GetVersion (RPCServerDriver, then the V0 spelling RpcServerDriver), heartbeats every 5 s; then
 * `close()` sends Close and reaps the process, killing it if it does not exit.
 */
export class PluginSession {
  readonly #process: PluginProcess;
  readonly #client: RpcClient;
  readonly #service: string;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #exitTimeout: number;
  #closing: Promise<void> | undefined;

  private constructor(process: PluginProcess, client: RpcClient, service: string, options: SessionOptions) {
    this.#process = process;
    this.#client = client;
    this.#service = service;
    this.#exitTimeout = options.exitTimeout ?? 5000;
    this.#heartbeat = setInterval(() => {
      this.call('Heartbeat').catch(() => {}); // a dead plugin shows in the call that needs it
    }, options.heartbeatInterval ?? 5000);
  }

  /** Starts the plugin and checks its API version; on any failure the process is reaped before the error. */
  static async open(path: string, options: SessionOptions): Promise<PluginSession> {
    const process = await launchPluginProcess(path, options);
    let client: RpcClient | undefined;
    try {
      client = await RpcClient.dial(process.address, { timeout: options.startTimeout ?? 10_000 });
      let service: string | undefined;
      let version: GobValue = null;
      let lastError: unknown;
      for (const name of legacyServiceNames) {
        try {
          version = (await client.call(`${name}.GetVersion`, emptyStructType, {})).value;
          service = name;
          break;
        } catch (error) {
          lastError = error;
          if (!client.open) throw error;
        }
      }
      if (service === undefined) throw new LegacyProtocolError(`the plugin ${path} answers GetVersion under neither RPCServerDriver nor RpcServerDriver: ${(lastError as Error).message}`, { cause: lastError });
      if (version !== legacyApiVersion) throw new LegacyProtocolError(`the plugin ${path} uses API version ${String(version)}, this host speaks ${legacyApiVersion}`, { hint: 'use a plugin built for docker-machine 0.16 / rancher-machine' });
      return new PluginSession(process, client, service, options);
    } catch (error) {
      client?.close();
      process.kill('SIGKILL');
      await process.exited;
      throw error;
    }
  }

  /** The plugin's pid. */
  get pid(): number {
    return this.#process.pid;
  }

  /** Calls a driver method (`Create`), by default with `struct{}` args. */
  call(method: string, argsType: GobType = emptyStructType, args: GobValue = {}): Promise<GobDecoded> {
    return this.#client.call(`${this.#service}.${method}`, argsType, args);
  }

  /** Kills the plugin at once (an aborted operation); `close()` still reaps it. */
  kill(): void {
    this.#process.kill('SIGKILL');
  }

  /** Sends Close, waits for the process to exit (killing it after the exit timeout) and reaps it. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#heartbeat);
    if (!this.#process.hasExited() && this.#client.open) {
      // The plugin exits inside Close, often before its reply is flushed: libmachine ignores that error too.
      await Promise.race([this.call('Close').catch(() => {}), this.#process.exited, delay(this.#exitTimeout)]);
    }
    this.#client.close();
    const exited = await Promise.race([this.#process.exited.then(() => true), delay(this.#exitTimeout).then(() => false)]);
    if (!exited) {
      this.#process.kill('SIGKILL');
      await this.#process.exited;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
