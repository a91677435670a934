#!/usr/bin/env node
// The offline main job: drives the built `machine` binary through a whole machine lifecycle on a
// simulated DigitalOcean droplet (tools/cloud-sim), with real SSH, provisions Docker Engine with TLS,
// calls the Docker API with exactly what `machine env` prints, upgrades the engine, ends with the
// real `docker` CLI running containers on the machine, and checks nothing leaked.
// Run from the repository root with `pnpm demo` (which builds first). No cloud account needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
const storage = join(packageDir, '..', '..', '.machine-demo');
const env = { ...process.env, MACHINE_STORAGE_PATH: storage };
const name = 'demo';

function machine(args, { expectCode = 0 } = {}) {
  console.log(`\n$ machine ${args.join(' ')}`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [bin, ...args], { env, stdio: 'inherit' });
  console.log(`  (exit ${result.status}, ${Date.now() - started} ms)`);
  if (result.status !== expectCode) {
    console.error(`demo: \`machine ${args.join(' ')}\` exited ${result.status}, expected ${expectCode}`);
    cleanupAndExit(1);
  }
}

function cleanupAndExit(code) {
  spawnSync(process.execPath, [bin, 'rm', '-f', name], { env, stdio: 'ignore' });
  spawnSync(process.execPath, [bin, 'sim', 'stop'], { env, stdio: 'ignore' });
  process.exit(code);
}

async function leaks() {
  const state = JSON.parse(readFileSync(join(storage, 'sim', 'state.json'), 'utf8'));
  const headers = { authorization: `Bearer ${state.env.DIGITALOCEAN_ACCESS_TOKEN}` };
  const found = [];
  for (const [path, key] of [['/v2/droplets', 'droplets'], ['/v2/account/keys', 'ssh_keys'], ['/v2/firewalls', 'firewalls']]) {
    const body = await (await fetch(`${state.env.DIGITALOCEAN_API_URL}${path}`, { headers })).json();
    for (const item of body[key] ?? []) found.push(`${key} ${item.id}`);
  }
  return found;
}

/** `machine env --shell bash NAME`, printed, and its variables. */
function dockerEnv() {
  console.log(`\n$ machine env --shell bash ${name}`);
  const result = spawnSync(process.execPath, [bin, 'env', '--shell', 'bash', name], { env, encoding: 'utf8' });
  process.stdout.write(result.stdout);
  if (result.status !== 0) {
    console.error(`demo: \`machine env ${name}\` exited ${result.status}: ${result.stderr}`);
    cleanupAndExit(1);
  }
  return Object.fromEntries([...result.stdout.matchAll(/^export ([A-Z_]+)="(.*)"$/gm)].map((match) => [match[1], match[2]]));
}

/** GET /version from DOCKER_HOST over TLS with DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, as the docker CLI does. */
function dockerVersion(vars) {
  const url = new URL(vars.DOCKER_HOST.replace(/^tcp:/, 'https:'));
  const file = (name) => readFileSync(join(vars.DOCKER_CERT_PATH, name), 'utf8');
  console.log(`\n$ curl --cacert $DOCKER_CERT_PATH/ca.pem --cert $DOCKER_CERT_PATH/cert.pem --key $DOCKER_CERT_PATH/key.pem ${url.origin}/version`);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: Number(url.port), path: '/version', ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem'), timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The docker CLI on PATH, if any. */
function dockerBinary() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'docker'), constants.X_OK);
      return join(dir, 'docker');
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs the real docker CLI with the `machine env` variables (or explicit flags), printed like a shell session. */
function docker(binary, args, vars, { expectOutput } = {}) {
  console.log(`\n$ docker ${args.join(' ')}`);
  const result = spawnSync(binary, args, { env: { PATH: process.env.PATH, HOME: storage, DOCKER_CONFIG: join(storage, 'docker-config'), ...vars }, encoding: 'utf8', timeout: 60_000 });
  process.stdout.write(result.stdout ?? '');
  process.stderr.write(result.stderr ?? '');
  if (result.status !== 0 || (expectOutput !== undefined && !(result.stdout ?? '').includes(expectOutput))) {
    console.error(`demo: \`docker ${args.join(' ')}\` exited ${result.status}${expectOutput === undefined ? '' : `, expected "${expectOutput}" in its output`}`);
    cleanupAndExit(1);
  }
}

rmSync(storage, { recursive: true, force: true });
console.log(`${execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim()} — storage ${storage}`);
machine(['create', '-d', 'digitalocean', '--sim', '--digitalocean-firewall', name]);
const vars = dockerEnv();
const version = await dockerVersion(vars).catch((error) => ({ status: 0, body: error.message }));
console.log(`  HTTP ${version.status} ${version.body}`);
if (version.status !== 200 || JSON.parse(version.body).Version === undefined) {
  console.error('demo: the Docker API did not answer /version over TLS with the `machine env` variables');
  cleanupAndExit(1);
}
machine(['ls']);
machine(['ssh', name, '--', 'uname', '-a']);
machine(['ssh', name, '--', 'cat', '/etc/os-release']);
machine(['ssh', name, '--', 'exit 3'], { expectCode: 3 });
machine(['stop', name]);
machine(['status', name]);
machine(['start', name]);
machine(['restart', name]);
machine(['kill', name]);
machine(['status', name]);
// Stopped: upgrade starts it first, then upgrades Docker Engine (27.3.1 → 28.0.1 on the simulated image).
machine(['upgrade', name]);
machine(['ls']);

// What users do next: the real docker client, unchanged, with the `machine env` variables.
const dockerCli = dockerBinary();
let ranContainers = false;
if (dockerCli === undefined) {
  console.log('\n********************************************************************************');
  console.log('demo: SKIPPED `docker run`: there is no docker binary on PATH.');
  console.log('      Install the docker CLI (Debian: docker-ce-cli or docker.io) to see it run containers on the machine.');
  console.log('********************************************************************************');
} else {
  const runVars = dockerEnv();
  docker(dockerCli, ['run', 'hello-world'], runVars, { expectOutput: 'Hello from Docker!' });
  docker(dockerCli, ['run', '--rm', 'busybox', 'echo', 'hi'], runVars, { expectOutput: 'hi' });
  // docker-machine's integration test "run busybox container": docker $(machine config NAME) run busybox echo hello world
  const config = spawnSync(process.execPath, [bin, 'config', name], { env, encoding: 'utf8' }).stdout.trim().split(/\s+/);
  docker(dockerCli, [...config, 'run', 'busybox', 'echo', 'hello', 'world'], {}, { expectOutput: 'hello world' });
  docker(dockerCli, ['ps', '-a'], runVars);
  ranContainers = true;
}
machine(['rm', '-y', name]);
machine(['ls']);
const left = await leaks();
spawnSync(process.execPath, [bin, 'sim', 'stop'], { env, stdio: 'inherit' });
if (left.length > 0) {
  console.error(`demo: the simulated account still has ${left.join(', ')}`);
  process.exit(1);
}
console.log(
  `\ndemo: every step passed (Docker Engine answered over TLS with the \`machine env\` variables, was upgraded${ranContainers ? ', and ran hello-world and busybox for the real docker CLI' : '; docker run was SKIPPED: no docker binary'}) and the simulated account is empty (no droplet, key or firewall left).`,
);
rmSync(storage, { recursive: true, force: true });
