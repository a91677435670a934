import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RateBucketState, RateBucketStore } from '@machine/driver-core';
import { atomicWrite } from './atomic-write.ts';
import { CliError } from './cli-error.ts';
import { lockFile } from './lock.ts';

/** How long an update waits for another process's hold on the same bucket before it fails. */
const lockWaitMs = 30_000;

/**
 * Shared rate buckets of the folder store: one small JSON file per bucket,
 * `ROOT/rate-budgets/<sha256(key), 32 hex digits>.json` (the key is never a path), changed under
 * the bucket's lock file (lock.ts's `lockFile`: a crashed holder's lock is stale and taken over) and
 * replaced by a rename, so every process on this storage path shares one budget per bucket.
 * Updates of one bucket from this process are queued here, so they never wait for their own lock.
 *
 * The write is not fsynced: a bucket is a rate estimate, and a file lost to a power cut (unreadable,
 * empty) starts full again, as a new bucket does.
 */
export class FileRateBucketStore implements RateBucketStore {
  readonly #dir: string;
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(root: string) {
    this.#dir = join(root, 'rate-budgets');
  }

  /** The bucket's file (its name is a digest of the key). */
  pathOf(key: string): string {
    return join(this.#dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  }

  update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T> {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.#update(key, change));
    this.#queues.set(key, next);
    // The queue forgets a key once its last update is done (a long command touches few buckets anyway).
    void next.finally(() => {
      if (this.#queues.get(key) === next) this.#queues.delete(key);
    }).catch(() => {});
    return next;
  }

  async #update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T> {
    const path = this.pathOf(key);
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const lock = await lockBucket(path);
    try {
      const { state, result } = change(await readState(path, key), Date.now());
      await atomicWrite(path, `${JSON.stringify({ key, ...state })}\n`, { sync: false });
      return result;
    } finally {
      await lock.release();
    }
  }
}

/** Marks a live holder in {@link lockBucket}'s retry loop. */
class BucketBusy extends Error {}

/**
 * Takes the bucket's lock file. lockFile polls a live holder every 50 ms; a bucket is held for well
 * under a millisecond, so this retries sooner (1–4 ms, jittered) until {@link lockWaitMs}.
 */
async function lockBucket(path: string): Promise<{ release(): Promise<void> }> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    try {
      return await lockFile(lockPath, {
        whenBusy: () => new BucketBusy(),
        stuck: () => new CliError(`could not lock the rate budget ${lockPath}: it stays without a process id; remove it if no machine command is running`),
      });
    } catch (error) {
      if (!(error instanceof BucketBusy)) throw error;
      if (Date.now() >= deadline) throw new CliError(`the rate budget ${lockPath} stayed locked for ${lockWaitMs / 1000} s; remove it if no machine command is running`);
      await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 3));
    }
  }
}

/** The stored state; undefined when there is none or it does not read as one (the bucket starts full). */
async function readState(path: string, key: string): Promise<RateBucketState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<RateBucketState> & { key?: unknown };
    const numbers = [value.tokens, value.at, value.blockedUntil, value.factor];
    if (value.key !== key || !numbers.every((number) => typeof number === 'number' && Number.isFinite(number))) return undefined;
    return { tokens: value.tokens as number, at: value.at as number, blockedUntil: value.blockedUntil as number, factor: value.factor as number };
  } catch {
    return undefined;
  }
}
