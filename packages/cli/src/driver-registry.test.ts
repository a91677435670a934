import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { driverPackageNames } from './driver-registry.ts';
import { writeBrokenDriver, writeFixtureDriver } from './test-support/fixture-driver.ts';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

let cli: CliHarness;
let driverPath: string;
let cloudDir: string;
beforeEach(async () => {
  cli = await cliHarness();
  driverPath = await mkdtemp(join(tmpdir(), 'machine-drivers-'));
  cloudDir = join(driverPath, 'cloud');
  await writeFixtureDriver(driverPath, 'memo');
  await writeBrokenDriver(driverPath, 'bad');
});
afterEach(async () => {
  await cli.close();
  await rm(driverPath, { recursive: true, force: true });
});

describe('driver discovery', () => {
  it('names driver packages @machine/driver-X, then machine-driver-X', () => {
    expect(driverPackageNames('digitalocean')).toEqual(['@machine/driver-digitalocean', 'machine-driver-digitalocean']);
  });

  it('finds a third-party driver in MACHINE_DRIVER_PATH and runs a machine with it', async () => {
    const env = { MACHINE_DRIVER_PATH: `/nonexistent:${driverPath}`, FIXTURE_CLOUD_DIR: cloudDir };
    const drivers = await cli.run(['drivers'], { env });
    expect(drivers.stdout).toMatch(/memo\s+1\.2\.3\s+machine-driver-memo/);
    expect(drivers.stdout).toMatch(/fake\s+-\s+\(built in\)/);
    const help = await cli.run(['create', '-d', 'memo', '--help'], { env });
    expect(help.stdout).toMatch(/--memo-cloud-dir <value>\s+folder that plays the cloud \[required; \$FIXTURE_CLOUD_DIR\]/);
    expect((await cli.run(['create', '-d', 'memo', 'm1'], { env })).code).toBe(0);
    expect((await cli.run(['ls', '--format', '{{.Name}} {{.DriverName}} {{.State}} {{.URL}}'], { env })).stdout).toBe('m1 memo Running tcp://192.0.2.10:2376\n');
    expect((await cli.run(['rm', '-y', 'm1'], { env })).code).toBe(0);
    expect(await readdir(cloudDir)).toEqual([]);
  });

  it('lists the first-party drivers the CLI depends on, and builds help from their descriptors without their SDKs', async () => {
    const drivers = await cli.run(['drivers']);
    expect(drivers.stdout).toMatch(/digitalocean\s+\d+\.\d+\.\d+\s+@machine\/driver-digitalocean\s+cli/);
    expect(drivers.stdout).toMatch(/generic\s+\d+\.\d+\.\d+\s+@machine\/driver-generic\s+cli/);
    expect(drivers.stdout).toMatch(/amazonec2\s+\d+\.\d+\.\d+\s+@machine\/driver-amazonec2\s+cli/);
    expect(drivers.stdout).toMatch(/none\s+\d+\.\d+\.\d+\s+@machine\/driver-none\s+cli/);
    expect(drivers.stdout).toMatch(/virtualbox\s+\d+\.\d+\.\d+\s+@machine\/driver-virtualbox\s+cli/);
    expect(drivers.stdout).not.toContain('driver-core');
    const help = await cli.run(['create', '-d', 'digitalocean', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--digitalocean-access-token <value>\s+.*\$DIGITALOCEAN_ACCESS_TOKEN/);
    expect(help.stdout).toMatch(/--digitalocean-region <value>\s+Region slug \[default: "nyc3"; \$DIGITALOCEAN_REGION\]/);
  });

  it('says clearly when a package does not export a driver, naming it', async () => {
    const result = await cli.run(['create', '-d', 'bad', 'm1'], { env: { MACHINE_DRIVER_PATH: driverPath } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('machine-driver-bad does not export a valid machine driver: it has no `name`\n');
  });

  it('refuses a driver name that is not a package name part', async () => {
    const result = await cli.run(['create', '-d', '../evil', 'm1']);
    expect(result.stderr).toContain('Driver "../evil" not found');
  });
});
