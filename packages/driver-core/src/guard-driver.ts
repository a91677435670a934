import type { Driver, OperationOptions } from './driver.ts';
import { MachineError } from './errors/machine-error.ts';
import { ProviderError } from './errors/provider-error.ts';
import { throwIfAborted } from './wait.ts';

/** Turns an error that is not a MachineError into one (e.g. an SDK error into AuthError/ProviderError). */
export type ErrorMapper = (error: unknown, where: { machine: string; operation: string }) => MachineError;

/**
 * Wraps a driver so every operation checks its abort signal first and rejects only with typed
 * errors: MachineErrors pass through, anything else goes through `mapError` (default: a
 * ProviderError keeping the original as `cause`). Descriptors return their drivers through this.
 */
export function guardDriver(driver: Driver, mapError: ErrorMapper = defaultErrorMapper): Driver {
  const guard =
    <T>(operation: string, run: (options?: OperationOptions) => Promise<T>) =>
    async (options?: OperationOptions): Promise<T> => {
      const where = { machine: driver.machineName, operation };
      throwIfAborted(options?.signal, where);
      try {
        return await run(options);
      } catch (error) {
        if (MachineError.isInstance(error)) throw error;
        const mapped = mapError(error, where);
        // createWithCleanup attaches what cleanup could not delete; keep it on the typed error.
        const cleanupError = (error as { cleanupError?: unknown } | null)?.cleanupError;
        if (cleanupError !== undefined && (mapped as { cleanupError?: unknown }).cleanupError === undefined) {
          Object.assign(mapped, { cleanupError });
        }
        throw mapped;
      }
    };
  return {
    get driverName() {
      return driver.driverName;
    },
    get machineName() {
      return driver.machineName;
    },
    preCreateCheck: guard('preCreateCheck', (o) => driver.preCreateCheck(o)),
    create: guard('create', (o) => driver.create(o)),
    remove: guard('remove', (o) => driver.remove(o)),
    start: guard('start', (o) => driver.start(o)),
    stop: guard('stop', (o) => driver.stop(o)),
    kill: guard('kill', (o) => driver.kill(o)),
    restart: guard('restart', (o) => driver.restart(o)),
    getState: guard('getState', (o) => driver.getState(o)),
    getIP: guard('getIP', (o) => driver.getIP(o)),
    getSSHHostname: guard('getSSHHostname', (o) => driver.getSSHHostname(o)),
    getSSHPort: guard('getSSHPort', (o) => driver.getSSHPort(o)),
    getURL: guard('getURL', (o) => driver.getURL(o)),
    getSSHUsername: () => driver.getSSHUsername(),
    getSSHKeyPath: () => driver.getSSHKeyPath(),
  };
}

/** The default mapping: a ProviderError with the original message and the error as cause. */
export const defaultErrorMapper: ErrorMapper = (error, where) =>
  new ProviderError(error instanceof Error ? error.message : String(error), { ...where, cause: error });
