import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type CreateOptions,
  createResources,
  type Driver,
  type DriverContext,
  findEntry,
  InvalidConfigError,
  managedByValue,
  NotFoundError,
  NotSupportedError,
  type OperationOptions,
  ProviderError,
  type ResourceJournal,
  type ResourceModel,
  removeResources,
  State,
  TimeoutError,
  throwIfAborted,
  waitFor,
} from '@machine/driver-core';
import type { SSHTarget } from '@machine/driver-core/ssh';
import { randomVirtualBoxMac } from './cloud-init-seed.ts';
import {
  cidrContains,
  parseHostCidr,
  type RouteSource,
} from './host-network.ts';
import { HostOnlySetup } from './host-only-setup.ts';
import { freeLoopbackPort, isLoopbackPortFree } from './loopback-port.ts';
import { createVBoxClient, type VBoxClient } from './vbox-client.ts';
import { execFileRunner, locateVBoxManage, parseBlocks, parseVBoxVersion, type VBoxManageRunner } from './vboxmanage.ts';
import { mentionsVtxUnavailable } from './virtualbox-errors.ts';
import type { VirtualBoxConfig } from './virtualbox-flags.ts';
import { resolveImage } from './virtualbox-image.ts';
import {
  diskKind,
  hostOnlyIpKey,
  hostOnlyTag,
  managedByKey,
  managedByTagValue,
  ResourceKind,
  seedIsoKind,
  virtualBoxModel,
  vmKind,
} from './virtualbox-resources.ts';
import { stateOfVmState } from './virtualbox-state.ts';
import { modifyVmArgs, sharedFolder } from './vm-settings.ts';
import { defaultTimings, type VirtualBoxTimings } from './virtualbox-timings.ts';

// ssh2 (behind driver-core's keys and ssh helpers) loads on first use, not on import.
let sshModules: Promise<[typeof import('@machine/driver-core/keys'), typeof import('@machine/driver-core/ssh')]> | undefined;
function loadSsh() {
  sshModules ??= Promise.all([import('@machine/driver-core/keys'), import('@machine/driver-core/ssh')]);
  return sshModules;
}

/** Facts about the host the driver reads; injectable so tests do not depend on the machine they run on. */
export interface VirtualBoxHost {
  platform: NodeJS.Platform;
  env: Readonly<Record<string, string | undefined>>;
  /** Linux CPU flags file for the VT-x/AMD-V check (default `/proc/cpuinfo`). */
  cpuInfoPath: string;
  routes: RouteSource;
  /** Folder of downloaded images (default `<storage>/cache/virtualbox`, the storage root being two levels above the machine folder). */
  cacheDir?: string;
  hostCpuCount: number;
}

/** The host the driver runs on. */
export function currentHost(): VirtualBoxHost {
  return { platform: process.platform, env: process.env, cpuInfoPath: '/proc/cpuinfo', routes: {}, hostCpuCount: availableParallelism() };
}

/** The minimum VirtualBox version (6.1: the first with the dhcpserver options and the host-only rules used here). */
export const minimumVersion = { major: 6, minor: 1 } as const;

/** Options of {@link VirtualBoxDriver}. */
export interface VirtualBoxDriverOptions {
  config: VirtualBoxConfig;
  context: DriverContext;
  /** A VBoxManage runner to use instead of locating and executing VBoxManage. */
  client?: VBoxManageRunner;
  timings?: Partial<VirtualBoxTimings>;
  host?: Partial<VirtualBoxHost>;
}

/** Local VirtualBox VMs from an Ubuntu cloud image, driven only through VBoxManage. */
export class VirtualBoxDriver implements Driver {
  readonly driverName = 'virtualbox';
  readonly #config: VirtualBoxConfig;
  readonly #context: DriverContext;
  readonly #injected: VBoxManageRunner | undefined;
  readonly #timings: VirtualBoxTimings;
  readonly #host: VirtualBoxHost;
  readonly #client: VBoxClient;
  readonly #model: ResourceModel<VBoxClient>;
  readonly #hostOnly: HostOnlySetup;
  #runner: Promise<VBoxManageRunner> | undefined;
  #version: { major: number; minor: number; patch: number; text: string } | undefined;

