import type { InstanceGuests } from '../guest/guest.ts';
import { createUbuntuFileSystem } from '../shell/ubuntu-image.ts';
import type { FaultInjector, InstanceFaultKind } from './faults.ts';
import type { InstanceSSHServers } from './instance-ssh.ts';
import type { LoopbackIpAllocator } from './loopback-ips.ts';
import type { InstanceState, SimInstance, SimStore } from './store.ts';

/** How long transitions take, in milliseconds. */
export interface LifecycleDelays {
  /** pending → running (default 50). */
  pendingMs: number;
  /** stopping → stopped (default 30). */
  stoppingMs: number;
  /** Time before a terminated instance's resources are released (default 0). */
  terminatingMs: number;
  /** How long cloud-init's final stage (runcmd: the engine install) runs after first boot (default 20). */
  cloudInitMs: number;
}

/** Default delays: small, so tests are fast but still see `pending`. */
export const DEFAULT_DELAYS: LifecycleDelays = { pendingMs: 50, stoppingMs: 30, terminatingMs: 0, cloudInitMs: 20 };

/** Called when an instance's public address changes (the `ipChangesOnStart` fault). */
export type AddressChangeListener = (instance: SimInstance, previousIp: string) => void;

/** What a front end passes to create an instance. */
export interface LaunchSpec {
  provider: string;
  kind: string;
  id: string;
  name: string;
  authorizedKeys: readonly string[];
  tags?: readonly string[];
  attributes?: Record<string, unknown>;
  /**
   * User data as cloud-init reads it (already base64-decoded): kept as `attributes.userData`,
   * written to /var/lib/cloud/instance/user-data.txt, and applied at first boot.
   */
  userData?: string;
  /** Instance faults the front end adds itself (e.g. `ipChangesOnStart` for clouds whose ephemeral IPs change). */
  faults?: readonly InstanceFaultKind[];
}

interface Pending {
  timer: NodeJS.Timeout | undefined;
  /** Resolves waiters when the transition in progress completes (true) or is superseded (false). */
  settle: ((reached: boolean) => void)[];
}

/**
 * Provider-independent instance lifecycle: pending → running → stopping → stopped → terminated,
 * with configurable delays. SSH opens when an instance is running and closes as soon as it starts
 * stopping. Each transition returns a promise that resolves `true` once the target state is
 * reached, or `false` if another transition (e.g. terminate) superseded it; with the `neverRuns`
 * fault, start transitions never settle.
 */
export class InstanceLifecycle {
  readonly delays: LifecycleDelays;
  readonly #store: SimStore;
  readonly #ips: LoopbackIpAllocator;
  readonly #faults: FaultInjector;
  readonly #ssh: InstanceSSHServers;
  readonly #guests: InstanceGuests | undefined;
  readonly #pending = new Map<SimInstance, Pending>();
  readonly #addressListeners: AddressChangeListener[] = [];
  #closed = false;

  constructor(options: {
    store: SimStore;
    ips: LoopbackIpAllocator;
    faults: FaultInjector;
    ssh: InstanceSSHServers;
    /** The booted image (cloud-init, systemd, dockerd); without it instances only run SSH. */
    guests?: InstanceGuests;
    delays?: Partial<LifecycleDelays>;
  }) {
    this.#store = options.store;
    this.#ips = options.ips;
    this.#faults = options.faults;
    this.#ssh = options.ssh;
    this.#guests = options.guests;
    this.delays = { ...DEFAULT_DELAYS, ...options.delays };
  }

  /** Calls `listener` whenever an instance's public address changes (front ends that store addresses). */
  onAddressChange(listener: AddressChangeListener): void {
    this.#addressListeners.push(listener);
  }

