#!/usr/bin/env node
// The offline main job: drives the built `machine` binary through a whole machine lifecycle on a
// simulated DigitalOcean droplet (tools/cloud-sim), with real SSH, and checks nothing leaked.
// Run from the repository root with `pnpm demo` (which builds first). No cloud account needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
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

rmSync(storage, { recursive: true, force: true });
console.log(`machine ${execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim()} — storage ${storage}`);
machine(['create', '-d', 'digitalocean', '--sim', '--no-provision', '--digitalocean-firewall', name]);
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
console.log('\ndemo: every step passed and the simulated account is empty (no droplet, key or firewall left).');
rmSync(storage, { recursive: true, force: true });
