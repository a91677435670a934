import { join } from 'node:path';
import {
  type ConfigOf,
  type Driver,
  type DriverContext,
  defineDriver,
  defineFlags,
  guardDriver,
  InvalidConfigError,
  NotFoundError,
  QuotaError,
  type State,
  State as States,
} from '@machine/driver-core';

/** Flags of every type, a secret with an env var, a default of each kind. */
export const toyFlags = defineFlags([
  { name: 'toy-region', key: 'region', type: 'string', default: 'toy-1', description: 'Region of the toy cloud' },
  { name: 'toy-size', key: 'size', type: 'string', default: 'small', choices: ['small', 'large'], description: 'Instance size' },
  { name: 'toy-token', key: 'token', type: 'string', secret: true, envVar: 'TOY_TOKEN', description: 'API token' },
  { name: 'toy-disk-gb', key: 'diskGb', type: 'int', default: 10, min: 1, description: 'Disk size in GB' },
  { name: 'toy-tag', key: 'tags', type: 'string[]', description: 'Tags (repeatable)' },
  { name: 'toy-private', key: 'privateNetwork', type: 'bool', description: 'Attach a private network' },
  { name: 'toy-fail-create', key: 'failCreate', type: 'bool', description: 'Fail create with a quota error (tests)' },
  { name: 'toy-create-delay-ms', key: 'createDelayMs', type: 'int', default: 0, description: 'How long create takes (tests)' },
] as const);

export type ToyConfig = ConfigOf<typeof toyFlags>;

/**
 * A driver whose "cloud" is its own machine data, so its whole state travels in the plugin's
 * config JSON between plugin processes, as a Go driver's struct fields do.
 */
class ToyDriver implements Driver {
  readonly driverName = 'toy';
  readonly #config: ToyConfig;
  readonly #context: DriverContext;

  constructor(config: ToyConfig, context: DriverContext) {
    this.#config = config;
    this.#context = context;
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  #instance(): { id: string; state: State; ip: string } {
    const data = this.#context.data.read();
    if (typeof data.instanceId !== 'string') throw new NotFoundError('the toy instance does not exist', { machine: this.machineName, operation: 'getState' });
    return { id: data.instanceId, state: data.state as State, ip: String(data.ip) };
  }

  async preCreateCheck(): Promise<void> {
    if (this.#config.token === undefined) throw new InvalidConfigError([{ flag: 'toy-token', message: 'is required: pass --toy-token or set TOY_TOKEN' }]);
  }

  async create(): Promise<void> {
    await this.preCreateCheck();
    this.#context.onProgress?.({ step: 'create-instance', phase: 'start', message: `Creating a ${this.#config.size} toy instance in ${this.#config.region}` });
    if (this.#config.createDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#config.createDelayMs));
    if (this.#config.failCreate) throw new QuotaError('the toy cloud has no room for another instance', { machine: this.machineName, operation: 'create' });
    const id = `toy-${this.machineName}`;
    await this.#context.journal.record({ kind: 'instance', id, state: 'made' });
    await this.#context.data.write({ instanceId: id, state: States.Running, ip: '10.1.2.3', tags: [...this.#config.tags], diskGb: this.#config.diskGb, privateNetwork: this.#config.privateNetwork });
    this.#context.onProgress?.({ step: 'create-instance', phase: 'done', message: `Toy instance ${id} is running` });
  }

  async remove(): Promise<void> {
    const data = this.#context.data.read();
    if (typeof data.instanceId === 'string') await this.#context.journal.forget('instance', data.instanceId);
    await this.#context.data.write({ instanceId: null, state: null, ip: null });
  }

  async #setState(state: State): Promise<void> {
    this.#instance();
    await this.#context.data.write({ state });
  }

  start = () => this.#setState(States.Running);
  stop = () => this.#setState(States.Stopped);
  kill = () => this.#setState(States.Stopped);
  restart = () => this.#setState(States.Running);

  async getState(): Promise<State> {
    return this.#instance().state;
  }
  async getIP(): Promise<string> {
    return this.#instance().ip;
  }
  async getSSHHostname(): Promise<string> {
    return this.#instance().ip;
  }
  async getSSHPort(): Promise<number> {
    return 22;
  }
  getSSHUsername(): string {
    return 'toy';
  }
  getSSHKeyPath(): string {
    return join(this.#context.machineDir, 'id_rsa');
  }
  async getURL(): Promise<string> {
    return `tcp://${this.#instance().ip}:2376`;
  }
}

/** The toy driver's descriptor. */
const toyDriver = defineDriver<ToyConfig>({
  name: 'toy',
  specificationVersion: 'v1',
  description: 'A toy driver whose cloud is its own machine data (legacy-plugin tests)',
  flags: toyFlags,
  createDriver: ({ config, context }) => guardDriver(new ToyDriver(config, context)),
});

export default toyDriver;
