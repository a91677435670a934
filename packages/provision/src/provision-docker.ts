import { readFile } from 'node:fs/promises';
import type { ProgressEvent } from '@machine/driver-core';
import { CancelledError, MachineError, SSHError, sleep, TimeoutError, waitFor } from '@machine/driver-core';
import type { SSHTarget } from '@machine/driver-core/ssh';
import type ssh2 from 'ssh2';
import type { ClientCertificates, ServerCertificate } from './certificates.ts';
import { installCommand } from './cloud-config.ts';
import { daemonJson, guestPaths, systemdDropIn } from './daemon-config.ts';
import { dockerApi, dockerUrl, dockerVersion } from './docker-api.ts';
import { DockerApiError } from './docker-api-error.ts';
import { defaultInstallUrl, type EngineOptions, withoutCredentials } from './engine-options.ts';
import { ProvisionError, type ProvisionStep } from './provision-error.ts';

/** The machine to provision: SSH (with the pinned host key) and the address the engine is reached at. */
export interface ProvisionTarget {
  ssh: SSHTarget;
  /** IP or DNS name for `tcp://HOST:PORT`. */
  dockerHost: string;
}

/** Options for {@link provisionDocker}. */
export interface ProvisionOptions {
  engine: EngineOptions;
  client: ClientCertificates;
  server: ServerCertificate;
  /** True when the machine booted with `buildCloudConfig` user data; false installs over SSH (generic hosts). */
  cloudInit: boolean;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Overall deadline, ms (default 10 minutes). */
  timeoutMs?: number;
}

/** Connections tried when SSH drops or refuses (every step can run again). */
const connectionAttempts = 3;
/** How many log lines a ProvisionError carries. */
const logTailLines = 20;
/** How long the engine has to answer `/_ping` after a restart. */
const dockerWaitMs = 120_000;
/** How long a TLS failure right after a restart is taken for the old engine still running. */
const tlsGraceMs = 10_000;

/**
 * Turns a booted machine into a Docker host over one SSH connection:
 * 1. `cloud-init`: waits for cloud-init (`cloud-init status --wait`), which installs the engine from
 *    the user data; or, with `cloudInit: false`, `install-engine` runs the install script over SSH
 *    unless `docker` is already there (an image without cloud-init is handled the same way).
 * 2. `upload-certificates`: SFTP to /tmp/machine-provision, then `sudo install` into /etc/docker
 *    (plus daemon.json and the systemd drop-in when cloud-init did not write them).
 * 3. `restart-docker`: `systemctl daemon-reload && systemctl restart docker`.
 * 4. `wait-docker`: `GET /_ping` over TLS with the client certificate until `OK`.
 * 5. `docker-version`: `GET /version`.
 * A failing step rejects with one {@link ProvisionError} carrying the machine's log tail; an abort
 * through `signal` rejects with CancelledError.
 */
export async function provisionDocker(target: ProvisionTarget, options: ProvisionOptions): Promise<{ dockerVersion: string }> {
  return runProvisioning(target, options, async (session) => {
    let writeConfig = !options.cloudInit;
    if (options.cloudInit) {
      const hasCloudInit = await session.step('cloud-init', 'waiting for cloud-init to install Docker Engine', () => waitForCloudInit(session, options));
      if (!hasCloudInit) {
        session.info('install-engine', 'the image has no cloud-init; installing Docker Engine over SSH');
        writeConfig = true;
        await session.step('install-engine', `installing Docker Engine from ${withoutCredentials(options.engine.installUrl)}`, () => installEngine(session, options.engine));
      }
    } else {
      await session.step('install-engine', `installing Docker Engine from ${withoutCredentials(options.engine.installUrl)}`, () => installEngine(session, options.engine));
    }
    await session.step('upload-certificates', 'uploading the engine certificates', () => uploadFiles(session, options, writeConfig));
    await session.step('restart-docker', 'restarting the Docker engine with TLS', () => restartDocker(session));
    await session.step('wait-docker', `waiting for the Docker engine at ${session.url}`, () => waitForDocker(session, options.client));
    const version = await session.step('docker-version', 'reading the engine version', () =>
      dockerVersion(session.url, options.client, { signal: session.signal, machine: session.machine, timeoutMs: 10_000 }),
    );
    return { dockerVersion: version };
  });
}

