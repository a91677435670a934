import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from './commands/ssh.ts';

/**
 * `machine upgrade` and the real docker CLI against machines on the cloud simulator, with the
 * built binary: MACHINE_SIM=1 / `--sim` before the command send create there; the simulated image
 * installs Docker Engine 27.3.1 and then has 28.0.1 waiting in its apt repository.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
const docker = findExecutable('docker', process.env.PATH);
let work: string;
let env: NodeJS.ProcessEnv;

function machine(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

function dockerCli(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(docker as string, args, { env: { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, 'docker-config'), ...extraEnv }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** The variables of `machine env --shell bash NAME`. */
async function dockerEnv(name: string): Promise<Record<string, string>> {
  const result = await machine(['env', '--shell', 'bash', name]);
  expect(result.code, result.stderr).toBe(0);
  return Object.fromEntries([...result.stdout.matchAll(/^export ([A-Z_]+)="(.*)"$/gm)].map((match) => [match[1] as string, match[2] as string]));
}

/** What `$(machine config NAME)` gives the shell: the lines split on whitespace, quotes kept. */
async function configWords(name: string): Promise<string[]> {
  const result = await machine(['config', name]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim().split(/\s+/);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-upgrade-e2e-'));
  env = { PATH: process.env.PATH, HOME: work, MACHINE_STORAGE_PATH: join(work, 'store') };
});

afterAll(async () => {
  await machine(['rm', '-f', '-y', 'up1', 'up2']);
  await machine(['sim', 'stop']);
  await rm(work, { recursive: true, force: true });
});

describe('machine upgrade and docker run on simulated machines', () => {
  it('MACHINE_SIM=1 and --sim before the command send create to the simulator', { timeout: 180_000 }, async () => {
    const first = await machine(['create', '-d', 'digitalocean', 'up1'], { MACHINE_SIM: '1' });
    expect(first.code, first.stderr).toBe(0);
    const second = await machine(['--sim', 'create', '-d', 'digitalocean', 'up2']);
    expect(second.code, second.stderr).toBe(0);
    for (const name of ['up1', 'up2']) {
      const record = JSON.parse(await readFile(join(work, 'store', 'machines', name, 'config.json'), 'utf8')) as { sim?: boolean };
      expect(record.sim, name).toBe(true);
    }
    expect((await machine(['ls', '--format', '{{.Name}} {{.DockerVersion}}'])).stdout).toBe('up1 v27.3.1\nup2 v27.3.1\n');
  });

  it.skipIf(docker === undefined)(`the real docker CLI runs containers on the machine (${docker ?? 'skipped: no docker binary on PATH'})`, { timeout: 120_000 }, async () => {
    // docker-machine's integration test "run busybox container".
    expect(await dockerCli([...(await configWords('up1')), 'run', 'busybox', 'echo', 'hello', 'world'])).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const vars = await dockerEnv('up1');
    const hello = await dockerCli(['run', '--rm', 'hello-world'], vars);
    expect(hello.code, hello.stderr).toBe(0);
    expect(hello.stdout).toContain('Hello from Docker!');
    expect(await dockerCli(['run', '--rm', 'busybox', 'echo', 'hi'], vars)).toMatchObject({ code: 0, stdout: 'hi\n' });
    expect((await dockerCli(['ps', '-a', '--format', '{{.Image}} {{.Command}}'], vars)).stdout).toBe('busybox "echo hello world"\n');
  });

  it('upgrade even when machine is stopped (it is started first); start then shows an error; ls, version and docker in the machine show the new engine', { timeout: 180_000 }, async () => {
    expect((await machine(['stop', 'up1'])).code).toBe(0);
    const upgraded = await machine(['upgrade', 'up1']);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(upgraded.stdout).toContain('Starting machine "up1" so it can be upgraded...\nStarted "up1".\n');
    expect(upgraded.stdout).toContain('Upgrading Docker Engine on "up1"...\nupgrading Docker Engine 27.3.1 with apt-get\nrestarting the Docker engine\n');
    expect(upgraded.stdout.trim().split('\n').at(-1)).toBe('Upgraded Docker Engine on "up1" from 27.3.1 to 28.0.1.');
    // docker-machine's "start should show an error after upgrade": the upgrade left it running.
    expect(await machine(['start', 'up1'])).toMatchObject({ code: 1, stderr: 'Machine "up1" is already running.\n' });
    expect((await machine(['ls', '--format', '{{.Name}} {{.State}} {{.DockerVersion}}'])).stdout).toBe('up1 Running v28.0.1\nup2 Running v27.3.1\n');
    expect(await machine(['version', 'up1'])).toMatchObject({ code: 0, stdout: '28.0.1\n' });
    expect((await machine(['ssh', 'up1', '--', 'docker', 'version', '--format', '{{.Server.Version}}'])).stdout).toBe('28.0.1\n');
    const record = JSON.parse(await readFile(join(work, 'store', 'machines', 'up1', 'config.json'), 'utf8')) as { provision: { dockerVersion: string; state: string } };
    expect(record.provision).toMatchObject({ dockerVersion: '28.0.1', state: 'provisioned' });
    // The same TLS configuration: the docker client still gets in with what `machine env` printed before.
    if (docker !== undefined) expect(await dockerCli(['run', '--rm', 'busybox', 'echo', 'still here'], await dockerEnv('up1'))).toMatchObject({ code: 0, stdout: 'still here\n' });
  });

  it('upgrade NAME… runs the machines concurrently; an engine already at the newest version says so; an unknown name fails alone', { timeout: 180_000 }, async () => {
    const both = await machine(['upgrade', 'up1', 'up2']);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toContain('Docker Engine 28.0.1 on "up1" is the newest version.\n');
    expect(both.stdout).toContain('Upgraded Docker Engine on "up2" from 27.3.1 to 28.0.1.\n');
    const mixed = await machine(['upgrade', 'up2', 'nosuch']);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toBe('Docker machine "nosuch" does not exist. Use "machine ls" to list machines. Use "machine create" to add a new one.\n');
    expect(mixed.stdout).toContain('Docker Engine 28.0.1 on "up2" is the newest version.\n');
    expect((await machine(['rm', '-y', 'up1', 'up2'])).code).toBe(0);
  });
});
