import { connect as connectTcp } from 'node:net';
import ssh2 from 'ssh2';
import type { ProgressEvent } from './driver.ts';
import { CancelledError } from './errors/cancelled-error.ts';
import { SSHError } from './errors/ssh-error.ts';
import { sha256Fingerprint } from './keys.ts';
import { type WaitOptions, throwIfAborted, waitFor } from './wait.ts';

/** Where and how to reach a machine over SSH. */
export interface SSHTarget {
  host: string;
  port: number;
  username: string;
  /** The private key text (never logged). Either this or `agent` is needed. */
  privateKey?: string;
  /** An ssh-agent socket (`SSH_AUTH_SOCK`) to authenticate with instead of, or besides, `privateKey`. */
  agent?: string;
  /** Expected host key `SHA256:…` fingerprint; the connection is refused when it differs. */
  hostKeyFingerprint?: string;
  /** Handshake timeout, ms (default 10 000). */
  readyTimeout?: number;
  /** Machine name for error messages. */
  machine?: string;
}

/** The result of one command. */
export interface SSHCommandResult {
  /** Exit code; -1 when the command ended by a signal. */
  code: number;
  stdout: string;
  stderr: string;
  /** The server's host key fingerprint. */
  hostKeyFingerprint: string;
  /** The server's host key as `type base64`, as known_hosts lists it. */
  hostKey: string;
}

/** Options for {@link runSSH}. */
export interface RunSSHOptions {
  signal?: AbortSignal;
  /** Streams output as it arrives (besides collecting it). */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Sent to the command's stdin, then closed. */
  stdin?: string | Buffer;
}

/** Runs one command over SSH with ssh2 and collects its output and exit code. */
export function runSSH(target: SSHTarget, command: string, options: RunSSHOptions = {}): Promise<SSHCommandResult> {
  return withSSHClient(target, options.signal, (client, fingerprint, hostKey) =>
    new Promise<SSHCommandResult>((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) {
          reject(new SSHError(`could not run a command: ${error.message}`, failureOptions(target, 'command', error)));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code = -1;
        channel.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          options.onStdout?.(chunk);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr.push(chunk);
          options.onStderr?.(chunk);
        });
        channel.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : -1;
        });
        channel.on('close', () => {
          resolve({
            code,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
            hostKeyFingerprint: fingerprint(),
            hostKey: hostKey(),
          });
        });
        if (options.stdin !== undefined) channel.end(options.stdin);
        else channel.end();
      });
    }),
  );
}

/**
 * Opens an ssh2 connection, runs `use` (given the host key's fingerprint and the key itself as
 * `type base64`), and always closes. Connection failures become SSHError with
 * a `failure` of `refused`, `auth`, `host-key` or `handshake`.
 */
export function withSSHClient<T>(
  target: SSHTarget,
  signal: AbortSignal | undefined,
  use: (client: ssh2.Client, hostKeyFingerprint: () => string, hostKey: () => string) => Promise<T>,
): Promise<T> {
  throwIfAborted(signal, target.machine === undefined ? {} : { machine: target.machine });
  return new Promise<T>((resolve, reject) => {
    const client = new ssh2.Client();
    let seenFingerprint = '';
    let seenKey = '';
    let hostKeyMismatch = false;
    let settled = false;
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      action();
      client.end();
    };
    const onAbort = () => finish(() => reject(new CancelledError('the SSH connection was cancelled')));
    signal?.addEventListener('abort', onAbort, { once: true });
    client.on('ready', () => {
      use(
        client,
        () => seenFingerprint,
        () => seenKey,
      ).then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => finish(() => reject(error)),
      );
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      finish(() => reject(classifyConnectError(target, error, hostKeyMismatch, seenFingerprint)));
    });
    client.on('close', () => {
      finish(() => reject(new SSHError(`connection to ${target.host}:${target.port} closed before it was ready`, failureOptions(target, 'handshake'))));
    });
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      ...(target.privateKey === undefined ? {} : { privateKey: target.privateKey }),
      ...(target.agent === undefined ? {} : { agent: target.agent }),
      readyTimeout: target.readyTimeout ?? 10_000,
      keepaliveInterval: 0,
      hostVerifier: (key: Buffer) => {
        seenFingerprint = sha256Fingerprint(key);
        seenKey = `${key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1')} ${key.toString('base64')}`;
        hostKeyMismatch = target.hostKeyFingerprint !== undefined && target.hostKeyFingerprint !== seenFingerprint;
        return !hostKeyMismatch;
      },
    });
    setNoDelay(client);
  });
}

/**
 * Turns off Nagle's algorithm on an ssh2 client or server connection: without it every SSH round
 * trip waits for a delayed ACK (~500 ms per connection measured on loopback).
 */
