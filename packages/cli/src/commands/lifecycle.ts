import { assertValidMachineName, type Driver, type State, redactSecrets } from '@machine/driver-core';
import { CliError, ExitCode, errorLine, machineNotFound } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';
import { type OpenMachine, openMachine } from '../machine-host.ts';
import { progressView } from '../progress.ts';

/**
 * The state each action leaves a machine in. Like the reference's `runActionForState`
 * (ErrHostAlreadyInState), start on a running machine and stop/kill on a stopped one fail with
 * `Machine "X" is already running.` (exit 1); restart starts a stopped machine.
 */
const actions = {
  start: { target: 'Running', verb: 'Starting', done: 'Started' },
  stop: { target: 'Stopped', verb: 'Stopping', done: 'Stopped' },
  kill: { target: 'Stopped', verb: 'Killing', done: 'Killed' },
  restart: { target: undefined, verb: 'Restarting', done: 'Restarted' },
} as const;

export type LifecycleAction = keyof typeof actions;

/** `machine start|stop|kill|restart NAME…`: the names run concurrently; the exit code is 1 when any failed. */
export async function lifecycleCommand(ctx: CommandContext, action: LifecycleAction, names: readonly string[]): Promise<number> {
  const spec = actions[action];
  // On a terminal: one line per machine when there are several, redrawn in place.
  const progress = progressView(ctx.io.stdout, { machines: names });
  const failures = await forEachMachine(ctx, names, async (name) => {
    const print = progress.printer(names.length > 1 ? name : undefined);
    const lock = await ctx.store.lock(name);
    try {
      const machine = await openMachine(ctx, name);
      const options = ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
      const state = await machine.driver.getState(options);
      if (spec.target !== undefined && state === spec.target) throw new CliError(`Machine "${name}" is already ${state.toLowerCase()}.`);
      print({ step: action, phase: 'start', message: `${spec.verb} "${name}"...` });
      await runAction(machine.driver, action, state, options);
      print({ step: action, phase: 'done', message: `${spec.done} "${name}".`, plain: true });
      const provision = machine.record.provision;
      if ((action === 'start' || action === 'restart') && provision?.state === 'provisioned') {
        // A new public IP after a stop would make the docker client refuse the old certificate.
        const { refreshCertificateAfterIpChange } = await import('../provisioning.ts');
        const { pinnedSSH } = await import('./provision.ts');
        const changed = await refreshCertificateAfterIpChange({
          name,
          store: ctx.store,
          driver: machine.driver,
          provision,
          ssh: () => pinnedSSH(ctx, machine),
          onProgress: print,
          ...options,
        });
        if (changed) await ctx.store.write(machine.record);
        else {
          // Like the reference: a started machine is ready when its engine answers.
          const { clientCertificatesIn, waitForEngine } = await import('../provisioning.ts');
          const { dockerUrlOf } = await import('../docker-endpoint.ts');
          const url = dockerUrlOf(await machine.driver.getIP(options), provision.dockerPort);
          print({ step: 'wait-docker', phase: 'start', message: `Waiting for the Docker engine of "${name}" at ${url}...` });
          await waitForEngine(name, url, clientCertificatesIn(await ctx.store.certsDir()), options);
          print({ step: 'wait-docker', phase: 'done', message: `${spec.done} "${name}": the Docker engine answers at ${url}` });
        }
      }
    } catch (error) {
      print({ step: action, phase: 'done', message: errorLine(error), failed: true });
      throw error;
    } finally {
      await lock.release();
    }
  });
  progress.close();
  if (action === 'start' && failures < names.length) {
    writeLine(ctx.io.stdout, 'Started machines may have new IP addresses. You may need to re-run the `machine env` command.');
  }
  return failures === 0 ? ExitCode.ok : ExitCode.error;
}

async function runAction(driver: Driver, action: LifecycleAction, state: State, options: { signal?: AbortSignal }): Promise<void> {
  // Like the reference, restarting a stopped machine starts it.
  if (action === 'restart' && state === 'Stopped') return driver.start(options);
  return driver[action](options);
}

