import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { posix } from 'node:path';
import { createUbuntuFileSystem, type MemoryFileSystem, serveSftp } from '@machine/cloud-sim';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import type { SSHTarget } from '@machine/driver-core/ssh';
import { type ExecIO, type RunningSSHServer, startSSHServer } from '@machine/driver-core/testing';

/**
 * A booted machine for provisioning tests, independent of the simulator's provider front ends: a real
 * ssh2 server (pinned host key) whose exec handler understands exactly the commands of the guest
 * contract, SFTP over cloud-sim's in-memory Ubuntu filesystem, and on `systemctl restart docker` a
 * real HTTPS "dockerd" on loopback with the uploaded certificate files, requiring the client certificate.
 */
export interface FakeGuestOptions {
  /** What `cloud-init status --wait` reports; `absent` = no cloud-init on the image. */
  cloudInit?: 'done' | 'error' | 'absent' | 'running' | 'stuck' | 'ancient';
  /** Docker Engine already installed (e.g. by cloud-init). */
  dockerInstalled?: boolean;
  /** The install script fails (exit 100, apt errors). */
  installFails?: boolean;
  /** The SSH server goes down (connections dropped) during the first `cloud-init status --wait`, and is back 200 ms later. */
  dropConnectionDuringCloudInit?: boolean;
  /** `install` into /etc fails (read-only file system). */
  installIntoEtcFails?: boolean;
  /** `systemctl restart docker` is rate-limited once (start-limit-hit). */
  restartRateLimited?: boolean;
  username?: string;
}

