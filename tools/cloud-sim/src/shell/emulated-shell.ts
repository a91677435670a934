import type { ExecIO } from '@machine/driver-core/testing';
import { ExitSignal } from './exit-signal.ts';
import type { GuestSystem } from './guest-system.ts';
import { SHELL_COMMANDS } from './shell-commands.ts';
import { type FileSystemError, MemoryFileSystem } from './memory-filesystem.ts';
import { type CommandList, expandWord, parseCommandLine, type Redirection, ShellSyntaxError, type SimpleCommand } from './shell-parser.ts';

/** Facts about the machine the shell reports (`hostname`, `uname`, `df`). */
export interface HostFacts {
  hostname: string;
  /** Root disk size in GiB for `df` (default 25). */
  diskGb?: number;
}

/** State of one shell run: filesystem, user, working directory, variables. */
export interface ShellSession {
  readonly fs: MemoryFileSystem;
  readonly host: HostFacts;
  /** The machine's services (systemd, cloud-init, apt, network, dockerd); absent in a bare shell. */
  readonly system: GuestSystem | undefined;
  user: string;
  cwd: string;
  variables: Record<string, string>;
}

/** What a command implementation gets. */
export interface CommandContext {
  readonly session: ShellSession;
  /** Arguments after the command name. */
  readonly args: string[];
  /** Bytes on stdin (the session's stdin is only awaited when a command asks). */
  stdin(): Promise<Buffer>;
  stdout(data: string | Buffer): void;
  stderr(data: string | Buffer): void;
  /** Runs a command line in the same session (for `sh -c`, `sudo`). */
  run(line: string, stdin: () => Promise<Buffer>): Promise<number>;
}

/** A built-in command; returns the exit status. */
export type CommandImplementation = (context: CommandContext) => Promise<number> | number;

interface Streams {
  stdin: () => Promise<Buffer>;
  stdout: (data: string | Buffer) => void;
  stderr: (data: string | Buffer) => void;
}

/**
 * A small emulated POSIX shell over an in-memory filesystem. Nothing runs on the host: every
 * command is a built-in (see `shell-commands.ts`); anything else exits 127 like dash does.
 */
export class EmulatedShell {
  readonly fs: MemoryFileSystem;
  readonly host: HostFacts;
  readonly system: GuestSystem | undefined;

  constructor(fs: MemoryFileSystem, host: HostFacts, system?: GuestSystem) {
    this.fs = fs;
    this.host = host;
    this.system = system;
  }

  /** Runs `command` as `user` (default root) with the SSH channel's streams; returns the exit code. */
  async exec(command: string, io: ExecIO, user = 'root'): Promise<number> {
    const home = user === 'root' ? '/root' : `/home/${user}`;
    const session: ShellSession = {
      fs: this.fs,
      host: this.host,
      system: this.system,
      user,
      cwd: this.fs.exists(home) ? home : '/',
      variables: { HOME: home, USER: user, LOGNAME: user, SHELL: '/bin/sh', PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', '?': '0', $: '4242' },
    };
    let stdinCache: Promise<Buffer> | undefined;
    const stdin = (): Promise<Buffer> => {
      stdinCache ??= io.stdin;
      return stdinCache;
    };
    return runScript(session, command, { stdin, stdout: io.stdout, stderr: io.stderr });
  }
}

/** Runs a script in `session`; `exit` ends it with its code. */
export async function runScript(session: ShellSession, script: string, streams: Streams): Promise<number> {
  try {
    return await runList(session, parseCommandLine(script), streams);
  } catch (error) {
    if (error instanceof ExitSignal) return error.code;
    if (error instanceof ShellSyntaxError) {
      streams.stderr(`sh: 1: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

async function runList(session: ShellSession, list: CommandList, streams: Streams): Promise<number> {
  let status = 0;
  for (const [index, item] of list.items.entries()) {
    if (index > 0 && item.operator === '&&' && status !== 0) continue;
    if (index > 0 && item.operator === '||' && status === 0) continue;
    status = await runPipeline(session, item.pipeline.commands, streams);
    session.variables['?'] = String(status);
  }
  return status;
}

async function runPipeline(session: ShellSession, commands: SimpleCommand[], streams: Streams): Promise<number> {
  let stdin = streams.stdin;
  let status = 0;
  for (const [index, command] of commands.entries()) {
    const last = index === commands.length - 1;
    const captured: Buffer[] = [];
    const stdout = last ? streams.stdout : (data: string | Buffer) => captured.push(toBuffer(data));
    status = await runSimple(session, command, { stdin, stdout, stderr: streams.stderr });
    if (!last) {
      const piped = Buffer.concat(captured);
      stdin = () => Promise.resolve(piped);
    }
  }
  return status;
}

async function runSimple(session: ShellSession, command: SimpleCommand, streams: Streams): Promise<number> {
  const redirected = applyRedirections(session, command.redirections, streams);
  if (typeof redirected === 'number') return redirected;
  const words = command.words.map((word) => expandWord(word, session.variables));
  // `A=1 B=2 cmd …`: the assignments only apply to the command (which sees no environment here).
  while (words.length > 1 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words.shift();
  const [name, ...args] = words;
  if (name === undefined) return 0;
  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(name);
  if (assignment !== null && args.length === 0) {
    session.variables[assignment[1]!] = assignment[2]!;
    return 0;
  }
  const implementation = SHELL_COMMANDS[baseName(name)];
  if (implementation === undefined) {
    redirected.stderr(`sh: 1: ${name}: not found\n`);
    return 127;
  }
  try {
    return await implementation({
      session,
      args,
      stdin: redirected.stdin,
      stdout: redirected.stdout,
      stderr: redirected.stderr,
      run: (line, stdin) => runScript(session, line, { ...redirected, stdin }),
    });
  } catch (error) {
    if (error instanceof ExitSignal) throw error;
    if (isFileSystemError(error)) {
      redirected.stderr(`${name}: ${error.path}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function applyRedirections(session: ShellSession, redirections: Redirection[], streams: Streams): Streams | number {
  const result: Streams = { ...streams };
  for (const redirection of redirections) {
    const target = expandWord(redirection.target, session.variables);
    if (target === '&1') {
      result.stderr = result.stdout;
      continue;
    }
    if (target === '&2') {
      result.stdout = result.stderr;
      continue;
    }
    const path = MemoryFileSystem.resolve(target, session.cwd);
    try {
      if (redirection.fd === 0) {
        const data = session.fs.readFile(path);
        result.stdin = () => Promise.resolve(data);
        continue;
      }
      if (path === '/dev/null') {
        const discard = (): void => {};
        if (redirection.fd === 1) result.stdout = discard;
        else result.stderr = discard;
        continue;
      }
      session.fs.writeFile(path, '', { append: true }); // create (or keep) the file now, as the shell does
      if (!redirection.append) session.fs.writeFile(path, '');
      const write = (data: string | Buffer): void => {
        session.fs.writeFile(path, toBuffer(data), { append: true });
      };
      if (redirection.fd === 1) result.stdout = write;
      else result.stderr = write;
    } catch (error) {
      if (!isFileSystemError(error)) throw error;
      streams.stderr(`sh: 1: cannot ${redirection.fd === 0 ? 'open' : 'create'} ${target}: ${error.message}\n`);
      return 2;
    }
  }
  return result;
}

function isFileSystemError(error: unknown): error is FileSystemError {
  return error instanceof Error && error.name === 'FileSystemError';
}

function baseName(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash === -1 ? name : name.slice(slash + 1);
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}