  constructor(options: VirtualBoxDriverOptions) {
    this.#config = options.config;
    this.#context = options.context;
    this.#injected = options.client;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#host = { ...currentHost(), ...options.host };
    this.#client = createVBoxClient({
      runner: () => this.#getRunner(),
      machine: this.machineName,
      timings: this.#timings,
      lockDir: this.#cacheDir(),
      machineDir: this.#context.machineDir,
    });
    this.#model = virtualBoxModel(async () => this.#client, this.#timings);
    this.#hostOnly = new HostOnlySetup({ client: this.#client, cidr: this.#config.hostOnlyCidr, host: this.#host, machine: this.machineName });
  }

  get machineName(): string {
    return this.#context.machineName;
  }

  // ---------------------------------------------------------------------------------------------
  // VBoxManage

  #getRunner(): Promise<VBoxManageRunner> {
    if (this.#injected !== undefined) return Promise.resolve(this.#injected);
    this.#runner ??= locateVBoxManage({ explicitPath: this.#config.vboxManagePath, env: this.#host.env, platform: this.#host.platform }).then(
      (path) => execFileRunner(path, this.#timings.vboxManage),
    );
    const runner = this.#runner;
    runner.catch(() => {
      if (this.#runner === runner) this.#runner = undefined;
    });
    return runner;
  }

  #vbox(args: readonly string[], operation: string): Promise<string> {
    return this.#client.vbox(args, operation);
  }

  async #checkVersion(operation: string): Promise<void> {
    if (this.#version !== undefined) return;
    const output = await this.#vbox(['--version'], operation);
    const version = parseVBoxVersion(output);
    if (version === undefined) {
      throw new ProviderError(`could not read the VirtualBox version from \`VBoxManage --version\`: ${JSON.stringify(output.trim())}`, {
        machine: this.machineName,
        operation,
        hint: 'reinstall VirtualBox; a broken kernel module setup makes VBoxManage print warnings instead',
      });
    }
    if (version.major < minimumVersion.major || (version.major === minimumVersion.major && version.minor < minimumVersion.minor)) {
      throw new NotSupportedError(`VirtualBox ${version.text} is too old: machine needs VirtualBox ${minimumVersion.major}.${minimumVersion.minor} or newer`, {
        machine: this.machineName,
        operation,
        hint: 'upgrade VirtualBox from https://www.virtualbox.org/wiki/Downloads',
      });
    }
    this.#version = version;
  }

  /** VirtualBox 7 on macOS has host-only networks (vmnet) instead of host-only interfaces. */
  #hostOnlyMode(): 'if' | 'net' {
    return this.#host.platform === 'darwin' && (this.#version?.major ?? 0) >= 7 ? 'net' : 'if';
  }

  /** Linux: the CPU must offer vmx (Intel) or svm (AMD); other hosts rely on VirtualBox's own start error. */
  async #checkVtx(operation: string): Promise<void> {
    if (this.#config.noVtxCheck || this.#host.platform !== 'linux') return;
    const cpuInfo = await readFile(this.#host.cpuInfoPath, 'utf8').catch(() => undefined);
    if (cpuInfo === undefined) return;
    const flags = cpuInfo.split('\n').find((line) => /^flags\s*:/.test(line)) ?? '';
    if (/\b(?:vmx|svm)\b/.test(flags)) return;
    throw new NotSupportedError("this computer's CPU does not offer VT-x/AMD-v (no vmx or svm flag in /proc/cpuinfo); VirtualBox 6.1+ needs it", {
      machine: this.machineName,
      operation,
      hint: 'enable VT-x/AMD-v in the firmware, or nested virtualization when this is a VM; --virtualbox-no-vtx-check skips this check',
    });
  }

  async #checkInputs(operation: string): Promise<void> {
    const issues: { flag: string; message: string }[] = [];
    const imagePath = this.#config.imagePath;
    if (imagePath !== undefined && imagePath !== '' && !existsSync(imagePath)) issues.push({ flag: 'virtualbox-image-path', message: `${imagePath} does not exist` });
    const userData = this.#config.userData;
    if (userData !== undefined && userData !== '' && !existsSync(userData)) issues.push({ flag: 'virtualbox-userdata', message: `${userData} does not exist` });
    const share = this.#config.shareFolder;
    if (!this.#config.noShare && share !== undefined && share !== '') {
      const hostPath = share.slice(0, share.lastIndexOf(':'));
      if (!existsSync(hostPath)) issues.push({ flag: 'virtualbox-share-folder', message: `${hostPath} does not exist` });
    }
    if (issues.length > 0) throw new InvalidConfigError(issues, { machine: this.machineName, operation });
  }

  // ---------------------------------------------------------------------------------------------
  // Driver

  async preCreateCheck(options: OperationOptions = {}): Promise<void> {
    await this.#checkInputs('preCreateCheck');
    await this.#checkVersion('preCreateCheck');
    throwIfAborted(options.signal);
    await this.#checkVtx('preCreateCheck');
    await this.#hostOnly.plan(this.#hostOnlyMode(), 'preCreateCheck');
  }

  async create(options: CreateOptions = {}): Promise<void> {
    const { machineDir, data } = this.#context;
    const signal = options.signal;
    const step = () => throwIfAborted(signal, { machine: this.machineName, operation: 'create' });
    const vbox = (args: readonly string[]) => this.#vbox(args, 'create');
    // Each resource is made through `run.make`: its intent is journaled before the VBoxManage call
    // that makes it, so a create killed at any moment leaves nothing remove cannot find.
    await createResources(this.#model, this.#context, options, async (run) => {
      await this.#checkInputs('create');
      await this.#checkVersion('create');
      await this.#checkVtx('create');
      // Fail on a colliding range before anything is made; the interface itself is chosen later, under the lock.
      await this.#hostOnly.plan(this.#hostOnlyMode(), 'create');
      step();
      await mkdir(machineDir, { recursive: true, mode: 0o700 });
      const [{ generateSSHKeyPair, writeSSHKeyPair }, { waitForSSH }] = await loadSsh();
      const keyPair = generateSSHKeyPair({ comment: `${this.#config.sshUser}@${this.machineName}` });
      await writeSSHKeyPair(machineDir, keyPair, 'id_ed25519');
      const extraUserData = this.#config.userData ? await readFile(this.#config.userData, 'utf8') : undefined;
      const image = await resolveImage({
        imageUrl: this.#config.imageUrl,
        imagePath: this.#config.imagePath,
        imageChecksum: this.#config.imageChecksum,
        cacheDir: this.#cacheDir(),
        machine: this.machineName,
        signal,
        onProgress: this.#context.onProgress,
      });
      step();

      const sshPort = await freeLoopbackPort();
      const natMac = randomVirtualBoxMac();
      const hostOnlyMac = randomVirtualBoxMac();
      const diskPath = (await run.make(diskKind, { source: image.path, path: join(machineDir, 'disk.vdi') })).id;
      // clonemedium registered the source image too; release it so the cache stays unregistered.
      await vbox(['closemedium', 'disk', image.path]).catch(() => {});
      // The description is what `machine sweep` finds a disk left without its VM by.
      const managedBy = managedByTagValue(managedByValue(this.#context.storeId));
      await vbox(['modifymedium', 'disk', diskPath, '--resize', String(this.#config.diskSize), '--description', managedBy]);
      step();

      const uuid = (await run.make(vmKind, { uuid: randomUUID(), basefolder: machineDir })).id;
      // What `machine sweep` looks for (a VM's extra data lives in its settings and goes with it).
      await vbox(['setextradata', uuid, managedByKey, managedBy]);
      step();

      // The host-only interface is found or made, and the VM attached to it, under a host-wide
      // lock: concurrent creates share one interface, and a concurrent remove cannot delete it
      // between the moment it is chosen and the moment this VM uses it.
      // With --virtualbox-hostonly-no-dhcp the static address is chosen and recorded on the VM
      // under the same lock, so two such creates never pick the same one.
      const noDhcp = this.#config.hostOnlyNoDhcp;
      const { plan, hostOnlyInterface, staticIp } = await this.#client.withHostOnlyLock(signal, async () => {
        const planned = await this.#hostOnly.plan(this.#hostOnlyMode(), 'create');
        const name = await this.#hostOnly.ensure(run, planned, 'create', !noDhcp);
        let address: string | undefined;
        if (noDhcp) {
          address = await this.#hostOnly.chooseStaticAddress(name, planned, uuid, 'create');
          await vbox(['setextradata', uuid, hostOnlyIpKey, address]);
        }
        await vbox(modifyVmArgs(this.#config, { hostCpuCount: this.#host.hostCpuCount, machineDir }, uuid, { sshPort, natMac, hostOnlyMac, hostOnlyInterface: name, hostOnlyMode: planned.mode }));
        return { plan: planned, hostOnlyInterface: name, staticIp: address };
      });
      await data.write({
        sshPort,
        natMac,
        hostOnlyMac,
        hostOnlyInterface,
        hostOnlyMode: plan.mode,
        hostOnlyCidr: this.#config.hostOnlyCidr,
        // A static address is the machine's IP from now on: getIP needs no DHCP lease for it.
        ...(staticIp === undefined ? {} : { ip: staticIp, hostOnlyStaticIp: staticIp }),
      });
      const seedPath = (
        await run.make(seedIsoKind, {
          path: join(machineDir, 'seed.iso'),
          machineName: this.machineName,
          instanceId: `${this.machineName}-${randomUUID()}`,
          sshUser: this.#config.sshUser,
          publicKey: keyPair.publicKey,
          bootUserData: options.boot?.userData,
          extraUserData,
          natMac,
          hostOnlyMac,
          hostOnlyAddress: staticIp === undefined ? undefined : `${staticIp}/${plan.cidr.prefix}`,
        })
      ).id;
      step();
      await vbox(['storagectl', uuid, '--name', 'SATA', '--add', 'sata', '--controller', 'IntelAhci', '--portcount', '2', '--hostiocache', 'on']);
      await vbox(['storageattach', uuid, '--storagectl', 'SATA', '--port', '0', '--device', '0', '--type', 'hdd', '--medium', diskPath]);
      await vbox(['storageattach', uuid, '--storagectl', 'SATA', '--port', '1', '--device', '0', '--type', 'dvddrive', '--medium', seedPath]);
      const share = sharedFolder(this.#config, this.#host.platform);
      if (share !== undefined) await vbox(['sharedfolder', 'add', uuid, '--name', share.name, '--hostpath', share.hostPath, '--automount']);
      step();

      // The forward's port was free when it was chosen, an image download and a disk clone ago.
      // VirtualBox 6.1+ only logs a forward it cannot bind and starts the VM anyway, so a port
      // taken since then would leave SSH pointing at whatever holds it: check it again now.
      await this.#ensureSshForward(uuid, 'create');
      this.#context.onProgress?.({ step: 'start-vm', phase: 'start', message: `starting VM ${this.machineName}` });
      await this.#startVm(uuid, 'create');
      await this.#waitForState(uuid, State.Running, this.#config.bootTimeout * 1000, signal, 'create');
      this.#context.onProgress?.({ step: 'start-vm', phase: 'done', message: `VM ${this.machineName} is running` });
      const pinned = options.boot?.hostKeyFingerprint;
      const fingerprint = await waitForSSH(await this.#sshTarget(pinned), this.#sshWaitOptions(signal, 'create'));
      await data.write({ hostKeyFingerprint: pinned ?? fingerprint });
      await this.#refreshIp(signal, 'create');
    });
  }

  /** Resolves every intent (what a killed create made), deletes what the journal holds, and fails naming whatever is left. */
  async remove(options: OperationOptions = {}): Promise<void> {
    await removeResources(this.#model, this.#context, options);
  }

  async start(options: OperationOptions = {}): Promise<void> {
    const uuid = this.#uuid('start');
    const info = await this.#info(uuid, 'start');
    const state = stateOfVmState(info.get('VMState'));
    if (state === State.Running) return;
    if (state === State.Paused) {
      await this.#vbox(['controlvm', uuid, 'resume'], 'start');
    } else {
      // NAT rules may change while a VM is saved (not its adapters): a saved VM restores with the
      // forward it has, so a port taken meanwhile is moved as for a powered-off one.
      if (state === State.Stopped || state === State.Saved) await this.#ensureSshForward(uuid, 'start');
      if (state === State.Stopped) await this.#ensureHostOnlyAttached(uuid, info, options.signal);
      await this.#startVm(uuid, 'start');
    }
    await this.#waitReady(uuid, options.signal, 'start');
  }

  async stop(options: OperationOptions = {}): Promise<void> {
    const uuid = this.#uuid('stop');
    const state = stateOfVmState((await this.#info(uuid, 'stop')).get('VMState'));
    if (state === State.Stopped || state === State.Saved) return;
    if (state === State.Paused) await this.#vbox(['controlvm', uuid, 'resume'], 'stop');
    if (await this.#acpiShutdown(uuid, options.signal, 'stop')) return;
    await this.#vbox(['controlvm', uuid, 'poweroff'], 'stop');
    await this.#waitForState(uuid, State.Stopped, this.#config.stopTimeout * 1000, options.signal, 'stop');
  }

  async kill(options: OperationOptions = {}): Promise<void> {
    const uuid = this.#uuid('kill');
    const state = stateOfVmState((await this.#info(uuid, 'kill')).get('VMState'));
    if (state === State.Stopped) return;
    if (state === State.Saved) {
      // A saved VM is not running: dropping its saved state is the forcible stop.
      await this.#vbox(['discardstate', uuid], 'kill');
      return;
    }
    await this.#vbox(['controlvm', uuid, 'poweroff'], 'kill');
    await this.#waitForState(uuid, State.Stopped, this.#config.stopTimeout * 1000, options.signal, 'kill');
  }

  /** ACPI shutdown then start; a guest that ignores the power button within the stop timeout is reset instead. */
  async restart(options: OperationOptions = {}): Promise<void> {
    const uuid = this.#uuid('restart');
    const state = stateOfVmState((await this.#info(uuid, 'restart')).get('VMState'));
    if (state === State.Running) {
      if (!(await this.#acpiShutdown(uuid, options.signal, 'restart'))) {
        this.#context.onProgress?.({ step: 'restart', phase: 'info', message: 'the guest ignored the ACPI power button; resetting it' });
        await this.#vbox(['controlvm', uuid, 'reset'], 'restart');
        await this.#waitReady(uuid, options.signal, 'restart');
        return;
      }
    }
    await this.start(options);
  }

  async getState(): Promise<State> {
    return stateOfVmState((await this.#info(this.#uuid('getState'), 'getState')).get('VMState'));
  }

  async getIP(): Promise<string> {
    await this.#info(this.#uuid('getIP'), 'getIP');
    const ip = this.#context.data.read().ip;
    if (typeof ip !== 'string' || ip === '') {
      throw new ProviderError('the VM has not reported its host-only address yet', { machine: this.machineName, operation: 'getIP', hint: '`machine start` waits for it' });
    }
    return ip;
  }

  async getSSHHostname(): Promise<string> {
    this.#uuid('getSSHHostname');
    return '127.0.0.1';
  }

  async getSSHPort(): Promise<number> {
    this.#uuid('getSSHPort');
    const port = this.#context.data.read().sshPort;
    if (typeof port !== 'number') throw new NotFoundError('no SSH port forward is recorded for this machine', { machine: this.machineName, operation: 'getSSHPort' });
    return port;
  }

  getSSHUsername(): string {
    return this.#config.sshUser;
  }

  getSSHKeyPath(): string {
    return join(this.#context.machineDir, 'id_ed25519');
  }

  async getURL(): Promise<string> {
    return `tcp://${await this.getIP()}:2376`;
  }

  // ---------------------------------------------------------------------------------------------
  // helpers

  #cacheDir(): string {
    return this.#host.cacheDir ?? join(dirname(dirname(this.#context.machineDir)), 'cache', 'virtualbox');
  }

  #uuid(operation: string): string {
    const entry = findEntry(this.#context.journal, ResourceKind.vm);
    if (entry === undefined) throw new NotFoundError('no VirtualBox VM is recorded for this machine', { machine: this.machineName, operation });
    return entry.id;
  }

  #info(uuid: string, operation: string): Promise<Map<string, string>> {
    return this.#client.info(uuid, operation);
  }

  async #startVm(uuid: string, operation: string): Promise<void> {
    try {
      await this.#vbox(['startvm', uuid, '--type', this.#config.uiType], operation);
    } catch (error) {
      const tail = await this.#logTail();
      if (tail !== '' && mentionsVtxUnavailable(tail) && !NotSupportedError.isInstance(error)) {
        throw new NotSupportedError(`VirtualBox could not start the VM: VT-x/AMD-V is not available (${tail})`, {
          machine: this.machineName,
          operation,
          cause: error,
          hint: 'enable VT-x/AMD-V in the firmware and turn off Hyper-V / other hypervisors that hold it',
        });
      }
      if (tail !== '' && ProviderError.isInstance(error)) {
        // As the reference did: what VirtualBox logged last is usually the real reason.
        throw new ProviderError(`${error.detail}; VBox.log ends: ${tail}`, {
          machine: this.machineName,
          operation,
          cause: error,
          ...(error.providerCode === undefined ? {} : { providerCode: error.providerCode }),
          retryable: error.isRetryable,
        });
      }
      throw error;
    }
  }

  /** The last lines of the VM's VBox.log (what VirtualBox said when a start failed). */
  async #logTail(): Promise<string> {
    const log = join(this.#context.machineDir, this.machineName, 'Logs', 'VBox.log');
    const text = await readFile(log, 'utf8').catch(() => '');
    return text.trim().split('\n').slice(-3).join(' | ');
  }

  async #waitForState(uuid: string, wanted: State, timeoutMs: number, signal: AbortSignal | undefined, operation: string): Promise<void> {
    await waitFor(
      async () => {
        const vmState = (await this.#info(uuid, operation)).get('VMState');
        const state = stateOfVmState(vmState);
        if (state === wanted) return { done: true, value: undefined };
        if (wanted === State.Running && (vmState === 'aborted' || vmState === 'poweroff')) {
          const tail = await this.#logTail();
          const detail = `the VM stopped (${vmState}) while starting${tail === '' ? '' : `: ${tail}`}`;
          if (mentionsVtxUnavailable(tail)) {
            throw new NotSupportedError(detail, { machine: this.machineName, operation, hint: 'enable VT-x/AMD-V in the firmware' });
          }
          throw new ProviderError(detail, { machine: this.machineName, operation, hint: `see ${join(this.#context.machineDir, 'console.log')}` });
        }
        if (wanted === State.Running && state === State.Error) {
          // A guru meditation never recovers on its own: waiting out the boot timeout helps no one.
          const tail = await this.#logTail();
          throw new ProviderError(`the VM hit a guru meditation (VMState ${vmState}) while starting${tail === '' ? '' : `: ${tail}`}`, {
            machine: this.machineName,
            operation,
            hint: `see ${join(this.#context.machineDir, this.machineName, 'Logs', 'VBox.log')}; \`machine kill\` powers it off`,
          });
        }
        return { done: false, reason: `VMState ${vmState ?? 'unknown'}` };
      },
      {
        interval: this.#timings.pollInterval,
        maxInterval: this.#timings.maxPollInterval,
        timeout: timeoutMs,
        description: `VM ${this.machineName} to be ${wanted.toLowerCase()}`,
        machine: this.machineName,
        operation,
        ...(signal === undefined ? {} : { signal }),
      },
    );
  }

  /** Presses the ACPI power button and waits for poweroff; false when the guest did not stop in time. */
  async #acpiShutdown(uuid: string, signal: AbortSignal | undefined, operation: string): Promise<boolean> {
    await this.#vbox(['controlvm', uuid, 'acpipowerbutton'], operation);
    try {
      await this.#waitForState(uuid, State.Stopped, this.#config.stopTimeout * 1000, signal, operation);
      return true;
    } catch (error) {
      if (TimeoutError.isInstance(error)) return false;
      throw error;
    }
  }

  /**
   * Before a start from poweroff, as the reference did: when the VM's host-only interface or
   * network is gone (deleted by hand, lost with a host reinstall), make or find one for the CIDR
   * again (journaled like create's) and attach the VM to it.
   */
  async #ensureHostOnlyAttached(uuid: string, info: ReadonlyMap<string, string>, signal: AbortSignal | undefined): Promise<void> {
    await this.#checkVersion('start');
    const mode = this.#hostOnlyMode();
    const attached = info.get(mode === 'net' ? 'hostonly-network2' : 'hostonlyadapter2');
    const listed = parseBlocks(await this.#vbox(['list', mode === 'net' ? 'hostonlynets' : 'hostonlyifs'], 'start'));
    const cidr = parseHostCidr(this.#config.hostOnlyCidr);
    const current = listed.find((block) => block.get('Name') === attached);
    // Still there and still on the machine's network (someone may have re-addressed it).
    if (current !== undefined && cidrContains(cidr, current.get(mode === 'net' ? 'LowerIP' : 'IPAddress') ?? '')) return;
    throwIfAborted(signal);
    const { journal } = this.#context;
    const kind = mode === 'net' ? ResourceKind.hostOnlyNetwork : ResourceKind.hostOnlyInterface;
    // The old one is gone or no longer on this network: it is not this machine's to delete any more.
    const old = attached === undefined ? undefined : journal.entries().find((entry) => entry.kind === kind && entry.id === attached);
    if (old !== undefined && attached !== undefined) {
      if (!old.preExisting) await this.#vbox(['setextradata', 'global', hostOnlyTag(attached, mode)], 'start');
      await journal.forget(kind, attached);
      await journal.forget(ResourceKind.dhcpServer, attached);
    }
    // A guest with a static address keeps it (its seed's network-config): the new network gets no DHCP server for it.
    const dhcp = typeof this.#context.data.read().hostOnlyStaticIp !== 'string';
    // Made like create's, through a journal view: a failure removes what this repair made, not the machine.
    const name = await createResources(this.#model, { ...this.#context, journal: scopedJournal(journal) }, { operation: 'start' }, (run) =>
      this.#client.withHostOnlyLock(signal, async () => {
        const made = await this.#hostOnly.ensure(run, await this.#hostOnly.plan(this.#hostOnlyMode(), 'start'), 'start', dhcp);
        await this.#vbox(['modifyvm', uuid, mode === 'net' ? '--host-only-net2' : '--hostonlyadapter2', made], 'start');
        return made;
      }),
    );
    await this.#context.data.write({ hostOnlyInterface: name, hostOnlyMode: mode });
    this.#context.onProgress?.({ step: 'host-only', phase: 'info', message: `the VM's host-only ${mode === 'net' ? 'network' : 'interface'} was gone; attached it to ${name}` });
  }

  /**
   * Right before a VM starts: keeps the SSH forward's port when it is still free, else moves the
   * forward to a free one (VirtualBox would start the VM without the forward).
   */
  async #ensureSshForward(uuid: string, operation: string): Promise<void> {
    const port = this.#context.data.read().sshPort;
    if (typeof port === 'number' && (await isLoopbackPortFree(port))) return;
    const next = await freeLoopbackPort();
    await this.#vbox(['modifyvm', uuid, '--natpf1', 'delete', 'ssh'], operation).catch((error: unknown) => {
      if (!(error instanceof ProviderError)) throw error;
    });
    await this.#vbox(['modifyvm', uuid, '--natpf1', `ssh,tcp,127.0.0.1,${next},,22`], operation);
    await this.#context.data.write({ sshPort: next });
    this.#context.onProgress?.({ step: 'ssh-forward', phase: 'info', message: `port ${String(port)} was taken; the SSH forward moved to 127.0.0.1:${next}` });
  }

  async #waitReady(uuid: string, signal: AbortSignal | undefined, operation: string): Promise<void> {
    await this.#waitForState(uuid, State.Running, this.#config.bootTimeout * 1000, signal, operation);
    const pinned = this.#context.data.read().hostKeyFingerprint;
    const [, { waitForSSH }] = await loadSsh();
    const fingerprint = await waitForSSH(await this.#sshTarget(typeof pinned === 'string' ? pinned : undefined), this.#sshWaitOptions(signal, operation));
    if (typeof pinned !== 'string') await this.#context.data.write({ hostKeyFingerprint: fingerprint });
    await this.#refreshIp(signal, operation);
  }

  async #sshTarget(hostKeyFingerprint?: string): Promise<SSHTarget> {
    const port = this.#context.data.read().sshPort;
    return {
      host: '127.0.0.1',
      port: typeof port === 'number' ? port : 22,
      username: this.#config.sshUser,
      privateKey: await readFile(this.getSSHKeyPath(), 'utf8'),
      machine: this.machineName,
      ...(hostKeyFingerprint === undefined ? {} : { hostKeyFingerprint }),
    };
  }

  #sshWaitOptions(signal: AbortSignal | undefined, operation: string) {
    return {
      timeout: this.#config.bootTimeout * 1000,
      operation,
      ...(signal === undefined ? {} : { signal }),
      ...(this.#context.onProgress === undefined ? {} : { onProgress: this.#context.onProgress }),
    };
  }

  /**
   * Reads the guest's address on the host-only network over SSH (DHCP may take a moment) and
   * stores it. A guest with a static address must show that one (else its network-config failed).
   */
  async #refreshIp(signal: AbortSignal | undefined, operation: string): Promise<string> {
    const cidr = parseHostCidr(this.#config.hostOnlyCidr);
    const { hostKeyFingerprint: pinned, hostOnlyStaticIp } = this.#context.data.read();
    const fixed = typeof hostOnlyStaticIp === 'string' ? hostOnlyStaticIp : undefined;
    const target = await this.#sshTarget(typeof pinned === 'string' ? pinned : undefined);
    const [, { runSSH }] = await loadSsh();
    const ip = await waitFor(
      async () => {
        const result = await runSSH(target, 'ip -o -4 addr show', signal === undefined ? {} : { signal });
        const addresses = [...result.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((match) => match[1] ?? '');
        const has = addresses.join(', ') || 'none';
        if (fixed !== undefined) {
          return addresses.includes(fixed) ? { done: true, value: fixed } : { done: false, reason: `the guest does not have its static address ${fixed} yet (has ${has})` };
        }
        const found = addresses.find((address) => address !== cidr.ip && cidrContains(cidr, address));
        return found === undefined ? { done: false, reason: `no address in ${cidr.network}/${cidr.prefix} yet (has ${has})` } : { done: true, value: found };
      },
      {
        interval: this.#timings.pollInterval,
        maxInterval: this.#timings.maxPollInterval,
        timeout: this.#timings.ipTimeout,
        description: `the VM's address on the host-only network ${cidr.network}/${cidr.prefix}`,
        machine: this.machineName,
        operation,
        ...(signal === undefined ? {} : { signal }),
      },
    );
    await this.#context.data.write({ ip });
    return ip;
  }
}

/**
 * A view of `journal` that holds only what is recorded through it: a rollback through it (start's
 * repair of a missing host-only interface) removes what that repair made and nothing else.
 */
function scopedJournal(journal: ResourceJournal): ResourceJournal {
  const mine = new Set<string>();
  const key = (kind: string, id: string) => `${kind}\n${id}`;
  return {
    record: async (entry) => {
      mine.add(key(entry.kind, entry.id));
      await journal.record(entry);
    },
    forget: async (kind, id) => {
      mine.delete(key(kind, id));
      await journal.forget(kind, id);
    },
    entries: () => journal.entries().filter((entry) => mine.has(key(entry.kind, entry.id))),
  };
}
