/**
 * Azure's side of the shared rate budget (driver-core's `rateBudget()`): the bucket a request draws
 * from, what an answer says about the limit, and the pipeline policy that takes a slot before every
 * HTTP request the SDK sends (its own retries, redirects and long-running-operation polls included)
 * and feeds each answer back. Without a configured budget the policy only passes the request on.
 *
 * This module imports the pipeline's types only, so the package's entry point may re-export it
 * without loading the SDK.
 */
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { type RateBucket, type RateLimit, type RateSignal, rateBudget, retryAfterMs } from '@machine/driver-core';

/**
 * The kinds of request ARM counts apart: GET (and HEAD) are reads, DELETE deletes, and every other
 * method (PUT, PATCH, POST actions) writes. Long-running-operation polls are GETs: reads.
 */
export type AzureRateKind = 'reads' | 'writes' | 'deletes';

/**
 * ARM's subscription token buckets ("Understand how Azure Resource Manager throttles requests",
 * since 2024): reads 250 at once and 25 a second, writes and deletes 200 and 10 a second, per
 * subscription, per principal and per kind, in each region. The budget keeps one per subscription
 * and kind (every principal and region of a store together), which is stricter, never looser.
 */
export const azureRateLimits: Readonly<Record<AzureRateKind, RateLimit>> = {
  reads: { burst: 250, perSecond: 25 },
  writes: { burst: 200, perSecond: 10 },
  deletes: { burst: 200, perSecond: 10 },
};

/** The ARM bucket a request of `method` counts against. */
export function azureRateKind(method: string): AzureRateKind {
  const verb = method.toUpperCase();
  if (verb === 'GET' || verb === 'HEAD') return 'reads';
  return verb === 'DELETE' ? 'deletes' : 'writes';
}

/** The shared budget of one request: `azure:<subscription id>:<reads|writes|deletes>` (a subscription id is not a secret). */
export function azureRateBucket(subscriptionId: string, method: string): RateBucket {
  const kind = azureRateKind(method);
  return { key: `azure:${subscriptionId.toLowerCase()}:${kind}`, limit: azureRateLimits[kind] };
}

