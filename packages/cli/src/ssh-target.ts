import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { SSHTarget } from '@machine/driver-core/ssh';
import { sha256Fingerprint } from '@machine/driver-core/keys';
import ssh2 from 'ssh2';
import { CliError, ExitCode } from './cli-error.ts';
import type { OpenMachine } from './machine-host.ts';

/** How the CLI reaches a machine over SSH, from its driver and its record. */
export interface MachineSSH extends SSHTarget {
  keyPath: string;
  /** The per-machine OpenSSH known_hosts file, holding the pinned host key. */
  knownHostsPath: string;
  /** The alias the known_hosts entry is filed under, so an IP change does not break it. */
  hostKeyAlias: string;
  /**
   * For a record without a stored host key: the key (`type base64`) this call read from the machine
   * and pinned (checked against any fingerprint known), for the caller to record.
   */
  presentedKey?: string;
}

/**
 * The SSH target of an open machine; the machine must be running. It is always pinned: to the key
 * recorded at create, else the key the driver saw (`data.hostKeyFingerprint`, a create that stopped
 * before recording SSH), else the key in the machine's known_hosts from an earlier first use, else
 * the key the machine presents now (trust on first use, written to its known_hosts).
 */
export async function machineSSH(machine: OpenMachine, machineDir: string, signal?: AbortSignal): Promise<MachineSSH> {
  const { driver, record } = machine;
  const options = signal === undefined ? {} : { signal };
  const state = await driver.getState(options);
  if (state !== 'Running') throw new CliError(`Cannot run SSH command: Host "${record.name}" is not running`);
  const keyPath = localKeyPath(record.ssh?.keyPath ?? driver.getSSHKeyPath(), machineDir);
  const credentials = await sshCredentials(record.name, keyPath);
  const knownHostsPath = join(machineDir, 'known_hosts');
  const hostKeyAlias = `machine-${record.name}`;
  const host = await driver.getSSHHostname(options);
  const port = await driver.getSSHPort(options);
  const driverFingerprint = typeof record.data.hostKeyFingerprint === 'string' ? record.data.hostKeyFingerprint : undefined;
  let hostKeyFingerprint = record.ssh?.hostKeyFingerprint ?? driverFingerprint;
  let presentedKey: string | undefined;
  if (record.ssh?.hostKey === undefined) {
    const saved = await knownHostsFingerprint(knownHostsPath);
    const expected = hostKeyFingerprint ?? saved;
    const presented = await presentedHostKey(host, port);
    if (expected !== undefined && presented.fingerprint !== expected) {
      throw new HostKeyChangedError(hostKeyChangedMessage(record.name, expected, presented.fingerprint));
    }
    if (saved !== presented.fingerprint) await writeKnownHosts(machineDir, hostKeyAlias, presented.key);
    presentedKey = presented.key;
    hostKeyFingerprint = presented.fingerprint;
  }
  return {
    host,
    port,
    username: record.ssh?.user ?? driver.getSSHUsername(),
    ...credentials,
    keyPath,
    machine: record.name,
    hostKeyAlias,
    knownHostsPath,
    ...(hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint }),
    ...(presentedKey === undefined ? {} : { presentedKey }),
  };
}

/**
 * The key file to use here: the recorded path when it exists, else the file of the same name in the
 * machine's folder on this host (a shared store's record carries the path of the host that made it).
 */
function localKeyPath(recorded: string, machineDir: string): string {
  if (recorded === '' || existsSync(recorded)) return recorded;
  const here = join(machineDir, basename(recorded));
  return existsSync(here) ? here : recorded;
}

/** The `SHA256:…` of the key in a machine's known_hosts file, or undefined when there is none. */
async function knownHostsFingerprint(path: string): Promise<string | undefined> {
  const line = await readFile(path, 'utf8').catch(() => '');
  const data = line.trim().split(/\s+/)[2];
  return data === undefined || data === '' ? undefined : sha256Fingerprint(Buffer.from(data, 'base64'));
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

/** The host key a server presents: `type base64` and its `SHA256:…` fingerprint. */
export interface PresentedHostKey {
  key: string;
  fingerprint: string;
}

/**
 * Reads the host key `host:port` presents, without logging in: the handshake is dropped right after
 * the key exchange, so no credential is offered to a server that may be an impostor.
 */
export function presentedHostKey(host: string, port: number, timeoutMs = 10_000): Promise<PresentedHostKey> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let seen: PresentedHostKey | undefined;
    const done = (error?: Error) => {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end();
      if (seen !== undefined) resolve(seen);
      else reject(error ?? new Error('the server sent no host key'));
    };
    client.on('error', (error) => done(error));
    client.on('close', () => done());
    client.on('ready', () => done());
    client.connect({
      host,
      port,
      username: 'machine-host-key-probe',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        seen = { key: `${keyType(key)} ${key.toString('base64')}`, fingerprint: sha256Fingerprint(key) };
        return false; // stop here: never authenticate to an unverified server
      },
    });
  });
}

/** The command that accepts a machine's new host key, printed wherever a changed key is refused. */
function trustHint(name: string, fingerprint: string | undefined): string {
  return fingerprint === undefined
    ? `"machine trust-host-key ${name}" shows the key the machine presents and how to accept it`
    : `if you know why it changed (e.g. the machine was rebuilt), check ${fingerprint} out of band (the provider's console) and run "machine trust-host-key ${name} --fingerprint ${fingerprint}"`;
}

/** A refused host key, as the CLI reports it (exit 1; `ssh` makes it OpenSSH's 255). */
export class HostKeyChangedError extends CliError {
  constructor(message: string, exitCode: number = ExitCode.error, options: { cause?: unknown } = {}) {
    super(message, exitCode, options);
    this.name = 'HostKeyChangedError';
  }
}

/** The one line for a refused host key: what changed and exactly how to accept the new key. */
export function hostKeyChangedMessage(name: string, recorded: string | undefined, presented: string | undefined): string {
  return `the SSH host key of machine "${name}" changed${recorded === undefined ? '' : ` (recorded ${recorded}, presented ${presented})`}: refusing to connect, someone may be intercepting the connection; ${trustHint(name, presented)}`;
}

/**
 * A host key mismatch (driver-core's SSHError `host-key`) as the CLI's one line (see
 * {@link hostKeyChangedMessage}). Any other error is returned unchanged.
 */
export function explainHostKeyError(error: unknown, name: string): unknown {
  // provisionDocker wraps a refused connection in a ProvisionError (step `connect`) whose cause is the SSHError.
  const refusal = [error, (error as { cause?: unknown } | null)?.cause].find(
    (candidate) => (candidate as { failure?: unknown } | null | undefined)?.failure === 'host-key',
  );
  if (refusal === undefined) return error;
  const detail = String((refusal as { detail?: unknown }).detail ?? (refusal as Error).message);
  const match = /expected (\S+), got (\S+)/.exec(detail);
  return new HostKeyChangedError(hostKeyChangedMessage(name, match?.[1], match?.[2]), ExitCode.error, { cause: error });
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
