import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { assertValidMachineName } from '@machine/driver-core';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { openMachine } from '../machine-host.ts';
import { explainHostKeyError, type MachineSSH, machineSSH } from '../ssh-target.ts';
import { findExecutable } from './ssh.ts';

/** `NAME:PATH` of `machine mount`: the machine and the folder on it (empty: the login user's home). */
export interface MountSource {
  machine: string;
  remotePath: string;
}

/** Parses `NAME:PATH` (the machine name is checked before anything else happens). */
export function parseMountSource(argument: string): MountSource {
  const colon = argument.indexOf(':');
  if (colon <= 0) throw new CliError(`"${argument}" is not NAME:PATH: say which machine folder to mount, e.g. \`machine mount web1:/var/log ./logs\``);
  const machine = argument.slice(0, colon);
  assertValidMachineName(machine);
  return { machine, remotePath: argument.slice(colon + 1) };
}

/** Where sshfs comes from on each system, for the one-line error when it is missing. */
export function sshfsMissingMessage(platform: NodeJS.Platform = process.platform): string {
  const install =
    platform === 'darwin'
      ? 'install macFUSE and sshfs (brew install --cask macfuse && brew install gromgit/fuse/sshfs-mac)'
      : platform === 'win32'
        ? 'machine mount needs sshfs and FUSE, which Windows does not have (use WSL, or `machine scp -r`)'
        : 'install the sshfs package (Debian/Ubuntu: apt-get install sshfs; Fedora/RHEL: dnf install fuse-sshfs; Arch: pacman -S sshfs; Alpine: apk add sshfs)';
  return `machine mount needs sshfs, which is not on PATH: ${install}`;
}

/**
 * The sshfs arguments that mount `remotePath` of the machine on `localDir`: the machine's key only,
 * and its host key checked against the machine's own known_hosts (the alias it is filed under), as
 * `machine ssh` does; never a password prompt.
 */
export function sshfsArguments(target: Pick<MachineSSH, 'host' | 'port' | 'username' | 'keyPath' | 'knownHostsPath' | 'hostKeyAlias'>, remotePath: string, localDir: string): string[] {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return [
    `${target.username}@${host}:${remotePath}`,
    localDir,
    '-p', String(target.port),
    ...(target.keyPath === '' ? [] : ['-o', `IdentityFile=${target.keyPath}`, '-o', 'IdentitiesOnly=yes']),
    '-o', `HostKeyAlias=${target.hostKeyAlias}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${target.knownHostsPath}`,
    '-o', 'PasswordAuthentication=no',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'ServerAliveInterval=60',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
  ];
}

/** The command that unmounts a FUSE mount: `fusermount -u` (or fusermount3) on Linux, `umount` elsewhere, like the reference. */
export function unmountCommand(localDir: string, pathVariable: string | undefined, platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'linux') {
    const fusermount = findExecutable('fusermount', pathVariable) ?? findExecutable('fusermount3', pathVariable);
    if (fusermount !== undefined) return [fusermount, '-u', localDir];
  }
  return ['umount', localDir];
}

/**
 * `machine mount [-u] NAME:PATH LOCALDIR`: mounts a folder of a running machine with the system's
 * sshfs, as the user the CLI logs in as (the machine's key, its pinned host key); `-u` unmounts it.
 */
export async function mountCommand(ctx: CommandContext, source: string, localDir: string, options: { unmount: boolean }): Promise<number> {
  const { machine, remotePath } = parseMountSource(source);
  const local = resolve(localDir);
  if (options.unmount) {
    const [command = 'umount', ...args] = unmountCommand(local, ctx.io.env.PATH);
    const result = await run(command, args, ctx.io.env);
    if (result.code !== 0) throw new CliError(`could not unmount ${local}: ${lastLine(result.stderr) || `${command} exited with ${result.code}`}`);
    return ExitCode.ok;
  }
  const sshfs = findExecutable('sshfs', ctx.io.env.PATH);
  if (sshfs === undefined) throw new CliError(sshfsMissingMessage());
  const folder = await stat(local).catch(() => undefined);
  if (folder === undefined) throw new CliError(`the mount point ${local} does not exist: create the folder first (mkdir -p ${local})`);
  if (!folder.isDirectory()) throw new CliError(`the mount point ${local} is not a folder`);
  const open = await openMachine(ctx, machine);
  const target = await machineSSH(open, ctx.store.machineDir(machine), ctx.io.signal).catch((error: unknown) => {
    throw explainHostKeyError(error, machine);
  });
  if (target.presentedKey !== undefined && open.record.ssh !== undefined) {
    // A record without a stored key: the key pinned now (trust on first use) is recorded.
    open.record.ssh = { ...open.record.ssh, hostKeyFingerprint: target.hostKeyFingerprint ?? open.record.ssh.hostKeyFingerprint, hostKey: target.presentedKey };
    await ctx.store.write(open.record);
  }
  const args = sshfsArguments(target, remotePath, local);
  ctx.debugLog(`${sshfs} ${args.join(' ')}`);
  const result = await run(sshfs, args, ctx.io.env);
  if (result.code !== 0) {
    const reason = lastLine(result.stderr);
    const hostKey = /host key verification failed/i.test(result.stderr) ? `; the machine's host key is not the recorded ${target.hostKeyFingerprint ?? ''}: \`machine trust-host-key ${machine}\` shows it` : '';
    throw new CliError(`sshfs could not mount ${machine}:${remotePath} on ${local}: ${reason || `exit ${result.code}`}${hostKey}`);
  }
  return ExitCode.ok;
}

function run(command: string, args: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<{ code: number; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env as NodeJS.ProcessEnv });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => reject(new CliError(`could not run ${command}: ${error.message}`)));
    // sshfs forks its daemon after mounting, which may hold the pipe a little longer: success is
    // the exit of the command itself; a failure waits for the end of its message.
    child.on('exit', (code) => {
      if (code === 0) {
        child.stderr?.destroy();
        done({ code: 0, stderr });
      } else child.on('close', () => done({ code: code ?? 1, stderr }));
    });
  });
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .at(-1) ?? ''
  );
}
