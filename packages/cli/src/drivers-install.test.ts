import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCoreVersion } from './driver-registry.ts';
import { writeFixtureDriver } from './test-support/fixture-driver.ts';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/**
 * `machine drivers install/update/remove/ls` end to end with the real npm, against a loopback npm
 * registry served here (packuments and tarballs made with `npm pack`), and tarball paths.
 */

interface Published {
  name: string;
  version: string;
  tarball: Buffer;
  peerRange: string;
}

let work: string;
let registry: Server;
let registryUrl: string;
const published: Published[] = [];
let coreVersion: string;

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: { ...process.env, npm_config_cache: join(work, 'npm-cache') } }, (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stderr}`))));
  });
}

/** Packs a fixture driver (file-backed, no imports) as `packageName@version` whose descriptor is named `driverName`. */
async function pack(packageName: string, driverName: string, version: string, peerRange: string): Promise<string> {
  const dir = await mkdtemp(join(work, 'pkg-'));
  await writeFixtureDriver(dir, driverName, version);
  const packageDir = join(dir, `machine-driver-${driverName}`);
  const manifest = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8'));
  await writeFile(join(packageDir, 'package.json'), JSON.stringify({ ...manifest, name: packageName, license: 'Apache-2.0', peerDependencies: { '@machine/driver-core': peerRange } }));
  const out = await mkdtemp(join(work, 'tgz-'));
  await run('npm', ['pack', '--pack-destination', out, '--silent'], packageDir);
  const [file] = await readdir(out);
  return join(out, file as string);
}

async function publish(packageName: string, driverName: string, version: string, peerRange: string): Promise<void> {
  const path = await pack(packageName, driverName, version, peerRange);
  published.push({ name: packageName, version, tarball: await readFile(path), peerRange });
}

/** A loopback npm registry: GET /NAME (packument) and GET /-/FILE.tgz. */
function serveRegistry(): Promise<Server> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent((request.url ?? '/').split('?')[0] ?? '/');
    const tarball = /^\/-\/(.+)-(\d+\.\d+\.\d+)\.tgz$/.exec(path);
    if (tarball !== null) {
      const found = published.find((item) => item.name.replace('/', '-') === tarball[1] && item.version === tarball[2]);
      if (found === undefined) return void response.writeHead(404).end();
      return void response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(found.tarball);
    }
    const name = path.slice(1);
    const versions = published.filter((item) => item.name === name);
    if (versions.length === 0) return void response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    const packument = {
      name,
      'dist-tags': { latest: versions.at(-1)?.version },
      versions: Object.fromEntries(
        versions.map((item) => [
          item.version,
          {
            name,
            version: item.version,
            peerDependencies: { '@machine/driver-core': item.peerRange },
            dist: {
              tarball: `${registryUrl}/-/${name.replace('/', '-')}-${item.version}.tgz`,
              shasum: createHash('sha1').update(item.tarball).digest('hex'),
              integrity: `sha512-${createHash('sha512').update(item.tarball).digest('base64')}`,
            },
          },
        ]),
      ),
    };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-drivers-install-'));
  coreVersion = await cliCoreVersion();
  registry = await serveRegistry();
  registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  await publish('@machine/driver-hello', 'hello', '1.0.0', `^${coreVersion}`);
  await publish('@machine/driver-hello', 'hello', '1.1.0', `^${coreVersion}`);
});
afterAll(async () => {
  registry.close();
  await rm(work, { recursive: true, force: true });
});

describe('machine drivers install / update / remove / ls (real npm, loopback registry)', { timeout: 120_000 }, () => {
  let cli: CliHarness;
  const env = () => ({ npm_config_registry: registryUrl, npm_config_cache: join(work, 'npm-cache'), npm_config_update_notifier: 'false', FIXTURE_CLOUD_DIR: join(work, 'cloud') });

  beforeAll(async () => {
    cli = await cliHarness({ drivers: {} });
  });
  afterAll(async () => {
    await cli.close();
  });

  it('a driver that is not installed says how to install it', async () => {
    const missing = await cli.run(['create', '-d', 'hello', 'h1'], { env: env() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('`machine drivers install hello` installs it');
  });

  it('installs NAME@VERSION from the registry into STORAGE/drivers, lists it, and create uses it', async () => {
    const installed = await cli.run(['drivers', 'install', 'hello@1.0.0'], { env: env() });
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain('Installed hello 1.0.0 (@machine/driver-hello).');
    expect(installed.stdout).toContain('Install scripts were not run (npm --ignore-scripts)');
    // This CLI's driver-core is linked in, not a second copy.
    const link = join(cli.storage, 'drivers', 'node_modules', '@machine', 'driver-core');
    expect(JSON.parse(await readFile(join(link, 'package.json'), 'utf8')).version).toBe(coreVersion);
    const ls = await cli.run(['drivers', 'ls'], { env: env() });
    expect(ls.stdout).toMatch(/\nhello\s+1\.0\.0\s+@machine\/driver-hello\s+drivers\s+yes\n/);
    expect(ls.stdout).toContain(`Lookup order: MACHINE_DRIVER_PATH, then drivers (${join(cli.storage, 'drivers')}), then cli`);
    const created = await cli.run(['create', '-d', 'hello', 'h1'], { env: env() });
    expect(created.code, created.stderr).toBe(0);
    expect((await cli.run(['rm', '-y', 'h1'], { env: env() })).code).toBe(0);
  });

  it('update moves it to the newest version', async () => {
    const updated = await cli.run(['drivers', 'update', 'hello'], { env: env() });
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toContain('@machine/driver-hello is at 1.1.0.');
    expect((await cli.run(['drivers'], { env: env() })).stdout).toMatch(/\nhello\s+1\.1\.0\s+@machine\/driver-hello\s+drivers\s+yes\n/);
  });

  it('a copy on MACHINE_DRIVER_PATH wins, and ls shows both copies and which one is used', async () => {
    const pathDir = await mkdtemp(join(work, 'path-'));
    await writeFixtureDriver(pathDir, 'hello', '7.0.0');
    const ls = await cli.run(['drivers', 'ls'], { env: { ...env(), MACHINE_DRIVER_PATH: pathDir } });
    expect(ls.stdout).toMatch(/\nhello\s+7\.0\.0\s+machine-driver-hello\s+\S+\s+yes\nhello\s+1\.1\.0\s+@machine\/driver-hello\s+drivers\s+no \(shadowed\)\n/);
  });

  it('installs a tarball path, and refuses (and removes again) a driver built for another driver-core, naming both versions', async () => {
    const good = await pack('machine-driver-tarred', 'tarred', '2.0.0', `>=${coreVersion}`);
    const fromTarball = await cli.run(['drivers', 'install', good], { env: env() });
    expect(fromTarball.code, fromTarball.stderr).toBe(0);
    expect(fromTarball.stdout).toContain('Installed tarred 2.0.0 (machine-driver-tarred).');

    const future = await pack('machine-driver-future', 'future', '3.0.0', '^99.0.0');
    const refused = await cli.run(['drivers', 'install', future], { env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`machine-driver-future was not kept: driver "future" (machine-driver-future 3.0.0`);
    expect(refused.stderr).toContain(`was built for @machine/driver-core ^99.0.0, but this machine CLI has ${coreVersion}`);
    const manifest = JSON.parse(await readFile(join(cli.storage, 'drivers', 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@machine/driver-hello', 'machine-driver-tarred']);
  });

  it('remove takes it out of STORAGE/drivers; a name it does not manage is refused', async () => {
    expect((await cli.run(['drivers', 'remove', 'hello', 'tarred'], { env: env() })).code).toBe(0);
    expect((await cli.run(['drivers', 'ls'], { env: env() })).stdout).not.toMatch(/\nhello\s/);
    const notThere = await cli.run(['drivers', 'remove', 'digitalocean'], { env: env() });
    expect(notThere.code).toBe(1);
    expect(notThere.stderr).toContain(`"digitalocean" is not installed in ${join(cli.storage, 'drivers')}`);
    expect((await cli.run(['drivers', 'install', 'no such thing'], { env: env() })).stderr).toContain('is not a driver name, npm package name or tarball path');
  });
});
