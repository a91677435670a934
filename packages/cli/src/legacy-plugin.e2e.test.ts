import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, readlink, mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Sim, startSim } from '@machine/cloud-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Issue 21 end to end: the built `machine` binary drives a docker-machine plugin written in Go
 * (@machine/legacy-plugin's `docker-machine-driver-godo`, which calls the DigitalOcean v2 API with
 * net/http and makes its SSH key like docker-machine's DigitalOcean driver) against the cloud
 * simulator: create with Docker provisioning over SSH (a plugin takes no cloud-init user data), then
 * every machine command, rm with the journal notice, nothing left in the simulated account and no
 * plugin process alive.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
const token = 'dop_v1_legacy_plugin_e2e_token';
let work: string;
let plugin: string;
let sim: Sim;
let env: NodeJS.ProcessEnv;

/** Builds the Go DigitalOcean plugin from @machine/legacy-plugin's go-harness: standard library only, offline, Debian's Go. */
function buildGoPlugin(outDir: string): Promise<string> {
  const harness = fileURLToPath(new URL('../../legacy-plugin/go-harness', import.meta.url));
  const cache = join(tmpdir(), 'machine-legacy-plugin-go');
  const goEnv = { ...process.env, GO111MODULE: 'on', GOFLAGS: '-mod=mod', GOPROXY: 'off', GOSUMDB: 'off', GOTOOLCHAIN: 'local', GOCACHE: join(cache, 'cache'), GOPATH: join(cache, 'gopath'), CGO_ENABLED: '0' };
  const out = join(outDir, 'docker-machine-driver-godo');
  return new Promise((resolve, reject) => {
    execFile(process.env.GO ?? 'go', ['build', '-o', out, './cmd/godoplugin'], { cwd: harness, env: goEnv }, (error, _stdout, stderr) =>
      error === null ? resolve(out) : reject(new Error(`go build failed (Debian: apt-get install golang-go; .ci/run does): ${error.message}\n${stderr}`)),
    );
  });
}

function machine(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/**
 * The pids of every process running this test's plugin binary (only this path: other test files run
 * their own copies at the same time). Checked after each `machine` process has exited, so a plugin
 * it did not stop would still be running here, reparented.
 */
async function pluginProcesses(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const exe = await readlink(`/proc/${entry}/exe`).catch(() => undefined);
    const argv0 = await readFile(`/proc/${entry}/cmdline`, 'utf8').then((cmdline) => cmdline.split('\0')[0], () => undefined);
    if (exe === plugin || argv0 === plugin) pids.push(Number(entry));
  }
  return pids;
}

/** GET `path` from DOCKER_HOST over TLS with DOCKER_CERT_PATH's files, as the docker CLI does. */
async function dockerGet(vars: Record<string, string>, path: string): Promise<{ status: number; body: string }> {
  const url = new URL((vars.DOCKER_HOST ?? '').replace(/^tcp:/, 'https:'));
  const certPath = vars.DOCKER_CERT_PATH ?? '';
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((file) => readFile(join(certPath, file), 'utf8')));
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: Number(url.port), path, method: 'GET', ca, cert, key, servername: '', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-legacy-e2e-'));
  [plugin, sim] = await Promise.all([buildGoPlugin(join(work, 'plugins')), startSim({ providers: ['digitalocean'] })]);
  // The plugin's credential is read from its env var on every command after create (machine does not store it).
  env = { PATH: process.env.PATH, HOME: work, MACHINE_STORAGE_PATH: join(work, 'store'), MACHINE_DRIVER_PATH: join(work, 'plugins') };
}, 300_000);

