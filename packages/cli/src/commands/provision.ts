import { type ProgressEvent, MachineError, offersSSH, redactSecrets } from '@machine/driver-core';
import { type SSHTarget, waitForSSH } from '@machine/driver-core/ssh';
import type { ClientCertificates, EngineOptions, ServerCertificate } from '@machine/provision';
import { CliError, ExitCode, errorLine } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { provisionHint } from '../docker-endpoint.ts';
import { writeLine } from '../io.ts';
import { type OpenMachine, openMachine } from '../machine-host.ts';
import { progressView } from '../progress.ts';
import { copyClientFiles, engineOf, installNewServerCertificate, issueFor, provisionRecord } from '../provisioning.ts';
import { explainHostKeyError, machineSSH } from '../ssh-target.ts';
import type { MachineRecord } from '../store.ts';
import { ask, assertMachineNames, forEachMachine } from './lifecycle.ts';

/** What provisioning a machine needs once it answers SSH. */
export interface ProvisionPlan {
  ssh: SSHTarget;
  dockerHost: string;
  client: ClientCertificates;
  server: ServerCertificate;
  engine: EngineOptions;
}

function operation(ctx: CommandContext): { signal?: AbortSignal } {
  return ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
}

/**
 * Installs and configures the engine (`@machine/provision`'s provisionDocker) and records the
 * machine as provisioned with the engine version. Throws the ProvisionError (or a host-key CliError).
 */
export async function runProvisioning(
  ctx: CommandContext,
  plan: ProvisionPlan & { cloudInit: boolean; record: MachineRecord; onProgress: (event: ProgressEvent) => void },
): Promise<void> {
  const { provisionDocker } = await import('@machine/provision');
  const { record, engine, server } = plan;
  plan.onProgress({ step: 'provision', phase: 'start', message: `Provisioning Docker Engine on "${record.name}"...` });
  const result = await provisionDocker(
    { ssh: plan.ssh, dockerHost: plan.dockerHost },
    { engine, client: plan.client, server, cloudInit: plan.cloudInit, onProgress: plan.onProgress, ...operation(ctx) },
  ).catch((error: unknown) => {
    throw explainHostKeyError(error, record.name);
  });
  record.provision = { ...provisionRecord(engine, 'provisioned', server.sans), dockerVersion: result.dockerVersion };
  await ctx.store.write(record);
  plan.onProgress({ step: 'provision', phase: 'done', message: `Docker Engine ${result.dockerVersion} is running on "${record.name}" with TLS on port ${engine.port}` });
}

/**
 * A failed provisioning: the machine is kept and recorded as `failed` (`ls` shows Error with the
 * hint); stderr gets the one-line error, the machine's log tail and what to do. Returns the exit code.
 */
export async function reportProvisionFailure(ctx: CommandContext, record: MachineRecord, error: unknown, secrets: readonly string[]): Promise<number> {
  const message = redactSecrets(errorLine(error), secrets);
  const interrupted = MachineError.isInstance(error) && error.code === 'CANCELLED';
  if (record.provision !== undefined) {
    record.provision.state = 'failed';
    record.provision.error = interrupted ? 'provisioning was interrupted' : message;
    await ctx.store.write(record);
  }
  writeLine(ctx.io.stderr, interrupted ? `provisioning of "${record.name}" was interrupted` : message);
  const logTail = (error as { logTail?: unknown }).logTail;
  if (Array.isArray(logTail) && logTail.length > 0) {
    writeLine(ctx.io.stderr, 'Last lines of the provisioning log on the machine:');
    for (const line of logTail) writeLine(ctx.io.stderr, `    ${redactSecrets(String(line), secrets)}`);
  }
  writeLine(ctx.io.stderr, `The machine "${record.name}" is kept: ${provisionHint(record.name)}`);
  if (ctx.debug && error instanceof Error && error.stack !== undefined) writeLine(ctx.io.stderr, error.stack);
  return interrupted ? ExitCode.interrupted : ExitCode.error;
}

/** A running machine's SSH target, pinned to its recorded host key, once SSH answers. */
export async function pinnedSSH(ctx: CommandContext, machine: OpenMachine): Promise<SSHTarget> {
  const { record } = machine;
  const target = await machineSSH(machine, ctx.store.machineDir(record.name), ctx.io.signal);
  const fingerprint = await waitForSSH(target, { timeout: 120_000, ...operation(ctx) }).catch((error: unknown) => {
    throw explainHostKeyError(error, record.name);
  });
  if (target.presentedKey !== undefined && record.ssh !== undefined) {
    // A record without a stored key: the one machineSSH pinned (trust on first use) is recorded, so any later change is refused.
    record.ssh = { ...record.ssh, hostKeyFingerprint: fingerprint, hostKey: target.presentedKey };
    await ctx.store.write(record);
  }
  return target;
}

