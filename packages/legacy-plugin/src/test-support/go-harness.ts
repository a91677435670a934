import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The Go sources: a plugin and a host from the standard library, types in packages named mcnflag and rpcdriver. */
export const goHarnessDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'go-harness');

/** The built Go programs. */
export interface GoHarness {
  /** `docker-machine-driver-gotoy`: a Go plugin shaped like a third-party driver. */
  readonly plugin: string;
  /** `docker-machine-driver-godo`: a Go plugin driving the DigitalOcean v2 API with net/http (pointed at cloud-sim). */
  readonly digitalOceanPlugin: string;
  /** `gohost PLUGIN NAME STORE COMMAND...`: drives a plugin the way docker-machine does. */
  readonly host: string;
}

/**
 * Builds the Go plugin and host into `outDir` with the standard library only: module mode with
 * no requirements, GOPROXY=off, GOCACHE and GOPATH under the temp folder. A missing `go` is an
 * error that says how to install it: these tests must not pass by not running.
 */
export async function buildGoHarness(outDir: string): Promise<GoHarness> {
  const go = process.env.GO ?? 'go';
  const cache = join(tmpdir(), 'machine-legacy-plugin-go');
  await mkdir(outDir, { recursive: true });
  const env = {
    ...process.env,
    GO111MODULE: 'on',
    GOFLAGS: '-mod=mod',
    GOPROXY: 'off',
    GOSUMDB: 'off',
    GOTOOLCHAIN: 'local',
    GOCACHE: join(cache, 'cache'),
    GOPATH: join(cache, 'gopath'),
    CGO_ENABLED: '0',
  };
  try {
    await run(go, ['version'], { env });
  } catch (error) {
    throw new Error(
      `the cross-language tests need Go >= 1.19 and "${go}" could not run (${(error as Error).message}); install it (Debian: apt-get install golang-go; .ci/run does) or point GO at it`,
    );
  }
  const plugin = join(outDir, 'docker-machine-driver-gotoy');
  const digitalOceanPlugin = join(outDir, 'docker-machine-driver-godo');
  const host = join(outDir, 'gohost');
  await run(go, ['build', '-o', plugin, './cmd/goplugin'], { cwd: goHarnessDir, env });
  await run(go, ['build', '-o', digitalOceanPlugin, './cmd/godoplugin'], { cwd: goHarnessDir, env });
  await run(go, ['build', '-o', host, './cmd/gohost'], { cwd: goHarnessDir, env });
  return { plugin, digitalOceanPlugin, host };
}

/** One JSON line the Go host printed. */
export interface GoHostLine {
  readonly session: string;
  readonly step: string;
  readonly value?: unknown;
  readonly error?: string;
}

/** Runs the Go host on a plugin and parses its lines. */
export async function runGoHost(
  host: string,
  options: { plugin: string; name: string; store: string; commands: readonly string[]; flags?: Record<string, unknown>; env?: Record<string, string>; pluginArgs?: readonly string[] },
): Promise<GoHostLine[]> {
  await mkdir(options.store, { recursive: true });
  const { stdout } = await run(host, [options.plugin, options.name, options.store, ...options.commands], {
    env: { ...(options.env ?? process.env), GOHOST_FLAGS: JSON.stringify(options.flags ?? {}), GOHOST_PLUGIN_ARGS: JSON.stringify(options.pluginArgs ?? []) },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as GoHostLine);
}
