import {
  CancelledError,
  SSHError,
  type SSHFailure,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { SSHCommandResult, SSHTarget, WaitForSSHOptions } from '@machine/driver-core/ssh';
import type { SSHCredentials } from './generic-ssh-credentials.ts';

/** Where the host is, without the credentials. */
export type SSHEndpoint = Omit<SSHTarget, 'privateKey'>;

/** Runs commands on the host and waits for its SSH, with a key or with an ssh-agent. */
export interface SSHAccess {
  run(command: string, signal?: AbortSignal): Promise<SSHCommandResult>;
  /** Resolves with the host key fingerprint once a handshake succeeds and `exit 0` returns 0. */
  waitUntilReady(options: WaitForSSHOptions): Promise<string>;
}

/** Builds the access for the credentials; loads ssh2 (through driver-core/ssh) only now. */
export async function sshAccess(endpoint: SSHEndpoint, credentials: SSHCredentials): Promise<SSHAccess> {
  const ssh = await import('@machine/driver-core/ssh');
  if (credentials.kind === 'key') {
    const target: SSHTarget = { ...endpoint, privateKey: credentials.key.privateKey };
    return {
      run: (command, signal) => ssh.runSSH(target, command, signal === undefined ? {} : { signal }),
      waitUntilReady: (options) => ssh.waitForSSH(target, options),
    };
  }
  // driver-core's SSHTarget takes only a private key, so agent logins use their own small client.
  const run = (command: string, signal?: AbortSignal) => runWithAgent(endpoint, credentials.socket, command, signal);
  return {
    run,
    waitUntilReady: async (options) => {
      const retryAuth = options.retryAuth ?? true;
      const where = `${endpoint.host}:${endpoint.port}`;
      options.onProgress?.({ step: 'wait-ssh', phase: 'start', message: `waiting for SSH on ${where}` });
      const fingerprint = await waitFor<string>(
        async () => {
          await ssh.probeTcp(endpoint.host, endpoint.port, 3000, options.signal);
          try {
            const result = await run('exit 0', options.signal);
            if (result.code !== 0) return { done: false, reason: `\`exit 0\` returned ${result.code}` };
            return { done: true, value: result.hostKeyFingerprint };
          } catch (error) {
            if (retryAuth && error instanceof SSHError && error.failure === 'auth') return { done: false, reason: error.message };
            throw error;
          }
        },
        {
          interval: 250,
          maxInterval: 3000,
          timeout: 180_000,
          ...options,
          description: `SSH on ${where}`,
          ...(endpoint.machine === undefined ? {} : { machine: endpoint.machine }),
          operation: options.operation ?? 'ssh',
        },
      );
      options.onProgress?.({ step: 'wait-ssh', phase: 'done', message: `SSH is ready on ${where}` });
      return fingerprint;
    },
  };
}

async function runWithAgent(endpoint: SSHEndpoint, agent: string, command: string, signal?: AbortSignal): Promise<SSHCommandResult> {
  const { default: ssh2 } = await import('ssh2');
  const { sha256Fingerprint } = await import('@machine/driver-core/keys');
  throwIfAborted(signal, endpoint.machine === undefined ? {} : { machine: endpoint.machine });
  const where = `${endpoint.host}:${endpoint.port}`;
  const fail = (failure: SSHFailure, detail: string, cause?: unknown, hint?: string) =>
    new SSHError(detail, {
      failure,
      operation: 'ssh',
      ...(endpoint.machine === undefined ? {} : { machine: endpoint.machine }),
      ...(cause === undefined ? {} : { cause }),
      ...(hint === undefined ? {} : { hint }),
    });
  return new Promise<SSHCommandResult>((resolve, reject) => {
    const client = new ssh2.Client();
    let seen = '';
    let mismatch = false;
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
      client.exec(command, (error, channel) => {
        if (error) {
          finish(() => reject(fail('command', `could not run a command: ${error.message}`, error)));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code = -1;
        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (exitCode: number | null) => {
          code = typeof exitCode === 'number' ? exitCode : -1;
        });
        channel.on('close', () =>
          finish(() =>
            resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), hostKeyFingerprint: seen }),
          ),
        );
        channel.end();
      });
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      finish(() => {
        if (mismatch) {
          reject(
            fail('host-key', `the host key of ${where} changed: expected ${endpoint.hostKeyFingerprint}, got ${seen}`, error,
              'someone may be intercepting the connection; if the machine was rebuilt, re-create it'),
          );
        } else if (error.level === 'client-authentication') {
          reject(fail('auth', `${endpoint.username}@${where} refused every key of the ssh-agent`, error, 'check the SSH user and the keys loaded in the agent (ssh-add -l)'));
        } else if (error.code === 'ECONNREFUSED' || error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH') {
          reject(fail('refused', `${where} refused the connection (${error.code})`, error));
        } else {
          reject(fail('handshake', `SSH handshake with ${where} failed: ${error.message}`, error));
        }
      });
    });
    client.on('close', () => finish(() => reject(fail('handshake', `connection to ${where} closed before it was ready`))));
    client.connect({
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.username,
      agent,
      readyTimeout: endpoint.readyTimeout ?? 10_000,
      keepaliveInterval: 0,
      hostVerifier: (key: Buffer) => {
        seen = sha256Fingerprint(key);
        mismatch = endpoint.hostKeyFingerprint !== undefined && endpoint.hostKeyFingerprint !== seen;
        return !mismatch;
      },
    });
  });
}
