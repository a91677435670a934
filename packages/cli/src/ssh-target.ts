import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SSHTarget } from '@machine/driver-core/ssh';
import { sha256Fingerprint } from '@machine/driver-core/keys';
import ssh2 from 'ssh2';
import { CliError } from './cli-error.ts';
import type { OpenMachine } from './machine-host.ts';

/** How the CLI reaches a machine over SSH, from its driver and its record. */
export interface MachineSSH extends SSHTarget {
  keyPath: string;
  /** The per-machine OpenSSH known_hosts file (absent before create recorded the host key). */
  knownHostsPath?: string;
  /** The alias the known_hosts entry is filed under, so an IP change does not break it. */
  hostKeyAlias: string;
}

/** The SSH target of an open machine; the machine must be running. */
export async function machineSSH(machine: OpenMachine, machineDir: string, signal?: AbortSignal): Promise<MachineSSH> {
  const { driver, record } = machine;
  const options = signal === undefined ? {} : { signal };
  const state = await driver.getState(options);
  if (state !== 'Running') throw new CliError(`Cannot run SSH command: Host "${record.name}" is not running`);
  const keyPath = record.ssh?.keyPath ?? driver.getSSHKeyPath();
  const credentials = await sshCredentials(record.name, keyPath);
  const knownHostsPath = join(machineDir, 'known_hosts');
  return {
    host: await driver.getSSHHostname(options),
    port: await driver.getSSHPort(options),
    username: record.ssh?.user ?? driver.getSSHUsername(),
    ...credentials,
    keyPath,
    machine: record.name,
    hostKeyAlias: `machine-${record.name}`,
    ...(record.ssh?.hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint: record.ssh.hostKeyFingerprint }),
    ...(record.ssh?.hostKey === undefined ? {} : { knownHostsPath }),
  };
}

/**
 * The key to log in with: the machine's key file, or — for drivers that use the user's ssh-agent
 * (an empty key path, e.g. `generic` without `--generic-ssh-key`) — the agent at `SSH_AUTH_SOCK`.
 */
export async function sshCredentials(machine: string, keyPath: string): Promise<{ privateKey: string } | { agent: string }> {
  if (keyPath === '') {
    const agent = process.env.SSH_AUTH_SOCK;
    if (agent === undefined || agent === '') {
      throw new CliError(`machine "${machine}" logs in with an ssh-agent, but SSH_AUTH_SOCK is not set; start ssh-agent and add the key`);
    }
    return { agent };
  }
  const privateKey = await readFile(keyPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read the SSH key of machine "${machine}" (${keyPath}): ${error.code ?? error.message}`);
  });
  return { privateKey };
}

/**
 * Connects once to read the server's host key (`type base64`), checking it against the
 * fingerprint `waitForSSH` saw.
 */
export function fetchHostKey(target: SSHTarget, expectedFingerprint: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let hostKey: Buffer | undefined;
    client.on('ready', () => {
      client.end();
      if (hostKey === undefined) reject(new Error('the server sent no host key'));
      else resolve(`${keyType(hostKey)} ${hostKey.toString('base64')}`);
    });
    client.on('error', reject);
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      ...(target.privateKey === undefined ? {} : { privateKey: target.privateKey }),
      ...(target.agent === undefined ? {} : { agent: target.agent }),
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => {
        hostKey = key;
        return sha256Fingerprint(key) === expectedFingerprint;
      },
    });
  });
}

/** `type base64` of an OpenSSH public key line (`ssh-ed25519 AAAA… comment`), as known_hosts wants it. */
export function knownHostsKey(publicKeyLine: string): string {
  return publicKeyLine.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** The command that accepts a machine's new host key, printed wherever a changed key is refused. */
export function trustHint(name: string, fingerprint: string | undefined): string {
  return fingerprint === undefined
    ? `"machine trust-host-key ${name}" shows the key the machine presents and how to accept it`
    : `if you know why it changed (e.g. the machine was rebuilt), check ${fingerprint} out of band (the provider's console) and run "machine trust-host-key ${name} --fingerprint ${fingerprint}"`;
}

/**
 * A host key mismatch (driver-core's SSHError `host-key`) as the CLI's one line: what changed and
 * exactly how to accept the new key. Any other error is returned unchanged.
 */
export function explainHostKeyError(error: unknown, name: string): unknown {
  const failure = (error as { failure?: unknown; code?: unknown } | null)?.failure;
  if (failure !== 'host-key') return error;
  const detail = String((error as { detail?: unknown }).detail ?? (error as Error).message);
  const match = /expected (\S+), got (\S+)/.exec(detail);
  const expected = match?.[1];
  const presented = match?.[2];
  return new CliError(
    `the SSH host key of machine "${name}" changed${expected === undefined ? '' : ` (recorded ${expected}, presented ${presented})`}: refusing to connect, someone may be intercepting the connection; ${trustHint(name, presented)}`,
    1,
    { cause: error },
  );
}

/** Writes the machine's known_hosts file: one line for its alias. */
export async function writeKnownHosts(machineDir: string, alias: string, hostKey: string): Promise<string> {
  const path = join(machineDir, 'known_hosts');
  await writeFile(path, `${alias} ${hostKey}\n`, { mode: 0o600 });
  return path;
}

function keyType(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}
