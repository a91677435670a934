import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { KERNEL_RELEASE } from '../shell/ubuntu-image.ts';

/** What the emulated Docker Engine reports. */
export const DOCKER_ENGINE = {
  version: '27.3.1',
  apiVersion: '1.47',
  minApiVersion: '1.24',
  gitCommit: '41ca978',
  goVersion: 'go1.22.7',
  containerdVersion: '1.7.22',
  buildTime: '2024-09-20T11:41:11.000000000+00:00',
  /** The kernel `/version` reports: the image's `uname -r`. */
  kernelVersion: KERNEL_RELEASE,
} as const;

/** A TCP listener of the daemon, from daemon.json `hosts`. */
export interface DaemonListener {
  /** Address to bind (the instance's public IP for `0.0.0.0`). */
  host: string;
  port: number;
}

/** Everything the emulated dockerd needs to serve. */
export interface DaemonSettings {
  listeners: DaemonListener[];
  /** Serve HTTPS (daemon.json `tls` or `tlsverify`). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; verify: boolean };
  hostname: string;
  labels: string[];
  storageDriver: string;
  registryMirrors: string[];
  insecureRegistries: string[];
  /** Stable daemon id for `/info`. */
  id: string;
}

/** A running emulated dockerd. */
export interface RunningDaemon {
  readonly settings: DaemonSettings;
  close(): Promise<void>;
}

/**
 * Starts the daemon's TCP listeners: HTTPS with exactly the configured certificate, key and CA
 * (`requestCert` + `rejectUnauthorized` under `tlsverify`, so only clients with a certificate
 * signed by that CA get an answer), or plain HTTP without TLS. Serves `/_ping` (GET and HEAD),
 * `/version` and `/info`, optionally under a `/v1.NN` prefix; everything else is Docker's 404.
 * Rejects (after closing what it opened) when a listener cannot bind or the TLS material is bad.
 */
export async function startDockerd(settings: DaemonSettings): Promise<RunningDaemon> {
  const servers: Server[] = [];
  const handler = (request: IncomingMessage, response: ServerResponse): void => answer(settings, request, response);
  try {
    for (const listener of settings.listeners) {
      const server =
        settings.tls === undefined
          ? createHttpServer(handler)
          : createHttpsServer(
              {
                cert: settings.tls.cert,
                key: settings.tls.key,
                ...(settings.tls.ca === undefined ? {} : { ca: settings.tls.ca }),
                requestCert: settings.tls.verify,
                rejectUnauthorized: settings.tls.verify,
                minVersion: 'TLSv1.2',
              },
              handler,
            );
      server.on('tlsClientError', () => {}); // refused clients are normal, not errors of the daemon
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listener.port, listener.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
    }
  } catch (error) {
    await closeAll(servers);
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    settings,
    close: () => {
      closing ??= closeAll(servers);
      return closing;
    },
  };
}

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
}

function answer(settings: DaemonSettings, request: IncomingMessage, response: ServerResponse): void {
  const path = (request.url ?? '/').split('?', 1)[0]!.replace(/^\/v1\.\d+(?=\/)/, '');
  const headers = {
    'api-version': DOCKER_ENGINE.apiVersion,
    'docker-experimental': 'false',
    ostype: 'linux',
    server: `Docker/${DOCKER_ENGINE.version} (linux)`,
  };
  const method = request.method ?? 'GET';
  const json = (status: number, body: unknown): void => {
    response.writeHead(status, { ...headers, 'content-type': 'application/json' });
    response.end(`${JSON.stringify(body)}\n`);
  };
  if (path === '/_ping' && (method === 'GET' || method === 'HEAD')) {
    response.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache, no-store, must-revalidate', pragma: 'no-cache' });
    response.end(method === 'HEAD' ? undefined : 'OK');
    return;
  }
  if (path === '/version' && method === 'GET') {
    json(200, versionBody());
    return;
  }
  if (path === '/info' && method === 'GET') {
    json(200, infoBody(settings));
    return;
  }
  json(404, { message: 'page not found' });
}

/** `GET /version`. */
export function versionBody(): Record<string, unknown> {
  return {
    Platform: { Name: 'Docker Engine - Community' },
    Components: [
      { Name: 'Engine', Version: DOCKER_ENGINE.version, Details: { ApiVersion: DOCKER_ENGINE.apiVersion, MinAPIVersion: DOCKER_ENGINE.minApiVersion, Os: 'linux', Arch: 'amd64' } },
      { Name: 'containerd', Version: DOCKER_ENGINE.containerdVersion, Details: { GitCommit: '7f7fdf5fed64eb6a7caf99b3e12efcf9d60e311c' } },
    ],
    Version: DOCKER_ENGINE.version,
    ApiVersion: DOCKER_ENGINE.apiVersion,
    MinAPIVersion: DOCKER_ENGINE.minApiVersion,
    GitCommit: DOCKER_ENGINE.gitCommit,
    GoVersion: DOCKER_ENGINE.goVersion,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: DOCKER_ENGINE.kernelVersion,
    BuildTime: DOCKER_ENGINE.buildTime,
  };
}

/** `GET /info` (a small subset of the real answer). */
export function infoBody(settings: DaemonSettings): Record<string, unknown> {
  return {
    ID: settings.id,
    Name: settings.hostname,
    ServerVersion: DOCKER_ENGINE.version,
    OperatingSystem: 'Ubuntu 24.04.1 LTS',
    OSType: 'linux',
    OSVersion: '24.04',
    Architecture: 'x86_64',
    KernelVersion: DOCKER_ENGINE.kernelVersion,
    Driver: settings.storageDriver,
    Labels: settings.labels,
    Containers: 0,
    ContainersRunning: 0,
    Images: 0,
    NCPU: 2,
    MemTotal: 4_110_331_904,
    DockerRootDir: '/var/lib/docker',
    RegistryConfig: { Mirrors: settings.registryMirrors, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {} },
    InsecureRegistries: settings.insecureRegistries,
    SecurityOptions: ['name=apparmor', 'name=seccomp,profile=builtin', 'name=cgroupns'],
  };
}
