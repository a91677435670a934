import type { ComputeClients, ComputeFirewall, ComputeInstance, ComputeOperation, StartedOperation } from '../google-clients.ts';

type Reply<T> = Promise<[T, ...unknown[]]>;

/** An error shaped like the client library's: GoogleError (gRPC code + httpStatusCode) or GaxiosError (HTTP status). */
export function googleError(status: number, message: string, shape: 'google' | 'gaxios' = 'google', reason?: string): Error {
  const grpc: Record<number, number> = { 400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 500: 13, 503: 14 };
  if (shape === 'google') return Object.assign(new Error(message), { name: 'GoogleError', code: grpc[status] ?? 2, httpStatusCode: status, ...(reason ? { reason } : {}) });
  return Object.assign(new Error(message), {
    name: 'GaxiosError',
    status,
    response: { status, data: { error: { code: status, message, errors: [{ reason: reason ?? 'error', message }] } } },
  });
}

/**
 * An in-memory Compute Engine behind the driver's client interfaces, for unit tests: instances,
 * firewalls, addresses and zone/global operations, with call counts and injected failures.
 */
export class MemoryCompute {
  readonly instances = new Map<string, ComputeInstance>();
  readonly firewalls = new Map<string, ComputeFirewall>();
  readonly addresses = new Map<string, string>();
  readonly operations = new Map<string, ComputeOperation & { waitsLeft: number; apply?: () => void }>();
  readonly calls: string[] = [];
  readonly requestIds: string[] = [];
  /** How many `wait` calls an operation takes before it is DONE (0 = done at once). */
  waitsPerOperation = 0;
  /** Instances stay PROVISIONING. */
  neverRuns = false;
  /** The IP every instance gets. */
  ip = '127.0.0.1';
  /** The internal IP every instance gets (loopback too: tests never leave 127.0.0.0/8). */
  internalIp = '127.0.0.1';
  readonly #failures = new Map<string, Error[]>();
  readonly #operationFailures = new Map<string, { code: string; message: string }[]>();
  #counter = 0;

  /** Makes the next call(s) of `method` (e.g. `instances.insert`) throw `error`. */
  failNext(method: string, error: Error, times = 1): void {
    this.#failures.set(method, [...(this.#failures.get(method) ?? []), ...Array.from({ length: times }, () => error)]);
  }

  /** Makes the next operation started by `method` finish DONE with an error (it does not throw). */
  failOperation(method: string, code: string, message: string): void {
    this.#operationFailures.set(method, [...(this.#operationFailures.get(method) ?? []), { code, message }]);
  }

  count(method: string): number {
    return this.calls.filter((call) => call === method).length;
  }

  /** Public key lines in every instance's ssh-keys metadata (for the test SSH server). */
  authorizedKeys(): string[] {
    return [...this.instances.values()].flatMap((instance) =>
      (instance.metadata?.items ?? [])
        .filter((item) => item.key === 'ssh-keys')
        .flatMap((item) => (item.value ?? '').split('\n'))
        .map((line) => line.slice(line.indexOf(':') + 1).trim())
        .filter((line) => line !== ''),
    );
  }

