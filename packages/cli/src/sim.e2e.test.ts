import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonsServing } from './sim-mode.ts';

/**
 * The offline main job, end to end: the built `machine` binary as a child process, `--sim`
 * starting the bundled cloud simulator daemon, the real DigitalOcean driver on its SDK, and
 * real SSH into the simulated droplet.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
let work: string;
let env: NodeJS.ProcessEnv;

function machine(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** Every droplet, key and firewall the simulated account still has. */
async function leaks(state: { env: Record<string, string> }): Promise<string[]> {
  const base = state.env.DIGITALOCEAN_API_URL;
  const headers = { authorization: `Bearer ${state.env.DIGITALOCEAN_ACCESS_TOKEN}` };
  const found: string[] = [];
  for (const [path, key] of [['/v2/droplets', 'droplets'], ['/v2/account/keys', 'ssh_keys'], ['/v2/firewalls', 'firewalls']] as const) {
    const body = (await (await fetch(`${base}${path}`, { headers })).json()) as Record<string, { id: string | number }[]>;
    expect(Array.isArray(body[key]), `${path} lists ${key}`).toBe(true);
    for (const item of body[key] ?? []) found.push(`${key} ${item.id}`);
  }
  return found;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-sim-e2e-'));
  env = { PATH: process.env.PATH, HOME: work, MACHINE_STORAGE_PATH: join(work, 'store') };
});

afterAll(async () => {
  await machine(['sim', 'stop']);
  await rm(work, { recursive: true, force: true });
});

describe('machine --sim (digitalocean on the cloud simulator)', () => {
  it('create → ls → ssh → scp → stop → start → restart → kill → rm, with nothing left in the simulated account', { timeout: 180_000 }, async () => {
    const created = await machine(['create', '-d', 'digitalocean', '--sim', 'demo']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Running pre-create checks...');
    const state = JSON.parse(await readFile(join(work, 'store', 'sim', 'state.json'), 'utf8'));
    expect(state.endpoints.digitalocean).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const config = await readFile(join(work, 'store', 'machines', 'demo', 'config.json'), 'utf8');
    expect(config).not.toContain(state.env.DIGITALOCEAN_ACCESS_TOKEN);

    const ls = await machine(['ls']);
    expect(ls.stdout).toMatch(new RegExp(`demo\\s+-\\s+digitalocean\\s+Running\\s+tcp://127\\.1\\.\\d+\\.\\d+:${state.dockerPort}\\s+v27\\.3\\.1`));

    const uname = await machine(['ssh', 'demo', '--', 'uname', '-a']);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout).toMatch(/^Linux demo .*x86_64/);
    expect((await machine(['ssh', 'demo', '--', 'exit 7'])).code).toBe(7);
    expect((await machine(['--native-ssh', 'ssh', 'demo', '--', 'uname', '-a'])).stdout).toMatch(/^Linux demo/);

    const local = join(work, 'hello.txt');
    await writeFile(local, 'hello from the host\n');
    expect((await machine(['scp', local, 'demo:/root/hello.txt'])).code).toBe(0);
    expect((await machine(['ssh', 'demo', '--', 'cat', '/root/hello.txt'])).stdout).toBe('hello from the host\n');
    expect((await machine(['scp', 'demo:/root/hello.txt', join(work, 'back.txt')])).code).toBe(0);
    expect(await readFile(join(work, 'back.txt'), 'utf8')).toBe('hello from the host\n');

    // Recursive copies, and machine to machine.
    expect((await machine(['create', '-d', 'digitalocean', '--sim', '--no-provision', 'demo2'])).code).toBe(0);
    await mkdir(join(work, 'tree', 'sub'), { recursive: true });
    await writeFile(join(work, 'tree', 'sub', 'deep.txt'), 'deep\n');
    expect((await machine(['scp', '-r', join(work, 'tree'), 'demo:/root/tree'])).code).toBe(0);
    const copied = await machine(['scp', '-r', 'demo:/root/tree', 'demo2:/root/copy']);
    expect(copied.code, copied.stderr).toBe(0);
    expect((await machine(['ssh', 'demo2', '--', 'cat', '/root/copy/sub/deep.txt'])).stdout).toBe('deep\n');
    expect((await machine(['rm', '-y', 'demo2'])).code).toBe(0);

    for (const [action, expected] of [['stop', 'Stopped'], ['start', 'Running'], ['restart', 'Running'], ['kill', 'Stopped']] as const) {
      const result = await machine([action, 'demo']);
      expect(result.code, `${action}: ${result.stderr}`).toBe(0);
      expect((await machine(['status', 'demo'])).stdout).toBe(`${expected}\n`);
    }

    const removed = await machine(['rm', '-y', 'demo']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await leaks(state)).toEqual([]);
    expect((await machine(['ls', '-q'])).stdout).toBe('');

    expect((await machine(['sim', 'stop'])).stdout).toBe('Stopped the cloud simulator.\n');
    const log = await readFile(join(work, 'store', 'sim', 'sim.log'), 'utf8');
    expect(log).toContain('cloud-sim: SIGTERM, stopping');
    expect(log).not.toContain('still alive at exit');
  });

  it('20 concurrent --sim creates on an empty store share one simulator daemon; rm leaves nothing; the daemon holds no user credential; sim stop stops every daemon of the store', { timeout: 300_000 }, async () => {
    const storage = join(work, 'parallel');
    const statePath = join(storage, 'sim', 'state.json');
    const names = Array.from({ length: 20 }, (_, index) => `p${index + 1}`);
    const credentials = { DIGITALOCEAN_ACCESS_TOKEN: 'user-do-token-not-for-the-sim', AWS_SECRET_ACCESS_KEY: 'user-aws-secret', AZURE_CLIENT_SECRET: 'user-azure-secret', GOOGLE_APPLICATION_CREDENTIALS: '/user/google.json' };
    const created = await Promise.all(names.map((name) => machine(['-s', storage, 'create', '-d', 'digitalocean', '--sim', '--no-provision', name], credentials)));
    for (const [index, result] of created.entries()) expect(result.code, `${names[index]}: ${result.stderr}`).toBe(0);
    const daemons = await daemonsServing(statePath);
    expect(daemons).toHaveLength(1);

    // The daemon's environment keeps none of the user's cloud credentials.
    const environ = await readFile(`/proc/${daemons[0]}/environ`, 'utf8');
    for (const [key, value] of Object.entries(credentials)) {
      expect(environ, key).not.toContain(value);
      expect(environ.split('\0').some((entry) => entry.startsWith(`${key}=`)), key).toBe(false);
    }

    const ls = await machine(['-s', storage, 'ls', '--format', '{{.Name}} {{.State}}']);
    expect(ls.stdout.trim().split('\n').sort()).toEqual(names.map((name) => `${name} Running`).sort());
    const state = JSON.parse(await readFile(statePath, 'utf8'));
    const removed = await machine(['-s', storage, 'rm', '-y', ...names]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await leaks(state)).toEqual([]);

    // A stray daemon serving the same state file (an older CLI's) is stopped too.
    const { spawn } = await import('node:child_process');
    const { simCommand } = await import('./sim-mode.ts');
    const [command, ...args] = simCommand({ io: { env: {} } as never }, statePath);
    const stray = spawn(command as string, args, { detached: true, stdio: 'ignore' });
    stray.unref();
    await expect.poll(async () => (await daemonsServing(statePath)).length, { timeout: 20_000 }).toBe(2);
    expect((await machine(['-s', storage, 'sim', 'stop'])).stdout).toBe('Stopped the cloud simulator.\n');
    expect(await daemonsServing(statePath)).toEqual([]);
  });
});
