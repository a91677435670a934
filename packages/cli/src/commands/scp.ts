import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { withSSHClient } from '@machine/driver-core/ssh';
import type { SFTPWrapper } from 'ssh2';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { openMachine } from '../machine-host.ts';
import { explainHostKeyError, machineSSH } from '../ssh-target.ts';

/** One side of a copy: a local path, or a path on a machine (optionally as another user). */
export type CopyLocation = { kind: 'local'; path: string } | { kind: 'remote'; machine: string; user?: string; path: string };

/** Parses `[[user@]machine:]path`; `localhost:` and paths without a machine prefix are local. */
export function parseLocation(text: string): CopyLocation {
  const match = /^(?:([^@:/]+)@)?([a-zA-Z0-9][a-zA-Z0-9.-]*):(.*)$/.exec(text);
  if (match === null || match[2] === 'localhost') return { kind: 'local', path: match?.[2] === 'localhost' ? (match[3] ?? '') : text };
  return { kind: 'remote', machine: match[2] as string, path: match[3] === '' ? '.' : (match[3] as string), ...(match[1] === undefined ? {} : { user: match[1] }) };
}

/** `machine scp [-r] SOURCE DESTINATION`, over SFTP with the built-in client; machine to machine too. */
export async function scpCommand(ctx: CommandContext, source: string, destination: string, options: { recursive?: boolean; quiet?: boolean }): Promise<number> {
  const from = parseLocation(source);
  const to = parseLocation(destination);
  const recursive = options.recursive === true;
  if (from.kind === 'local' && to.kind === 'local') throw new CliError('at least one of the paths must be on a machine: [[user@]machine:]path');
  if (from.kind === 'remote' && to.kind === 'remote') {
    const staging = await mkdtemp(join(tmpdir(), 'machine-scp-'));
    try {
      const local = join(staging, posix.basename(from.path) || 'data');
      await withSftp(ctx, from, (sftp) => download(sftp, from.path, local, recursive));
      await withSftp(ctx, to, (sftp) => upload(sftp, local, to.path, recursive));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } else if (from.kind === 'remote' && to.kind === 'local') {
    await withSftp(ctx, from, (sftp) => download(sftp, from.path, to.path, recursive));
  } else if (from.kind === 'local' && to.kind === 'remote') {
    await withSftp(ctx, to, (sftp) => upload(sftp, from.path, to.path, recursive));
  }
  return ExitCode.ok;
}

async function withSftp<T>(ctx: CommandContext, location: CopyLocation & { kind: 'remote' }, use: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
  const machine = await openMachine(ctx, location.machine);
  const target = await machineSSH(machine, ctx.store.machineDir(location.machine), ctx.io.signal);
  if (location.user !== undefined) target.username = location.user;
  return withSSHClient(target, ctx.io.signal, (client) =>
    new Promise<T>((resolve, reject) => {
      client.sftp((error, sftp) => {
        if (error) {
          reject(new CliError(`machine "${location.machine}" does not offer SFTP: ${error.message}`));
          return;
        }
        use(sftp).then(resolve, reject);
      });
    }),
  ).catch((error: unknown) => {
    throw explainHostKeyError(error, location.machine);
  });
}

function promisify<T>(call: (callback: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value))));
}

async function remoteIsDirectory(sftp: SFTPWrapper, path: string): Promise<boolean | undefined> {
  try {
    const stats = await promisify<{ isDirectory(): boolean }>((callback) => sftp.stat(path, callback));
    return stats.isDirectory();
  } catch {
    return undefined;
  }
}

async function localIsDirectory(path: string): Promise<boolean | undefined> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return undefined;
  }
}

async function upload(sftp: SFTPWrapper, local: string, remote: string, recursive: boolean): Promise<void> {
  const isDirectory = await localIsDirectory(local);
  if (isDirectory === undefined) throw new CliError(`${local}: no such file or directory`);
  const target = (await remoteIsDirectory(sftp, remote)) === true ? posix.join(remote, basename(local)) : remote;
  if (!isDirectory) {
    await promisify<void>((callback) => sftp.fastPut(local, target, (error) => callback(error, undefined)));
    return;
  }
  if (!recursive) throw new CliError(`${local} is a directory: use -r`);
  if ((await remoteIsDirectory(sftp, target)) !== true) await promisify<void>((callback) => sftp.mkdir(target, (error) => callback(error, undefined)));
  for (const entry of await readdir(local)) await upload(sftp, join(local, entry), posix.join(target, entry), true);
}

async function download(sftp: SFTPWrapper, remote: string, local: string, recursive: boolean): Promise<void> {
  const isDirectory = await remoteIsDirectory(sftp, remote);
  if (isDirectory === undefined) throw new CliError(`${remote}: no such file or directory on the machine`);
  const target = (await localIsDirectory(local)) === true ? join(local, posix.basename(remote)) : local;
  if (!isDirectory) {
    await promisify<void>((callback) => sftp.fastGet(remote, target, (error) => callback(error, undefined)));
    return;
  }
  if (!recursive) throw new CliError(`${remote} is a directory: use -r`);
  await mkdir(target, { recursive: true });
  const entries = await promisify<{ filename: string }[]>((callback) => sftp.readdir(remote, callback));
  for (const entry of entries) {
    if (entry.filename === '.' || entry.filename === '..') continue;
    await download(sftp, posix.join(remote, entry.filename), join(target, entry.filename), true);
  }
}
