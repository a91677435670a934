import { join } from 'node:path';
import type { CreateOptions, Driver, OperationOptions, State } from '@machine/driver-core';
import type { VirtualBoxDriverOptions } from './virtualbox-driver.ts';

type Loaded = { driver: Driver; mapError: typeof import('./virtualbox-errors.ts').mapVBoxManageError };

/**
 * The driver as the descriptor hands it out: the implementation (VBoxManage runner, ISO writer,
 * image download, SSH) is loaded on the first operation, so importing the package and listing
 * drivers stay cheap. Errors that are not typed yet go through the VBoxManage error mapper.
 */
export class LazyVirtualBoxDriver implements Driver {
  readonly driverName = 'virtualbox';
  readonly #options: VirtualBoxDriverOptions;
  #loaded: Promise<Loaded> | undefined;

  constructor(options: VirtualBoxDriverOptions) {
    this.#options = options;
  }

  get machineName(): string {
    return this.#options.context.machineName;
  }

  async #run<T>(operation: string, call: (driver: Driver) => Promise<T>): Promise<T> {
    this.#loaded ??= Promise.all([import('./virtualbox-driver.ts'), import('./virtualbox-errors.ts')]).then(([implementation, errors]) => ({
      driver: new implementation.VirtualBoxDriver(this.#options),
      mapError: errors.mapVBoxManageError,
    }));
    const { driver, mapError } = await this.#loaded;
    try {
      return await call(driver);
    } catch (error) {
      throw mapError(error, { machine: this.machineName, operation });
    }
  }

  preCreateCheck(options?: OperationOptions): Promise<void> {
    return this.#run('preCreateCheck', (driver) => driver.preCreateCheck(options));
  }
  create(options?: CreateOptions): Promise<void> {
    return this.#run('create', (driver) => driver.create(options));
  }
  remove(options?: OperationOptions): Promise<void> {
    return this.#run('remove', (driver) => driver.remove(options));
  }
  start(options?: OperationOptions): Promise<void> {
    return this.#run('start', (driver) => driver.start(options));
  }
  stop(options?: OperationOptions): Promise<void> {
    return this.#run('stop', (driver) => driver.stop(options));
  }
  kill(options?: OperationOptions): Promise<void> {
    return this.#run('kill', (driver) => driver.kill(options));
  }
  restart(options?: OperationOptions): Promise<void> {
    return this.#run('restart', (driver) => driver.restart(options));
  }
  getState(options?: OperationOptions): Promise<State> {
    return this.#run('getState', (driver) => driver.getState(options));
  }
  getIP(options?: OperationOptions): Promise<string> {
    return this.#run('getIP', (driver) => driver.getIP(options));
  }
  getSSHHostname(options?: OperationOptions): Promise<string> {
    return this.#run('getSSHHostname', (driver) => driver.getSSHHostname(options));
  }
  getSSHPort(options?: OperationOptions): Promise<number> {
    return this.#run('getSSHPort', (driver) => driver.getSSHPort(options));
  }
  getSSHUsername(): string {
    return this.#options.config.sshUser;
  }
  getSSHKeyPath(): string {
    return join(this.#options.context.machineDir, 'id_ed25519');
  }
  getURL(options?: OperationOptions): Promise<string> {
    return this.#run('getURL', (driver) => driver.getURL(options));
  }
}