/** The subscription an ARM URL names (`/subscriptions/<id>/…`), if any. */
export function subscriptionOfUrl(url: string): string | undefined {
  const match = /\/subscriptions\/([^/?#]+)/i.exec(url);
  return match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
}

/** What {@link azureRateSignal} reads of an answer. */
export interface AzureAnswer {
  readonly status: number;
  readonly headers: { get(name: string): string | undefined };
  readonly bodyAsText?: string | null;
}

/**
 * What one answer says about the subscription bucket of `kind`:
 *
 * - `x-ms-ratelimit-remaining-subscription-<kind>` (and the subscription-wide
 *   `-subscription-global-<kind>` of every principal, whichever is lower) caps the bucket. A count
 *   above half the bucket is left out, so an ordinary answer writes nothing to a shared store.
 * - A 429 from ARM itself (code `TooManyRequests`, or the kind's remaining count at 0) is a
 *   throttle, blocked for its `Retry-After`. A 429 of a resource provider is not: Compute's
 *   per-VM and per-region policies (`OperationNotAllowed` with `x-ms-ratelimit-remaining-resource`,
 *   whose Retry-After may be 1200 s) and the Network RP's `RetryableError` concern one resource,
 *   and must not hold back every other request of the subscription. The SDK's retry policy waits
 *   those out, and the throttle watch fails the call when the wait would pass its deadline.
 */
export function azureRateSignal(answer: AzureAnswer, kind: AzureRateKind, now = Date.now()): RateSignal {
  const signal: { -readonly [K in keyof RateSignal]: RateSignal[K] } = {};
  const remaining = lowest(answer.headers.get(`x-ms-ratelimit-remaining-subscription-${kind}`), answer.headers.get(`x-ms-ratelimit-remaining-subscription-global-${kind}`));
  const throttled = answer.status === 429 && (remaining === 0 || (errorCodeOf(answer) === 'TooManyRequests' && !resourceProviderThrottled(answer)));
  if (throttled) {
    signal.throttled = true;
    const wait = retryAfterOf(answer, now);
    if (wait !== undefined) signal.retryAfterMs = wait;
  }
  if (remaining !== undefined && (throttled || remaining <= azureRateLimits[kind].burst / 2)) signal.remaining = remaining;
  return signal;
}

function lowest(...values: (string | undefined)[]): number | undefined {
  const numbers = values.map((value) => (value === undefined || value.trim() === '' ? Number.NaN : Number(value))).filter((value) => Number.isFinite(value));
  return numbers.length === 0 ? undefined : Math.max(0, Math.min(...numbers));
}

/** The answer's ARM error code: the `x-ms-error-code` header, else the body's `error.code`. */
function errorCodeOf(answer: AzureAnswer): string | undefined {
  const header = answer.headers.get('x-ms-error-code');
  if (header !== undefined && header !== '') return header;
  try {
    const body: unknown = JSON.parse(answer.bodyAsText ?? '');
    const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** A resource provider's throttle: one of its `x-ms-ratelimit-remaining-resource` policies is spent (`Microsoft.Compute/PutVM3Min;0`). */
function resourceProviderThrottled(answer: AzureAnswer): boolean {
  const policies = answer.headers.get('x-ms-ratelimit-remaining-resource');
  return policies?.split(',').some((policy) => Number(policy.split(';')[1]) <= 0) === true;
}

/** `retry-after-ms` / `x-ms-retry-after-ms` (ms, as the SDK's retry policy reads them), else `Retry-After`. */
function retryAfterOf(answer: AzureAnswer, now: number): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = Number(answer.headers.get(name) ?? Number.NaN);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  return retryAfterMs(answer.headers.get('retry-after'), now);
}

const otherKinds: Readonly<Record<AzureRateKind, readonly AzureRateKind[]>> = { reads: ['writes', 'deletes'], writes: ['reads', 'deletes'], deletes: ['reads', 'writes'] };
const methodOf: Readonly<Record<AzureRateKind, string>> = { reads: 'GET', writes: 'PUT', deletes: 'DELETE' };

/** The name the policy has in a pipeline. */
export const rateBudgetPolicyName = 'machineRateBudget';

/**
 * The pipeline policy that meters ARM requests with the process's rate budget: before each request
 * it takes a slot of `azure:<subscription>:<kind>` (the subscription its URL names, else
 * `subscriptionId`; a request naming none goes unmetered), and it feeds the answer back: to the
 * request's bucket, and a low remaining count of another kind to that kind's.
 *
 * It must sit after the retry phase (`afterPhase: 'Retry'`, a client's `perRetry` position): the
 * retry policy calls the policies after it once per attempt, and a long-running operation's poller
 * sends each poll through the whole pipeline, so every attempt, SDK retry, redirect and poll takes
 * its own slot. The wait honours the request's abort signal (the call's deadline).
 */
export function azureRateBudgetPolicy(subscriptionId?: string): PipelinePolicy {
  return {
    name: rateBudgetPolicyName,
    sendRequest(request, next) {
      const budget = rateBudget();
      // No budget configured: the request goes out as the SDK sends it, without a wait or an await.
      if (budget === undefined) return next(request);
      const subscription = subscriptionOfUrl(request.url) ?? subscriptionId;
      if (subscription === undefined) return next(request);
      const bucket = azureRateBucket(subscription, request.method);
      const kind = azureRateKind(request.method);
      // The pipeline's wrapAbortSignalLikePolicy (before the retry phase) has made it an AbortSignal.
      const signal = request.abortSignal instanceof AbortSignal ? request.abortSignal : undefined;
      return (async () => {
        await budget.take(bucket, signal);
        const response = await next(request);
        await budget.observe(bucket, azureRateSignal(response, kind));
        // A count of another kind is that bucket's (a resource manager that counts deletes as writes says so).
        for (const other of otherKinds[kind]) {
          const remaining = azureRateSignal({ status: 200, headers: response.headers }, other).remaining;
          if (remaining !== undefined) await budget.observe(azureRateBucket(subscription, methodOf[other]), { remaining });
        }
        return response;
      })();
    },
  };
}
