-- Up Migration
-- The machine store in PostgreSQL (issue 20): one row per machine record (journal, intents and
-- driver data inside it, never a credential), every file of a machine folder and the store's CA and
-- client certificate as AES-256-GCM ciphertext, and the store's own settings (id, key check).
CREATE TABLE machine_store_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE machine_records (
  name text PRIMARY KEY,
  record jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- machine = '' holds store-level files (certs/ca.pem, certs/ca-key.pem, …).
CREATE TABLE machine_files (
  machine text NOT NULL,
  path text NOT NULL,
  content bytea NOT NULL,
  sha256 text NOT NULL,
  PRIMARY KEY (machine, path)
);

-- Down Migration
DROP TABLE machine_files;
DROP TABLE machine_records;
DROP TABLE machine_store_meta;
