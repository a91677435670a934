import type { MemoryFileSystem } from '../shell/memory-filesystem.ts';
import type { InstanceFaultKind } from './faults.ts';

/** Provider-independent instance states. */
export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'terminated';

/** A simulated machine. Front ends keep provider details in `attributes`. */
export interface SimInstance {
  readonly provider: string;
  /** Provider word for it: `droplet`, `instance`, `virtualMachine`. */
  readonly kind: string;
  readonly id: string;
  name: string;
  state: InstanceState;
  stateChangedAt: Date;
  readonly createdAt: Date;
  /**
   * Its own loopback address in 127.1.0.0/16; SSH (and dockerd) listen here. Changes on start
   * after a stop only with the `ipChangesOnStart` fault.
   */
  publicIp: string;
  /** A fake 10.x address. */
  readonly privateIp: string;
  /** Public key lines SSH accepts (any user). */
  authorizedKeys: string[];
  tags: string[];
  readonly filesystem: MemoryFileSystem;
  /** Faults applied at creation. */
  readonly faults: ReadonlySet<InstanceFaultKind>;
  /** Provider-specific data (size, region, image…). */
  attributes: Record<string, unknown>;
}

/** Any other resource: keys, firewalls/security groups, disks, IPs, networks. */
export interface SimResource {
  readonly provider: string;
  /** `ssh_key`, `firewall`, `volume`, `security_group`… */
  readonly kind: string;
  readonly id: string;
  name: string;
  readonly createdAt: Date;
  attributes: Record<string, unknown>;
}

/** One entry of the leak report. */
export interface LeakedResource {
  provider: string;
  kind: string;
  id: string;
  name: string;
  /** Instance state, for instances. */
  state?: InstanceState;
}

/**
 * The resource store shared by every provider front end of one simulator. Instances are created
 * through {@link InstanceLifecycle}; other resources are plain records.
 */
export class SimStore {
  readonly #instances = new Map<string, SimInstance>();
  readonly #resources = new Map<string, SimResource>();

  /** Adds an instance (called by the lifecycle). */
  addInstance(instance: SimInstance): void {
    this.#instances.set(`${instance.provider}/${instance.id}`, instance);
  }

  /** An instance by provider and id, terminated ones included. */
  getInstance(provider: string, id: string): SimInstance | undefined {
    return this.#instances.get(`${provider}/${id}`);
  }

  /** A provider's instances in creation order (`includeTerminated` default false). */
  listInstances(provider: string, options: { includeTerminated?: boolean } = {}): SimInstance[] {
    const result: SimInstance[] = [];
    for (const instance of this.#instances.values()) {
      if (instance.provider !== provider) continue;
      if (instance.state === 'terminated' && options.includeTerminated !== true) continue;
      result.push(instance);
    }
    return result;
  }

  /** Every instance of every provider. */
  allInstances(): SimInstance[] {
    return [...this.#instances.values()];
  }

  /** Forgets a terminated instance entirely (providers that stop listing them). */
  forgetInstance(provider: string, id: string): void {
    this.#instances.delete(`${provider}/${id}`);
  }

  /** Adds or replaces a resource. */
  putResource(resource: SimResource): SimResource {
    this.#resources.set(resourceKey(resource.provider, resource.kind, resource.id), resource);
    return resource;
  }

  /** A resource, or undefined. */
  getResource(provider: string, kind: string, id: string): SimResource | undefined {
    return this.#resources.get(resourceKey(provider, kind, id));
  }

  /** A provider's resources of one kind, in creation order. */
  listResources(provider: string, kind: string): SimResource[] {
    return [...this.#resources.values()].filter((resource) => resource.provider === provider && resource.kind === kind);
  }

  /** Deletes a resource; false when it did not exist. */
  deleteResource(provider: string, kind: string, id: string): boolean {
    return this.#resources.delete(resourceKey(provider, kind, id));
  }

  /** Every instance not terminated and every resource still alive. */
  leaks(): LeakedResource[] {
    const leaks: LeakedResource[] = [];
    for (const instance of this.#instances.values()) {
      if (instance.state === 'terminated') continue;
      leaks.push({ provider: instance.provider, kind: instance.kind, id: instance.id, name: instance.name, state: instance.state });
    }
    for (const resource of this.#resources.values()) {
      leaks.push({ provider: resource.provider, kind: resource.kind, id: resource.id, name: resource.name });
    }
    return leaks;
  }
}

function resourceKey(provider: string, kind: string, id: string): string {
  return `${provider}/${kind}/${id}`;
}
