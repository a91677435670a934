import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { generateSSHKeyPair, type SSHKeyPair } from '../keys.ts';

/** Where the fixture looks for sshd: `$MACHINE_SSHD_PATH`, else `/usr/sbin/sshd`. */
export function openSSHServerPath(): string {
  return process.env.MACHINE_SSHD_PATH ?? '/usr/sbin/sshd';
}

/**
 * Why a real OpenSSH server cannot be started here, or undefined when it can. Tests skip on a
 * reason (`describe.skipIf(openSSHServerUnavailable() !== undefined)`). Under CI (`CI` set) it is
 * always undefined, so a missing sshd fails the tests there instead of skipping them.
 */
export function openSSHServerUnavailable(): string | undefined {
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') return undefined;
  return sshdProblem();
}

function sshdProblem(): string | undefined {
  const path = openSSHServerPath();
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    return `no OpenSSH server at ${path} (apt-get install openssh-server, or set MACHINE_SSHD_PATH)`;
  }
  return undefined;
}

/** A power command the forced-command wrapper faked instead of running it. */
export type FakePowerCommand = 'reboot' | 'poweroff';

/** Options for {@link startOpenSSHServer}. */
export interface OpenSSHServerOptions {
  /**
   * Public key lines allowed to log in (as the user running the tests). When unset, one ed25519
   * client key is generated and exposed as `clientKey`.
   */
  authorizedKeys?: readonly string[];
  /** Host private key in OpenSSH format; a fresh ed25519 key when unset. Pass another server's to impersonate it. */
  hostKey?: SSHKeyPair;
  /** 127.0.0.1 port; 0 or unset picks a free one. */
  port?: number;
  /** How long a faked `sudo reboot` keeps the port closed before sshd comes back, ms (default 300). */
  rebootDowntimeMs?: number;
  /**
   * Fakes a user without passwordless sudo: the power commands print sudo's password error and
   * exit 1 (nothing is recorded in `powerEvents`, sshd keeps running).
   */
  sudoRequiresPassword?: boolean;
  /** Extra sshd_config lines (appended). */
  extraConfig?: readonly string[];
}

/**
 * A real OpenSSH `sshd -D -e` on 127.0.0.1 with its own config, host key and authorized_keys in a
 * temporary folder. Every key logs in through a forced command that records the requested command
 * and runs it with `sh -c`, except `sudo reboot` / `sudo poweroff` (and `shutdown -r now` /
 * `shutdown -P now`), which are never run: they are recorded, and the listening sshd is stopped
 * (reboot: it comes back on the same port and host key after `rebootDowntimeMs`; poweroff: it stays
 * down until {@link RunningOpenSSHServer.start}). Commands run on the test host as the user running
 * the tests: keep them harmless.
 */
export interface RunningOpenSSHServer {
  readonly host: string;
  readonly port: number;
  /** The user that can log in: the one running the tests (`root` in CI). */
  readonly username: string;
  /** `SHA256:…` of the host key. */
  readonly hostKeyFingerprint: string;
  /** The host key, to start an impersonator (same key) or a different host (another key). */
  readonly hostKey: SSHKeyPair;
  /** The generated client key when `authorizedKeys` was not given. */
  readonly clientKey: SSHKeyPair | undefined;
  /** The temporary folder (sshd_config, keys, logs). */
  readonly dir: string;
  /** True while sshd listens (false after a faked poweroff, during a faked reboot, after stop). */
  readonly listening: boolean;
  /** Every command requested over SSH so far, in order (`SSH_ORIGINAL_COMMAND`; '' for a shell). */
  commands(): Promise<string[]>;
  /** The faked power commands so far, in order. */
  powerEvents(): Promise<FakePowerCommand[]>;
  /** Replaces the authorized keys (applies to the next login). */
  setAuthorizedKeys(keys: readonly string[]): Promise<void>;
  /** Resolves once a faked reboot is over and sshd listens again. */
  waitUntilListening(timeoutMs?: number): Promise<void>;
  /** Stops sshd (the port then refuses connections); files are kept so `start` can bring it back. */
  stop(): Promise<void>;
  /** Starts sshd again on the same port with the same host key ("power on"). */
  start(): Promise<void>;
  /** sshd's stderr so far, for failure messages. */
  log(): string;
  /** Stops sshd and deletes the temporary folder. */
  close(): Promise<void>;
}

