import { readFile } from 'node:fs/promises';
import { cleanupJournal, createWithCleanup, type ResourceDeleter } from '../cleanup.ts';
import type { CreateOptions, Driver, DriverContext, DriverDescriptor, OperationOptions } from '../driver.ts';
import { defineDriver } from '../driver.ts';
import { NotFoundError } from '../errors/not-found-error.ts';
import { guardDriver } from '../guard-driver.ts';
import { machineFirewallRules } from '../firewall.ts';
import { type ConfigOf, defineFlags } from '../flags.ts';
import { findEntry } from '../journal.ts';
import { generateSSHKeyPair, writeSSHKeyPair } from '../keys.ts';
import { waitForSSH } from '../ssh.ts';
import { State } from '../state.ts';
import { throwIfAborted, waitFor } from '../wait.ts';
import type { FakeCloud, FakeInstanceStatus } from './fake-cloud.ts';

/** The reference test driver's flags. */
export const fakeDriverFlags = defineFlags([
  { name: 'fake-region', key: 'region', type: 'string', default: 'local-1', description: 'Region of the fake cloud' },
  { name: 'fake-size', key: 'size', type: 'string', default: 'small', choices: ['small', 'large'], description: 'Instance size' },
  { name: 'fake-ssh-user', key: 'sshUser', type: 'string', default: 'root', description: 'SSH user' },
  { name: 'fake-open-port', key: 'openPorts', type: 'string[]', description: 'Extra ports to open (8080, 53/udp)' },
  { name: 'fake-allowed-cidr', key: 'allowedCidrs', type: 'string[]', description: 'Source CIDRs allowed in' },
  { name: 'fake-token', key: 'token', type: 'string', secret: true, envVar: 'FAKE_TOKEN', description: 'API token' },
  { name: 'fake-wait-timeout', key: 'waitTimeout', type: 'int', default: 10, min: 1, description: 'Seconds to wait for state changes' },
] as const);

/** Parsed config of the reference test driver. */
export type FakeDriverConfig = ConfigOf<typeof fakeDriverFlags>;

const stateByStatus: Record<FakeInstanceStatus, State> = {
  pending: State.Starting,
  running: State.Running,
  stopping: State.Stopping,
  stopped: State.Stopped,
  terminated: State.None,
};

/**
 * The reference driver: a thin mapping onto {@link FakeCloud}, written the way a real driver is,
 * so the conformance suite can be tested on it.
 */
export class FakeDriver implements Driver {
  readonly driverName = 'fake';
  readonly #cloud: FakeCloud;
  readonly #config: FakeDriverConfig;
  readonly #context: DriverContext;