/**
 * Uploads a new server certificate (and the CA), restarts the engine and waits until it answers with
 * it: for `machine regenerate-certs` and after an IP change. Fails with ProvisionError like
 * {@link provisionDocker}.
 */
export async function installServerCertificate(
  target: ProvisionTarget,
  options: { engine: EngineOptions; client: ClientCertificates; server: ServerCertificate; signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void; timeoutMs?: number },
): Promise<void> {
  const provisionOptions: ProvisionOptions = { ...options, cloudInit: false };
  await runProvisioning(target, provisionOptions, async (session) => {
    await session.step('upload-certificates', 'uploading the new engine certificate', () => uploadFiles(session, provisionOptions, false));
    await session.step('restart-docker', 'restarting the Docker engine', () => restartDocker(session));
    await session.step('wait-docker', `waiting for the Docker engine at ${session.url}`, () => waitForDocker(session, options.client));
  });
}

/** How {@link upgradeDocker} upgraded the engine. */
export type EngineUpgradeMethod = 'apt-get' | 'dnf' | 'yum' | 'zypper' | 'install-script';

/** The package upgrade command of each package manager (Docker's packages from Docker's repository). */
const packageUpgrades: Readonly<Record<Exclude<EngineUpgradeMethod, 'install-script'>, (sudo: string) => string>> = {
  'apt-get': (sudo) => `${sudo}apt-get update -qq && ${sudo}DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade docker-ce docker-ce-cli containerd.io`,
  dnf: (sudo) => `${sudo}dnf upgrade -y -q docker-ce docker-ce-cli containerd.io`,
  yum: (sudo) => `${sudo}yum update -y -q docker-ce docker-ce-cli containerd.io`,
  zypper: (sudo) => `${sudo}zypper --non-interactive update docker`,
};

/**
 * Upgrades Docker Engine on a provisioned, running machine, like the reference's `machine upgrade`:
 * 1. `upgrade-engine`: with the default `--engine-install-url` (get.docker.com, which installs from
 *    Docker's package repository) the machine's package manager upgrades Docker's packages
 *    (apt-get `--only-upgrade`, dnf, yum or zypper, whichever the machine has); with another install
 *    URL (the engine came from that script), or without a known package manager, the install
 *    script runs again.
 * 2. `restart-docker`, `wait-docker` (`_ping` over TLS: the certificates and daemon.json are
 *    untouched, so the engine comes back with the same TLS configuration), `docker-version`.
 * Fails with a ProvisionError carrying the command's output, like {@link provisionDocker}.
 */
