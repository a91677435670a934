import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A PostgreSQL server for tests, never assumed to be there: a fresh database in the server
 * `MACHINE_TEST_DATABASE_URL` names (what .ci/run starts), else a cluster of its own made with
 * Debian's `initdb` in a temp folder and started with `pg_ctl` on a unix socket only (no TCP),
 * as the `postgres` user when running as root. Without PostgreSQL's binaries it fails loudly.
 */
export interface TestPostgres {
  /** A connection string of a database of its own. */
  url: string;
  /** `pg_dump` of that database, as SQL text. */
  dump(): Promise<string>;
  /** Runs one SQL statement (as the server's superuser) in that database. */
  sql(statement: string): Promise<string>;
  stop(): Promise<void>;
}

function run(command: string, args: readonly string[], options: { asPostgres?: boolean } = {}): Promise<string> {
  const root = process.getuid?.() === 0;
  const [file, argv] = root && options.asPostgres === true ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`${file} ${argv.join(' ')}: ${error.message}\n${stderr}`)),
    );
  });
}

function postgresBinary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort().reverse() : [];
  for (const version of versions) if (existsSync(join(base, version, 'bin', name))) return join(base, version, 'bin', name);
  throw new Error(`PostgreSQL's ${name} was not found (install Debian's postgresql package, as .ci/run does, or set MACHINE_TEST_DATABASE_URL)`);
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const database = `machine_test_${randomBytes(6).toString('hex')}`;
  const external = process.env.MACHINE_TEST_DATABASE_URL;
  if (external !== undefined && external !== '') {
    const admin = new URL(external);
    await psql(external, `CREATE DATABASE ${database}`);
    admin.pathname = `/${database}`;
    const url = admin.toString();
    return {
      url,
      dump: () => run(postgresBinary('pg_dump'), ['--dbname', url]),
      sql: (statement) => psql(url, statement),
      stop: async () => {
        await psql(external, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'machine-pg-'));
  const root = process.getuid?.() === 0;
  if (root) {
    const ids = (await run('id', ['-u', 'postgres'])).trim();
    const group = (await run('id', ['-g', 'postgres'])).trim();
    await chown(dir, Number(ids), Number(group));
  }
  const data = join(dir, 'data');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  await run(postgresBinary('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'], { asPostgres: true });
  await run(postgresBinary('pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-w', '-o', `-k ${dir} -p ${port} -c listen_addresses= -c fsync=off`, 'start'], { asPostgres: true });
  const serverUrl = `postgresql://postgres@localhost:${port}/postgres?host=${encodeURIComponent(dir)}`;
  await psql(serverUrl, `CREATE DATABASE ${database}`);
  const url = `postgresql://postgres@localhost:${port}/${database}?host=${encodeURIComponent(dir)}`;
  return {
    url,
    dump: () => run(postgresBinary('pg_dump'), ['-h', dir, '-p', String(port), '-U', 'postgres', database]),
    sql: (statement) => psql(url, statement),
    stop: async () => {
      await run(postgresBinary('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { asPostgres: true }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function psql(url: string, statement: string): Promise<string> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(statement);
    return JSON.stringify(result.rows);
  } finally {
    await client.end();
  }
}
