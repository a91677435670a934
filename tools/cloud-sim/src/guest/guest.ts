import { randomInt, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import ssh2 from 'ssh2';
import type { SimInstance } from '../core/store.ts';
import { EmulatedShell } from '../shell/emulated-shell.ts';
import type { CloudInitState, GuestSystem, SystemResult } from '../shell/guest-system.ts';
import { type BootPlan, planBoot, runcmdLine } from './cloud-config.ts';
import { DOCKER_DROP_IN_DIR, DOCKER_UNIT, DOCKER_UNIT_PATH, daemonSettings, type LoadedUnit, loadDockerUnit } from './docker-config.ts';
import { statusText } from './docker-api-routes.ts';
import { ContainerEngine } from './docker-engine.ts';
import { type DaemonSettings, infoBody, type RunningDaemon, startDockerd } from './dockerd.ts';
import { type EngineRelease, INITIAL_ENGINE, NEXT_ENGINE } from './engine-releases.ts';
import { download } from './downloads.ts';

/** Options shared by every guest of one simulator. */
export interface GuestOptions {
  /** Extra URLs instances can download (`startSim({ downloads })`). */
  downloads?: Readonly<Record<string, string>>;
  /** How long cloud-init's final stage (runcmd, scripts) takes after boot, ms (default 20). */
  cloudInitMs?: number;
}

const CLOUD_INIT_VERSION = '24.4-0ubuntu1~24.04.2';
const CLOUD_INIT_LOG = '/var/log/cloud-init-output.log';
const SCRIPTS_DIR = '/var/lib/cloud/instance/scripts';
const DOCKER_PACKAGES = new Set(['docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-compose-plugin', 'docker-ce-rootless-extras', 'docker-buildx-plugin', 'docker.io']);
const JOB_FAILED = 'Job for docker.service failed because the control process exited with error code.\nSee "systemctl status docker.service" and "journalctl -xeu docker.service" for details.\n';
const CHANGED_ON_DISK = "Warning: The unit file, source configuration file or drop-ins of docker.service changed on disk. Run 'systemctl daemon-reload' to reload units.\n";

const DATASOURCES: Readonly<Record<string, string>> = {
  digitalocean: 'DataSourceDigitalOcean',
  amazonec2: 'DataSourceEc2Local',
  google: 'DataSourceGCELocal',
  azure: 'DataSourceAzure [seed=/dev/sr0]',
};

type DockerState = 'inactive' | 'active' | 'failed';

/**
 * The "booted image" of one instance: cloud-init (first boot: host key, write_files, runcmd and
 * user scripts through the emulated shell, output in /var/log/cloud-init-output.log), systemd's
 * view of docker.service, apt-get, the simulated network, and an emulated dockerd serving the
 * Docker API over TLS on the instance's own address. Implements the shell's {@link GuestSystem}.
 */
export class Guest implements GuestSystem {
  readonly instance: SimInstance;
  readonly shell: EmulatedShell;
  readonly #options: GuestOptions;
  readonly #datasource: string;
  #boots = 0;
  #bootedAt = Date.now();
  #hostKey: string | undefined;
  #cloudInit: { state: CloudInitState; errors: string[]; lastUpdate: Date } = { state: 'not started', errors: [], lastUpdate: new Date() };
  #cloudInitDone: Promise<void>;
  #finishCloudInit: () => void = () => {};
  #finalStage: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #journal = new Map<string, string[]>();
  readonly #daemonId = randomUUID();
  #docker: { state: DockerState; enabled: boolean; unit: LoadedUnit | undefined; daemon: RunningDaemon | undefined } = { state: 'inactive', enabled: false, unit: undefined, daemon: undefined };
  #dockerQueue: Promise<unknown> = Promise.resolve();
  /** The installed docker-ce release (undefined before the package is installed). */
  #installedEngine: EngineRelease | undefined;
  /** What the Docker apt repository offers; the next release is published once a machine installed the first. */
  readonly #publishedEngines: EngineRelease[] = [INITIAL_ENGINE];
  /** Images and containers, kept on the machine's disk across dockerd restarts. */
  readonly containers = new ContainerEngine();

  constructor(instance: SimInstance, options: GuestOptions = {}) {
    this.instance = instance;
    this.#options = options;
    this.#datasource = DATASOURCES[instance.provider] ?? 'DataSourceNoCloud [seed=/dev/vdb]';
    const diskGb = typeof instance.attributes.diskGb === 'number' ? instance.attributes.diskGb : 25;
    this.shell = new EmulatedShell(instance.filesystem, { hostname: instance.name, diskGb }, this);
    this.#cloudInitDone = new Promise<void>((resolve) => {
      this.#finishCloudInit = resolve;
    });
  }

  /** The SSH host key cloud-init installed from `ssh_keys`, if any. */
  get hostKey(): string | undefined {
    return this.#hostKey;
  }

  /**
   * Boots the machine (before its SSH server opens). The first boot runs cloud-init's early
   * stages at once and its final stage (runcmd, scripts) shortly after; later boots start
   * docker.service when it is enabled.
   */
  async boot(): Promise<void> {
    this.#boots++;
    this.#bootedAt = Date.now();
    if (this.#boots === 1) {
      this.#firstBoot();
      return;
    }
    if (this.#docker.unit !== undefined) this.#docker.unit = loadDockerUnit(this.instance.filesystem);
    if (this.#docker.enabled) await this.#queueDocker(() => this.#startDocker());
  }

  /** Stops the machine's services (dockerd's listeners close). */
  async shutdown(): Promise<void> {
    await this.#queueDocker(async () => {
      if (this.#docker.state === 'active') await this.#stopDocker();
      this.#docker.state = 'inactive';
    });
  }

  /** Stops everything for good (simulator closing). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#finalStage !== undefined) clearTimeout(this.#finalStage);
    this.#finishCloudInit();
    await this.#docker.daemon?.close();
    this.#docker.daemon = undefined;
  }

  // ---- GuestSystem ----

  cloudInit(): { state: CloudInitState; errors: readonly string[]; lastUpdate: Date; datasource: string } {
    return { ...this.#cloudInit, datasource: this.#datasource };
  }

  waitForCloudInit(): Promise<void> {
    return this.#cloudInitDone;
  }

  journal(unit: string): readonly string[] {
    return this.#journal.get(unit) ?? [];
  }

  download(url: string): { data: Buffer } | { code: number; message: string } {
    return download(url, this.#options.downloads ?? {});
  }

  docker(): ReturnType<GuestSystem['docker']> {
    const daemon = this.#docker.daemon;
    const installed = this.#installedEngine === undefined ? {} : { installed: this.#installedEngine };
    if (daemon === undefined) return { running: false, ...installed };
    const containers = [...this.containers.containers.values()]
      .sort((a, b) => b.created.getTime() - a.created.getTime())
      .map((container) => ({
        id: container.id,
        image: container.config.Image,
        command: this.containers.argv(container).join(' '),
        created: container.created,
        status: statusText(container),
        name: container.name,
        running: container.status === 'running',
      }));
    return { running: true, info: infoBody(daemon.settings, this.containers), server: daemon.settings.release ?? INITIAL_ENGINE, containers, ...installed };
  }

  /** The Docker Engine release installed on the machine, if any. */
  get engineRelease(): EngineRelease | undefined {
    return this.#installedEngine;
  }

  installPackages(names: readonly string[], quiet: boolean, options: { onlyUpgrade?: boolean } = {}): SystemResult {
    const docker = names.filter((name) => DOCKER_PACKAGES.has(name));
    if (docker.length > 0 && this.instance.faults.has('engineInstallFails')) {
      return { code: 100, stdout: '', stderr: docker.map((name) => `E: Unable to locate package ${name}\n`).join('') };
    }
    const candidate = this.#publishedEngines.at(-1) ?? INITIAL_ENGINE;
    const previous = this.#installedEngine;
    const lines = quiet ? [] : ['Reading package lists...', 'Building dependency tree...', 'Reading state information...'];
    const dockerPackage = docker.includes('docker-ce') || docker.includes('docker.io');
    if (options.onlyUpgrade === true && previous === undefined) {
      if (!quiet) for (const name of names) lines.push(`Skipping ${name}, it is not installed and only upgrades are requested.`);
      return { code: 0, stdout: lines.length === 0 ? '' : `${lines.join('\n')}\n`, stderr: '' };
    }
    if (dockerPackage && previous?.version === candidate.version) {
      if (!quiet) for (const name of docker) lines.push(`${name} is already the newest version (${candidate.packageVersion}).`);
      return { code: 0, stdout: lines.length === 0 ? '' : `${lines.join('\n')}\n`, stderr: '' };
    }
    for (const name of names) {
      if (quiet) continue;
      if (previous !== undefined && name.startsWith('docker')) lines.push(`Preparing to unpack .../${name}_${candidate.packageVersion}_amd64.deb ...`, `Unpacking ${name} (${candidate.packageVersion}) over (${previous.packageVersion}) ...`);
      lines.push(`Setting up ${name} (${name.startsWith('docker') ? candidate.packageVersion : 'latest'}) ...`);
    }
    let stderr = '';
    if (dockerPackage) {
      this.#installDocker(candidate);
      if (previous === undefined) {
        if (!quiet) lines.push('Created symlink /etc/systemd/system/multi-user.target.wants/docker.service → /usr/lib/systemd/system/docker.service.');
        // The package's postinst starts the service: with daemon.json asking for TLS files that are
        // not there yet it fails (and the package still installs), as on a real machine.
        const started = this.#startDockerNow();
        if (started !== undefined) stderr = JOB_FAILED;
        // The repository moves on: the next release is there for `machine upgrade`.
        if (!this.#publishedEngines.includes(NEXT_ENGINE)) this.#publishedEngines.push(NEXT_ENGINE);
      } else {
        // An upgrade's postinst restarts a running dockerd, which then serves the new release.
        void this.#queueDocker(async () => {
          if (this.#docker.state !== 'active') return;
          await this.#stopDocker();
          await this.#startDocker();
        });
      }
    }
    return { code: 0, stdout: lines.length === 0 ? '' : `${lines.join('\n')}\n`, stderr };
  }

  async systemctl(verb: string, units: readonly string[], options: { now: boolean }): Promise<SystemResult> {
    if (verb === 'daemon-reload') {
      if (this.#docker.unit !== undefined) this.#docker.unit = loadDockerUnit(this.instance.filesystem);
      return ok();
    }
    if (units.length === 0) return { code: 1, stdout: '', stderr: `Too few arguments.\n` };
    const results: SystemResult[] = [];
    for (const raw of units) {
      const unit = raw.replace(/\.service$/, '');
      results.push(unit === 'docker' ? await this.#queueDocker(() => this.#dockerUnit(verb, options)) : otherUnit(verb, unit, this.#docker.unit !== undefined));
    }
    return {
      code: results.find((result) => result.code !== 0)?.code ?? 0,
      stdout: results.map((result) => result.stdout).join(''),
      stderr: results.map((result) => result.stderr).join(''),
    };
  }

  // ---- cloud-init ----

  #firstBoot(): void {
    const fs = this.instance.filesystem;
    const userData = typeof this.instance.attributes.userData === 'string' ? this.instance.attributes.userData : undefined;
    this.#cloudInit = { state: 'running', errors: [], lastUpdate: new Date() };
    fs.writeFile(CLOUD_INIT_LOG, '', { mode: 0o640 });
    this.#log(`Cloud-init v. ${CLOUD_INIT_VERSION} running 'init-local' at ${logDate()}. Up ${this.#uptime()} seconds.`);
    this.#log(`Cloud-init v. ${CLOUD_INIT_VERSION} running 'init' at ${logDate()}. Up ${this.#uptime()} seconds.`);
    const plan = planBoot(userData);
    for (const skipped of plan.skipped) this.#warn('__init__.py', skipped);
    for (const error of plan.errors) this.#fail('util.py', error, error);
    this.#applySshKeys(plan);
    this.#writeFiles(plan);
    this.#log(`Cloud-init v. ${CLOUD_INIT_VERSION} running 'modules:config' at ${logDate()}. Up ${this.#uptime()} seconds.`);
    if (plan.runcmd.length > 0) {
      fs.mkdir(SCRIPTS_DIR, { recursive: true });
      fs.writeFile(posix.join(SCRIPTS_DIR, 'runcmd'), `#!/bin/sh\n${plan.runcmd.map(runcmdLine).join('\n')}\n`, { mode: 0o700 });
    }
    for (const script of plan.scripts) {
      fs.mkdir(SCRIPTS_DIR, { recursive: true });
      fs.writeFile(posix.join(SCRIPTS_DIR, posix.basename(script.name)), script.content, { mode: 0o700 });
    }
    const finalStage = (): void => {
      this.#finalStage = undefined;
      if (this.#closed || this.instance.state === 'terminated') {
        this.#finishCloudInit();
        return;
      }
      this.#runFinalStage().then(
        () => this.#finishCloudInit(),
        (error: unknown) => {
          this.#fail('util.py', `Running module scripts_user failed: ${(error as Error).message}`, 'scripts_user');
          this.#finishCloudInit();
        },
      );
    };
    if (plan.runcmd.length === 0 && plan.scripts.length === 0) finalStage();
    else this.#finalStage = setTimeout(finalStage, this.#options.cloudInitMs ?? 20);
  }

  async #runFinalStage(): Promise<void> {
    const fs = this.instance.filesystem;
    this.#log(`Cloud-init v. ${CLOUD_INIT_VERSION} running 'modules:final' at ${logDate()}. Up ${this.#uptime()} seconds.`);
    const scripts = fs.exists(SCRIPTS_DIR) ? fs.readdir(SCRIPTS_DIR).filter(([, node]) => node.type === 'file') : [];
    const failures: string[] = [];
    for (const [name] of scripts) {
      const path = posix.join(SCRIPTS_DIR, name);
      const append = (data: string | Buffer): void => {
        fs.writeFile(CLOUD_INIT_LOG, data, { append: true });
      };
      const code = await this.shell.exec(`sh ${path}`, { stdout: append, stderr: append, stdin: Promise.resolve(Buffer.alloc(0)) });
      if (code !== 0) {
        this.#warn('subp.py', `Failed running ${path} [${code}]`);
        failures.push(name);
      }
    }
    if (failures.length > 0) {
      this.#warn('subp.py', `Runparts: ${failures.length} failures (${failures.join(',')}) in ${scripts.length} attempted commands`);
      this.#fail('cc_scripts_user.py', `Failed to run module scripts_user (scripts in ${SCRIPTS_DIR})`, 'scripts_user');
      this.#warn('log_util.py', "Running module scripts_user (<module 'cloudinit.config.cc_scripts_user' from '/usr/lib/python3/dist-packages/cloudinit/config/cc_scripts_user.py'>) failed");
    }
    this.#log(`Cloud-init v. ${CLOUD_INIT_VERSION} finished at ${logDate()}. Datasource ${this.#datasource}.  Up ${this.#uptime()} seconds`);
    fs.mkdir('/var/lib/cloud/instance', { recursive: true });
    fs.writeFile('/var/lib/cloud/instance/boot-finished', `${this.#uptime()} - ${logDate()} - v. ${CLOUD_INIT_VERSION}\n`);
    this.#cloudInit = { state: this.#cloudInit.errors.length > 0 ? 'error' : 'done', errors: this.#cloudInit.errors, lastUpdate: new Date() };
  }

  #applySshKeys(plan: BootPlan): void {
    const fs = this.instance.filesystem;
    for (const type of ['ed25519', 'ecdsa', 'rsa']) {
      const privateKey = plan.sshKeys[`${type}_private`];
      if (privateKey === undefined) continue;
      const parsed = ssh2.utils.parseKey(privateKey);
      if (parsed instanceof Error || (Array.isArray(parsed) && parsed.length === 0)) {
        this.#fail('cc_ssh.py', `Failed to use ssh_keys ${type}_private: ${parsed instanceof Error ? parsed.message : 'no key found'}`, 'ssh');
        continue;
      }
      fs.writeFile(`/etc/ssh/ssh_host_${type}_key`, privateKey.endsWith('\n') ? privateKey : `${privateKey}\n`, { mode: 0o600 });
      const publicKey = plan.sshKeys[`${type}_public`];
      if (publicKey !== undefined) fs.writeFile(`/etc/ssh/ssh_host_${type}_key.pub`, `${publicKey.trim()}\n`, { mode: 0o644 });
      this.#hostKey ??= privateKey;
    }
  }

  #writeFiles(plan: BootPlan): void {
    const fs = this.instance.filesystem;
    for (const file of plan.writeFiles) {
      try {
        fs.mkdir(posix.dirname(file.path), { recursive: true });
        const user = file.owner.split(':', 1)[0] ?? 'root';
        const id = user === 'root' || user === '0' ? 0 : 1000;
        const node = fs.writeFile(file.path, file.content, { append: file.append, mode: file.permissions, owner: { uid: id, gid: id } });
        node.mode = file.permissions;
      } catch (error) {
        this.#fail('cc_write_files.py', `Failed writing ${file.path}: ${(error as Error).message}`, 'write_files');
      }
    }
  }

  #log(line: string): void {
    this.instance.filesystem.writeFile(CLOUD_INIT_LOG, `${line}\n`, { append: true });
  }

  #warn(module: string, message: string): void {
    const stamp = new Date().toISOString().replace('T', ' ').replace('Z', '').replace('.', ',');
    this.#log(`${stamp} - ${module}[WARNING]: ${message}`);
  }

  /** Logs a WARNING and records an error that makes `cloud-init status` say `error`. */
  #fail(module: string, message: string, moduleName: string): void {
    this.#warn(module, message);
    this.#cloudInit.errors.push(`(${moduleName}) ${message}`);
  }

  #uptime(): string {
    return ((Date.now() - this.#bootedAt) / 1000 + 4.2).toFixed(2);
  }

  // ---- docker.service ----

  #installDocker(release: EngineRelease): void {
    const fs = this.instance.filesystem;
    this.#installedEngine = release;
    for (const [path, content] of [
      ['/usr/bin/docker', `\x7fELF docker ${release.version} (cloud-sim)\n`],
      ['/usr/bin/dockerd', `\x7fELF dockerd ${release.version} (cloud-sim)\n`],
      ['/usr/bin/containerd', `\x7fELF containerd ${release.containerdVersion} (cloud-sim)\n`],
    ] as const) {
      fs.writeFile(path, content, { mode: 0o755 });
    }
    fs.mkdir('/usr/lib/systemd/system', { recursive: true });
    fs.writeFile(DOCKER_UNIT_PATH, DOCKER_UNIT);
    fs.mkdir('/etc/docker', { recursive: true });
    fs.mkdir('/var/lib/docker', { recursive: true, mode: 0o710 });
    fs.mkdir('/etc/systemd/system/multi-user.target.wants', { recursive: true });
    fs.writeFile('/etc/systemd/system/multi-user.target.wants/docker.service', `# -> ${DOCKER_UNIT_PATH}\n`);
    this.#docker.unit = loadDockerUnit(fs);
    this.#docker.enabled = true;
  }

  /** Starts dockerd from a synchronous caller (apt's postinst); undefined when it started. */
  #startDockerNow(): string | undefined {
    const settings = this.#settings();
    if ('error' in settings) {
      this.#dockerFailed(settings.error);
      return settings.error;
    }
    void this.#queueDocker(() => this.#startDocker());
    return undefined;
  }

  #queueDocker<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#dockerQueue.then(operation);
    this.#dockerQueue = result.catch(() => undefined);
    return result;
  }

  async #dockerUnit(verb: string, options: { now: boolean }): Promise<SystemResult> {
    const docker = this.#docker;
    if (docker.unit === undefined) {
      switch (verb) {
        case 'is-active':
          return { code: 3, stdout: 'inactive\n', stderr: '' };
        case 'is-enabled':
          return { code: 1, stdout: '', stderr: 'Failed to get unit file state for docker.service: No such file or directory\n' };
        case 'status':
          return { code: 4, stdout: '', stderr: 'Unit docker.service could not be found.\n' };
        case 'enable':
        case 'disable':
          return { code: 1, stdout: '', stderr: `Failed to ${verb} unit: Unit file docker.service does not exist.\n` };
        case 'reset-failed':
          return { code: 1, stdout: '', stderr: 'Failed to reset failed state of unit docker.service: Unit docker.service not loaded.\n' };
        default:
          return { code: 5, stdout: '', stderr: `Failed to ${verb} docker.service: Unit docker.service not found.\n` };
      }
    }
    const changed = loadDockerUnit(this.instance.filesystem)?.source !== docker.unit.source ? CHANGED_ON_DISK : '';
    switch (verb) {
      case 'start':
        return docker.state === 'active' ? ok() : this.#startResult(changed);
      case 'restart':
        if (docker.state === 'active') await this.#stopDocker();
        return this.#startResult(changed);
      case 'try-restart':
        if (docker.state !== 'active') return ok();
        await this.#stopDocker();
        return this.#startResult(changed);
      case 'reload':
        return docker.state === 'active' ? ok() : { code: 1, stdout: '', stderr: `${changed}Failed to reload docker.service: Job type reload is not applicable for unit docker.service.\n` };
      case 'stop':
        if (docker.state === 'active') await this.#stopDocker();
        docker.state = 'inactive';
        return { code: 0, stdout: '', stderr: changed };
      case 'enable': {
        docker.enabled = true;
        const started = options.now && docker.state !== 'active' ? await this.#startResult(changed) : ok();
        return { ...started, stderr: `Synchronizing state of docker.service with SysV service script with /usr/lib/systemd/systemd-sysv-install.\nExecuting: /usr/lib/systemd/systemd-sysv-install enable docker\n${started.stderr}` };
      }
      case 'disable':
        docker.enabled = false;
        if (options.now && docker.state === 'active') await this.#stopDocker();
        return { code: 0, stdout: '', stderr: 'Removed "/etc/systemd/system/multi-user.target.wants/docker.service".\n' };
      case 'is-active':
        return { code: docker.state === 'active' ? 0 : 3, stdout: `${docker.state}\n`, stderr: '' };
      case 'is-enabled':
        return { code: docker.enabled ? 0 : 1, stdout: `${docker.enabled ? 'enabled' : 'disabled'}\n`, stderr: '' };
      case 'is-failed':
        return { code: docker.state === 'failed' ? 0 : 1, stdout: `${docker.state}\n`, stderr: '' };
      case 'reset-failed':
        if (docker.state === 'failed') docker.state = 'inactive';
        return ok();
      case 'status': {
        const active = docker.state === 'active' ? 'active (running)' : docker.state === 'failed' ? "failed (Result: exit-code)" : 'inactive (dead)';
        const tail = (this.#journal.get('docker') ?? []).slice(-10).join('\n');
        return {
          code: docker.state === 'active' ? 0 : 3,
          stdout: `● docker.service - Docker Application Container Engine\n     Loaded: loaded (${DOCKER_UNIT_PATH}; ${docker.enabled ? 'enabled' : 'disabled'}; preset: enabled)\n    Drop-In: ${DOCKER_DROP_IN_DIR}\n     Active: ${active}\n\n${tail}\n`,
          stderr: changed,
        };
      }
      default:
        return { code: 1, stdout: '', stderr: `Unknown command verb '${verb}'.\n` };
    }
  }

  async #startResult(changed: string): Promise<SystemResult> {
    const error = await this.#startDocker();
    return error === undefined ? { code: 0, stdout: '', stderr: changed } : { code: 1, stdout: '', stderr: `${changed}${JOB_FAILED}` };
  }

  #settings(): DaemonSettings | { error: string } {
    const unit = this.#docker.unit;
    if (unit === undefined) return { error: 'docker.service not installed' };
    const settings = daemonSettings(this.instance.filesystem, unit.execStart, { hostname: this.shell.host.hostname, publicIp: this.instance.publicIp, id: this.#daemonId });
    return 'error' in settings ? settings : { ...settings, release: this.#installedEngine ?? INITIAL_ENGINE };
  }

  /** Starts dockerd; returns undefined when it runs, or the error it stopped with. */
  async #startDocker(): Promise<string | undefined> {
    if (this.#docker.state === 'active' || this.#closed) return undefined;
    const settings = this.#settings();
    this.#journalLine('docker', 'systemd[1]', 'Starting docker.service - Docker Application Container Engine...');
    if ('error' in settings) {
      this.#dockerFailed(settings.error);
      return settings.error;
    }
    try {
      this.#docker.daemon = await startDockerd(settings, this.containers);
    } catch (error) {
      const message = `failed to load listeners: ${(error as Error).message}`;
      this.#dockerFailed(message);
      return message;
    }
    if (this.#closed || this.instance.state === 'stopping' || this.instance.state === 'stopped' || this.instance.state === 'terminated') {
      await this.#docker.daemon.close();
      this.#docker.daemon = undefined;
      return 'machine is shutting down';
    }
    this.#docker.state = 'active';
    const pid = randomInt(900, 30_000);
    for (const listener of settings.listeners) {
      this.#journalLine('docker', `dockerd[${pid}]`, `time="${new Date().toISOString()}" level=info msg="API listen on ${listener.host === this.instance.publicIp ? '[::]' : listener.host}:${listener.port}"`);
    }
    this.#journalLine('docker', `dockerd[${pid}]`, `time="${new Date().toISOString()}" level=info msg="API listen on /run/docker.sock"`);
    this.#journalLine('docker', 'systemd[1]', 'Started docker.service - Docker Application Container Engine.');
    return undefined;
  }

  async #stopDocker(): Promise<void> {
    this.#journalLine('docker', 'systemd[1]', 'Stopping docker.service - Docker Application Container Engine...');
    await this.#docker.daemon?.close();
    this.#docker.daemon = undefined;
    this.#docker.state = 'inactive';
    this.#journalLine('docker', 'systemd[1]', 'docker.service: Deactivated successfully.');
    this.#journalLine('docker', 'systemd[1]', 'Stopped docker.service - Docker Application Container Engine.');
  }

  #dockerFailed(error: string): void {
    const pid = randomInt(900, 30_000);
    this.#docker.state = 'failed';
    this.#journalLine('docker', `dockerd[${pid}]`, error);
    this.#journalLine('docker', 'systemd[1]', 'docker.service: Main process exited, code=exited, status=1/FAILURE');
    this.#journalLine('docker', 'systemd[1]', "docker.service: Failed with result 'exit-code'.");
    this.#journalLine('docker', 'systemd[1]', 'Failed to start docker.service - Docker Application Container Engine.');
  }

  #journalLine(unit: string, source: string, message: string): void {
    const now = new Date();
    const stamp = `${now.toUTCString().slice(8, 11)} ${String(now.getUTCDate()).padStart(2, '0')} ${now.toISOString().slice(11, 19)}`;
    let lines = this.#journal.get(unit);
    if (lines === undefined) {
      lines = [];
      this.#journal.set(unit, lines);
    }
    lines.push(`${stamp} ${this.shell.host.hostname} ${source}: ${message}`);
    if (lines.length > 500) lines.splice(0, lines.length - 500);
  }
}

