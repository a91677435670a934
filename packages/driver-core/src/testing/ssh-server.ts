import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { generateSSHKeyPair, sha256Fingerprint } from '../keys.ts';
import { setNoDelay } from '../ssh.ts';

/** A command's output streams, for an exec handler. */
export interface ExecIO {
  stdout(text: string | Buffer): void;
  stderr(text: string | Buffer): void;
  /** Bytes sent to the command's stdin (collected until the client closes it). */
  readonly stdin: Promise<Buffer>;
}

/** Runs one command; returns its exit code. */
export type ExecHandler = (command: string, io: ExecIO) => Promise<number> | number;

/** Options for {@link startSSHServer}. */
export interface SSHServerOptions {
  /** Public key lines that may log in; a function is asked at each attempt (keys can change). */
  authorizedKeys: readonly string[] | (() => readonly string[]);
  /** Only this user may log in (any user when unset). */
  username?: string;
  /** Host private key (generated ed25519 when unset). */
  hostKey?: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Handles `exec` requests; default: {@link basicExec}. */
  onExec?: ExecHandler;
  /** Handles the `sftp` subsystem; refused when unset. */
  onSftp?: (sftp: ssh2.SFTPWrapper, username: string) => void;
  /** Handles `shell` requests: a line-based shell over the exec handler when unset. */
  shellPrompt?: string;
}

/** A running loopback SSH server. */
export interface RunningSSHServer {
  readonly host: string;
  readonly port: number;
  /** `SHA256:…` of the host key. */
  readonly hostKeyFingerprint: string;
  /** Successful logins so far. */
  readonly logins: number;
  close(): Promise<void>;
}

/**
 * Starts a real ssh2 server on loopback that accepts only the authorized public keys (signatures
 * verified). Used by the reference test driver and the cloud simulator so SSH is exercised for real.
 */
export async function startSSHServer(options: SSHServerOptions): Promise<RunningSSHServer> {
  const hostKey = options.hostKey ?? generateSSHKeyPair({ comment: 'host' }).privateKey;
  const parsedHostKey = ssh2.utils.parseKey(hostKey);
  if (parsedHostKey instanceof Error) throw parsedHostKey;
  const hostKeyObject = Array.isArray(parsedHostKey) ? parsedHostKey[0] : parsedHostKey;
  if (hostKeyObject === undefined || hostKeyObject instanceof Error) throw new Error('invalid host key');
  const hostKeyFingerprint = sha256Fingerprint(hostKeyObject.getPublicSSH());
  const onExec = options.onExec ?? basicExec;
  const clients = new Set<ssh2.Connection>();
  let logins = 0;

  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    setNoDelay(client);
    clients.add(client);
    let user = '';
    client.on('error', () => {});
    client.on('close', () => clients.delete(client));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || (options.username !== undefined && ctx.username !== options.username)) {
        ctx.reject(['publickey']);
        return;
      }
      const keys = typeof options.authorizedKeys === 'function' ? options.authorizedKeys() : options.authorizedKeys;
      const match = keys.map(parseAuthorizedKey).find(
        (allowed) =>
          allowed !== undefined &&
          allowed.type === ctx.key.algo &&
          allowed.blob.length === ctx.key.data.length &&
          timingSafeEqual(allowed.blob, ctx.key.data),
      );
      if (match === undefined) {
        ctx.reject(['publickey']);
        return;
      }
      if (ctx.signature === undefined) {
        ctx.accept(); // a query: "would this key do?"
        return;
      }
      if (ctx.blob === undefined || match.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
        ctx.reject(['publickey']);
        return;
      }
      user = ctx.username;
      ctx.accept();
    });
    client.on('ready', () => {
      logins++;
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('pty', (accept) => accept?.());
        session.on('env', (accept) => accept?.());
        session.on('window-change', (accept) => accept?.());
        session.on('exec', (accept, _reject, info) => {
          const channel = accept();
          runOnChannel(channel, info.command, onExec);
        });
        session.on('shell', (accept) => {
          const channel = accept();
          runShell(channel, onExec, options.shellPrompt ?? '$ ');
        });
        session.on('subsystem', (accept, reject, info) => {
          if (info.name !== 'sftp' || options.onSftp === undefined) {
            reject();
            return;
          }
          options.onSftp(accept() as unknown as ssh2.SFTPWrapper, user);
        });
        session.on('sftp', (accept, reject) => {
          if (options.onSftp === undefined) {
            reject();
            return;
          }
          options.onSftp(accept(), user);
        });
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    host: options.host ?? '127.0.0.1',
    port: address.port,
    hostKeyFingerprint,
    get logins() {
      return logins;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of clients) client.end();
        server.close(() => resolve());
      }),
  };
}