/**
 * `machine provision NAME…`: provisions again (install the engine over SSH when it is missing,
 * write daemon.json, a new server certificate, restart dockerd, wait for the API), with the
 * machine's pinned host key and its recorded engine options. Runs the names concurrently.
 */
export async function provisionCommand(ctx: CommandContext, names: readonly string[]): Promise<number> {
  // One view for all the machines: on a terminal one line each when there are several.
  const progress = progressView(ctx.io.stdout, { machines: names });
  const failures = await forEachMachine(ctx, names, async (name) => {
    const print = progress.printer(names.length > 1 ? name : undefined);
    const lock = await ctx.store.lock(name);
    try {
      const machine = await openMachine(ctx, name);
      const { record, driver } = machine;
      if (record.status !== 'ready') throw new CliError(`machine "${name}" was not created completely; \`machine rm ${name}\` deletes what it made`);
      if (!offersSSH(machine.descriptor)) throw new CliError(`machine "${name}" (driver ${record.driver}) has no SSH: there is nothing to provision`);
      const provisionModule = await import('@machine/provision');
      const engine = record.provision === undefined ? provisionModule.engineOptionsFrom({}) : await engineOf(record.provision);
      const state = await driver.getState(operation(ctx));
      if (state !== 'Running') throw new CliError(`Host "${name}" is not running: \`machine start ${name}\` first`);
      const target = await pinnedSSH(ctx, machine);
      const client = await ctx.store.withCerts((dir) => provisionModule.ensureClientCertificates(dir));
      await copyClientFiles(client, ctx.store.machineDir(name));
      const ip = await driver.getIP(operation(ctx));
      const server = await issueFor(name, ctx.store.machineDir(name), client, engine, ip);
      record.provision = provisionRecord(engine, 'failed', server.sans);
      try {
        // cloud-init ran once at first boot; a retry does the same steps over SSH.
        await runProvisioning(ctx, { ssh: target, dockerHost: ip, client, server, engine, cloudInit: false, record, onProgress: print });
      } catch (error) {
        await reportProvisionFailure(ctx, record, error, machine.secrets);
        throw new CliError(''); // reported above

      }
    } finally {
      await lock.release();
    }
  });
  progress.close();
  return failures === 0 ? ExitCode.ok : ExitCode.error;
}

/**
 * `machine regenerate-certs [-f] [--client-certs] NAME…`: a new server certificate for the machine's
 * current IP, installed on it (dockerd restarts). `--client-certs` first remakes the CA and client
 * certificate, which invalidates every other machine's certificates too.
 */
export async function regenerateCertsCommand(ctx: CommandContext, names: readonly string[], options: { force?: boolean; clientCerts?: boolean }): Promise<number> {
  assertMachineNames(names);
  if (options.force !== true) {
    const answer = await ask(ctx, 'Regenerate TLS machine certs?  Warning: this is irreversible. (y/n): ');
    if (!/^y(es)?$/i.test(answer.trim())) return ExitCode.ok;
  }
  writeLine(ctx.io.stdout, 'Regenerating TLS certificates');
  const { ensureClientCertificates } = await import('@machine/provision');
  const client = await ctx.store.withCerts((dir) => ensureClientCertificates(dir, { regenerate: options.clientCerts === true }));
  if (options.clientCerts === true) {
    writeLine(ctx.io.stdout, `Made a new CA and client certificate in ${client.dir}; machines not named here need \`machine regenerate-certs\` too.`);
  }
  const progress = progressView(ctx.io.stdout, { machines: names });
  const failures = await forEachMachine(ctx, names, async (name) => {
    const lock = await ctx.store.lock(name);
    try {
      const machine = await openMachine(ctx, name);
      const { record, driver } = machine;
      const provision = record.provision;
      if (provision === undefined || provision.state === 'skipped') throw new CliError(`machine "${name}" has no Docker engine to regenerate certificates for; "machine provision ${name}" installs one`);
      const state = await driver.getState(operation(ctx));
      if (state !== 'Running') throw new CliError(`Host "${name}" is not running: \`machine start ${name}\` first`);
      await copyClientFiles(client, ctx.store.machineDir(name));
      const ip = await driver.getIP(operation(ctx));
      await installNewServerCertificate({ name, store: ctx.store, provision, ip, client, ssh: () => pinnedSSH(ctx, machine), onProgress: progress.printer(names.length > 1 ? name : undefined), ...operation(ctx) });
      await ctx.store.write(record);
      writeLine(ctx.io.stdout, `Installed a new server certificate on "${name}" (valid for ${provision.serverCertSans.join(', ')}).`);
    } finally {
      await lock.release();
    }
  });
  progress.close();
  return failures === 0 ? ExitCode.ok : ExitCode.error;
}
