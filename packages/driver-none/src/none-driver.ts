import {
  CancelledError,
  type Driver,
  type DriverContext,
  NotFoundError,
  NotSupportedError,
  type OperationOptions,
  State,
} from '@machine/driver-core';
import type { NoneDriverConfig } from './none-flags.ts';

/** What {@link NoneDriver} takes besides config and context. */
export interface NoneDriverOptions {
  /** How long Status waits for the URL's port to accept a connection, ms (default 3000). */
  readonly tcpTimeout?: number;
}

/** Ports used when the URL has none. */
const defaultPorts: Readonly<Record<string, number>> = { 'tcp:': 2376, 'http:': 80, 'https:': 443 };

/**
 * The none driver: records the Docker URL of a host that machine does not manage. Create and
 * Remove only write and clear that record; Status checks whether the URL's port answers; every
 * other operation is a NotSupportedError.
 */
export class NoneDriver implements Driver {
  readonly driverName = 'none';
  readonly #config: NoneDriverConfig;
  readonly #context: DriverContext;
  readonly #tcpTimeout: number;

  constructor(config: NoneDriverConfig, context: DriverContext, options: NoneDriverOptions = {}) {
    this.#config = config;
    this.#context = context;
    this.#tcpTimeout = options.tcpTimeout ?? 3000;
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(): Promise<void> {}

  /** Records the URL; nothing else is made, locally or remotely. */
  async create(): Promise<void> {
    await this.#context.data.write({ url: this.#config.url.trim() });
  }

  /** Forgets the URL; the host is not touched. */
  async remove(): Promise<void> {
    await this.#context.data.write({ url: null });
  }

  async start(): Promise<void> {
    throw this.#notSupported('start');
  }

  async stop(): Promise<void> {
    throw this.#notSupported('stop');
  }

  async kill(): Promise<void> {
    throw this.#notSupported('kill');
  }

  async restart(): Promise<void> {
    throw this.#notSupported('restart');
  }

  /** Running when the URL's port accepts a TCP connection, Stopped when it refuses, Error otherwise. */
  async getState(options: OperationOptions = {}): Promise<State> {
    const url = this.#url('getState');
    const { probeTcp } = await import('@machine/driver-core/ssh');
    try {
      await probeTcp(hostOf(url), portOf(url), this.#tcpTimeout, options.signal);
      return State.Running;
    } catch (error) {
      if (error instanceof CancelledError) throw error;
      return stateAfterProbeFailure(error);
    }
  }

  /** The URL's host. */
  async getIP(): Promise<string> {
    return hostOf(this.#url('getIP'));
  }

  async getSSHHostname(): Promise<string> {
    throw this.#notSupported('getSSHHostname');
  }

  async getSSHPort(): Promise<number> {
    throw this.#notSupported('getSSHPort');
  }

  /**
   * '' : there is no SSH user. The synchronous accessors answer rather than throw so that hosts can
   * list and inspect the machine; `getSSHHostname` and `getSSHPort` reject with NotSupportedError.
   */
  getSSHUsername(): string {
    return '';
  }

  /** '' : there is no SSH key (see {@link NoneDriver.getSSHUsername}). */
  getSSHKeyPath(): string {
    return '';
  }

  /** The recorded URL. */
  async getURL(): Promise<string> {
    return this.#recorded('getURL').text;
  }

  #url(operation: string): URL {
    return this.#recorded(operation).url;
  }

  #recorded(operation: string): { text: string; url: URL } {
    const recorded = this.#context.data.read().url;
    if (typeof recorded !== 'string') {
      throw new NotFoundError('no URL is recorded for this machine: it was never created or has been removed', {
        machine: this.machineName,
        operation,
        hint: 'run `machine create -d none --url tcp://HOST:2376 NAME` first',
      });
    }
    return { text: recorded, url: new URL(recorded) };
  }

  #notSupported(operation: string): NotSupportedError {
    return new NotSupportedError(`${operation} is not supported by the none driver: it only records the URL of a host it does not manage`, {
      machine: this.machineName,
      operation,
      hint: 'manage the host yourself, or use the generic driver to control a host over SSH',
    });
  }
}

/** Refused: nothing listens (Stopped). Anything else (timeout, unreachable, unknown host): Error. */
export function stateAfterProbeFailure(error: unknown): State {
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED' ? State.Stopped : State.Error;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function portOf(url: URL): number {
  return url.port === '' ? (defaultPorts[url.protocol] ?? 2376) : Number(url.port);
}
