import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverDescriptor } from '@machine/driver-core';
import { sleep } from '@machine/driver-core';
import { CliError } from './cli-error.ts';
import type { CommandContext } from './context.ts';
import { processAlive } from './lock.ts';

/**
 * `--sim`: machines on the bundled cloud simulator (tools/cloud-sim), no account needed.
 * The CLI keeps one simulator daemon per storage path, started detached with
 * `--state-file STORAGE/sim/state.json`; the state file says where each provider's API and the
 * shared SSH port are, and the driver's endpoint flags are filled from it on every command.
 * Everything that knows the simulator's shape is in this module.
 */

/** What the simulator daemon writes to its state file. */
export interface SimState {
  pid: number;
  /** API base URL by provider name (`digitalocean`, `amazonec2`, …). */
  endpoints: Record<string, string>;
  /** The shared SSH port every simulated instance listens on (each has its own 127.1.x.y address). */
  sshPort?: number;
}

/** A fake credential for the simulator (it accepts any). */
export const simToken = 'sim-token';

/** Flag values for a driver on the simulator, by driver name. */
const simFlagsByDriver: Record<string, (state: SimState) => Record<string, unknown>> = {
  digitalocean: (state) => ({
    'digitalocean-api-url': state.endpoints.digitalocean,
    'digitalocean-access-token': simToken,
    ...(state.sshPort === undefined ? {} : { 'digitalocean-ssh-port': state.sshPort }),
  }),
  amazonec2: (state) => ({
    'amazonec2-endpoint': state.endpoints.amazonec2 ?? state.endpoints.aws ?? state.endpoints.ec2,
    'amazonec2-access-key': 'AKIASIMULATOR0000000',
    'amazonec2-secret-key': simToken,
    ...(state.sshPort === undefined ? {} : { 'amazonec2-ssh-port': state.sshPort }),
  }),
};

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
  const forDriver = simFlagsByDriver[descriptor.name];
  if (forDriver === undefined) {
    throw new CliError(`--sim is not available for driver "${descriptor.name}"; it works with: ${Object.keys(simFlagsByDriver).join(', ')}`);
  }
  const state = options.start ? await ensureSim(ctx) : await readSimState(ctx.store.root);
  if (state === undefined) throw new CliError('the cloud simulator is not running; `machine create --sim …` starts it');
  const known = new Set(descriptor.flags.map((definition) => definition.name));
  return Object.fromEntries(Object.entries(forDriver(state)).filter(([name, value]) => known.has(name) && value !== undefined));
}

/** Reuses the running simulator daemon or starts one, waiting for its state file. */
export async function ensureSim(ctx: CommandContext): Promise<SimState> {
  const root = ctx.store.root;
  const running = await readSimState(root);
  if (running !== undefined) return running;
  const statePath = simStatePath(root);
  await mkdir(dirname(statePath), { recursive: true, mode: 0o700 });
  await unlink(statePath).catch(() => {});
  const [command, ...args] = simCommand(ctx, statePath);
  if (command === undefined) throw new CliError('cannot find the cloud simulator (tools/cloud-sim); set MACHINE_SIM_COMMAND');
  ctx.debugLog(`starting the cloud simulator: ${[command, ...args].join(' ')}`);
  const log = openSync(join(dirname(statePath), 'sim.log'), 'a', 0o600);
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...ctx.io.env } as NodeJS.ProcessEnv });
  child.unref();
  for (let waited = 0; waited < 30_000; waited += 100) {
    const state = await readSimState(root);
    if (state !== undefined) return state;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new CliError(`the cloud simulator did not start; see ${join(dirname(statePath), 'sim.log')}`);
}

/** Stops the simulator daemon of this storage path; false when none was running. */
export async function stopSim(ctx: CommandContext): Promise<boolean> {
  const state = await readSimState(ctx.store.root);
  if (state === undefined) return false;
  process.kill(state.pid, 'SIGTERM');
  for (let waited = 0; waited < 5000 && processAlive(state.pid); waited += 50) await sleep(50);
  await unlink(simStatePath(ctx.store.root)).catch(() => {});
  return true;
}

/** How to run the simulator: MACHINE_SIM_COMMAND, else the cloud-sim package's CLI found beside the CLI. */
function simCommand(ctx: CommandContext, statePath: string): string[] {
  const override = ctx.io.env.MACHINE_SIM_COMMAND;
  if (override !== undefined && override !== '') return [...override.split(' ').filter((part) => part !== ''), '--state-file', statePath];
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    for (const candidate of [join(dir, 'node_modules', '@machine', 'cloud-sim'), join(dir, 'tools', 'cloud-sim')]) {
      if (existsSync(join(candidate, 'package.json'))) {
        return ['pnpm', '--silent', '--dir', candidate, 'run', 'sim', '--state-file', statePath];
      }
    }
  }
  return [];
}
