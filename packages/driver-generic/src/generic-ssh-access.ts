import type { SSHCommandResult, SSHTarget, WaitForSSHOptions } from '@machine/driver-core/ssh';
import type { SSHCredentials } from './generic-ssh-credentials.ts';

/** Where the host is, without the credentials. */
export type SSHEndpoint = Omit<SSHTarget, 'privateKey' | 'agent'>;

/** Runs commands on the host and waits for its SSH, with a key or with an ssh-agent. */
export interface SSHAccess {
  run(command: string, signal?: AbortSignal): Promise<SSHCommandResult>;
  /** Resolves with the host key fingerprint once a handshake succeeds and `exit 0` returns 0. */
  waitUntilReady(options: WaitForSSHOptions): Promise<string>;
}

/** Builds the access for the credentials; loads ssh2 (through driver-core/ssh) only now. */
export async function sshAccess(endpoint: SSHEndpoint, credentials: SSHCredentials): Promise<SSHAccess> {
  const ssh = await import('@machine/driver-core/ssh');
  const target: SSHTarget =
    credentials.kind === 'key' ? { ...endpoint, privateKey: credentials.key.privateKey } : { ...endpoint, agent: credentials.socket };
  return {
    run: (command, signal) => ssh.runSSH(target, command, signal === undefined ? {} : { signal }),
    waitUntilReady: (options) => ssh.waitForSSH(target, options),
  };
}
