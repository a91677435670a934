import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../errors/not-found-error.ts';
import type { FirewallRule } from '../firewall.ts';
import { generateSSHKeyPair } from '../keys.ts';
import { type RunningSSHServer, startSSHServer } from './ssh-server.ts';

/** Lifecycle of a fake instance. */
export type FakeInstanceStatus = 'pending' | 'running' | 'stopping' | 'stopped' | 'terminated';

/** One instance of the fake cloud; running instances have a real ssh2 server on 127.0.0.1. */
export interface FakeInstance {
  readonly id: string;
  readonly name: string;
  status: FakeInstanceStatus;
  readonly keyId: string;
  readonly firewallId: string | undefined;
  server: RunningSSHServer | undefined;
  /** Host key, kept across reboots like a real disk. */
  readonly hostKey: string;
}

/** Options of {@link FakeCloud}. */
export interface FakeCloudOptions {
  /** How long pending/stopping last, ms (default 20). */
  transitionMs?: number;
  /** When set, instances never leave `pending` (to test timeouts). */
  instancesNeverRun?: boolean;
}

/**
 * An in-memory cloud for testing drivers and hosts: keys, firewalls and instances whose SSH
 * endpoints are real ssh2 servers accepting only the imported key. Counts API calls and can fail
 * chosen calls.
 */
export class FakeCloud {
  readonly keys = new Map<string, { id: string; publicKey: string }>();
  readonly firewalls = new Map<string, { id: string; rules: readonly FirewallRule[] }>();
  readonly instances = new Map<string, FakeInstance>();
  /** API calls so far, by operation. */
  readonly calls = new Map<string, number>();
  readonly options: FakeCloudOptions;
  readonly #failures = new Map<string, Error[]>();
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(options: FakeCloudOptions = {}) {
    this.options = options;
  }

  /** Total API calls so far. */
  get totalCalls(): number {
    return [...this.calls.values()].reduce((sum, count) => sum + count, 0);
  }

  /** Makes the next `times` calls of `operation` fail with `error`. */
  failOn(operation: string, error: Error = new Error(`injected failure of ${operation}`), times = 1): void {
    this.#failures.set(operation, [...(this.#failures.get(operation) ?? []), ...Array.from({ length: times }, () => error)]);
  }

  async importKey(publicKey: string): Promise<string> {
    this.#call('keys.import');
    const id = `key-${randomUUID().slice(0, 8)}`;
    this.keys.set(id, { id, publicKey });
    return id;
  }

  async deleteKey(id: string): Promise<void> {
    this.#call('keys.delete');
    if (!this.keys.delete(id)) throw new NotFoundError(`key ${id} not found`, { resource: `key ${id}` });
  }

  async createFirewall(rules: readonly FirewallRule[]): Promise<string> {
    this.#call('firewalls.create');
    const id = `fw-${randomUUID().slice(0, 8)}`;
    this.firewalls.set(id, { id, rules });
    return id;
  }

  async deleteFirewall(id: string): Promise<void> {
    this.#call('firewalls.delete');
    if (!this.firewalls.delete(id)) throw new NotFoundError(`firewall ${id} not found`, { resource: `firewall ${id}` });
  }

  async runInstance(request: { name: string; keyId: string; firewallId?: string; hostKey?: string }): Promise<FakeInstance> {
    this.#call('instances.run');
    if (!this.keys.has(request.keyId)) throw new NotFoundError(`key ${request.keyId} not found`);
    const instance: FakeInstance = {
      id: `i-${randomUUID().slice(0, 12)}`,
      name: request.name,
      status: 'pending',
      keyId: request.keyId,
      firewallId: request.firewallId,
      server: undefined,
      hostKey: request.hostKey ?? generateSSHKeyPair({ comment: 'host' }).privateKey,
    };
    this.instances.set(instance.id, instance);
    if (!this.options.instancesNeverRun) this.#later(() => this.#boot(instance));
    return instance;
  }

  async describeInstance(id: string): Promise<Readonly<FakeInstance>> {
    this.#call('instances.describe');
    return this.#live(id);
  }

  async stopInstance(id: string): Promise<void> {
    this.#call('instances.stop');
    const instance = this.#live(id);
    if (instance.status !== 'running') return;
    instance.status = 'stopping';
    await this.#shutdown(instance);
    this.#later(() => {
      if (instance.status === 'stopping') instance.status = 'stopped';
    });
  }

  async startInstance(id: string): Promise<void> {
    this.#call('instances.start');
    const instance = this.#live(id);
    if (instance.status !== 'stopped') return;
    instance.status = 'pending';
    this.#later(() => this.#boot(instance));
  }

  async rebootInstance(id: string): Promise<void> {
    this.#call('instances.reboot');
    const instance = this.#live(id);
    await this.#shutdown(instance);
    instance.status = 'pending';
    this.#later(() => this.#boot(instance));
  }

  async terminateInstance(id: string): Promise<void> {
    this.#call('instances.terminate');
    const instance = this.#live(id);
    await this.#shutdown(instance);
    instance.status = 'terminated';
  }

  /** Every live resource, as `kind id`: what a test expects to be empty after remove. */
  leaks(): string[] {
    return [
      ...[...this.instances.values()].filter((i) => i.status !== 'terminated').map((i) => `instance ${i.id}`),
      ...[...this.keys.keys()].map((id) => `key ${id}`),
      ...[...this.firewalls.keys()].map((id) => `firewall ${id}`),
    ];
  }

  /** Stops every SSH server and timer. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all([...this.instances.values()].map((instance) => this.#shutdown(instance)));
  }

  #live(id: string): FakeInstance {
    const instance = this.instances.get(id);
    if (instance === undefined || instance.status === 'terminated') {
      throw new NotFoundError(`instance ${id} not found`, { resource: `instance ${id}` });
    }
    return instance;
  }

  #call(operation: string): void {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const queued = this.#failures.get(operation);
    const failure = queued?.shift();
    if (failure !== undefined) throw failure;
  }

  #later(action: () => Promise<void> | void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void action();
    }, this.options.transitionMs ?? 20);
    this.#timers.add(timer);
  }

  async #boot(instance: FakeInstance): Promise<void> {
    if (instance.status !== 'pending') return;
    const key = this.keys.get(instance.keyId);
    instance.server = await startSSHServer({
      authorizedKeys: key === undefined ? [] : [key.publicKey],
      hostKey: instance.hostKey,
    });
    if (instance.status === 'pending') instance.status = 'running';
    else await this.#shutdown(instance);
  }

  async #shutdown(instance: FakeInstance): Promise<void> {
    const server = instance.server;
    instance.server = undefined;
    await server?.close();
  }
}

/** Creates a {@link FakeCloud}. */
export function createFakeCloud(options: FakeCloudOptions = {}): FakeCloud {
  return new FakeCloud(options);
}