const powerCommands: Readonly<Record<string, FakePowerCommand>> = {
  'sudo reboot': 'reboot',
  'sudo shutdown -r now': 'reboot',
  reboot: 'reboot',
  'sudo poweroff': 'poweroff',
  'sudo shutdown -P now': 'poweroff',
  'sudo shutdown -h now': 'poweroff',
  poweroff: 'poweroff',
};

/** Starts a real OpenSSH server for tests; see {@link RunningOpenSSHServer}. Call `close()` after. */
export async function startOpenSSHServer(options: OpenSSHServerOptions = {}): Promise<RunningOpenSSHServer> {
  const unavailable = sshdProblem();
  if (unavailable !== undefined) throw new Error(unavailable);
  const dir = await mkdtemp(join(tmpdir(), 'machine-sshd-'));
  const username = userInfo().username;
  const isRoot = process.getuid?.() === 0;
  if (isRoot) await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // the privilege-separation folder
  const hostKey = options.hostKey ?? generateSSHKeyPair({ comment: 'machine-test-host' });
  const clientKey = options.authorizedKeys === undefined ? generateSSHKeyPair({ comment: 'machine-test-client' }) : undefined;
  const paths = {
    config: join(dir, 'sshd_config'),
    hostKey: join(dir, `ssh_host_${hostKey.type}_key`),
    authorizedKeys: join(dir, 'authorized_keys'),
    forcedCommand: join(dir, 'forced-command.sh'),
    pid: join(dir, 'sshd.pid'),
    commands: join(dir, 'commands.log'),
    power: join(dir, 'power.log'),
  };
  await writeFile(paths.hostKey, hostKey.privateKey, { mode: 0o600 });
  await writeFile(paths.commands, '', { mode: 0o600 });
  await writeFile(paths.power, '', { mode: 0o600 });
  await writeFile(paths.forcedCommand, forcedCommandScript(paths), { mode: 0o700 });
  await chmod(paths.forcedCommand, 0o700);
  const writeAuthorizedKeys = async (keys: readonly string[]) => {
    const lines = keys.map((key) => `restrict,command="${paths.forcedCommand}" ${key.trim()}\n`).join('');
    await writeFile(paths.authorizedKeys, lines, { mode: 0o600 });
  };
  await writeAuthorizedKeys(options.authorizedKeys ?? (clientKey === undefined ? [] : [clientKey.publicKey]));

  let port = options.port ?? 0;
  let child: ChildProcess | undefined;
  let listening = false;
  let stopping = false;
  let closed = false;
  let stderr = '';
  let rebootTimer: NodeJS.Timeout | undefined;
  let handledPowerEvents = 0;

  const writeConfig = () =>
    writeFile(
      paths.config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${paths.hostKey}`,
        `PidFile ${paths.pid}`,
        `AuthorizedKeysFile ${paths.authorizedKeys}`,
        `AllowUsers ${username}`,
        'StrictModes no',
        'UsePAM no',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        'X11Forwarding no',
        'AllowTcpForwarding no',
        'AllowAgentForwarding no',
        'MaxStartups 64',
        'LogLevel VERBOSE',
        ...(options.extraConfig ?? []),
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

  const launch = async (): Promise<void> => {
    if (port === 0) port = await freePort();
    await writeConfig();
    await rm(paths.pid, { force: true });
    const started = spawn(openSSHServerPath(), ['-D', '-e', '-f', paths.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    const ready = new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/Server listening on 127\.0\.0\.1 port/.test(output)) {
          started.stderr?.off('data', onData);
          resolve();
        }
      };
      started.stderr?.on('data', onData);
      started.once('error', reject);
      started.once('exit', (code, signal) => reject(new Error(`sshd exited (${code ?? signal}) before listening:\n${output}`)));
    });
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    started.once('exit', () => {
      listening = false;
      if (child === started) child = undefined;
      if (!stopping && !closed) void onUnexpectedExit();
    });
    const timeout = setTimeout(() => started.kill('SIGKILL'), 10_000);
    try {
      await ready;
    } finally {
      clearTimeout(timeout);
    }
    listening = true;
  };

  // sshd exits on its own only when the forced command faked a power command and stopped it.
  const onUnexpectedExit = async () => {
    const events = await readLines(paths.power);
    const fresh = events.slice(handledPowerEvents);
    handledPowerEvents = events.length;
    if (fresh.at(-1) !== 'reboot' || closed) return;
    await new Promise<void>((resolve) => {
      rebootTimer = setTimeout(() => {
        rebootTimer = undefined;
        if (closed || stopping) {
          resolve();
          return;
        }
        launch().then(resolve, (error: unknown) => {
          stderr += `\nfixture: sshd did not come back after the faked reboot: ${String(error)}\n`;
          resolve();
        });
      }, options.rebootDowntimeMs ?? 300);
    });
  };

  const stopChild = async () => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    stopping = true;
    try {
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve());
        running.kill('SIGTERM');
        setTimeout(() => running.kill('SIGKILL'), 3000).unref();
      });
    } finally {
      stopping = false;
    }
  };

  // A port picked by freePort may be taken by someone else before sshd binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      if (options.port !== undefined && options.port !== 0) throw error;
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = 0;
    }
  }

  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    username,
    hostKeyFingerprint: hostKey.sha256Fingerprint,
    hostKey,
    clientKey,
    dir,
    get listening() {
      return listening;
    },
    commands: () => readLines(paths.commands, true),
    powerEvents: async () => (await readLines(paths.power)) as FakePowerCommand[],
    setAuthorizedKeys: writeAuthorizedKeys,
    waitUntilListening: async (timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      // `listening` flips when Node sees sshd exit, which may lag behind the port closing: also connect.
      while (!listening || !(await accepts(port))) {
        if (Date.now() > deadline) throw new Error(`sshd did not listen again within ${timeoutMs} ms\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    stop: async () => {
      if (rebootTimer !== undefined) clearTimeout(rebootTimer);
      rebootTimer = undefined;
      await stopChild();
    },
    start: async () => {
      if (rebootTimer !== undefined) clearTimeout(rebootTimer); // powered on before the faked reboot ended
      rebootTimer = undefined;
      if (listening) return;
      await launch();
    },
    log: () => stderr,
    close: async () => {
      if (closed) return;
      closed = true;
      if (rebootTimer !== undefined) clearTimeout(rebootTimer);
      await stopChild();
      await rm(dir, { recursive: true, force: true });
    },
  };

  function forcedCommandScript(files: typeof paths): string {
    const cases = Object.entries(powerCommands)
      .map(([command, event]) => `  ${shellQuote(command)})\n    fake_power ${event} ;;`)
      .join('\n');
    return `#!/bin/sh
# Forced command of a test sshd (see startOpenSSHServer): records the requested command, fakes
# power commands (never runs them on the test host), and runs anything else with sh -c.
command="\${SSH_ORIGINAL_COMMAND-}"
printf '%s\\n' "$(printf '%s' "$command" | tr '\\n' ' ')" >> ${shellQuote(files.commands)}
fake_power() {
  if [ ${options.sudoRequiresPassword === true ? '1' : '0'} = 1 ]; then
    echo 'sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper' >&2
    echo 'sudo: a password is required' >&2
    exit 1
  fi
  printf '%s\\n' "$1" >> ${shellQuote(files.power)}
  # Stop the listening sshd: this session lives on, new connections are refused. Wait until it is
  # gone (at most ~3 s) so the port already refuses when this command returns.
  pid="$(cat ${shellQuote(files.pid)})"
  kill -TERM "$pid" 2>/dev/null
  tries=0
  while [ "$tries" -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.01
    tries=$((tries + 1))
  done
  exit 0
}
case "$command" in
${cases}
  '')
    exec /bin/sh ;;
esac
exec /bin/sh -c "$command"
`;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not pick a free port');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function readLines(path: string, keepEmpty = false): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const lines = text.split('\n');
  lines.pop(); // after the last newline
  return keepEmpty ? lines : lines.filter((line) => line !== '');
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