afterAll(async () => {
  await sim?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('machine drives a Go docker-machine plugin (docker-machine-driver-godo) against the simulator', () => {
  it('the /proc check finds a running plugin process (so its empty answers below mean something)', async () => {
    const running = spawn(plugin, [], { env: { ...process.env, MACHINE_PLUGIN_TOKEN: '42' }, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await once(running.stdout, 'data'); // its address: it is serving
      expect(await pluginProcesses()).toEqual([running.pid]);
    } finally {
      running.kill('SIGKILL');
      if (running.exitCode === null && running.signalCode === null) await once(running, 'exit');
    }
    expect(await pluginProcesses()).toEqual([]);
  });

  it('create with Docker provisioning over SSH → ls → ssh → ip → url → stop → start → restart → kill → status → env → rm, nothing left', { timeout: 300_000 }, async () => {
    const name = 'gode2e';
    const created = await machine([
      'create', '-d', 'godo',
      '--godo-access-token', token,
      '--godo-api-url', sim.endpoints.digitalocean ?? '',
      '--godo-ssh-port', String(sim.sshPort),
      '--engine-port', String(sim.dockerPort),
      name,
    ]);
    expect(created.code, created.stderr).toBe(0);
    // The plugin's stdout lines are progress; then the CLI waits for SSH and installs Docker over it.
    expect(created.stdout).toContain('Creating SSH key...');
    expect(created.stdout).toContain(`Creating droplet ${name} in nyc3`);
    expect(created.stdout).toContain('installing Docker Engine from https://get.docker.com');
    expect(created.stdout).toContain(`Machine "${name}" is ready`);
    expect(await pluginProcesses()).toEqual([]);

    // The account has exactly the droplet and the key the plugin uploaded; the droplet trusts that key.
    const [droplet] = sim.store.listInstances('digitalocean');
    const keys = sim.store.listResources('digitalocean', 'ssh_key');
    expect(droplet?.name).toBe(name);
    expect(keys.map((key) => key.name)).toEqual([name]);
    const machineDir = join(work, 'store', 'machines', name);
    const keyPath = join(machineDir, 'id_rsa');
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    expect(droplet?.authorizedKeys).toEqual([(await readFile(`${keyPath}.pub`, 'utf8')).trim()]);

    // The record keeps the plugin's raw config (its droplet and key ids), without the credential.
    const configText = await readFile(join(machineDir, 'config.json'), 'utf8');
    expect(configText).not.toContain(token);
    const record = JSON.parse(configText) as { driver: string; data: { legacyPlugin: { config: Record<string, unknown>; sshUser: string; sshKeyPath: string } }; provision: { state: string } };
    expect(record.driver).toBe('godo');
    expect(record.data.legacyPlugin).toMatchObject({
      sshUser: 'root',
      sshKeyPath: keyPath,
      config: { MachineName: name, StorePath: join(work, 'store'), DropletID: Number(droplet?.id), SSHKeyID: Number(keys[0]?.id), AccessToken: { $machineSecret: 'godo-access-token' } },
    });
    expect(record.provision.state).toBe('provisioned');

    // Later commands need the credential from its env var, and say so when it is missing.
    const noToken = await machine(['status', name]);
    expect(noToken.code).not.toBe(0);
    expect(noToken.stderr).toContain('--godo-access-token: is a credential machine does not store: set GODO_ACCESS_TOKEN');
    env.GODO_ACCESS_TOKEN = token;

    const ip = droplet?.publicIp ?? '';
    const ls = await machine(['ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`\\n${name}\\s+-\\s+godo\\s+Running\\s+tcp://${ip.replaceAll('.', '\\.')}:${sim.dockerPort}\\s+v27\\.3\\.1`));

    const uname = await machine(['ssh', name, '--', 'uname', '-a']);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout).toMatch(new RegExp(`^Linux ${name} .*x86_64`));
    expect((await machine(['--native-ssh', 'ssh', name, '--', 'uname', '-a'])).stdout).toMatch(new RegExp(`^Linux ${name} `));
    expect((await machine(['ip', name])).stdout).toBe(`${ip}\n`);
    expect((await machine(['url', name])).stdout).toBe(`tcp://${ip}:${sim.dockerPort}\n`);

    for (const [action, expected] of [['stop', 'Stopped'], ['start', 'Running'], ['restart', 'Running'], ['kill', 'Stopped']] as const) {
      const result = await machine([action, name]);
      expect(result.code, `${action}: ${result.stderr}`).toBe(0);
      expect((await machine(['status', name])).stdout, action).toBe(`${expected}\n`);
      expect(droplet?.state, action).toBe(expected === 'Running' ? 'running' : 'stopped');
    }
    expect((await machine(['start', name])).code).toBe(0);

    // env hands out what reaches the engine installed over SSH.
    const envResult = await machine(['env', '--shell', 'bash', name]);
    expect(envResult.code, envResult.stderr).toBe(0);
    const vars: Record<string, string> = {};
    for (const match of envResult.stdout.matchAll(/^export ([A-Z_]+)="(.*)"$/gm)) vars[match[1] as string] = match[2] as string;
    expect(vars).toMatchObject({ DOCKER_TLS_VERIFY: '1', DOCKER_HOST: `tcp://${ip}:${sim.dockerPort}`, DOCKER_CERT_PATH: machineDir, DOCKER_MACHINE_NAME: name });
    const version = await dockerGet(vars, '/version');
    expect(version.status).toBe(200);
    expect(JSON.parse(version.body)).toMatchObject({ Version: '27.3.1' });

    const removed = await machine(['rm', '-y', name]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain("Note: machine's resource journal cannot see inside a docker-machine plugin");
    expect(removed.stdout).toContain(`Successfully removed ${name}`);
    // A deleted droplet stays readable for a moment (realistic DigitalOcean), so wait for the report to empty.
      await expect.poll(() => sim.leaks(), { timeout: 15_000 }).toEqual([]);
    expect((await machine(['ls', '-q'])).stdout).toBe('');
    expect(await pluginProcesses()).toEqual([]);
  });

  it('a create the plugin fails after it made something keeps the record as failed; rm has the plugin remove what it made', { timeout: 120_000 }, async () => {
    const name = 'godofail';
    const created = await machine([
      'create', '-d', 'godo',
      '--godo-access-token', token,
      '--godo-api-url', sim.endpoints.digitalocean ?? '',
      '--godo-size', 's-nope',
      name,
    ]);
    expect(created.code).toBe(1);
    expect(created.stderr).toBe(
      `Error creating machine: machine "${name}": create: DigitalOcean API POST /v2/droplets: 422 You specified an invalid size for Droplet creation.; ` +
        `still recorded: what docker-machine plugin godo made, in its config. \`machine rm ${name}\` deletes it\n`,
    );
    // The plugin uploaded its key before the droplet call failed: only the plugin's config knows it.
    expect(sim.leaks().map((leak) => [leak.kind, leak.name])).toEqual([['ssh_key', name]]);
    const record = JSON.parse(await readFile(join(work, 'store', 'machines', name, 'config.json'), 'utf8')) as { status: string; data: { legacyPlugin: { config: Record<string, unknown> } } };
    expect(record.status).toBe('failed');
    expect(record.data.legacyPlugin.config).toMatchObject({ DropletID: 0, SSHKeyID: Number(sim.leaks()[0]?.id) });
    const removed = await machine(['rm', '-y', name], { GODO_ACCESS_TOKEN: token });
    expect(removed.code, removed.stderr).toBe(0);
    // A deleted droplet stays readable for a moment (realistic DigitalOcean), so wait for the report to empty.
      await expect.poll(() => sim.leaks(), { timeout: 15_000 }).toEqual([]);
    expect(await pluginProcesses()).toEqual([]);
  });
});