function ok(): SystemResult {
  return { code: 0, stdout: '', stderr: '' };
}

/** Units other than docker: ssh and cloud-init run; containerd once Docker is installed; the rest do not exist. */
function otherUnit(verb: string, unit: string, dockerInstalled: boolean): SystemResult {
  const exists = ['ssh', 'sshd', 'cloud-init', 'cloud-final', 'systemd-journald', 'cron', ...(dockerInstalled ? ['containerd', 'docker.socket'] : [])].includes(unit);
  if (verb === 'is-active') return exists ? { code: 0, stdout: 'active\n', stderr: '' } : { code: 3, stdout: 'inactive\n', stderr: '' };
  if (verb === 'is-enabled') return exists ? { code: 0, stdout: 'enabled\n', stderr: '' } : { code: 1, stdout: '', stderr: `Failed to get unit file state for ${unit}.service: No such file or directory\n` };
  if (exists) return ok();
  if (verb === 'enable' || verb === 'disable') return { code: 1, stdout: '', stderr: `Failed to ${verb} unit: Unit file ${unit}.service does not exist.\n` };
  if (verb === 'status') return { code: 4, stdout: '', stderr: `Unit ${unit}.service could not be found.\n` };
  return { code: 5, stdout: '', stderr: `Failed to ${verb} ${unit}.service: Unit ${unit}.service not found.\n` };
}

function logDate(): string {
  return new Date().toUTCString().replace('GMT', '+0000');
}

/** The guests of one simulator's instances. */
export class InstanceGuests {
  readonly #options: GuestOptions;
  readonly #guests = new Map<SimInstance, Guest>();

  constructor(options: GuestOptions = {}) {
    this.#options = options;
  }

  /** The instance's guest (made on first use). */
  guestFor(instance: SimInstance): Guest {
    let guest = this.#guests.get(instance);
    if (guest === undefined) {
      guest = new Guest(instance, this.#options);
      this.#guests.set(instance, guest);
    }
    return guest;
  }

  boot(instance: SimInstance): Promise<void> {
    return this.guestFor(instance).boot();
  }

  async shutdown(instance: SimInstance): Promise<void> {
    await this.#guests.get(instance)?.shutdown();
  }

  /** Forgets a terminated instance's guest after shutting it down. */
  async release(instance: SimInstance): Promise<void> {
    const guest = this.#guests.get(instance);
    if (guest === undefined) return;
    this.#guests.delete(instance);
    await guest.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#guests.values()].map((guest) => guest.close()));
  }
}