  constructor(cloud: FakeCloud, config: FakeDriverConfig, context: DriverContext) {
    this.#cloud = cloud;
    this.#config = config;
    this.#context = context;
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  async preCreateCheck(): Promise<void> {
    machineFirewallRules({ openPorts: this.#config.openPorts, allowedCidrs: this.#config.allowedCidrs, openPortFlag: 'fake-open-port' });
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { journal } = this.#context;
    const signal = options.signal;
    // The host key the boot user data installs (the host made it): any other key is refused.
    const expectedHostKey = options.boot?.hostKeyFingerprint;
    const rules = machineFirewallRules({ openPorts: this.#config.openPorts, allowedCidrs: this.#config.allowedCidrs });
    await createWithCleanup(
      journal,
      async () => {
        const keyPair = generateSSHKeyPair({ comment: this.machineName });
        await writeSSHKeyPair(this.#context.machineDir, keyPair, 'id_ed25519');
        throwIfAborted(signal);
        const keyId = await this.#cloud.importKey(keyPair.publicKey);
        await journal.record({ kind: 'key', id: keyId });
        throwIfAborted(signal);
        const firewallId = await this.#cloud.createFirewall(rules);
        await journal.record({ kind: 'firewall', id: firewallId });
        throwIfAborted(signal);
        const instance = await this.#cloud.runInstance({ name: this.machineName, keyId, firewallId });
        await journal.record({ kind: 'instance', id: instance.id, region: this.#config.region });
        await this.#waitForStatus('running', signal);
        const target = { ...(await this.#sshTarget()), ...(expectedHostKey === undefined ? {} : { hostKeyFingerprint: expectedHostKey }) };
        const fingerprint = await waitForSSH(target, { timeout: this.#config.waitTimeout * 1000, ...(signal ? { signal } : {}) });
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
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  async start(options: OperationOptions = {}): Promise<void> {
    await this.#cloud.startInstance(this.#instanceId('start'));
    await this.#waitForStatus('running', options.signal);
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    await this.#cloud.stopInstance(this.#instanceId('stop'));
    await this.#waitForStatus('stopped', options.signal);
  }

  async kill(options: OperationOptions = {}): Promise<void> {
    await this.#cloud.stopInstance(this.#instanceId('kill'));
    await this.#waitForStatus('stopped', options.signal);
  }

  async restart(options: OperationOptions = {}): Promise<void> {
    await this.#cloud.rebootInstance(this.#instanceId('restart'));
    await this.#waitForStatus('running', options.signal);
  }

  async getState(): Promise<State> {
    const instance = await this.#describe('getState');
    return stateByStatus[instance.status];
  }

  async getIP(): Promise<string> {
    const instance = await this.#describe('getIP');
    if (instance.server === undefined) throw new NotFoundError('the instance has no address while it is not running', { machine: this.machineName, operation: 'getIP' });
    return instance.server.host;
  }

  async getSSHHostname(): Promise<string> {
    return this.getIP();
  }

  async getSSHPort(): Promise<number> {
    const instance = await this.#describe('getSSHPort');
    return instance.server?.port ?? 22;
  }

  getSSHUsername(): string {
    return this.#config.sshUser;
  }

  getSSHKeyPath(): string {
    return `${this.#context.machineDir}/id_ed25519`;
  }

  async getURL(): Promise<string> {
    return `tcp://${await this.getIP()}:2376`;
  }

  async #sshTarget() {
    const fingerprint = this.#context.data.read().hostKeyFingerprint;
    return {
      host: await this.getSSHHostname(),
      port: await this.getSSHPort(),
      username: this.getSSHUsername(),
      privateKey: await readFile(this.getSSHKeyPath(), 'utf8'),
      machine: this.machineName,
      ...(typeof fingerprint === 'string' ? { hostKeyFingerprint: fingerprint } : {}),
    };
  }

  #instanceId(operation: string): string {
    const entry = findEntry(this.#context.journal, 'instance');
    if (entry === undefined) throw new NotFoundError('no instance is recorded for this machine', { machine: this.machineName, operation });
    return entry.id;
  }

  async #describe(operation: string) {
    try {
      return await this.#cloud.describeInstance(this.#instanceId(operation));
    } catch (error) {
      if (error instanceof NotFoundError) throw new NotFoundError(error.detail, { machine: this.machineName, operation, cause: error });
      throw error;
    }
  }

  async #waitForStatus(wanted: FakeInstanceStatus, signal: AbortSignal | undefined): Promise<void> {
    await waitFor(
      async () => {
        const instance = await this.#describe('wait');
        return instance.status === wanted ? { done: true, value: undefined } : { done: false, reason: `status ${instance.status}` };
      },
      {
        interval: 10,
        maxInterval: 200,
        timeout: this.#config.waitTimeout * 1000,
        description: `the instance to be ${wanted}`,
        machine: this.machineName,
        ...(signal ? { signal } : {}),
      },
    );
  }

  #deleters(): Record<string, ResourceDeleter> {
    return {
      instance: (entry) => this.#cloud.terminateInstance(entry.id),
      firewall: (entry) => this.#cloud.deleteFirewall(entry.id),
      key: (entry) => this.#cloud.deleteKey(entry.id),
    };
  }
}

/** A descriptor for the reference driver, bound to one fake cloud. */
export function fakeDriverDescriptor(cloud: FakeCloud): DriverDescriptor<FakeDriverConfig, FakeCloud> {
  return defineDriver<FakeDriverConfig, FakeCloud>({
    name: 'fake',
    specificationVersion: 'v1',
    description: 'In-memory test cloud whose instances are real loopback SSH servers',
    flags: fakeDriverFlags,
    createDriver: ({ config, context, client }) => guardDriver(new FakeDriver(client ?? cloud, config, context)),
  });
}
