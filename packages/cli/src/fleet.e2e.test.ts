import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from './test-support/postgres.ts';

/**
 * Issue 20, at CI size: three hosts (CLI processes with separate homes and storage paths) share one
 * PostgreSQL store and one simulated DigitalOcean account. They create machines concurrently, every
 * host lists every machine, host B logs into a machine host A made, a host killed mid-create leaves
 * nothing another host cannot remove, and at the end nothing is left at the provider. No secret is
 * in clear in the database.
 *
 * The simulated account's burst limit is tight (a tenth of DigitalOcean's 250 a minute): the
 * concurrent creates would be refused without the shared rate budget, which the hosts keep in the
 * store (machine_rate_buckets) and feed with the 429s they get; none reaches a user.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
const perHost = 4;
const storeKey = 'fleet-e2e-store-key-0123456789abcdef';
/** DigitalOcean's burst limit in the simulated account: 25 requests a (scaled) minute instead of 250. */
const simProviderOptions = JSON.stringify({ digitalocean: { burstLimit: 25 } });
let work: string;
let postgres: TestPostgres;
const hosts = ['a', 'b', 'c'] as const;
type Host = (typeof hosts)[number];

function storage(host: Host): string {
  return join(work, host, 'store');
}

function machine(host: Host, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The simulator daemon host A's first create starts keeps CLOUD_SIM_* variables: its tight burst limit.
    const env = { PATH: process.env.PATH, HOME: join(work, host), MACHINE_STORAGE_PATH: storage(host), MACHINE_STORE: postgres.url, MACHINE_STORE_KEY: storeKey, CLOUD_SIM_PROVIDER_OPTIONS: simProviderOptions };
    execFile(process.execPath, [bin, ...args], { env, timeout: 240_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

async function leaks(): Promise<string[]> {
  const state = JSON.parse(await readFile(join(storage('a'), 'sim', 'state.json'), 'utf8')) as { env: Record<string, string> };
  const headers = { authorization: `Bearer ${state.env.DIGITALOCEAN_ACCESS_TOKEN}` };
  const found: string[] = [];
  for (const [path, key] of [['/v2/droplets', 'droplets'], ['/v2/account/keys', 'ssh_keys'], ['/v2/firewalls', 'firewalls']] as const) {
    const body = (await (await fetch(`${state.env.DIGITALOCEAN_API_URL}${path}?per_page=200`, { headers })).json()) as Record<string, { id: string | number; name?: string }[]>;
    for (const item of body[key] ?? []) found.push(`${key} ${item.name ?? item.id}`);
  }
  return found;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-fleet-'));
  postgres = await startTestPostgres();
  for (const host of hosts) await mkdir(storage(host), { recursive: true });
}, 120_000);
afterAll(async () => {
  await machine('a', ['sim', 'stop']).catch(() => {});
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('three hosts, one fleet, one PostgreSQL store', { timeout: 600_000 }, () => {
  it('creates concurrently from three hosts; each lists all; B logs into what A made; a killed host leaves nothing; nothing is left at the end', async () => {
    // Host A's first create starts the simulator; B and C use the same one (one simulated account).
    const first = await machine('a', ['create', '-d', 'digitalocean', '--sim', 'a0']);
    expect(first.code, first.stderr).toBe(0);
    for (const host of ['b', 'c'] as const) await symlink(join(storage('a'), 'sim'), join(storage(host), 'sim'));

    const names = hosts.flatMap((host) => Array.from({ length: perHost }, (_, index) => `${host}${index + 1}`));
    const created = await Promise.all(names.map((name) => machine(name[0] as Host, ['create', '-d', 'digitalocean', '--sim', '--no-provision', name])));
    for (const [index, result] of created.entries()) expect(result.code, `${names[index]}: ${result.stderr}`).toBe(0);
    // No throttle reached a user: the hosts slowed down together (and retried what the provider still refused).
    for (const result of [first, ...created]) expect(`${result.stdout}${result.stderr}`).not.toMatch(/\(429 |too_many_requests|rate limit/i);
    // The hosts shared one budget for the account, in the store.
    const buckets = JSON.parse(await postgres.sql('SELECT key, tokens, factor FROM machine_rate_buckets')) as { key: string }[];
    expect(buckets.map((bucket) => bucket.key)).toEqual([expect.stringMatching(/^digitalocean:[0-9a-f]{16}$/)]);

    const all = ['a0', ...names].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
    for (const host of hosts) expect((await machine(host, ['ls', '-q'])).stdout.trim().split('\n'), `ls on ${host}`).toEqual(all);
    const states = await machine('c', ['ls', '--format', '{{.Name}} {{.State}}']);
    expect(states.stdout.trim().split('\n').every((line) => line.endsWith(' Running')), states.stdout).toBe(true);

    // B logs into a machine A made (its key and pinned host key come from the shared store), and uses its engine.
    const ssh = await machine('b', ['ssh', 'a0', '--', 'uname', '-s']);
    expect(ssh, ssh.stderr).toMatchObject({ code: 0, stdout: 'Linux\n' });
    expect(await machine('b', ['version', 'a0'])).toMatchObject({ code: 0, stdout: '27.3.1\n' });
    // A machine one host is working on is busy for the others.
    const busy = await Promise.all([machine('a', ['stop', 'a1']), machine('b', ['stop', 'a1'])]);
    expect(busy.map((result) => result.code).sort()).toEqual([0, 1]);
    expect(busy.map((result) => result.stderr).join('')).toMatch(/machine "a1" is busy: process \d+ on /);

    // Host C is killed in the middle of a create; host B removes what it left.
    const env = { PATH: process.env.PATH, HOME: join(work, 'c'), MACHINE_STORAGE_PATH: storage('c'), MACHINE_STORE: postgres.url, MACHINE_STORE_KEY: storeKey };
    const killed = spawn(process.execPath, [bin, 'create', '-d', 'digitalocean', '--sim', '--no-provision', 'c-killed'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    killed.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (!output.includes('creating droplet') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    killed.kill('SIGKILL');
    await new Promise((resolve) => killed.on('close', resolve));
    const removedKilled = await machine('b', ['rm', '-y', 'c-killed']);
    expect(removedKilled.code, removedKilled.stderr).toBe(0);

    const dump = await postgres.dump();
    for (const secret of ['OPENSSH PRIVATE KEY', 'BEGIN EC PRIVATE KEY', 'BEGIN PRIVATE KEY', storeKey]) expect(dump).not.toContain(secret);

    const removed = await machine('a', ['rm', '-y', ...all]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await leaks()).toEqual([]);
    for (const host of hosts) expect((await machine(host, ['ls', '-q'])).stdout).toBe('');
  });
});