interface AuthorizedKey {
  type: string;
  blob: Buffer;
  key: ssh2.ParsedKey;
}

function parseAuthorizedKey(line: string): AuthorizedKey | undefined {
  const parsed = ssh2.utils.parseKey(line.trim());
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) return undefined;
  return { type: key.type, blob: key.getPublicSSH(), key };
}

function channelIO(channel: ssh2.ServerChannel): ExecIO {
  const stdin = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    channel.on('data', (chunk: Buffer) => chunks.push(chunk));
    channel.on('end', () => resolve(Buffer.concat(chunks)));
  });
  return {
    stdout: (text) => channel.write(text),
    stderr: (text) => channel.stderr.write(text),
    stdin,
  };
}

function runOnChannel(channel: ssh2.ServerChannel, command: string, onExec: ExecHandler): void {
  Promise.resolve()
    .then(() => onExec(command, channelIO(channel)))
    .then(
      (code) => {
        channel.exit(code);
        channel.end();
      },
      (error: unknown) => {
        channel.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        channel.exit(255);
        channel.end();
      },
    );
}

function runShell(channel: ssh2.ServerChannel, onExec: ExecHandler, prompt: string): void {
  let buffer = '';
  let chain = Promise.resolve();
  channel.write(prompt);
  channel.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8').replace(/\r/g, '\n');
    let newline = buffer.indexOf('\n');
    while (newline !== -1) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      chain = chain.then(async () => {
        if (line === 'exit' || line.startsWith('exit ')) {
          channel.exit(Number(line.split(/\s+/)[1] ?? 0) || 0);
          channel.end();
          return;
        }
        if (line !== '') {
          const io: ExecIO = {
            stdout: (text) => channel.write(typeof text === 'string' ? text.replace(/\n/g, '\r\n') : text),
            stderr: (text) => channel.stderr.write(text),
            stdin: Promise.resolve(Buffer.alloc(0)),
          };
          await onExec(line, io);
        }
        channel.write(prompt);
      });
    }
  });
}

/**
 * A minimal command runner: `exit N`, `true`, `false`, `echo …`, `hostname`, `uname -a`,
 * `whoami`. Anything else exits 127.
 */
export const basicExec: ExecHandler = (command, io) => {
  const trimmed = command.trim();
  const exit = /^exit(?:\s+(\d+))?$/.exec(trimmed);
  if (exit !== null) return Number(exit[1] ?? 0);
  if (trimmed === 'true') return 0;
  if (trimmed === 'false') return 1;
  if (trimmed.startsWith('echo')) {
    io.stdout(`${trimmed.slice(4).trim().replace(/^["']|["']$/g, '')}\n`);
    return 0;
  }
  if (trimmed === 'hostname') {
    io.stdout('machine\n');
    return 0;
  }
  if (trimmed === 'uname -a') {
    io.stdout('Linux machine 6.8.0-generic #1 SMP x86_64 GNU/Linux\n');
    return 0;
  }
  io.stderr(`sh: 1: ${trimmed.split(/\s+/)[0] ?? ''}: not found\n`);
  return 127;
};
