import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { type RunningSSHServer, startSSHServer } from '@machine/driver-core/testing';
import type { InstanceGuests } from '../guest/guest.ts';
import { EmulatedShell } from '../shell/emulated-shell.ts';
import { serveSftp } from '../shell/sftp-handler.ts';
import type { SimInstance } from './store.ts';

/**
 * One real ssh2 server per running instance, bound to the instance's own loopback address on the
 * simulator's shared SSH port. Exec requests run in the emulated shell; the SFTP subsystem serves
 * the same in-memory filesystem. Keys are read at each login, so key changes apply at once.
 */
export class InstanceSSHServers {
  readonly port: number;
  readonly #servers = new Map<SimInstance, Promise<RunningSSHServer | undefined>>();
  readonly #hostKeys = new WeakMap<SimInstance, string>();
  readonly #replacedHostKeys = new WeakMap<SimInstance, string>();
  readonly #shells = new WeakMap<SimInstance, EmulatedShell>();
  readonly #guests: InstanceGuests | undefined;

  /** `guests`: the booted image, whose shell (with systemd, cloud-init…) and host key SSH uses. */
  constructor(port: number, guests?: InstanceGuests) {
    this.port = port;
    this.#guests = guests;
  }

  /** Starts the instance's SSH server unless a fault says its port never opens. */
  async open(instance: SimInstance): Promise<void> {
    if (instance.faults.has('sshNeverOpens') || this.#servers.has(instance)) return;
    const started = this.#start(instance).catch((error: unknown) => {
      process.emitWarning(`cloud-sim: SSH for ${instance.id} on ${instance.publicIp}:${this.port} failed: ${(error as Error).message}`);
      return undefined;
    });
    this.#servers.set(instance, started);
    await started;
  }

  /** Stops the instance's SSH server (connections are dropped). */
  async close(instance: SimInstance): Promise<void> {
    const server = this.#servers.get(instance);
    if (server === undefined) return;
    this.#servers.delete(instance);
    await (await server)?.close();
  }

  /** True when the instance's SSH server is listening. */
  isOpen(instance: SimInstance): boolean {
    return this.#servers.has(instance);
  }

  /**
   * Gives the instance a new SSH host key (`privateKey`, or a generated ed25519 one), as a
   * reinstalled or impostor machine would present; a listening server restarts with it at once.
   * Returns the private key.
   */
  async replaceHostKey(instance: SimInstance, privateKey = generateSSHKeyPair({ comment: `host-${instance.id}` }).privateKey): Promise<string> {
    this.#replacedHostKeys.set(instance, privateKey);
    if (this.#servers.has(instance)) {
      await this.close(instance);
      await this.open(instance);
    }
    return privateKey;
  }

  /** Number of listening servers. */
  get openCount(): number {
    return this.#servers.size;
  }

  /** The shell serving an instance (tests inspect its filesystem through `instance.filesystem`). */
  shellFor(instance: SimInstance): EmulatedShell {
    if (this.#guests !== undefined) return this.#guests.guestFor(instance).shell;
    let shell = this.#shells.get(instance);
    if (shell === undefined) {
      const diskGb = typeof instance.attributes.diskGb === 'number' ? instance.attributes.diskGb : 25;
      shell = new EmulatedShell(instance.filesystem, { hostname: instance.name, diskGb });
      this.#shells.set(instance, shell);
    }
    return shell;
  }

  /** Stops every server. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#servers.keys()].map((instance) => this.close(instance)));
  }

  #start(instance: SimInstance): Promise<RunningSSHServer> {
    let hostKey = this.#replacedHostKeys.get(instance) ?? this.#guests?.guestFor(instance).hostKey ?? this.#hostKeys.get(instance);
    if (hostKey === undefined) {
      hostKey = generateSSHKeyPair({ comment: `host-${instance.id}` }).privateKey;
      this.#hostKeys.set(instance, hostKey);
    }
    const shell = this.shellFor(instance);
    const rejectsKeys = instance.faults.has('sshRejectsKey');
    return startSSHServer({
      host: instance.publicIp,
      port: this.port,
      hostKey,
      authorizedKeys: () => (rejectsKeys ? [] : instance.authorizedKeys),
      // driver-core's exec handler does not receive the login user, so commands run as root.
      onExec: (command, io) => shell.exec(command, io),
      onSftp: (sftp, username) => serveSftp(sftp, instance.filesystem, username),
      shellPrompt: `root@${instance.name}:~# `,
    });
  }
}