/** `machine rm [-f] [-y] NAME…`. */
export async function removeCommand(ctx: CommandContext, names: readonly string[], options: { force?: boolean; yes?: boolean }): Promise<number> {
  const { io } = ctx;
  assertMachineNames(names);
  for (const name of names) writeLine(io.stdout, `About to remove ${name}`);
  writeLine(io.stdout, 'WARNING: This action will delete both local reference and remote instance.');
  if (options.force !== true && options.yes !== true) {
    const answer = await ask(ctx, 'Are you sure? (y/n): ');
    if (!/^y(es)?$/i.test(answer.trim())) {
      writeLine(io.stderr, 'Aborting.');
      return ExitCode.error;
    }
  }
  const failures = await forEachMachine(ctx, names, async (name) => {
    const lock = await ctx.store.lock(name);
    try {
      if (!(await ctx.store.exists(name))) {
        // The reference's "does not exist" error; with -f only reported (nothing to remove).
        if (options.force !== true) throw machineNotFound(name);
        writeLine(io.stderr, machineNotFound(name).message);
        return;
      }
      let machine: OpenMachine | undefined;
      try {
        machine = await openMachine(ctx, name);
        await machine.driver.remove(io.signal === undefined ? {} : { signal: io.signal });
      } catch (error) {
        const secrets = machine?.secrets ?? [];
        const left = resourcesLeft(error);
        if (left === undefined) {
          if (options.force !== true) throw error;
          writeLine(io.stderr, `Error removing machine "${name}" at the provider: ${redactSecrets(errorLine(error), secrets)}`);
        } else {
          // Never "Successfully removed" while something is alive: one line per resource left.
          writeLine(io.stderr, `Error removing machine "${name}": ${left.length} resource(s) still at the provider:`);
          for (const resource of left) writeLine(io.stderr, `  ${redactSecrets(resource, secrets)}`);
          if (options.force !== true) {
            writeLine(io.stderr, `The record of "${name}" is kept: run "machine rm ${name}" again to retry.`);
            throw new CliError('');
          }
        }
        writeLine(io.stderr, `Removing the local record of "${name}" anyway (--force); resources it made may be left at the provider (\`machine sweep\` finds them).`);
      }
      await ctx.store.remove(name);
      if (machine !== undefined && 'legacyPlugin' in machine.descriptor) {
        const { legacyPluginJournalNotice } = await import('@machine/legacy-plugin');
        writeLine(io.stdout, `Note: ${legacyPluginJournalNotice}.`);
      }
      writeLine(io.stdout, `Successfully removed ${name}`);
    } finally {
      await lock.release();
    }
  });
  // With -f the provider's errors are only reported, like the reference; a local record that could
  // not be removed (a refused link, a busy machine) still fails the command.
  return failures === 0 ? ExitCode.ok : ExitCode.error;
}

/**
 * The resources a failed remove left, one line each (`kind id (name): why`), when the error is
 * driver-core's CleanupError; undefined for any other error.
 */
function resourcesLeft(error: unknown): string[] | undefined {
  const left = (error as { left?: unknown } | null)?.left;
  if (!Array.isArray(left) || left.length === 0) return undefined;
  return left.map((resource: { kind?: unknown; id?: unknown; name?: unknown; reason?: unknown }) => {
    const named = resource.name === undefined ? '' : ` (${String(resource.name)})`;
    return `${String(resource.kind)} ${String(resource.id)}${named}: ${String(resource.reason)}`;
  });
}

/** Checks every name before a command asks, prints or touches anything: one invalid name stops it all. */
export function assertMachineNames(names: readonly string[]): void {
  for (const name of names) assertValidMachineName(name);
}

/**
 * Runs `work` for every name concurrently; each failure is printed as one line naming the machine.
 * Returns how many failed. Throws, before any work, when a name is not a valid machine name.
 */
export async function forEachMachine(ctx: CommandContext, names: readonly string[], work: (name: string) => Promise<void>): Promise<number> {
  assertMachineNames(names);
  const results = await Promise.allSettled(names.map((name) => work(name)));
  let failures = 0;
  results.forEach((result, index) => {
    if (result.status === 'fulfilled') return;
    failures++;
    const message = errorLine(result.reason);
    if (message === '') return; // already reported in full
    const name = names[index] ?? '';
    const alreadyNamed = message.includes(`"${name}"`);
    writeLine(ctx.io.stderr, alreadyNamed ? message : `machine "${name}": ${message}`);
    if (ctx.debug && result.reason instanceof Error && result.reason.stack !== undefined) writeLine(ctx.io.stderr, result.reason.stack);
  });
  return failures;
}

/** Asks a question on stdout and reads one line from stdin (empty when there is no stdin). */
export async function ask(ctx: CommandContext, question: string): Promise<string> {
  ctx.io.stdout.write(question);
  const stdin = ctx.io.stdin;
  if (stdin === undefined) return '';
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: stdin, terminal: false });
  try {
    for await (const line of lines) return line;
    return '';
  } finally {
    lines.close();
  }
}