  /** Creates an instance in `pending` and schedules it to run. Returns at once. */
  launch(spec: LaunchSpec): { instance: SimInstance; running: Promise<boolean> } {
    const { publicIp, privateIp } = this.#ips.allocate();
    const now = new Date();
    const instance: SimInstance = {
      provider: spec.provider,
      kind: spec.kind,
      id: spec.id,
      name: spec.name,
      state: 'pending',
      stateChangedAt: now,
      createdAt: now,
      publicIp,
      privateIp,
      authorizedKeys: [...spec.authorizedKeys],
      tags: [...(spec.tags ?? [])],
      filesystem: createUbuntuFileSystem({ hostname: spec.name, authorizedKeys: spec.authorizedKeys }),
      faults: new Set([...this.#faults.instanceFaultsFor(spec.provider, spec.name), ...(spec.faults ?? [])]),
      attributes: { ...spec.attributes },
    };
    if (spec.userData !== undefined) {
      instance.attributes.userData = spec.userData;
      instance.filesystem.mkdir('/var/lib/cloud/instance', { recursive: true });
      instance.filesystem.writeFile('/var/lib/cloud/instance/user-data.txt', spec.userData, { mode: 0o600 });
    }
    this.#store.addInstance(instance);
    return { instance, running: this.#boot(instance) };
  }

  /**
   * stopped → pending → running. Resolves true at once if already running or pending. With the
   * `ipChangesOnStart` fault the instance gets a new public address first.
   */
  start(instance: SimInstance): Promise<boolean> {
    return this.#start(instance, true);
  }

  #start(instance: SimInstance, mayChangeAddress: boolean): Promise<boolean> {
    if (instance.state === 'running') return Promise.resolve(true);
    if (instance.state === 'pending') return this.#waitCurrent(instance);
    if (instance.state !== 'stopped') return Promise.resolve(false);
    this.#setState(instance, 'pending');
    if (mayChangeAddress && instance.faults.has('ipChangesOnStart')) this.#changeAddress(instance);
    return this.#boot(instance);
  }

  #changeAddress(instance: SimInstance): void {
    const previousIp = instance.publicIp;
    instance.publicIp = this.#ips.allocate().publicIp; // allocated before the release: always a different address
    this.#ips.release(previousIp);
    for (const listener of this.#addressListeners) listener(instance, previousIp);
  }

  /** running → stopping → stopped (`force`: no graceful delay). */
  stop(instance: SimInstance, options: { force?: boolean } = {}): Promise<boolean> {
    if (instance.state === 'stopped') return Promise.resolve(true);
    if (instance.state === 'terminated') return Promise.resolve(false);
    this.#setState(instance, 'stopping');
    const closing = Promise.all([this.#ssh.close(instance), this.#guests?.shutdown(instance)]);
    return this.#schedule(instance, options.force === true ? 0 : this.delays.stoppingMs, async () => {
      await closing;
      this.#setState(instance, 'stopped');
      return true;
    });
  }

  /** running → stopping → pending → running; SSH closes meanwhile. */
  async reboot(instance: SimInstance): Promise<boolean> {
    const stopped = await this.stop(instance);
    if (!stopped) return false;
    return this.#start(instance, false);
  }

  /** Any state → terminated: SSH closed, address released. Idempotent. */
  terminate(instance: SimInstance): Promise<boolean> {
    if (instance.state === 'terminated') return Promise.resolve(true);
    this.#cancel(instance);
    this.#setState(instance, 'terminated');
    return this.#schedule(instance, this.delays.terminatingMs, async () => {
      await Promise.all([this.#ssh.close(instance), this.#guests?.release(instance)]);
      this.#ips.release(instance.publicIp);
      return true;
    });
  }

  /** Stops every timer (pending waiters settle false). Called by `sim.close()`. */
  close(): void {
    this.#closed = true;
    for (const instance of [...this.#pending.keys()]) this.#cancel(instance);
  }

  #boot(instance: SimInstance): Promise<boolean> {
    if (instance.faults.has('neverRuns')) {
      this.#cancel(instance);
      return new Promise<boolean>((resolve) => this.#pending.set(instance, { timer: undefined, settle: [resolve] }));
    }
    return this.#schedule(instance, this.delays.pendingMs, async () => {
      await this.#guests?.boot(instance); // cloud-init's early stages (host key, files) come before sshd
      if (instance.state !== 'pending') return false;
      await this.#ssh.open(instance);
      if (instance.state !== 'pending') return false; // stopped or terminated while SSH was opening
      this.#setState(instance, 'running');
      return true;
    });
  }

  #schedule(instance: SimInstance, delayMs: number, transition: () => Promise<boolean>): Promise<boolean> {
    this.#cancel(instance);
    return new Promise<boolean>((resolve) => {
      const pending: Pending = { timer: undefined, settle: [resolve] };
      this.#pending.set(instance, pending);
      if (this.#closed) {
        this.#cancel(instance);
        return;
      }
      pending.timer = setTimeout(() => {
        pending.timer = undefined;
        transition().then(
          (reached) => this.#finish(instance, pending, reached),
          () => this.#finish(instance, pending, false),
        );
      }, delayMs);
    });
  }

  #waitCurrent(instance: SimInstance): Promise<boolean> {
    const pending = this.#pending.get(instance);
    if (pending === undefined) return Promise.resolve(instance.state === 'running');
    return new Promise<boolean>((resolve) => pending.settle.push(resolve));
  }

  #finish(instance: SimInstance, pending: Pending, reached: boolean): void {
    if (this.#pending.get(instance) === pending) this.#pending.delete(instance);
    for (const settle of pending.settle) settle(reached);
  }

  #cancel(instance: SimInstance): void {
    const pending = this.#pending.get(instance);
    if (pending === undefined) return;
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    this.#pending.delete(instance);
    for (const settle of pending.settle) settle(false);
  }

  #setState(instance: SimInstance, state: InstanceState): void {
    instance.state = state;
    instance.stateChangedAt = new Date();
  }
}