  clients(): ComputeClients {
    const instanceKey = (zone: string | null | undefined, name: string | null | undefined) => `${zone}/${name}`;
    const getInstance = (zone?: string | null, name?: string | null): ComputeInstance => {
      const instance = this.instances.get(instanceKey(zone, name));
      if (instance === undefined) throw googleError(404, `The resource 'projects/p/zones/${zone}/instances/${name}' was not found`);
      return instance;
    };
    const setStatus = (instance: ComputeInstance, status: string) => {
      instance.status = status;
      if (status !== 'RUNNING') {
        const config = instance.networkInterfaces?.[0]?.accessConfigs?.[0];
        if (config) config.natIP = null;
      } else {
        const config = instance.networkInterfaces?.[0]?.accessConfigs?.[0];
        if (config) config.natIP = this.ip;
      }
    };
    return {
      pollIntervalMs: 1,
      // Throttling and resourceNotReady are waited out for budgetMs (not attempts): 200 ms here.
      retry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 5, budgetMs: 200 },
      instances: {
        get: (req) => this.#run('instances.get', () => structuredClone(getInstance(req.zone, req.instance))),
        insert: (req) =>
          this.#op('instances.insert', req.requestId, `zones/${req.zone}`, () => {
            const resource = structuredClone(req.instanceResource ?? {});
            if (this.instances.has(instanceKey(req.zone, resource.name))) throw googleError(409, `The resource '${resource.name}' already exists`);
            const nic = resource.networkInterfaces?.[0];
            if (nic) nic.networkIP = this.internalIp;
            const instance: ComputeInstance = {
              ...resource,
              status: 'PROVISIONING',
              metadata: { ...resource.metadata, fingerprint: 'fp-1' },
              tags: { ...resource.tags, fingerprint: 't-1' },
            };
            return () => {
              this.instances.set(instanceKey(req.zone, resource.name), instance);
              setStatus(instance, this.neverRuns ? 'PROVISIONING' : 'RUNNING');
            };
          }),
        delete: (req) =>
          this.#op('instances.delete', req.requestId, `zones/${req.zone}`, () => {
            getInstance(req.zone, req.instance);
            return () => this.instances.delete(instanceKey(req.zone, req.instance));
          }),
        start: (req) => this.#op('instances.start', req.requestId, `zones/${req.zone}`, () => { const i = getInstance(req.zone, req.instance); return () => setStatus(i, 'RUNNING'); }),
        stop: (req) => this.#op('instances.stop', req.requestId, `zones/${req.zone}`, () => { const i = getInstance(req.zone, req.instance); return () => setStatus(i, 'TERMINATED'); }),
        reset: (req) => this.#op('instances.reset', req.requestId, `zones/${req.zone}`, () => { const i = getInstance(req.zone, req.instance); return () => setStatus(i, 'RUNNING'); }),
        setMetadata: (req) =>
          this.#op('instances.setMetadata', req.requestId, `zones/${req.zone}`, () => {
            const instance = getInstance(req.zone, req.instance);
            if (req.metadataResource?.fingerprint !== instance.metadata?.fingerprint) throw googleError(412, 'Supplied fingerprint does not match current metadata fingerprint.');
            return () => {
              instance.metadata = { items: req.metadataResource?.items ?? [], fingerprint: `fp-${++this.#counter}` };
            };
          }),
        setTags: (req) =>
          this.#op('instances.setTags', req.requestId, `zones/${req.zone}`, () => {
            const instance = getInstance(req.zone, req.instance);
            if (req.tagsResource?.fingerprint !== instance.tags?.fingerprint) throw googleError(412, 'Supplied fingerprint does not match current tags fingerprint.');
            return () => {
              instance.tags = { items: req.tagsResource?.items ?? [], fingerprint: `t-${++this.#counter}` };
            };
          }),
        list: (req) => this.#run('instances.list', () => [...this.instances.entries()].filter(([key]) => key.startsWith(`${req.zone}/`)).map(([, value]) => structuredClone(value))),
        aggregatedListAsync: (req) => {
          void req;
          this.calls.push('instances.aggregatedList');
          const byZone = new Map<string, ComputeInstance[]>();
          for (const [key, instance] of this.instances) {
            const zone = key.split('/')[0] ?? '';
            byZone.set(`zones/${zone}`, [...(byZone.get(`zones/${zone}`) ?? []), structuredClone(instance)]);
          }
          return (async function* () {
            for (const [zone, instances] of byZone) yield [zone, { instances }] as [string, { instances: ComputeInstance[] }];
          })();
        },
      },
      zoneOperations: { wait: (req) => this.#wait('zoneOperations.wait', req.operation) },
      globalOperations: { wait: (req) => this.#wait('globalOperations.wait', req.operation) },
      firewalls: {
        get: (req) =>
          this.#run('firewalls.get', () => {
            const rule = this.firewalls.get(req.firewall ?? '');
            if (rule === undefined) throw googleError(404, `The resource 'projects/p/global/firewalls/${req.firewall}' was not found`);
            return structuredClone(rule);
          }),
        insert: (req) =>
          this.#op('firewalls.insert', req.requestId, 'global', () => {
            const name = req.firewallResource?.name ?? '';
            if (this.firewalls.has(name)) throw googleError(409, `The resource '${name}' already exists`);
            return () => this.firewalls.set(name, structuredClone(req.firewallResource ?? {}));
          }),
        patch: (req) =>
          this.#op('firewalls.patch', req.requestId, 'global', () => {
            const rule = this.firewalls.get(req.firewall ?? '');
            if (rule === undefined) throw googleError(404, 'not found');
            return () => Object.assign(rule, structuredClone(req.firewallResource ?? {}));
          }),
        delete: (req) =>
          this.#op('firewalls.delete', req.requestId, 'global', () => {
            if (!this.firewalls.has(req.firewall ?? '')) throw googleError(404, `The resource 'projects/p/global/firewalls/${req.firewall}' was not found`);
            return () => this.firewalls.delete(req.firewall ?? '');
          }),
      },
      addresses: {
        get: (req) =>
          this.#run('addresses.get', () => {
            const ip = this.addresses.get(`${req.region}/${req.address}`);
            if (ip === undefined) throw googleError(404, `The resource 'projects/p/regions/${req.region}/addresses/${req.address}' was not found`);
            return { name: req.address, address: ip };
          }),
      },
    };
  }

  async #run<T>(method: string, body: () => T): Reply<T> {
    this.calls.push(method);
    const failure = this.#failures.get(method)?.shift();
    if (failure !== undefined) throw failure;
    return [body()];
  }

  /** Starts an operation: validation runs now (and may throw), the change is applied when it is DONE. */
  #op(method: string, requestId: string | null | undefined, scope: string, prepare: () => () => void): Reply<StartedOperation> {
    if (requestId) this.requestIds.push(requestId);
    return this.#run(method, () => {
      const apply = prepare();
      const name = `operation-${++this.#counter}`;
      const failure = this.#operationFailures.get(method)?.shift();
      const operation: ComputeOperation & { waitsLeft: number; apply?: () => void } = {
        name,
        operationType: method.split('.')[1] ?? method,
        status: 'RUNNING',
        ...(scope === 'global' ? {} : { zone: scope }),
        waitsLeft: this.waitsPerOperation,
        ...(failure === undefined ? { apply } : { error: { errors: [failure] }, httpErrorStatusCode: 400 }),
      };
      this.operations.set(name, operation);
      if (operation.waitsLeft === 0) this.#finish(operation);
      const { waitsLeft: _w, apply: _a, ...plain } = operation;
      return { latestResponse: plain };
    });
  }

  #finish(operation: ComputeOperation & { waitsLeft: number; apply?: () => void }): void {
    if (operation.status === 'DONE') return;
    operation.apply?.();
    operation.status = 'DONE';
  }

  #wait(method: string, name: string | null | undefined): Reply<ComputeOperation> {
    return this.#run(method, () => {
      const operation = this.operations.get(name ?? '');
      if (operation === undefined) throw googleError(404, `operation ${name} not found`);
      if (operation.waitsLeft > 0) operation.waitsLeft -= 1;
      if (operation.waitsLeft === 0) this.#finish(operation);
      const { waitsLeft: _w, apply: _a, ...plain } = operation;
      return structuredClone(plain);
    });
  }
}
