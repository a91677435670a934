import { AuthError, CancelledError, TimeoutError } from '@machine/driver-core';
import type { AzureClients } from './azure-clients.ts';
import { azureErrorFacts } from './azure-errors.ts';
import { type CallScope, watchThrottling } from './azure-throttle-watch.ts';

export type { CallScope } from './azure-throttle-watch.ts';

/** How long the driver keeps retrying what Azure says will pass, in ms (tests shrink them). */
export interface AzureTimings {
  /** First wait before retrying a conflict (`AnotherOperationInProgress`…); doubles up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
  /** How long a 403 `AuthorizationFailed` is taken for a role assignment still propagating (default 300 s). */
  authorizationGraceMs: number;
  /** How long a NIC, NSG or public IP may refuse deletion as in use (the NIC reservation is 180 s). */
  inUseMs: number;
  /** Poll interval of in-use retries and gone checks during remove. */
  pollMs: number;
}

export const defaultTimings: AzureTimings = { retryMs: 2_000, maxRetryMs: 20_000, authorizationGraceMs: 300_000, inUseMs: 300_000, pollMs: 5_000 };

/** Network RP codes that mean "another operation holds this or a resource it needs: retry soon". */
const conflictCodes = new Set([
  'AnotherOperationInProgress',
  'RetryableError',
  'RetryableErrorDueToAnotherOperation',
  'ReferencedResourceNotProvisioned',
  'OperationPreempted',
]);

/** True for the errors a retry of the same call gets past once another operation is done. */
export function isConflict(error: unknown): boolean {
  const facts = azureErrorFacts(error);
  return facts.code !== undefined && conflictCodes.has(facts.code);
}

/** The namespace a `MissingSubscriptionRegistration` names (its `details[].target`, else its message). */
export function missingNamespace(error: unknown): string | undefined {
  const facts = azureErrorFacts(error);
  if (facts.code !== 'MissingSubscriptionRegistration') return undefined;
  const details = (error as { details?: { error?: { details?: { target?: string }[] } } }).details?.error?.details;
  return details?.find((detail) => typeof detail.target === 'string')?.target ?? /namespace '([^']+)'/.exec(facts.message)?.[1];
}

/**
 * Runs one ARM call (a GET, a PUT, or a long-running operation through its poller) within the
 * scope's deadline, retrying what Azure says will pass: a write that met another operation on the
 * vnet/subnet (`AnotherOperationInProgress`, `RetryableError`…), an unregistered resource provider
 * (registered first), and a 403 `AuthorizationFailed` while a fresh role assignment propagates.
 * Anything else is thrown as it came; the deadline is a TimeoutError, the caller's abort a CancelledError.
 */
export async function armCall<T>(
  /** What registers a missing resource provider; without it (a read-only listing) the refusal is thrown. */
  clients: Pick<AzureClients, 'resources'> | undefined,
  scope: CallScope,
  timings: AzureTimings,
  what: string,
  run: (abortSignal: AbortSignal) => PromiseLike<T>,
): Promise<T> {
  const started = Date.now();
  let wait = timings.retryMs;
  for (let attempt = 1; ; attempt++) {
    const remaining = scope.deadline - Date.now();
    const timeout = AbortSignal.timeout(Math.max(1, remaining));
    const abortSignal = scope.signal === undefined ? timeout : AbortSignal.any([scope.signal, timeout]);
    try {
      if (scope.signal?.aborted) throw new CancelledError('the operation was cancelled', { machine: scope.machine, operation: scope.operation });
      if (remaining <= 0) throw timedOut(scope, what);
      return await watchThrottling(scope, what, () => Promise.resolve(run(abortSignal)));
    } catch (error) {
      if (scope.signal?.aborted) throw new CancelledError('the operation was cancelled', { machine: scope.machine, operation: scope.operation, cause: error });
      // A poller started by an earlier call carries that call's deadline: its abort is a timeout too.
      if (timeout.aborted || (error instanceof Error && error.name === 'AbortError')) throw timedOut(scope, what, error);
      const namespace = missingNamespace(error);
      if (namespace !== undefined && clients !== undefined) {
        await registerProvider(clients, scope, timings, namespace);
        continue;
      }
      const facts = azureErrorFacts(error);
      let reason: string;
      if (isConflict(error)) reason = `${facts.code}: another operation holds it or a resource it needs`;
      else if (facts.code === 'AuthorizationFailed' && Date.now() - started < timings.authorizationGraceMs) {
        reason = 'AuthorizationFailed: a role assignment made in the last minutes may still be propagating';
      } else throw error;
      const delay = Math.min(wait, Math.max(0, scope.deadline - Date.now()));
      if (delay <= 0) throw timedOut(scope, what, error);
      scope.progress(`${what}: ${reason}; retrying in ${formatSeconds(delay)} (attempt ${attempt + 1})`);
      await sleep(delay, scope.signal);
      wait = Math.min(wait * 2, timings.maxRetryMs);
    }
  }
}

/** The resource providers the driver's resources live in. */
const driverNamespaces = ['Microsoft.Compute', 'Microsoft.Network'];

/** `providers.register(namespace)` and wait until it reads `Registered`, within the scope's deadline. */
async function registerProvider(clients: Pick<AzureClients, 'resources'>, scope: CallScope, timings: AzureTimings, namespace: string): Promise<void> {
  scope.progress(`the subscription is not registered for ${namespace}: registering it (a one-time step that takes a minute or two)`);
  const providers = clients.resources.providers;
  // A new subscription lacks both namespaces the driver uses: start the other one's registration now, too.
  for (const other of driverNamespaces.filter((candidate) => candidate.toLowerCase() !== namespace.toLowerCase())) {
    void providers.register(other, scope.signal === undefined ? {} : { abortSignal: scope.signal }).catch(() => undefined);
  }
  let state: string | undefined;
  try {
    state = (await armCall(clients, scope, timings, `registering ${namespace}`, (abortSignal) => providers.register(namespace, { abortSignal }))).registrationState;
  } catch (error) {
    if (azureErrorFacts(error).code !== 'AuthorizationFailed') throw error;
    throw new AuthError(`the subscription is not registered for ${namespace}, and this identity may not register it`, {
      machine: scope.machine,
      operation: scope.operation,
      cause: error,
      hint: `ask a subscription owner to run \`az provider register --namespace ${namespace}\` once`,
    });
  }
  let wait = timings.retryMs;
  while (state?.toLowerCase() !== 'registered') {
    if (Date.now() + wait > scope.deadline) throw timedOut(scope, `the registration of ${namespace}`);
    await sleep(wait, scope.signal);
    wait = Math.min(wait * 2, timings.maxRetryMs);
    state = (await armCall(clients, scope, timings, `the registration of ${namespace}`, (abortSignal) => providers.get(namespace, { abortSignal }))).registrationState;
  }
  scope.progress(`${namespace} is registered`);
}

function timedOut(scope: CallScope, what: string, cause?: unknown): TimeoutError {
  return new TimeoutError(`gave up waiting for ${what}: ${scope.deadlineName} passed`, {
    machine: scope.machine,
    operation: scope.operation,
    ...(cause === undefined ? {} : { cause }),
    hint: 'raise --azure-wait-timeout, or check the resource in the Azure portal',
  });
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