export interface FakeGuest {
  readonly ssh: SSHTarget;
  readonly fs: MemoryFileSystem;
  /** Every command run over SSH, in order. */
  readonly commands: string[];
  /** A free loopback port for the engine (use as `engine.port`). */
  readonly dockerPort: number;
  /** How many times dockerd was (re)started. */
  readonly dockerStarts: number;
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startFakeGuest(options: FakeGuestOptions = {}): Promise<FakeGuest> {
  const username = options.username ?? 'ubuntu';
  const userKey = generateSSHKeyPair({ comment: 'provision-test' });
  const hostKey = generateSSHKeyPair({ comment: 'host' });
  const fs = createUbuntuFileSystem({ hostname: 'web1', authorizedKeys: [userKey.publicKey] });
  const commands: string[] = [];
  // The engine port is held by one listener for the guest's lifetime and its connections are handed
  // to the current "dockerd": rebinding a port picked earlier can race other sockets' ephemeral ports.
  const portHolder = createNetServer((socket) => {
    if (dockerd === undefined) socket.destroy();
    else dockerd.emit('connection', socket);
  });
  await new Promise<void>((resolve) => portHolder.listen(0, '127.0.0.1', resolve));
  const dockerPort = (portHolder.address() as { port: number }).port;
  let cloudInit = options.cloudInit ?? 'done';
  let dockerInstalled = options.dockerInstalled ?? false;
  let rateLimited = options.restartRateLimited ?? false;
  let dropConnection = options.dropConnectionDuringCloudInit ?? false;
  let dockerd: Server | undefined;
  let dockerStarts = 0;

  fs.writeFile('/var/log/cloud-init-output.log', 'Cloud-init v. 24.4 running modules:final\nCloud-init v. 24.4 finished. Datasource DataSourceNoCloud. Up 20.00 seconds\n');
  if (cloudInit === 'error') {
    fs.writeFile('/var/log/cloud-init-output.log', [
      'Cloud-init v. 24.4 running modules:final',
      '+ sh -c apt-get install -y -qq docker-ce docker-ce-cli containerd.io',
      'E: Unable to locate package docker-ce',
      'E: Unable to locate package docker-ce-cli',
      "2026-11-26 01:00:00,000 - cc_scripts_user.py[WARNING]: Failed to run module scripts_user (scripts in /var/lib/cloud/instance/scripts)",
      'Cloud-init v. 24.4 finished. Datasource DataSourceNoCloud. Up 42.00 seconds',
      '',
    ].join('\n'));
  }

  const stopDockerd = () =>
    new Promise<void>((resolve) => {
      dockerd?.closeAllConnections();
      dockerd = undefined;
      resolve();
    });

  const startDockerd = async (): Promise<void> => {
    await stopDockerd();
    const config = JSON.parse(fs.readFile('/etc/docker/daemon.json').toString('utf8')) as { hosts: string[]; tlscacert: string; tlscert: string; tlskey: string };
    if (!config.hosts.includes(`tcp://0.0.0.0:${dockerPort}`)) throw new Error(`daemon.json does not listen on ${dockerPort}: ${config.hosts.join(', ')}`);
    const server = createHttpsServer(
      {
        ca: fs.readFile(config.tlscacert),
        cert: fs.readFile(config.tlscert),
        key: fs.readFile(config.tlskey),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (request, response) => {
        if (request.url === '/_ping') {
          response.writeHead(200, { 'Content-Type': 'text/plain' }).end('OK');
        } else if (request.url === '/version') {
          response.writeHead(200, { 'Content-Type': 'application/json' }).end(
            JSON.stringify({ Version: '27.3.1', ApiVersion: '1.47', MinAPIVersion: '1.24', Os: 'linux', Arch: 'amd64', KernelVersion: '6.8.0-45-generic' }),
          );
        } else {
          response.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'page not found' }));
        }
      },
    );
    dockerd = server;
    dockerStarts++;
  };

  const runOne = async (command: string, io: ExecIO): Promise<number> => {
    const words = command.trim().split(/\s+/);
    if (words[0] === 'sudo') words.shift();
    const line = words.join(' ');
    if (line === 'cloud-init status --wait') {
      if (cloudInit === 'absent') {
        io.stderr('sh: 1: cloud-init: not found\n');
        return 127;
      }
      if (cloudInit === 'stuck') return new Promise<number>(() => {});
      if (dropConnection) {
        dropConnection = false;
        const port = server.port;
        void server.close().then(async () => {
          await new Promise((resolve) => setTimeout(resolve, 200));
          server = await startServer(port);
        });
        return new Promise<number>(() => {});
      }
      if (cloudInit === 'ancient') {
        io.stderr("usage: /usr/bin/cloud-init [-h] [--version] {init,modules,single,dhclient-hook,features} ...\n/usr/bin/cloud-init: error: argument subcommand: invalid choice: 'status'\n");
        return 2;
      }
      if (cloudInit === 'running') {
        io.stdout('status: running\n');
        cloudInit = 'done';
        return 0;
      }
      io.stdout(`status: ${cloudInit}\n`);
      return cloudInit === 'error' ? 1 : 0;
    }
    const tail = /^tail -n (\d+) (\S+)$/.exec(line);
    if (tail !== null) {
      const lines = fs.readFile(tail[2] ?? '').toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      io.stdout(`${lines.slice(-Number(tail[1])).join('\n')}\n`);
      return 0;
    }
    if (line.startsWith('journalctl -u docker')) {
      io.stdout('-- No entries --\n');
      return 0;
    }
    if (line === 'command -v docker') {
      if (!dockerInstalled) return 1;
      io.stdout('/usr/bin/docker\n');
      return 0;
    }
    const curl = /^curl -fsSL '([^']+)' -o \/tmp\/install-docker.sh$/.exec(line);
    if (curl !== null) {
      fs.writeFile('/tmp/install-docker.sh', `#!/bin/sh\n# from ${curl[1]}\n`);
      return 0;
    }
    if (line === 'sh /tmp/install-docker.sh') {
      if (options.installFails) {
        io.stdout('# Executing docker install script, commit: 6d51e2c\n+ sh -c apt-get update -qq >/dev/null\n');
        io.stderr('E: Unable to locate package docker-ce\nE: Unable to locate package docker-ce-cli\n');
        return 100;
      }
      io.stdout('# Executing docker install script, commit: 6d51e2c\n+ sh -c docker version\nClient: Docker Engine - Community\n Version: 27.3.1\n');
      dockerInstalled = true;
      fs.writeFile('/usr/bin/docker', '', { mode: 0o755 });
      fs.writeFile('/usr/bin/dockerd', '', { mode: 0o755 });
      return 0;
    }
    const remove = /^rm -rf (\S+)$/.exec(line);
    if (remove !== null) {
      if (fs.exists(remove[1] ?? '')) fs.remove(remove[1] ?? '', { recursive: true });
      return 0;
    }
    if (words[0] === 'mkdir' && words[1] === '-p') {
      for (const dir of words.slice(2)) fs.mkdir(dir, { recursive: true });
      return 0;
    }
    if (words[0] === 'install' && words[1] === '-m') {
      const mode = Number.parseInt(words[2] ?? '', 8);
      const paths = words.slice(3);
      const destination = paths.pop() ?? '';
      if (options.installIntoEtcFails && destination.startsWith('/etc/')) {
        io.stderr(`install: cannot create regular file '${destination}': Read-only file system\n`);
        return 1;
      }
      for (const source of paths) {
        const target = destination.endsWith('/') ? posix.join(destination, posix.basename(source)) : destination;
        fs.writeFile(target, fs.readFile(source), { mode });
      }
      return 0;
    }
    if (line === 'systemctl daemon-reload') return 0;
    if (line === 'systemctl reset-failed docker') {
      rateLimited = false;
      return 0;
    }
    if (line === 'systemctl restart docker') {
      if (!dockerInstalled) {
        io.stderr('Failed to restart docker.service: Unit docker.service not found.\n');
        return 5;
      }
      if (rateLimited) {
        // systemd 255's text when StartLimitBurst was hit.
        io.stderr(
          'Job for docker.service failed because start of the service was attempted too often.\nSee "systemctl status docker.service" and "journalctl -xeu docker.service" for details.\nTo force a start use "systemctl reset-failed docker.service"\nfollowed by "systemctl start docker.service" again.\n',
        );
        return 1;
      }
      await startDockerd();
      return 0;
    }
    io.stderr(`sh: 1: ${words[0] ?? ''}: not found\n`);
    return 127;
  };

  const startServer = (port = 0): Promise<RunningSSHServer> =>
    startSSHServer({
    port,
    authorizedKeys: [userKey.publicKey],
    username,
    hostKey: hostKey.privateKey,
    onExec: async (command, io) => {
      commands.push(command);
      let code = 0;
      for (const part of command.split(' && ')) {
        code = await runOne(part, io);
        if (code !== 0) break;
      }
      return code;
    },
    onSftp: (sftp, user) => serveSftp(sftp, fs, user),
  });
  let server = await startServer();

  return {
    ssh: {
      host: server.host,
      port: server.port,
      username,
      privateKey: userKey.privateKey,
      hostKeyFingerprint: server.hostKeyFingerprint,
      machine: 'web1',
    },
    fs,
    commands,
    dockerPort,
    get dockerStarts() {
      return dockerStarts;
    },
    close: async () => {
      await stopDockerd();
      await new Promise((resolve) => portHolder.close(resolve));
      await server.close();
    },
  };
}
