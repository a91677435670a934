import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/**
 * A docker-machine plugin binary (`docker-machine-driver-NAME`, here a Go one) is a driver the CLI
 * finds when no npm driver has that name: listed by `drivers ls` with where it is and the journal
 * notice, its create flags come from the plugin's GetCreateFlags.
 */
let plugin: string;
let bin: string;

/** Builds @machine/legacy-plugin's Go toy plugin (standard library only, offline, Debian's Go). */
function buildGoPlugin(outDir: string): Promise<string> {
  const harness = fileURLToPath(new URL('../../legacy-plugin/go-harness', import.meta.url));
  const cache = join(tmpdir(), 'machine-legacy-plugin-go');
  const env = { ...process.env, GO111MODULE: 'on', GOFLAGS: '-mod=mod', GOPROXY: 'off', GOSUMDB: 'off', GOTOOLCHAIN: 'local', GOCACHE: join(cache, 'cache'), GOPATH: join(cache, 'gopath'), CGO_ENABLED: '0' };
  const out = join(outDir, 'docker-machine-driver-gotoy');
  return new Promise((resolve, reject) => {
    execFile(process.env.GO ?? 'go', ['build', '-o', out, './cmd/goplugin'], { cwd: harness, env }, (error, _stdout, stderr) =>
      error === null ? resolve(out) : reject(new Error(`go build failed (Debian: apt-get install golang-go; .ci/run does): ${error.message}\n${stderr}`)),
    );
  });
}
let cli: CliHarness;

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), 'machine-go-plugins-'));
  plugin = await buildGoPlugin(bin);
  cli = await cliHarness();
}, 300_000);
afterAll(async () => {
  await cli?.close();
  await rm(bin, { recursive: true, force: true });
});

describe('docker-machine plugins in the CLI', { timeout: 120_000 }, () => {
  it('drivers ls lists them after the npm drivers, with the notice; create -d NAME --help shows their flags', async () => {
    const env = { MACHINE_DRIVER_PATH: bin };
    const ls = await cli.run(['drivers', 'ls'], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`\\ngotoy\\s+-\\s+docker-machine-driver-gotoy\\s+docker-machine plugin ${plugin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+yes\\n`));
    expect(ls.stdout).toContain("machine's resource journal cannot see inside a docker-machine plugin");
    const help = await cli.run(['create', '-d', 'gotoy', '--help'], { env });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/--gotoy-token <value>\s+gotoy API token .*\$GOTOY_TOKEN/);
    expect(help.stdout).toMatch(/--gotoy-disk-gb <number>\s+disk size in GB \[default: 20\]/);
  });

  it('a plugin that is not a working docker-machine plugin is one clear line', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'machine-broken-plugin-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(broken, 'docker-machine-driver-broken'), '#!/bin/sh\necho not-an-address\n', { mode: 0o755 });
      const result = await cli.run(['create', '-d', 'broken', '--help'], { env: { MACHINE_DRIVER_PATH: broken } });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^docker-machine plugin .*docker-machine-driver-broken does not work: /);
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
