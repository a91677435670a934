import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerEngine } from './docker-engine.ts';
import { type RunningDaemon, startDockerd } from './dockerd.ts';
import { createCA, issue, type TestCA, type TestLeaf } from './test-certificates.test-helpers.ts';

/**
 * The emulated dockerd's containers and images over mutual TLS: the real `docker` CLI (when this
 * host has one) runs `docker run`, `pull`, `create`/`start`/`wait`/`logs`/`rm` and `ps` against
 * it unchanged; the wire format (pull progress, the multiplexed attach stream, wait answering its
 * headers before the container starts) is checked without it too.
 */

let daemon: RunningDaemon;
let engine: ContainerEngine;
let ca: TestCA;
let client: TestLeaf;
let certDir: string;
let port: number;

/** The docker CLI on PATH (or /usr/bin/docker), if this host has one. */
function dockerBinary(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin']) {
    const candidate = join(dir, 'docker');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
const docker = dockerBinary();

beforeAll(async () => {
  ca = await createCA();
  const server = await issue(ca, { commonName: 'dockerd', ips: ['127.0.0.1'] });
  client = await issue(ca, { commonName: 'client', client: true });
  certDir = await mkdtemp(join(tmpdir(), 'cloud-sim-docker-'));
  await writeFile(join(certDir, 'ca.pem'), ca.certPem);
  await writeFile(join(certDir, 'cert.pem'), client.certPem);
  await writeFile(join(certDir, 'key.pem'), client.keyPem, { mode: 0o600 });
  engine = new ContainerEngine();
  // Port 0 is not a daemon.json port: find a free one by binding and releasing it.
  const { createServer } = await import('node:net');
  port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
  daemon = await startDockerd(
    {
      listeners: [{ host: '127.0.0.1', port }],
      tls: { cert: Buffer.from(server.certPem), key: Buffer.from(server.keyPem), ca: Buffer.from(ca.certPem), verify: true },
      hostname: 'docker-test',
      labels: [],
      storageDriver: 'overlay2',
      registryMirrors: [],
      insecureRegistries: [],
      id: 'TEST:ID',
    },
    engine,
  );
});

afterAll(async () => {
  await daemon?.close();
  await rm(certDir, { recursive: true, force: true });
});

/** Runs the real docker CLI with the variables `machine env` prints. */
function dockerCli(args: readonly string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      docker as string,
      args,
      {
        env: { PATH: process.env.PATH, HOME: certDir, DOCKER_CONFIG: join(certDir, 'docker-config'), DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certDir },
        timeout: 30_000,
      },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr }),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
    else child.stdin?.end();
  });
}

