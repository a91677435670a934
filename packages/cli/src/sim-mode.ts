import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverDescriptor } from '@machine/driver-core';
import { sleep } from '@machine/driver-core';
import { CliError } from './cli-error.ts';
import type { CommandContext } from './context.ts';
import { lockFile, processAlive } from './lock.ts';

/**
 * `--sim`: machines on the bundled cloud simulator (tools/cloud-sim), no account needed.
 * The CLI keeps one simulator daemon per storage path, started detached with
 * `--state-file STORAGE/sim/state.json`; the state file says where each provider's API and the
 * shared SSH port are, and the driver's endpoint flags are filled from it on every command.
 * Everything that knows the simulator's shape is in this module.
 */

/** What the simulator daemon writes to its state file (tools/cloud-sim `--state-file`). */
export interface SimState {
  pid: number;
  /** API base URL by provider name (`digitalocean`, `amazonec2`, …). */
  endpoints: Record<string, string>;
  /** The shared SSH port every simulated instance listens on (each has its own 127.1.x.y address). */
  sshPort?: number;
  /** Environment variables that point each provider's driver at the simulator (API URL, a fake token). */
  env?: Record<string, string>;
  /** The port every simulated instance's emulated dockerd listens on (the machines' `--engine-port`). */
  dockerPort?: number;
  /** The simulator's realism: `realistic` or `kind` (no limits, no lags), and how much faster than the real clouds it runs. */
  realism?: { profile: string; timeScale: number };
}

/** The simulator's default time scale (tools/cloud-sim DEFAULT_TIME_SCALE), for a state file that does not say. */
const defaultSimTimeScale = 0.01;

/**
 * How much faster than the real clouds the running simulator's limits and windows run (its state
 * file's `realism`); 0 when it runs without them (the `kind` profile); undefined when it is not running.
 */
export async function simTimeScale(root: string): Promise<number | undefined> {
  const state = await readSimState(root);
  if (state === undefined) return undefined;
  if (state.realism?.profile === 'kind') return 0;
  const scale = state.realism?.timeScale;
  return typeof scale === 'number' && Number.isFinite(scale) && scale >= 0 ? scale : defaultSimTimeScale;
}

/**
 * The flag values that point a driver at the simulator: every flag whose env var the simulator
 * sets (its API URL, a fake token), and `DRIVER-ssh-port` = the simulator's shared SSH port.
 */
export function simValuesFor(descriptor: DriverDescriptor, state: SimState): Record<string, unknown> {
  if (state.endpoints[descriptor.name] === undefined) {
    throw new CliError(`--sim is not available for driver "${descriptor.name}"; the simulator has: ${Object.keys(state.endpoints).join(', ')}`);
  }
  const values: Record<string, unknown> = {};
  for (const definition of descriptor.flags) {
    const fromSim = definition.envVar === undefined ? undefined : state.env?.[definition.envVar];
    if (fromSim !== undefined) values[definition.name] = fromSim;
    if (definition.name === `${descriptor.name}-ssh-port` && state.sshPort !== undefined) values[definition.name] = state.sshPort;
  }
  return values;
}

/** The simulator's state file under a storage root. */
export function simStatePath(root: string): string {
  return join(root, 'sim', 'state.json');
}

