#!/usr/bin/env node
// The offline main job: drives the built `machine` binary through a whole machine lifecycle on a
// simulated DigitalOcean droplet (tools/cloud-sim), with real SSH, provisions Docker Engine with TLS,
// calls the Docker API with exactly what `machine env` prints, and checks nothing leaked.
// Run from the repository root with `pnpm demo` (which builds first). No cloud account needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
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
machine(['rm', '-y', name]);
machine(['ls']);
const left = await leaks();
spawnSync(process.execPath, [bin, 'sim', 'stop'], { env, stdio: 'inherit' });
if (left.length > 0) {
  console.error(`demo: the simulated account still has ${left.join(', ')}`);
  process.exit(1);
}
console.log('\ndemo: every step passed (Docker Engine answered over TLS with the `machine env` variables) and the simulated account is empty (no droplet, key or firewall left).');
rmSync(storage, { recursive: true, force: true });