export function setNoDelay(connection: ssh2.Client | ssh2.Connection): void {
  // ssh2 does not expose its socket in the types; `_sock` is the net.Socket it made or was given.
  const socket = (connection as unknown as { _sock?: { setNoDelay?: (noDelay: boolean) => void } })._sock;
  socket?.setNoDelay?.(true);
}

function classifyConnectError(target: SSHTarget, error: Error & { level?: string; code?: string }, hostKeyMismatch: boolean, seen: string): SSHError {
  const where = `${target.host}:${target.port}`;
  if (hostKeyMismatch) {
    return new SSHError(`the host key of ${where} changed: expected ${target.hostKeyFingerprint}, got ${seen}`, {
      ...failureOptions(target, 'host-key', error),
      hint: 'someone may be intercepting the connection; if the machine was rebuilt, re-create it',
    });
  }
  if (error.level === 'client-authentication') {
    return new SSHError(`${target.username}@${where} refused the key`, {
      ...failureOptions(target, 'auth', error),
      hint: 'check the SSH user and key',
    });
  }
  if (error.code === 'ECONNREFUSED' || error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH') {
    return new SSHError(`${where} refused the connection (${error.code})`, failureOptions(target, 'refused', error));
  }
  return new SSHError(`SSH handshake with ${where} failed: ${error.message}`, failureOptions(target, 'handshake', error));
}

function failureOptions(target: SSHTarget, failure: 'refused' | 'auth' | 'host-key' | 'handshake' | 'command', cause?: unknown) {
  return {
    failure,
    operation: 'ssh',
    ...(target.machine === undefined ? {} : { machine: target.machine }),
    ...(cause === undefined ? {} : { cause }),
  };
}

/** Resolves when a TCP connection to host:port opens; rejects with SSHError `refused` otherwise. */
export function probeTcp(host: string, port: number, timeoutMs = 3000, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host, port });
    const done = (error?: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => done(new CancelledError());
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => done(new SSHError(`${host}:${port} did not accept a connection within ${timeoutMs} ms`, { failure: 'refused', operation: 'ssh' })),
      timeoutMs,
    );
    socket.once('connect', () => done());
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(new SSHError(`${host}:${port} refused the connection (${error.code ?? error.message})`, { failure: 'refused', operation: 'ssh', cause: error })),
    );
  });
}

/** Options for {@link waitForSSH}. */
export interface WaitForSSHOptions extends Omit<WaitOptions, 'description'> {
  onProgress?: (event: ProgressEvent) => void;
  /** Treat an auth failure as "not yet" (cloud-init may still be installing the key). Default true. */
  retryAuth?: boolean;
}

/**
 * Waits until the machine accepts SSH: first the TCP port, then a real ssh2 handshake with the
 * machine's key that runs `exit 0`. Exponential backoff with jitter, an overall deadline and abort.
 * Resolves with the host key: its fingerprint (pin it for later connections) and the key as
 * `type base64` (for known_hosts).
 */
export async function waitForSSHHostKey(target: SSHTarget, options: WaitForSSHOptions = {}): Promise<{ fingerprint: string; hostKey: string }> {
  const retryAuth = options.retryAuth ?? true;
  options.onProgress?.({ step: 'wait-ssh', phase: 'start', message: `waiting for SSH on ${target.host}:${target.port}` });
  const seen = await waitFor<{ fingerprint: string; hostKey: string }>(
    async (attempt) => {
      await probeTcp(target.host, target.port, 3000, options.signal);
      try {
        const result = await runSSH(target, 'exit 0', options.signal === undefined ? {} : { signal: options.signal });
        if (result.code !== 0) return { done: false, reason: `\`exit 0\` returned ${result.code}` };
        return { done: true, value: { fingerprint: result.hostKeyFingerprint, hostKey: result.hostKey } };
      } catch (error) {
        if (retryAuth && error instanceof SSHError && error.failure === 'auth') {
          options.onProgress?.({ step: 'wait-ssh', phase: 'info', message: `attempt ${attempt}: key not accepted yet` });
          return { done: false, reason: error.message };
        }
        throw error;
      }
    },
    {
      interval: 250,
      maxInterval: 3000,
      timeout: 180_000,
      ...options,
      description: `SSH on ${target.host}:${target.port}`,
      ...(target.machine === undefined ? {} : { machine: target.machine }),
      operation: options.operation ?? 'ssh',
    },
  );
  options.onProgress?.({ step: 'wait-ssh', phase: 'done', message: `SSH is ready on ${target.host}:${target.port}` });
  return seen;
}

/** {@link waitForSSHHostKey}, resolving with the host key fingerprint only. */
export async function waitForSSH(target: SSHTarget, options: WaitForSSHOptions = {}): Promise<string> {
  return (await waitForSSHHostKey(target, options)).fingerprint;
}
