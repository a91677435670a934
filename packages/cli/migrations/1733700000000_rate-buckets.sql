-- Up Migration
-- Shared rate budgets (issue 20): one row per token bucket (provider, account fingerprint, region),
-- changed by every host of the store in a short transaction (SELECT … FOR UPDATE) with the times
-- taken from this database's clock, so hosts whose clocks differ still agree. The key holds no
-- secret (accounts are fingerprints). Times are epoch milliseconds.
CREATE TABLE machine_rate_buckets (
  key text PRIMARY KEY,
  tokens double precision NOT NULL,
  at_ms double precision NOT NULL,
  blocked_until_ms double precision NOT NULL,
  factor double precision NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Down Migration
DROP TABLE machine_rate_buckets;