/** One HTTPS call to the daemon with the client certificate. */
function api(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const call = request(
      { host: '127.0.0.1', port, path, method, ca: ca.certPem, cert: client.certPem, key: client.keyPem, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    call.on('error', reject);
    call.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe.skipIf(docker === undefined)(`the real docker CLI against the emulated dockerd over mutual TLS (${docker ?? 'no docker binary on this host: skipped'})`, () => {
  it('docker run hello-world pulls the image (progress on stderr) and prints the greeting', async () => {
    const run = await dockerCli(['run', 'hello-world']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('Hello from Docker!\nThis message shows that your installation appears to be working correctly.');
    expect(run.stderr).toContain("Unable to find image 'hello-world:latest' locally");
    expect(run.stderr).toContain('Status: Downloaded newer image for hello-world:latest');
  });

  it('docker run --rm busybox echo hi runs the command in the emulated shell and removes the container', async () => {
    const run = await dockerCli(['run', '--rm', 'busybox', 'echo', 'hi']);
    expect(run).toMatchObject({ code: 0, stdout: 'hi\n' });
    expect([...engine.containers.values()].filter((container) => container.config.Image === 'busybox')).toEqual([]);
  });

  it('exit codes, stderr, stdin (-i) and a command the image does not have (127) come through as from dockerd', async () => {
    expect(await dockerCli(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'])).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(await dockerCli(['run', '--rm', '-i', 'busybox', 'cat'], 'from stdin\n')).toMatchObject({ code: 0, stdout: 'from stdin\n' });
    const missing = await dockerCli(['run', '--rm', 'busybox', 'no-such-command']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('exec: "no-such-command": executable file not found in $PATH');
  });

  it('docker pull, then create → start -a → wait → logs → ps -a → rm', async () => {
    const pull = await dockerCli(['pull', 'alpine']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain('Status: Downloaded newer image for alpine:latest');
    expect(pull.stdout.trim().split('\n').at(-1)).toBe('docker.io/library/alpine:latest');
    expect((await dockerCli(['pull', 'alpine'])).stdout).toContain('Status: Image is up to date for alpine:latest');
    const denied = await dockerCli(['pull', 'no-such-image']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('pull access denied for no-such-image, repository does not exist');

    const created = await dockerCli(['create', '--name', 'job', 'alpine', 'sh', '-c', 'echo working; exit 4']);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await dockerCli(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout).toContain('job Created\n');
    expect(await dockerCli(['start', '-a', 'job'])).toMatchObject({ code: 4, stdout: 'working\n' });
    // Started again, it runs again (and its log keeps both runs).
    expect(await dockerCli(['start', '-a', 'job'])).toMatchObject({ code: 4, stdout: 'working\n' });
    expect(await dockerCli(['wait', id.slice(0, 12)])).toMatchObject({ code: 0, stdout: '4\n' });
    expect(await dockerCli(['logs', 'job'])).toMatchObject({ code: 0, stdout: 'working\nworking\n' });
    const ps = await dockerCli(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Image}} {{.Command}} {{.Names}} {{.Status}}']);
    expect(ps.stdout).toMatch(new RegExp(`^${id} alpine "sh -c echo working; exit 4" job Exited \\(4\\) `, 'm'));
    expect((await dockerCli(['ps', '--format', '{{.Names}}'])).stdout).not.toContain('job');
    const inUse = await dockerCli(['rmi', 'alpine']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toContain('conflict: unable to remove repository reference "alpine" (must force) - container');
    expect(await dockerCli(['rm', 'job'])).toMatchObject({ code: 0, stdout: 'job\n' });
    expect((await dockerCli(['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain('job\n');
    const removed = await dockerCli(['rmi', 'alpine']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/^Untagged: alpine:latest\nUntagged: alpine@sha256:[0-9a-f]{64}\nDeleted: sha256:[0-9a-f]{64}\n$/);
    expect((await dockerCli(['images', '--format', '{{.Repository}}'])).stdout).not.toContain('alpine');
    // docker version and docker info read the engine's details.
    const version = await dockerCli(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}} {{(index .Server.Components 0).Details.GoVersion}}']);
    expect(version).toMatchObject({ code: 0, stdout: '27.3.1 1.47 go1.22.7\n' });
    expect((await dockerCli(['info', '--format', '{{.ServerVersion}} {{.Name}}'])).stdout).toBe('27.3.1 docker-test\n');
  });

  it("docker-machine's integration test \"run busybox container\": docker $(machine config NAME) run busybox echo hello world", async () => {
    // `machine config` prints the flags with quoted paths; $(…) keeps the quotes, and docker accepts them.
    const config = ['--tlsverify', `--tlscacert="${join(certDir, 'ca.pem')}"`, `--tlscert="${join(certDir, 'cert.pem')}"`, `--tlskey="${join(certDir, 'key.pem')}"`, `-H=tcp://127.0.0.1:${port}`];
    const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(docker as string, [...config, 'run', 'busybox', 'echo', 'hello', 'world'], { env: { PATH: process.env.PATH, HOME: certDir, DOCKER_CONFIG: join(certDir, 'docker-config') } }, (error, stdout) =>
        resolve({ code: error === null ? 0 : Number(error.code), stdout }),
      );
    });
    expect(result).toEqual({ code: 0, stdout: 'hello world\n' });
  });
});

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const tmuxAvailable = hasTmux();
const interactiveSkip = docker === undefined ? 'no docker binary on this host' : tmuxAvailable ? undefined : 'tmux is not installed (apt-get install tmux)';

describe.skipIf(interactiveSkip !== undefined)(`docker run -it in a real terminal (tmux)${interactiveSkip === undefined ? '' : `: skipped, ${interactiveSkip}`}`, () => {
  it('docker run -it --rm ubuntu bash: a prompt, typed lines echoed and run, backspace, exit 3 ends it with 3', { timeout: 60_000 }, async () => {
    const socket = join(certDir, 'tmux.sock');
    const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
    const vars = `DOCKER_HOST=tcp://127.0.0.1:${port} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${certDir} DOCKER_CONFIG=${join(certDir, 'docker-config')} HOME=${certDir}`;
    tmux('new-session', '-d', '-s', 'it', '-x', '100', '-y', '30', `env ${vars} PATH="${process.env.PATH ?? ''}" ${docker} run -it --rm ubuntu bash; echo EXIT=$?; sleep 600`);
    const screen = (): string => tmux('capture-pane', '-p', '-t', 'it');
    try {
      await expect.poll(screen, { timeout: 20_000 }).toMatch(/^root@[0-9a-f]{12}:\/# ?$/m);
      tmux('send-keys', '-t', 'it', 'cat /etc/os-relx', 'BSpace', 'ease', 'Enter');
      await expect.poll(screen, { timeout: 10_000 }).toContain('PRETTY_NAME="Ubuntu 24.04.3 LTS"');
      expect(screen()).toMatch(/^root@[0-9a-f]{12}:\/# cat \/etc\/os-release$/m);
      tmux('send-keys', '-t', 'it', 'exit 3', 'Enter');
      await expect.poll(screen, { timeout: 10_000 }).toContain('EXIT=3');
    } finally {
      tmux('kill-server');
    }
  });
});

describe('the emulated dockerd container API on the wire', () => {
  it('a create of an image not pulled is 404 "No such image"; the pull streams Docker progress lines; create then answers 201', async () => {
    expect(await api('POST', '/v1.47/containers/create', { Image: 'busybox:1.37', Cmd: ['echo', 'x'] })).toMatchObject({ status: 404, body: '{"message":"No such image: busybox:1.37"}\n' });
    const pull = await api('POST', '/v1.47/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=1.37');
    expect(pull.status).toBe(200);
    const lines = pull.body.trim().split('\r\n').map((line) => JSON.parse(line) as { status: string; id?: string; progressDetail?: { current: number; total: number } });
    expect(lines[0]).toEqual({ status: 'Pulling from library/busybox', id: '1.37' });
    expect(lines.map((line) => line.status)).toEqual(expect.arrayContaining(['Pulling fs layer', 'Downloading', 'Download complete', 'Extracting', 'Pull complete']));
    expect(lines.some((line) => line.status === 'Downloading' && (line.progressDetail?.current ?? 0) < (line.progressDetail?.total ?? 0))).toBe(true);
    expect(lines.at(-1)).toEqual({ status: 'Status: Downloaded newer image for busybox:1.37' });
    expect(await api('POST', '/v1.47/images/create?fromImage=busybox&tag=9.9')).toMatchObject({ status: 404, body: expect.stringContaining('manifest for busybox:9.9 not found') });
    const created = await api('POST', '/v1.47/containers/create?name=wire', { Image: 'busybox:1.37', Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2'], AttachStdout: true, AttachStderr: true });
    expect(created.status).toBe(201);
  });

  it('wait answers its headers before the container starts; attach (101 UPGRADED) streams multiplexed frames and closes at exit', async () => {
    const container = engine.find('wire');
    expect(container?.status).toBe('created');
    const id = container?.id ?? '';
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(`POST /v1.47/containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
    const received: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    await expect.poll(() => Buffer.concat(received).toString('latin1')).toContain('\r\n\r\n');
    // Headers of wait arrive while the container has not started: the docker client needs them before it starts it.
    const waited = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const call = request({ host: '127.0.0.1', port, path: `/v1.47/containers/${id}/wait?condition=next-exit`, method: 'POST', ca: ca.certPem, cert: client.certPem, key: client.keyPem, agent: false }, (response) => {
        expect(engine.find(id)?.status).toBe('created');
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      call.on('error', reject);
      call.end();
    });
    await expect.poll(() => engine.find(id) !== undefined).toBe(true);
    expect((await api('POST', `/v1.47/containers/${id}/start`)).status).toBe(204);
    await closed;
    expect(await waited).toEqual({ status: 200, body: '{"Error":null,"StatusCode":0}\n' });
    const raw = Buffer.concat(received);
    const headerEnd = raw.indexOf('\r\n\r\n');
    expect(raw.subarray(0, headerEnd).toString('latin1')).toMatch(/^HTTP\/1\.1 101 UPGRADED\r\nContent-Type: application\/vnd\.docker\.multiplexed-stream\r\n/);
    const frames: [number, string][] = [];
    for (let at = headerEnd + 4; at < raw.length; ) {
      const size = raw.readUInt32BE(at + 4);
      frames.push([raw[at] ?? 0, raw.subarray(at + 8, at + 8 + size).toString('utf8')]);
      at += 8 + size;
    }
    expect(frames).toEqual([
      [1, 'to-out\n'],
      [2, 'to-err\n'],
    ]);
    expect((await api('DELETE', `/v1.47/containers/${id}`)).status).toBe(204);
    expect(await api('GET', `/v1.47/containers/${id}/json`)).toMatchObject({ status: 404, body: `{"message":"No such container: ${id}"}\n` });
  });
});
