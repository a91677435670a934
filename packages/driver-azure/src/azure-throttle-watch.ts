import { AsyncLocalStorage } from 'node:async_hooks';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { TimeoutError } from '@machine/driver-core';

/** What a call of the driver carries: its deadline, its caller's signal, and where progress goes. */
export interface CallScope {
  readonly machine: string;
  readonly operation: string;
  /** Epoch ms: no wait (retry, Retry-After, poll) goes past it. */
  readonly deadline: number;
  /** What the deadline is, for messages: `--azure-wait-timeout (900 s)`. */
  readonly deadlineName: string;
  readonly signal?: AbortSignal;
  progress(message: string): void;
}

/** A throttled answer the pipeline saw: where the deadline is and what to say. */
interface ThrottleWatch {
  scope: CallScope;
  what: string;
}

const watching = new AsyncLocalStorage<ThrottleWatch>();

/** Runs `run` with its throttled answers watched by {@link throttleWatchPolicy}. */
export function watchThrottling<T>(scope: CallScope, what: string, run: () => Promise<T>): Promise<T> {
  return watching.run({ scope, what }, run);
}

/**
 * A pipeline policy (per retry) that sees every 429/503 with `Retry-After` before the SDK waits it
 * out: it says so in progress, and when the wait would pass the call's deadline (CRP's 1200 s) it
 * fails the call at once instead of sleeping through it.
 */
export const throttleWatchPolicy: PipelinePolicy = {
  name: 'machineThrottleWatch',
  async sendRequest(request, next) {
    const response = await next(request);
    const watch = watching.getStore();
    if (watch === undefined || (response.status !== 429 && response.status !== 503)) return response;
    const seconds = Number(response.headers.get('retry-after-ms') ?? response.headers.get('x-ms-retry-after-ms') ?? Number.NaN) / 1000;
    const retryAfter = Number.isFinite(seconds) ? seconds : Number(response.headers.get('retry-after') ?? Number.NaN);
    if (!Number.isFinite(retryAfter)) return response;
    const { scope, what } = watch;
    const left = Math.max(0, Math.round((scope.deadline - Date.now()) / 1000));
    const code = response.headers.get('x-ms-error-code') ?? 'TooManyRequests';
    if (retryAfter * 1000 > scope.deadline - Date.now()) {
      throw new TimeoutError(`gave up on ${what}: Azure is throttling it (${code}) and asks to retry after ${retryAfter} s, past the ${left} s left of ${scope.deadlineName}`, {
        machine: scope.machine,
        operation: scope.operation,
        hint: 'Azure throttles per subscription and per VM for up to 30 minutes: run it again later',
      });
    }
    scope.progress(`Azure is throttling ${what} (${code}): waiting ${retryAfter} s as Retry-After asks (${left} s left of ${scope.deadlineName})`);
    return response;
  },
};

