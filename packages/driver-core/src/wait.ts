import { CancelledError } from './errors/cancelled-error.ts';
import { MachineError } from './errors/machine-error.ts';
import { TimeoutError } from './errors/timeout-error.ts';

/** How a wait polls. */
export interface WaitOptions {
  /** First delay between tries, ms (default 500). */
  interval?: number;
  /** Multiplier applied to the delay after each try (default 1.5). */
  backoff?: number;
  /** Largest delay between tries, ms (default 5000). */
  maxInterval?: number;
  /** Give up after this many ms (default 300 000). */
  timeout?: number;
  /** Randomises each delay by up to this fraction, to spread fleets (default 0.2). */
  jitter?: number;
  signal?: AbortSignal;
  /** What is waited for, for the timeout message: `droplet 123 to be active`. */
  description?: string;
  /** Adds machine/operation to the timeout error. */
  machine?: string;
  operation?: string;
}

/** The result of one try: `done` with a value, or not yet (with an optional reason for the timeout message). */
export type Poll<T> = { done: true; value: T } | { done: false; reason?: string };

/**
 * Calls `poll` until it reports done, with exponential backoff and jitter, an overall deadline and
 * an abort signal. Errors thrown by `poll` that are retryable MachineErrors (or any non-MachineError
 * when `retryErrors` is true) count as "not yet"; others end the wait.
 */
export async function waitFor<T>(
  poll: (attempt: number) => Promise<Poll<T>>,
  options: WaitOptions & { retryErrors?: boolean } = {},
): Promise<T> {
  const { interval = 500, backoff = 1.5, maxInterval = 5000, timeout = 300_000, jitter = 0.2, signal } = options;
  const deadline = Date.now() + timeout;
  let delay = interval;
  let lastReason: string | undefined;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal, options);
    try {
      const result = await poll(attempt);
      if (result.done) return result.value;
      lastReason = result.reason;
    } catch (error) {
      const retryable = MachineError.isInstance(error) ? error.isRetryable : options.retryErrors === true;
      if (!retryable) throw error;
      lastReason = error instanceof Error ? error.message : String(error);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const what = options.description ?? 'the condition';
      const last = lastReason === undefined ? '' : `; last: ${lastReason}`;
      throw new TimeoutError(`gave up waiting for ${what} after ${Math.round(timeout / 1000)} s (${attempt} tries)${last}`, {
        ...(options.machine === undefined ? {} : { machine: options.machine }),
        ...(options.operation === undefined ? {} : { operation: options.operation }),
      });
    }
    const spread = 1 + (Math.random() * 2 - 1) * jitter;
    await sleep(Math.min(delay * spread, remaining), signal);
    delay = Math.min(delay * backoff, maxInterval);
  }
}

/** Resolves after `ms`, or rejects with CancelledError when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CancelledError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Throws CancelledError when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, where: { machine?: string; operation?: string } = {}): void {
  if (signal?.aborted) {
    throw new CancelledError('the operation was cancelled', {
      ...(where.machine === undefined ? {} : { machine: where.machine }),
      ...(where.operation === undefined ? {} : { operation: where.operation }),
    });
  }
}
