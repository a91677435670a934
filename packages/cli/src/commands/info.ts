import { redactSecrets } from '@machine/driver-core';
import { CliError, ExitCode, hostNotRunningMessage } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
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

async function runningMachine(ctx: CommandContext, name: string): Promise<OpenMachine> {
  const machine = await openMachine(ctx, name);
  const state = await machine.driver.getState(operation(ctx));
  if (state !== 'Running') throw new CliError(hostNotRunningMessage);
  return machine;
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
  writeLine(ctx.io.stdout, await machine.driver.getURL(operation(ctx)));
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

/** `machine config NAME`: the docker client flags for the machine, like the reference. */
export async function configCommand(ctx: CommandContext, name: string): Promise<number> {
  const machine = await runningMachine(ctx, name);
  const url = await machine.driver.getURL(operation(ctx));
  const dir = ctx.store.machineDir(name);
  writeLine(ctx.io.stdout, `--tlsverify\n--tlscacert="${dir}/ca.pem"\n--tlscert="${dir}/cert.pem"\n--tlskey="${dir}/key.pem"\n-H=${url}`);
  return ExitCode.ok;
}

type Shell = 'bash' | 'zsh' | 'sh' | 'fish' | 'powershell' | 'cmd' | 'tcsh' | 'emacs';
const shells: readonly Shell[] = ['bash', 'zsh', 'sh', 'fish', 'powershell', 'cmd', 'tcsh', 'emacs'];

function detectShell(ctx: CommandContext, option: string | undefined): Shell {
  if (option !== undefined) {
    if (!(shells as readonly string[]).includes(option)) throw new CliError(`Unknown shell "${option}"; use one of ${shells.join(', ')}`);
    return option as Shell;
  }
  const fromEnv = (ctx.io.env.SHELL ?? '').split('/').pop() ?? '';
  if (fromEnv === '') {
    writeLine(ctx.io.stderr, 'The default lines below are for a sh/bash shell, you can specify the shell you\'re using, with the --shell flag.');
    return 'bash';
  }
  return ((shells as readonly string[]).includes(fromEnv) ? fromEnv : 'bash') as Shell;
}

function setLine(shell: Shell, key: string, value: string): string {
  switch (shell) {
    case 'fish':
      return `set -gx ${key} "${value}";`;
    case 'powershell':
      return `$Env:${key} = "${value}"`;
    case 'cmd':
      return `SET ${key}=${value}`;
    case 'tcsh':
      return `setenv ${key} "${value}";`;
    case 'emacs':
      return `(setenv "${key}" "${value}")`;
    default:
      return `export ${key}="${value}"`;
  }
}

function unsetLine(shell: Shell, key: string): string {
  switch (shell) {
    case 'fish':
      return `set -e ${key};`;
    case 'powershell':
      return `Remove-Item Env:\\\\${key}`;
    case 'cmd':
      return `SET ${key}=`;
    case 'tcsh':
      return `unsetenv ${key};`;
    case 'emacs':
      return `(setenv "${key}" nil)`;
    default:
      return `unset ${key}`;
  }
}

function hint(shell: Shell, command: string): string {
  switch (shell) {
    case 'fish':
      return `# Run this command to configure your shell: \n# eval (${command})`;
    case 'powershell':
      return `# Run this command to configure your shell: \n# & ${command} | Invoke-Expression`;
    case 'cmd':
      return `REM Run this command to configure your shell: \nREM \t@FOR /f "tokens=*" %i IN ('${command}') DO @%i`;
    case 'tcsh':
      return `: Run this command to configure your shell: \n: eval \`${command}\``;
    case 'emacs':
      return `;; Run this command to configure your shell: \n;; (with-temp-buffer (shell-command "${command}" (current-buffer)) (eval-buffer))`;
    default:
      return `# Run this command to configure your shell: \n# eval $(${command})`;
  }
}

const envKeys = ['DOCKER_TLS_VERIFY', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_MACHINE_NAME'] as const;

/** `machine env [--shell S] [-u] NAME`: the Docker client environment, like the reference. */
export async function envCommand(ctx: CommandContext, name: string | undefined, options: { shell?: string; unset?: boolean; noProxy?: boolean }): Promise<number> {
  const shell = detectShell(ctx, options.shell);
  const shellFlag = options.shell === undefined ? '' : ` --shell ${options.shell}`;
  if (options.unset === true) {
    if (name !== undefined) throw new CliError('Error: Expected no machine name when the -u flag is present');
    for (const key of envKeys) writeLine(ctx.io.stdout, unsetLine(shell, key));
    writeLine(ctx.io.stdout, hint(shell, `machine env${shellFlag} -u`));
    return ExitCode.ok;
  }
  const machineName = name ?? 'default';
  const machine = await runningMachine(ctx, machineName);
  const url = await machine.driver.getURL(operation(ctx));
  const values: [string, string][] = [
    ['DOCKER_TLS_VERIFY', '1'],
    ['DOCKER_HOST', url],
    ['DOCKER_CERT_PATH', ctx.store.machineDir(machineName)],
    ['DOCKER_MACHINE_NAME', machineName],
  ];
  if (options.noProxy === true) {
    const key = ctx.io.env.no_proxy !== undefined ? 'no_proxy' : 'NO_PROXY';
    const current = (ctx.io.env[key] ?? '').split(',').filter((part) => part !== '');
    const ip = await machine.driver.getIP(operation(ctx));
    if (!current.includes(ip)) current.push(ip);
    values.push([key, current.join(',')]);
  }
  for (const [key, value] of values) writeLine(ctx.io.stdout, setLine(shell, key, value));
  writeLine(ctx.io.stdout, hint(shell, `machine env${shellFlag} ${machineName}`));
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
