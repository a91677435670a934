import { redactSecrets } from '@machine/driver-core';
import { CliError, ExitCode, hostNotRunningMessage } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { dockerUrlOf } from '../docker-endpoint.ts';
import { writeLine } from '../io.ts';
import { type OpenMachine, openMachine } from '../machine-host.ts';
import { parseTemplate } from '../template.ts';
import { listRows } from './ls.ts';

function operation(ctx: CommandContext): { signal?: AbortSignal } {
  return ctx.io.signal === undefined ? {} : { signal: ctx.io.signal };
}

/** `machine status NAME`: the state string. */
export async function statusCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await openMachine(ctx, name);
  writeLine(ctx.io.stdout, await machine.driver.getState(operation(ctx)));
  return ExitCode.ok;
}

export async function runningMachine(ctx: CommandContext, name: string): Promise<OpenMachine> {
  const machine = await openMachine(ctx, name);
  const state = await machine.driver.getState(operation(ctx));
  if (state !== 'Running') throw new CliError(hostNotRunningMessage);
  return machine;
}

/**
 * `machine version NAME`: the Docker Engine version of the machine, from its engine's `GET /version`
 * over mutual TLS, like the reference (`Host is not running` when it is stopped).
 */
export async function engineVersionCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await runningMachine(ctx, name);
  const { endpoint } = await import('./env.ts');
  const { url } = await endpoint(ctx, machine);
  const { clientCertificatesIn } = await import('../provisioning.ts');
  const { dockerVersion } = await import('@machine/provision');
  writeLine(ctx.io.stdout, await dockerVersion(url, clientCertificatesIn(await ctx.store.certsDir()), { machine: name, ...operation(ctx) }));
  return ExitCode.ok;
}

/** `machine ip NAME…`. */
export async function ipCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await runningMachine(ctx, name);
  writeLine(ctx.io.stdout, await machine.driver.getIP(operation(ctx)));
  return ExitCode.ok;
}

/** `machine url NAME`. */
export async function urlCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await runningMachine(ctx, name);
  const provision = machine.record.provision;
  // A provisioned machine's engine listens on its --engine-port; otherwise the driver knows the URL.
  const url = provision === undefined ? await machine.driver.getURL(operation(ctx)) : dockerUrlOf(await machine.driver.getIP(operation(ctx)), provision.dockerPort);
  writeLine(ctx.io.stdout, url);
  return ExitCode.ok;
}

/**
 * The document `inspect` prints, shaped like the reference's host JSON (`Driver`, `DriverName`,
 * `Name`) so `{{.Driver.IPAddress}}` templates keep working. Secrets are never in it: the stored
 * config has none, and nothing from the environment is added.
 */
export async function inspectDocument(ctx: CommandContext, machine: OpenMachine): Promise<Record<string, unknown>> {
  const { record, driver } = machine;
  let ipAddress = '';
  try {
    if ((await driver.getState(operation(ctx))) === 'Running') ipAddress = await driver.getIP(operation(ctx));
  } catch (error) {
    ctx.debugLog(`inspect: ${(error as Error).message}`);
  }
  return {
    ConfigVersion: 1,
    Driver: {
      ...record.config,
      IPAddress: ipAddress,
      MachineName: record.name,
      SSHUser: record.ssh?.user ?? driver.getSSHUsername(),
      SSHPort: record.ssh?.port ?? null,
      SSHKeyPath: record.ssh?.keyPath ?? driver.getSSHKeyPath(),
      StorePath: ctx.store.root,
    },
    DriverName: record.driver,
    Name: record.name,
    Status: record.status,
    CreatedAt: record.createdAt,
    Simulated: record.sim === true,
    HostKeyFingerprint: record.ssh?.hostKeyFingerprint ?? null,
    Provision: record.provision ?? null,
    Resources: record.journal,
    Data: record.data,
    ...(record.error === undefined ? {} : { Error: record.error }),
  };
}

/** `machine inspect [-f FORMAT] NAME`. */
export async function inspectCommand(ctx: CommandContext, name: string, options: { format?: string }): Promise<number> {
  const template = options.format === undefined ? undefined : parseTemplate(options.format);
  const machine = await openMachine(ctx, name);
  const document = await inspectDocument(ctx, machine);
  const text = template === undefined ? JSON.stringify(document, null, 4) : template.render(document);
  writeLine(ctx.io.stdout, redactSecrets(text, machine.secrets));
  return ExitCode.ok;
}

/** `machine active`: the running machine whose URL is $DOCKER_HOST. */
export async function activeCommand(ctx: CommandContext, options: { timeout?: string }): Promise<number> {
  const dockerHost = ctx.io.env.DOCKER_HOST ?? '';
  if (dockerHost === '') throw new CliError('No active host found');
  const timeoutMs = Number(options.timeout ?? '10') * 1000;
  const rows = await listRows(ctx, await ctx.store.list(), { timeoutMs });
  const active = rows.find((row) => row.State === 'Running' && row.URL === dockerHost);
  if (active === undefined) throw new CliError('No active host found');
  writeLine(ctx.io.stdout, active.Name);
  return ExitCode.ok;
}