export async function upgradeDocker(
  target: ProvisionTarget,
  options: { engine: EngineOptions; client: ClientCertificates; signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void; timeoutMs?: number },
): Promise<{ dockerVersion: string; previousVersion: string | undefined; method: EngineUpgradeMethod }> {
  // No certificate is uploaded (the engine keeps its own): the session code only needs the options' shape.
  const provisionOptions: ProvisionOptions = { ...options, cloudInit: false, server: { certPem: '', keyPem: '', sans: [] } };
  return runProvisioning(target, provisionOptions, async (session) => {
    const previousVersion = await dockerVersion(session.url, options.client, { signal: session.signal, machine: session.machine, timeoutMs: 10_000 }).catch(() => undefined);
    const method = await chooseUpgradeMethod(session, options.engine);
    const how = method === 'install-script' ? `the install script ${withoutCredentials(options.engine.installUrl)}` : method;
    await session.step('upgrade-engine', `upgrading Docker Engine${previousVersion === undefined ? '' : ` ${previousVersion}`} with ${how}`, async () => {
      const command = method === 'install-script' ? installCommand(options.engine.installUrl, session.sudo !== '') : packageUpgrades[method](session.sudo);
      const result = await session.exec(command);
      if (result.code !== 0) {
        const logTail = lastLines(result.output);
        throw new ProvisionError(`${method === 'install-script' ? 'the install script' : method} exited with ${result.code}${reason(logTail)}`, {
          machine: session.machine,
          step: 'upgrade-engine',
          logTail,
          hint: method === 'install-script' ? `check --engine-install-url (${withoutCredentials(options.engine.installUrl)}) and that the machine can reach it` : `see the ${method} output above; the engine keeps running the old version`,
        });
      }
    });
    await session.step('restart-docker', 'restarting the Docker engine', () => restartDocker(session));
    await session.step('wait-docker', `waiting for the Docker engine at ${session.url}`, () => waitForDocker(session, options.client));
    const version = await session.step('docker-version', 'reading the engine version', () =>
      dockerVersion(session.url, options.client, { signal: session.signal, machine: session.machine, timeoutMs: 10_000 }),
    );
    return { dockerVersion: version, previousVersion, method };
  });
}

/** The package manager that upgrades an engine installed by get.docker.com, else the install script. */
async function chooseUpgradeMethod(session: Session, engine: EngineOptions): Promise<EngineUpgradeMethod> {
  if (engine.installUrl.replace(/\/+$/, '') !== defaultInstallUrl) return 'install-script';
  for (const manager of ['apt-get', 'dnf', 'yum', 'zypper'] as const) {
    if ((await session.exec(`command -v ${manager}`)).code === 0) return manager;
  }
  return 'install-script';
}

/** The result of one command: exit code and its stdout and stderr interleaved as they came. */
interface CommandOutput {
  code: number;
  output: string;
}

/** One SSH connection used by the steps, with step bookkeeping. */
interface Session {
  readonly machine: string;
  readonly url: string;
  readonly signal: AbortSignal;
  /** `sudo ` unless logged in as root. */
  readonly sudo: string;
  exec(command: string): Promise<CommandOutput>;
  sftp(): Promise<ssh2.SFTPWrapper>;
  step<T>(step: ProvisionStep, message: string, body: () => Promise<T>): Promise<T>;
  info(step: ProvisionStep, message: string): void;
  /** Lines for a ProvisionError: the given output's last lines, else the machine's provisioning log. */
  logTail(output?: string): Promise<string[]>;
  readonly cloudInit: boolean;
}

