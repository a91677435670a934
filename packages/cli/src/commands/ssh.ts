import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { withSSHClient } from '@machine/driver-core/ssh';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { openMachine } from '../machine-host.ts';
import { explainHostKeyError, HostKeyChangedError, hostKeyChangedMessage, type MachineSSH, machineSSH, presentedHostKey } from '../ssh-target.ts';

/** The path of an executable on PATH, or undefined. */
export function findExecutable(name: string, pathVariable: string | undefined): string | undefined {
  for (const dir of (pathVariable ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The OpenSSH options the CLI passes, like the reference's, except that the host key is checked
 * against the machine's own known_hosts (filed under an alias, so a new IP does not matter).
 */
export function openSSHOptions(target: MachineSSH): string[] {
  const options = [
    '-o', 'ConnectionAttempts=3',
    '-o', 'ConnectTimeout=10',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'LogLevel=quiet',
    '-o', 'PasswordAuthentication=no',
    '-o', 'ServerAliveInterval=60',
    '-o', `HostKeyAlias=${target.hostKeyAlias}`,
    // With a key file, only that key; with an agent (empty key path), OpenSSH asks SSH_AUTH_SOCK.
    ...(target.keyPath === '' ? [] : ['-o', 'IdentitiesOnly=yes', '-i', target.keyPath]),
    '-p', String(target.port),
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${target.knownHostsPath}`,
  ];
  return options;
}

/**
 * `machine ssh NAME [ssh options] [-- command…]`: the system's OpenSSH client when there is one
 * (extra arguments go to it), the built-in client with `--native-ssh` or without `ssh` on PATH.
 * The exit code of the remote command is passed through.
 */
export async function sshCommand(ctx: CommandContext, args: readonly string[]): Promise<number> {
  const [name = 'default', ...rest] = args;
  try {
    return await sshInto(ctx, name, rest);
  } catch (error) {
    // A refused host key exits with OpenSSH's 255 whichever client refused it.
    const explained = explainHostKeyError(error, name);
    if (explained instanceof HostKeyChangedError) throw new HostKeyChangedError(explained.message, ExitCode.sshFailure, { cause: error });
    throw explained;
  }
}

async function sshInto(ctx: CommandContext, name: string, rest: readonly string[]): Promise<number> {
  const machine = await openMachine(ctx, name);
  const target = await machineSSH(machine, ctx.store.machineDir(name), ctx.io.signal);
  const ssh = ctx.nativeSsh ? undefined : findExecutable('ssh', ctx.io.env.PATH);
  if (ssh !== undefined) {
    ctx.debugLog(`using ${ssh}`);
    const code = await runOpenSSH(ctx, ssh, [...openSSHOptions(target), `${target.username}@${target.host}`, ...rest]);
    // 255 is OpenSSH's own failure, quiet under LogLevel=quiet: say so when it was a changed host key.
    if (code === 255 && target.hostKeyFingerprint !== undefined) await reportChangedHostKey(ctx, target);
    return code;
  }
  const { options, command } = splitNativeArguments(rest);
  if (options.length > 0) throw new CliError(`the built-in SSH client does not take ssh options (${options.join(' ')}); install OpenSSH or leave them out`);
  return command === '' ? nativeShell(ctx, target) : nativeExec(ctx, target, command);
}

/**
 * The built-in client's reading of `[ssh options] [--] command…`, as OpenSSH reads it: options are
 * the words before the first word that is not one (or before `--`); from there on, every word,
 * `-h` of `df -h` included, belongs to the remote command.
 */
export function splitNativeArguments(args: readonly string[]): { options: string[]; command: string } {
  const options: string[] = [];
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--') {
      index++;
      break;
    }
    if (!arg.startsWith('-')) break;
    options.push(arg);
  }
  return { options, command: args.slice(index).join(' ') };
}

/** After OpenSSH failed: when the machine now presents another host key than the recorded one, says so and how to accept it. */
async function reportChangedHostKey(ctx: CommandContext, target: MachineSSH): Promise<void> {
  try {
    const presented = await presentedHostKey(target.host, target.port, 5000);
    if (presented.fingerprint === target.hostKeyFingerprint) return;
    ctx.io.stderr.write(`${hostKeyChangedMessage(target.machine ?? '', target.hostKeyFingerprint, presented.fingerprint)}\n`);
  } catch {
    // The machine did not answer: OpenSSH's exit code says enough.
  }
}

function runOpenSSH(ctx: CommandContext, command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const inherit = ctx.io.inheritStdio === true;
    const child = spawn(command, args, { stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'], env: { ...(ctx.io.env as NodeJS.ProcessEnv) } });
    if (!inherit) {
      child.stdout?.on('data', (chunk: Buffer) => ctx.io.stdout.write(chunk));
      child.stderr?.on('data', (chunk: Buffer) => ctx.io.stderr.write(chunk));
    }
    child.on('error', (error) => reject(new CliError(`could not run ${command}: ${error.message}`)));
    child.on('close', (code, signal) => resolve(code ?? (signal === null ? ExitCode.error : 128 + 2)));
  });
}

function nativeExec(ctx: CommandContext, target: MachineSSH, command: string): Promise<number> {
  return withSSHClient(target, ctx.io.signal, (client) =>
    new Promise<number>((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) {
          reject(new CliError(`could not run the command on "${target.machine}": ${error.message}`));
          return;
        }
        let code = ExitCode.error as number;
        channel.on('data', (chunk: Buffer) => ctx.io.stdout.write(chunk));
        channel.stderr.on('data', (chunk: Buffer) => ctx.io.stderr.write(chunk));
        channel.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : 255;
        });
        channel.on('close', () => resolve(code));
        channel.end();
      });
    }),
  );
}

function nativeShell(ctx: CommandContext, target: MachineSSH): Promise<number> {
  const stdin = ctx.io.stdin;
  const terminal = stdin?.isTTY === true;
  return withSSHClient(target, ctx.io.signal, (client) =>
    new Promise<number>((resolve, reject) => {
      const stdout = ctx.io.stdout as { columns?: number; rows?: number };
      const window = terminal ? { term: ctx.io.env.TERM ?? 'xterm', cols: stdout.columns ?? 80, rows: stdout.rows ?? 24 } : false;
      client.shell(window, (error, channel) => {
        if (error) {
          reject(new CliError(`could not open a shell on "${target.machine}": ${error.message}`));
          return;
        }
        const raw = stdin as unknown as { setRawMode?: (on: boolean) => void };
        if (terminal) raw.setRawMode?.(true);
        let code = 0;
        const forward = (chunk: Buffer) => channel.write(chunk);
        stdin?.on('data', forward);
        stdin?.on('end', () => channel.end());
        channel.on('data', (chunk: Buffer) => ctx.io.stdout.write(chunk));
        channel.stderr.on('data', (chunk: Buffer) => ctx.io.stderr.write(chunk));
        channel.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : 255;
        });
        channel.on('close', () => {
          stdin?.removeListener('data', forward);
          if (terminal) raw.setRawMode?.(false);
          stdin?.pause();
          resolve(code);
        });
        stdin?.resume();
      });
    }),
  );
}