/** Reads the state file when its daemon is alive. */
export async function readSimState(root: string): Promise<SimState | undefined> {
  try {
    const state = JSON.parse(await readFile(simStatePath(root), 'utf8')) as SimState;
    return typeof state.pid === 'number' && processAlive(state.pid) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** The flag values that point `descriptor` at the simulator, starting the daemon when asked. */
export async function simFlagValues(ctx: CommandContext, descriptor: DriverDescriptor, options: { start: boolean }): Promise<Record<string, unknown>> {
  const state = options.start ? await ensureSim(ctx) : await readSimState(ctx.store.root);
  if (state === undefined) throw new CliError('the cloud simulator is not running; `machine create --sim …` starts it');
  return simValuesFor(descriptor, state);
}

/** The simulator's docker port (its state file's `dockerPort`), the default `--engine-port` of `--sim` machines. */
export async function simEnginePort(ctx: CommandContext): Promise<number | undefined> {
  const state = await ensureSim(ctx);
  return typeof state.dockerPort === 'number' ? state.dockerPort : undefined;
}

/** How long a command waits for another one that is starting the simulator of the same storage path. */
const simStartWaitMs = 60_000;

/**
 * Reuses the running simulator daemon or starts one, waiting for its state file. Starting takes the
 * storage path's `sim/start.lock`, so however many commands start at once, one daemon runs per
 * storage path: the others wait for it and reuse it.
 */
export async function ensureSim(ctx: CommandContext): Promise<SimState> {
  const root = ctx.store.root;
  const running = await readSimState(root);
  if (running !== undefined) return running;
  const statePath = simStatePath(root);
  const lock = await lockFile(join(dirname(statePath), 'start.lock'), {
    waitMs: simStartWaitMs,
    whenBusy: (pid) => new CliError(`the cloud simulator is still being started by process ${pid}; try again, or see ${join(dirname(statePath), 'sim.log')}`),
    stuck: () => new CliError(`could not take ${join(dirname(statePath), 'start.lock')}; remove it if no machine command is running`),
  });
  try {
    // Another command may have started it while this one waited for the lock.
    const started = await readSimState(root);
    if (started !== undefined) return started;
    return await startSim(ctx, statePath);
  } finally {
    await lock.release();
  }
}

async function startSim(ctx: CommandContext, statePath: string): Promise<SimState> {
  await mkdir(dirname(statePath), { recursive: true, mode: 0o700 });
  await unlink(statePath).catch(() => {});
  const [command, ...args] = simCommand(ctx, statePath);
  if (command === undefined) throw new CliError('cannot find the cloud simulator: `machine drivers install cloud-sim` installs it (or set MACHINE_SIM_COMMAND)');
  ctx.debugLog(`starting the cloud simulator: ${[command, ...args].join(' ')}`);
  const log = openSync(join(dirname(statePath), 'sim.log'), 'a', 0o600);
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env: simDaemonEnv({ ...process.env, ...ctx.io.env }) });
  child.unref();
  for (let waited = 0; waited < 30_000; waited += 100) {
    const state = await readSimState(ctx.store.root);
    if (state !== undefined) return state;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new CliError(`the cloud simulator did not start; see ${join(dirname(statePath), 'sim.log')}`);
}

/** What the simulator daemon keeps of the environment: what runs Node and the simulator's own `CLOUD_SIM_*` knobs. */
const simDaemonVariables = /^(PATH|HOME|USER|LOGNAME|SHELL|TMPDIR|TMP|TEMP|LANG|LC_[A-Z]+|TZ|NODE_OPTIONS|SYSTEMROOT|WINDIR|CLOUD_SIM_[A-Z0-9_]+)$/;

/**
 * The daemon's environment: an allow-list, so none of the user's cloud credentials
 * (`DIGITALOCEAN_ACCESS_TOKEN`, `AWS_*`, `AZURE_*`, `GOOGLE_*`, …) lives on in a long-running process.
 */
export function simDaemonEnv(env: Readonly<Record<string, string | undefined>>): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && simDaemonVariables.test(key)) kept[key] = value;
  return kept;
}

/**
 * Stops every simulator daemon of this storage path: the one in the state file and any other process
 * serving the same state file (left by an older CLI or a lost state file); false when none was running.
 */
export async function stopSim(ctx: CommandContext): Promise<boolean> {
  const statePath = simStatePath(ctx.store.root);
  const pids = new Set(await daemonsServing(statePath));
  const state = await readSimState(ctx.store.root);
  if (state !== undefined) pids.add(state.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      pids.delete(pid); // gone already
    }
  }
  for (let waited = 0; waited < 5000 && [...pids].some(processAlive); waited += 50) await sleep(50);
  await unlink(statePath).catch(() => {});
  return pids.size > 0;
}

/** Pids of the processes whose command line serves `statePath` (`--state-file PATH`); Linux only (/proc), else none. */
export async function daemonsServing(statePath: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
      .map(async (entry) => {
        const argv = (await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '')).split('\0');
        const at = argv.indexOf('--state-file');
        if (at !== -1 && argv[at + 1] === statePath) found.push(Number(entry));
      }),
  );
  return found;
}

/**
 * How to run the simulator: MACHINE_SIM_COMMAND, else the cloud-sim package found beside the CLI
 * (a dependency, or tools/cloud-sim of this repository): its built CLI, or its sources with
 * Node's type stripping.
 */
export function simCommand(ctx: Pick<CommandContext, 'io'>, statePath: string): string[] {
  const override = ctx.io.env.MACHINE_SIM_COMMAND;
  if (override !== undefined && override !== '') return [...override.split(' ').filter((part) => part !== ''), '--state-file', statePath];
  // The CLI running from its sources (development, tests) runs the simulator from its sources too,
  // so a stale simulator build is never picked up; a built CLI prefers the built simulator.
  const fromSource = import.meta.url.endsWith('.ts');
  // Installed with `machine drivers install cloud-sim` (STORAGE/drivers, beside STORAGE/sim): it wins.
  const installed = join(dirname(dirname(statePath)), 'drivers', 'node_modules', '@machine', 'cloud-sim', 'dist', 'cli.js');
  if (existsSync(installed)) return [process.execPath, installed, '--state-file', statePath];
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    for (const candidate of [join(dir, 'node_modules', '@machine', 'cloud-sim'), join(dir, 'tools', 'cloud-sim')]) {
      const built = [process.execPath, join(candidate, 'dist', 'cli.js'), '--state-file', statePath];
      const source = [process.execPath, '--conditions=@machine/source', join(candidate, 'src', 'cli.ts'), '--state-file', statePath];
      const hasBuilt = existsSync(join(candidate, 'dist', 'cli.js'));
      const hasSource = existsSync(join(candidate, 'src', 'cli.ts'));
      if (hasBuilt && !(fromSource && hasSource)) return built;
      if (hasSource) return source;
    }
  }
  return [];
}
