import type { ProgressEvent } from '@machine/driver-core';
import type { AzureClients, LongRunningOptions } from './azure-clients.ts';
import { isAzureNotFound } from './azure-errors.ts';
import type { AzureConfig } from './azure-flags.ts';
import { type AzureTimings, armCall } from './azure-retry.ts';

/**
 * What the driver and its resource kinds call Azure through: the SDK clients plus every call run by
 * {@link armCall} within a deadline of --azure-wait-timeout (GETs too), so a throttled or locked
 * resource is waited out (and said so) but never past the deadline.
 */
export interface AzureApi {
  readonly clients: AzureClients;
  readonly config: AzureConfig;
  readonly timings: AzureTimings;
  /** A plain call (GET, synchronous PUT). */
  call<T>(what: string, operation: string, signal: AbortSignal | undefined, run: (abortSignal: AbortSignal) => PromiseLike<T>): Promise<T>;
  /** A long-running operation through the SDK's poller. */
  lro<T>(what: string, operation: string, signal: AbortSignal | undefined, run: (options: LongRunningOptions) => PromiseLike<T>): Promise<T>;
  /** The IDs (lower case) the machine's journal still holds: a shared piece one of them uses is not this machine's to let go yet. */
  recorded(): readonly string[];
  /** A GET that answers undefined for a 404. */
  find<T>(what: string, operation: string, signal: AbortSignal | undefined, run: (abortSignal: AbortSignal) => PromiseLike<T>): Promise<T | undefined>;
}

/** Builds the {@link AzureApi} of one driver. */
export function createAzureApi(
  clients: AzureClients,
  config: AzureConfig,
  options: { machine: string; timings: AzureTimings; onProgress?: (event: ProgressEvent) => void; recorded?: () => readonly string[] },
): AzureApi {
  const scope = (operation: string, signal: AbortSignal | undefined) => ({
    machine: options.machine,
    operation,
    deadline: Date.now() + config.waitTimeout * 1000,
    deadlineName: `--azure-wait-timeout (${config.waitTimeout} s)`,
    ...(signal === undefined ? {} : { signal }),
    progress: (message: string) => options.onProgress?.({ step: operation, phase: 'info', message }),
  });
  const call: AzureApi['call'] = (what, operation, signal, run) => armCall(clients, scope(operation, signal), options.timings, what, run);
  return {
    clients,
    config,
    timings: options.timings,
    recorded: options.recorded ?? (() => []),
    call,
    lro: (what, operation, signal, run) =>
      call(what, operation, signal, (abortSignal) => run({ abortSignal, ...(clients.pollIntervalMs === undefined ? {} : { updateIntervalInMs: clients.pollIntervalMs }) })),
    async find(what, operation, signal, run) {
      try {
        return await call(what, operation, signal, run);
      } catch (error) {
        if (isAzureNotFound(error)) return undefined;
        throw error;
      }
    },
  };
}
