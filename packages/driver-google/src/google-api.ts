import { randomUUID } from 'node:crypto';
import { CancelledError, InvalidConfigError, ProviderError, sleep, throwIfAborted, TimeoutError } from '@machine/driver-core';
import type { ComputeClients, ComputeInstance, ComputeOperation, RetrySettings, StartedOperation } from './google-clients.ts';
import { googleErrorInfo, isFingerprintConflict, isNotFound, isRetryableGoogleError, isWaitOutError, operationError } from './google-errors.ts';

/** The SDK clients, built on first use. */
export type ClientSource = () => Promise<ComputeClients>;

type Started = Promise<[StartedOperation, ...unknown[]]>;

const operationDone = new Set(['DONE', '2104194']);
const defaultRetry: RetrySettings = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 20_000, budgetMs: 120_000 };

/**
 * Settles with `promise`, or rejects with CancelledError as soon as `signal` aborts (an operations
 * `wait` can block for two minutes server-side; Ctrl-C must not).
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CancelledError('the operation was cancelled'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Compute Engine calls as the driver makes them: retried with backoff, writes carrying one
 * `requestId` for all their retries and waited on through their operation, whose `error` becomes a
 * typed error (a failed operation does not throw in the client library).
 */
export class ComputeApi {
  readonly #clients: ClientSource;
  readonly #project: string;
  readonly #waitTimeout: number;
  readonly #machine: string;

  constructor(clients: ClientSource, settings: { project: string; waitTimeoutSeconds: number; machine: string }) {
    this.#clients = clients;
    this.#project = settings.project;
    this.#waitTimeout = settings.waitTimeoutSeconds;
    this.#machine = settings.machine;
  }

  /**
   * One API call through the lazily built clients, retried with backoff: transient 5xx and lost
   * connections up to `attempts` tries; throttling and `resourceNotReady` for `budgetMs` (rate
   * quotas are per minute, so a few quick tries would give up before the next minute refills them).
   */
  async call<T>(signal: AbortSignal | undefined, run: (clients: ComputeClients) => Promise<T>, interruptible = true): Promise<T> {
    const clients = await this.#clients();
    const retry = { ...defaultRetry, ...clients.retry };
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal, { machine: this.#machine });
      try {
        return await (interruptible ? abortable(run(clients), signal) : run(clients));
      } catch (error) {
        if (!isRetryableGoogleError(error)) throw error;
        const waitOut = isWaitOutError(error);
        if (waitOut ? Date.now() >= deadline : attempt >= retry.attempts) throw error;
        const cap = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
        // Waiting out a quota: at least half the cap, so the budget is spent waiting, not hammering.
        const delay = waitOut ? cap / 2 + (Math.random() * cap) / 2 : Math.random() * cap;
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now()) + 1), signal);
      }
    }
  }

  /** A zonal write: one requestId for every retry (so a repeated call is not done twice), then waits for its operation. */
  async zoneCall(operation: string, zone: string, signal: AbortSignal | undefined, run: (clients: ComputeClients, requestId: string) => Started): Promise<ComputeOperation> {
    const requestId = randomUUID();
    // Not interrupted by an abort: the write's result must reach the journal before cleanup runs.
    const [started] = await this.call(signal, (c) => run(c, requestId), false);
    return this.#waitOperation(operation, started, signal, (c, name) => c.zoneOperations.wait({ project: this.#project, zone, operation: name }));
  }

  /** A global write (firewall rules), waited on through the global operations API. */
  async globalCall(operation: string, signal: AbortSignal | undefined, run: (clients: ComputeClients, requestId: string) => Started): Promise<ComputeOperation> {
    const requestId = randomUUID();
    const [started] = await this.call(signal, (c) => run(c, requestId), false);
    return this.#waitOperation(operation, started, signal, (c, name) => c.globalOperations.wait({ project: this.#project, operation: name }));
  }

  /**
   * Loops on the operations API's `wait` (which itself blocks up to ~2 minutes server-side, and
   * may return at once) until the operation is DONE, then throws its `error` as a typed error.
   */
  async #waitOperation(
    operation: string,
    started: StartedOperation,
    signal: AbortSignal | undefined,
    wait: (clients: ComputeClients, name: string) => Promise<[ComputeOperation, ...unknown[]]>,
  ): Promise<ComputeOperation> {
    let current = (started.latestResponse ?? started) as ComputeOperation;
    const name = current.name;
    if (!name) throw new ProviderError('the API returned no operation name', { machine: this.#machine, operation });
    const clients = await this.#clients();
    const pause = clients.pollIntervalMs ?? 1000;
    const deadline = Date.now() + this.#waitTimeout * 1000;
    let backoff = Math.min(pause, 100);
    while (!operationDone.has(String(current.status))) {
      if (Date.now() > deadline) {
        throw new TimeoutError(`operation ${name} (${current.operationType ?? operation}) was not done after ${this.#waitTimeout} s`, { machine: this.#machine, operation });
      }
      const before = Date.now();
      [current] = await this.call(signal, (c) => wait(c, name));
      // `wait` "might return after zero seconds" (under load): wait a moment before the next one,
      // longer each time it does, so a server that keeps answering at once is not hammered.
      if (!operationDone.has(String(current.status)) && Date.now() - before < pause) {
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, pause);
      }
    }
    if (current.error?.errors?.length || current.httpErrorStatusCode) throw operationError(current, { machine: this.#machine, operation });
    return current;
  }

  /** The instance, or undefined on 404; a 404 naming the project or the zone itself is a configuration error. */
  async findInstance(name: string, zone: string, signal: AbortSignal | undefined): Promise<ComputeInstance | undefined> {
    try {
      const [instance] = await this.call(signal, (c) => c.instances.get({ project: this.#project, zone, instance: name }));
      return instance;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const message = googleErrorInfo(error).message;
      const project = this.#project;
      if (message.includes(`'projects/${project}'`)) {
        throw new InvalidConfigError([{ flag: 'google-project', message: `project "${project}" was not found (or the account cannot see it)` }], { machine: this.#machine, cause: error });
      }
      if (message.includes(`/zones/${zone}'`)) {
        throw new InvalidConfigError([{ flag: 'google-zone', message: `zone "${zone}" does not exist in project "${project}"` }], { machine: this.#machine, cause: error });
      }
      return undefined;
    }
  }

  /** Runs a read-modify-write of an instance; on a fingerprint conflict re-reads it and tries again. */
  async withFingerprintRetry(
    read: () => Promise<ComputeInstance | undefined>,
    write: (fresh: ComputeInstance | undefined) => Promise<unknown>,
  ): Promise<void> {
    let fresh: ComputeInstance | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        await write(fresh);
        return;
      } catch (error) {
        if (attempt >= 5 || !isFingerprintConflict(error)) throw error;
        fresh = await read();
        if (fresh === undefined) throw error;
      }
    }
  }
}
