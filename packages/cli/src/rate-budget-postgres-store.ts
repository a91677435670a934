import type { RateBucketState, RateBucketStore } from '@machine/driver-core';
import type pg from 'pg';

interface BucketRow {
  tokens: number;
  at_ms: number;
  blocked_until_ms: number;
  factor: number;
  now_ms: number;
  fresh: boolean;
}

/**
 * Shared rate buckets in PostgreSQL (table `machine_rate_buckets`, migration 1733700000000): each
 * update is one short transaction on the store's pool that locks the bucket's row
 * (`SELECT … FOR UPDATE`), computes the next state and writes it back, so every process and host
 * on the database changes a bucket one at a time. `now` is the database's `clock_timestamp()`
 * (never the host's clock), never earlier than the stored state's time.
 *
 * A new bucket's row is made by an `INSERT … ON CONFLICT DO NOTHING` in the same transaction (a
 * concurrent maker waits for the first one's commit, then finds its row): 4 round trips for a
 * known bucket (BEGIN, SELECT, UPDATE, COMMIT).
 */
export class PostgresRateBucketStore implements RateBucketStore {
  readonly #pool: () => Promise<pg.Pool>;

  constructor(pool: () => Promise<pg.Pool>) {
    this.#pool = pool;
  }

  async update<T>(key: string, change: (state: RateBucketState | undefined, now: number) => { state: RateBucketState; result: T }): Promise<T> {
    const client = await (await this.#pool()).connect();
    try {
      await client.query('BEGIN');
      let row = await selectForUpdate(client, key);
      if (row === undefined) {
        // A placeholder row (factor 0 marks it new) to lock; its state is the change's "undefined".
        await client.query('INSERT INTO machine_rate_buckets (key, tokens, at_ms, blocked_until_ms, factor) VALUES ($1, 0, 0, 0, 0) ON CONFLICT (key) DO NOTHING', [key]);
        row = await selectForUpdate(client, key);
        if (row === undefined) throw new Error(`the rate bucket row of ${key} vanished while it was being made`);
      }
      const state: RateBucketState | undefined = row.fresh ? undefined : { tokens: row.tokens, at: row.at_ms, blockedUntil: row.blocked_until_ms, factor: row.factor };
      const now = Math.max(row.now_ms, state?.at ?? 0);
      const { state: next, result } = change(state, now);
      await client.query('UPDATE machine_rate_buckets SET tokens = $2, at_ms = $3, blocked_until_ms = $4, factor = $5, updated_at = clock_timestamp() WHERE key = $1', [
        key,
        next.tokens,
        next.at,
        next.blockedUntil,
        next.factor,
      ]);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

async function selectForUpdate(client: pg.PoolClient, key: string): Promise<BucketRow | undefined> {
  const result = await client.query<BucketRow>(
    'SELECT tokens, at_ms, blocked_until_ms, factor, factor = 0 AS fresh, extract(epoch FROM clock_timestamp()) * 1000 AS now_ms FROM machine_rate_buckets WHERE key = $1 FOR UPDATE',
    [key],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  // numeric (extract) arrives as a string from pg; double precision as a number.
  return { ...row, now_ms: Number(row.now_ms), tokens: Number(row.tokens), at_ms: Number(row.at_ms), blocked_until_ms: Number(row.blocked_until_ms), factor: Number(row.factor) };
}