async function runProvisioning<T>(target: ProvisionTarget, options: ProvisionOptions, body: (session: Session) => Promise<T>): Promise<T> {
  const machine = target.ssh.machine ?? target.dockerHost;
  const timeoutMs = options.timeoutMs ?? 600_000;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const signal = options.signal === undefined ? deadline.signal : AbortSignal.any([options.signal, deadline.signal]);
  let currentStep: ProvisionStep = 'connect';
  const { withSSHClient } = await import('@machine/driver-core/ssh');
  const connectAndRun = () =>
    withSSHClient({ ...target.ssh, machine }, signal, async (client) => {
      const session: Session = {
        machine,
        url: dockerUrl(target.dockerHost, options.engine.port),
        signal,
        sudo: target.ssh.username === 'root' ? '' : 'sudo ',
        cloudInit: options.cloudInit,
        exec: (command) => execCommand(client, command, signal),
        sftp: () => openSftp(client),
        async step(step, message, run) {
          currentStep = step;
          options.onProgress?.({ step, phase: 'start', message });
          const result = await run();
          options.onProgress?.({ step, phase: 'done', message });
          return result;
        },
        info(step, message) {
          options.onProgress?.({ step, phase: 'info', message });
        },
        async logTail(output) {
          if (output !== undefined && output.trim() !== '') return lastLines(output);
          const log = session.cloudInit
            ? await execCommand(client, `${session.sudo}tail -n ${logTailLines} ${guestPaths.cloudInitLog}`, signal).catch(() => undefined)
            : await execCommand(client, `${session.sudo}journalctl -u docker --no-pager -n ${logTailLines}`, signal).catch(() => undefined);
          return log === undefined || log.code !== 0 ? [] : lastLines(log.output);
        },
      };
      return body(session);
    });
  try {
    // Every step can run again, so a dropped or refused connection (an idle NAT timeout during a long
    // cloud-init wait, sshd restarting) starts over on a new one, up to three times.
    for (let attempt = 1; ; attempt++) {
      try {
        return await connectAndRun();
      } catch (error) {
        if (attempt >= connectionAttempts || !SSHError.isInstance(error) || !error.isRetryable || signal.aborted) throw error;
        options.onProgress?.({ step: currentStep, phase: 'info', message: `SSH connection lost (${error.detail}); reconnecting` });
        await sleep(1000 * attempt, signal);
      }
    }
  } catch (error) {
    if (options.signal?.aborted) throw MachineError.isInstance(error) && error.code === 'CANCELLED' ? error : new CancelledError('provisioning was cancelled', { machine, cause: error });
    if (deadline.signal.aborted) {
      throw new ProvisionError(`gave up after ${timeoutMs >= 10_000 ? Math.round(timeoutMs / 1000) : (timeoutMs / 1000).toFixed(1)} s (timeoutMs)`, { machine, step: currentStep, retryable: true, cause: error });
    }
    if (ProvisionError.isInstance(error)) throw error;
    const detail = MachineError.isInstance(error) ? error.detail : error instanceof Error ? error.message : String(error);
    const hint = MachineError.isInstance(error) ? error.hint : undefined;
    throw new ProvisionError(detail, {
      machine,
      step: currentStep,
      cause: error,
      retryable: MachineError.isInstance(error) && error.isRetryable,
      ...(hint === undefined ? {} : { hint }),
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `cloud-init status --wait`: done → true; no cloud-init on the image → false; error → ProvisionError
 * with the log tail, unless the engine got installed anyway (the user's own user data may have failed).
 */
async function waitForCloudInit(session: Session, options: ProvisionOptions): Promise<boolean> {
  for (;;) {
    const result = await session.exec('cloud-init status --wait');
    const status = /status:\s*([a-z ]+)/.exec(result.output)?.[1]?.trim() ?? '';
    if (result.code === 127 || (/not found/.test(result.output) && status === '')) return false;
    // Exit 2 is cloud-init >= 23.4's "done, with recoverable errors".
    if (status === 'done' || status === 'disabled') return true;
    if (status === 'running' || status === 'not run' || status === 'not started') {
      await sleep(2000, session.signal);
      continue;
    }
    if (status === '') {
      const logTail = lastLines(result.output);
      throw new ProvisionError(`\`cloud-init status --wait\` exited with ${result.code}${reason(logTail)}`, {
        machine: session.machine,
        step: 'cloud-init',
        logTail,
        hint: "this image's cloud-init may be too old to report its status; provision it like a generic host (no user data)",
      });
    }
    const docker = await session.exec('command -v docker');
    if (docker.code === 0) {
      session.info('cloud-init', `cloud-init reported "${status || `exit ${result.code}`}", but Docker Engine is installed; continuing`);
      return true;
    }
    const logTail = await session.logTail();
    throw new ProvisionError(`cloud-init reported "${status || `exit ${result.code}`}" and Docker Engine is not installed${reason(logTail)}`, {
      machine: session.machine,
      step: 'cloud-init',
      logTail,
      hint: `see ${guestPaths.cloudInitLog} on the machine; check --engine-install-url (${withoutCredentials(options.engine.installUrl)})`,
    });
  }
}

/** Runs the install script over SSH unless `docker` is already installed. */
async function installEngine(session: Session, engine: EngineOptions): Promise<void> {
  const existing = await session.exec('command -v docker');
  if (existing.code === 0) {
    session.info('install-engine', `Docker is already installed (${existing.output.trim()})`);
    return;
  }
  const result = await session.exec(installCommand(engine.installUrl, session.sudo !== ''));
  if (result.code !== 0) {
    const logTail = lastLines(result.output);
    throw new ProvisionError(`the install script exited with ${result.code}${reason(logTail)}`, {
      machine: session.machine,
      step: 'install-engine',
      logTail,
      hint: `check --engine-install-url (${withoutCredentials(engine.installUrl)}) and that the machine can reach it`,
    });
  }
}

/** SFTP to a fresh /tmp/machine-provision (0700), then `sudo install` into place. */
async function uploadFiles(session: Session, options: ProvisionOptions, writeConfig: boolean): Promise<void> {
  const dir = guestPaths.uploadDir;
  const caPem = await readFile(options.client.caCertPath, 'utf8');
  const files: [name: string, content: string, mode: number][] = [
    ['ca.pem', caPem, 0o644],
    ['server.pem', options.server.certPem, 0o644],
    ['server-key.pem', options.server.keyPem, 0o600],
  ];
  if (writeConfig) files.push(['daemon.json', daemonJson(options.engine), 0o644], ['10-machine.conf', systemdDropIn(options.engine), 0o644]);
  await checked(session, 'upload-certificates', `rm -rf ${dir}`, `removing an old ${dir}`);
  const sudo = session.sudo;
  const commands = [
    `${sudo}mkdir -p /etc/docker /etc/systemd/system/docker.service.d`,
    `${sudo}install -m 0644 ${dir}/ca.pem ${dir}/server.pem /etc/docker/`,
    `${sudo}install -m 0600 ${dir}/server-key.pem /etc/docker/`,
  ];
  if (writeConfig) {
    commands.push(`${sudo}install -m 0644 ${dir}/daemon.json /etc/docker/`, `${sudo}install -m 0644 ${dir}/10-machine.conf /etc/systemd/system/docker.service.d/`);
  }
  commands.push(`rm -rf ${dir}`);
  try {
    const sftp = await session.sftp();
    try {
      // mkdir fails when the directory exists: nobody else can have prepared it for us.
      await sftpCall<void>((done) => sftp.mkdir(dir, { mode: 0o700 }, done));
      for (const [name, content, mode] of files) {
        await sftpCall<void>((done) => sftp.writeFile(`${dir}/${name}`, content, { mode }, done));
      }
    } finally {
      sftp.end();
    }
    await checked(session, 'upload-certificates', commands.join(' && '), '`sudo install` of the uploaded files into /etc');
  } catch (error) {
    // The server key must not stay in /tmp when a step after the upload failed.
    await session.exec(`rm -rf ${dir}`).catch(() => undefined);
    throw error;
  }
}

/** `systemctl daemon-reload && systemctl restart docker`, once more after `reset-failed` when systemd rate-limited the unit. */
async function restartDocker(session: Session): Promise<void> {
  const restart = `${session.sudo}systemctl daemon-reload && ${session.sudo}systemctl restart docker`;
  let result = await session.exec(restart);
  if (result.code !== 0 && /too (quickly|often)|start-limit|reset-failed/i.test(result.output)) {
    // dockerd failed to start while the install ran (no certificates yet) and systemd stopped retrying.
    result = await session.exec(`${session.sudo}systemctl reset-failed docker && ${restart}`);
  }
  if (result.code !== 0) {
    const commandLines = lastLines(result.output);
    const logTail = [...commandLines, ...(await session.logTail())];
    throw new ProvisionError(`systemctl restart docker exited with ${result.code}${reason(commandLines)}`, {
      machine: session.machine,
      step: 'restart-docker',
      logTail,
      hint: /not found|not-found/i.test(result.output) ? 'Docker Engine is not installed; see the log tail' : 'see `journalctl -u docker` on the machine',
    });
  }
}

/** Polls `GET /_ping` until the engine answers `OK`. */
async function waitForDocker(session: Session, client: ClientCertificates): Promise<void> {
  const started = Date.now();
  try {
    await waitFor<void>(
      async () => {
        try {
          const response = await dockerApi(session.url, client, '/_ping', { signal: session.signal, machine: session.machine, timeoutMs: 5000 });
          if (response.status === 200 && response.body.trim() === 'OK') return { done: true, value: undefined };
          return { done: false, reason: `HTTP ${response.status} ${response.body.trim().slice(0, 80)}` };
        } catch (error) {
          if (DockerApiError.isInstance(error) && error.failure === 'tls' && Date.now() - started < tlsGraceMs) {
            return { done: false, reason: error.message };
          }
          throw error;
        }
      },
      { interval: 250, maxInterval: 3000, timeout: dockerWaitMs, signal: session.signal, description: `the Docker engine at ${session.url}`, machine: session.machine },
    );
  } catch (error) {
    if (!(TimeoutError.isInstance(error) || DockerApiError.isInstance(error))) throw error;
    const logTail = await session.logTail();
    throw new ProvisionError(error.detail, {
      machine: session.machine,
      step: 'wait-docker',
      logTail,
      cause: error,
      retryable: error.isRetryable,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    });
  }
}

/** Runs `command`; a non-zero exit is a ProvisionError saying `what` failed (a chain's first command may not be the one). */
async function checked(session: Session, step: ProvisionStep, command: string, what: string): Promise<CommandOutput> {
  const result = await session.exec(command);
  if (result.code !== 0) {
    const logTail = lastLines(result.output);
    throw new ProvisionError(`${what} exited with ${result.code}${reason(logTail)}`, { machine: session.machine, step, logTail });
  }
  return result;
}

/** Runs one command on an open connection; stdout and stderr are kept in arrival order. */
function execCommand(client: ssh2.Client, command: string, signal: AbortSignal): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new CancelledError());
      return;
    }
    client.exec(command, (error, channel) => {
      if (error) {
        reject(error);
        return;
      }
      const chunks: Buffer[] = [];
      let code = -1;
      const onAbort = () => channel.close();
      signal.addEventListener('abort', onAbort, { once: true });
      channel.on('data', (chunk: Buffer) => chunks.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
      channel.on('exit', (exitCode: number | null) => {
        code = typeof exitCode === 'number' ? exitCode : -1;
      });
      channel.on('close', () => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(new CancelledError());
        else resolve({ code, output: Buffer.concat(chunks).toString('utf8') });
      });
      channel.end();
    });
  });
}

function openSftp(client: ssh2.Client): Promise<ssh2.SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
}

function sftpCall<T>(call: (done: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, value) => (error ? reject(new Error(`SFTP: ${error.message}`)) : resolve(value as T))));
}

function lastLines(output: string): string[] {
  return output
    .replace(/\r/g, '')
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '')
    .slice(-logTailLines);
}

/**
 * `: <the most telling line>` of a log tail: the last line of the failing tool (apt's `E:`, curl's
 * `curl: (N)`, `…: error: …`), else the last error-looking line that is not cloud-init's own logging,
 * else the last line.
 */
function reason(logTail: readonly string[]): string {
  const newestFirst = [...logTail].reverse();
  const cloudInitLogging = /\[(WARNING|ERROR|DEBUG|INFO)\]|^Cloud-init v\.|Failed running \/var\/lib\/cloud/;
  const telling =
    newestFirst.find((line) => /^E: |^curl: \(\d+\)|\berror: /i.test(line.trim())) ??
    newestFirst.find((line) => !cloudInitLogging.test(line) && /\b(error|failed|unable|cannot|denied|not found)\b/i.test(line)) ??
    logTail.at(-1);
  return telling === undefined ? '' : `: ${telling.trim().slice(0, 200)}`;
}
