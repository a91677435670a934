import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { answerAttach, answerEngineRoute } from './docker-api-routes.ts';
import { ContainerEngine } from './docker-engine.ts';
import { type EngineRelease, INITIAL_ENGINE } from './engine-releases.ts';

/** What the emulated Docker Engine reports before any upgrade (the release a fresh install gets). */
export const DOCKER_ENGINE: EngineRelease = INITIAL_ENGINE;

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
  /** The installed engine release (default: the one a fresh install gets). */
  release?: EngineRelease;
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
 * `/version`, `/info` and what `docker run` needs (containers and images of `engine`, see
 * docker-api-routes.ts), optionally under a `/v1.NN` prefix; everything else is Docker's 404.
 * Rejects (after closing what it opened) when a listener cannot bind or the TLS material is bad.
 */
export async function startDockerd(settings: DaemonSettings, engine: ContainerEngine = new ContainerEngine()): Promise<RunningDaemon> {
  const servers: Server[] = [];
  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    answer(settings, engine, request, response).catch((error: unknown) => {
      if (response.headersSent) response.destroy();
      else {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(`${JSON.stringify({ message: (error as Error).message })}\n`);
      }
    });
  };
  const upgrade = (request: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => {});
    // The docker client half-closes a hijacked connection when it has no stdin to send (over TLS a
    // close_notify): the output must still flow back, as from dockerd.
    (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
    const { path, query } = route(request);
    answerAttach(engine, headersOf(settings), request, socket, path, query);
  };
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
      server.on('upgrade', upgrade);
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
      engine.stopAll();
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

function route(request: IncomingMessage): { path: string; query: URLSearchParams } {
  const url = new URL(request.url ?? '/', 'http://dockerd');
  return { path: url.pathname.replace(/^\/v1\.\d+(?=\/)/, ''), query: url.searchParams };
}

function headersOf(settings: DaemonSettings): Record<string, string> {
  const release = settings.release ?? DOCKER_ENGINE;
  return {
    'api-version': release.apiVersion,
    'docker-experimental': 'false',
    ostype: 'linux',
    server: `Docker/${release.version} (linux)`,
  };
}

async function answer(settings: DaemonSettings, engine: ContainerEngine, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { path, query } = route(request);
  const headers = headersOf(settings);
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
    json(200, versionBody(settings.release));
    return;
  }
  if (path === '/info' && method === 'GET') {
    json(200, infoBody(settings, engine));
    return;
  }
  if (await answerEngineRoute(engine, headers, request, response, path, query)) return;
  json(404, { message: 'page not found' });
}

/** `GET /version`. */
export function versionBody(release: EngineRelease = DOCKER_ENGINE): Record<string, unknown> {
  return {
    Platform: { Name: 'Docker Engine - Community' },
    Components: [
      {
        Name: 'Engine',
        Version: release.version,
        Details: {
          ApiVersion: release.apiVersion,
          MinAPIVersion: release.minApiVersion,
          GitCommit: release.gitCommit,
          GoVersion: release.goVersion,
          Os: 'linux',
          Arch: 'amd64',
          KernelVersion: release.kernelVersion,
          Experimental: 'false',
          BuildTime: release.buildTime,
        },
      },
      { Name: 'containerd', Version: release.containerdVersion, Details: { GitCommit: '7f7fdf5fed64eb6a7caf99b3e12efcf9d60e311c' } },
    ],
    Version: release.version,
    ApiVersion: release.apiVersion,
    MinAPIVersion: release.minApiVersion,
    GitCommit: release.gitCommit,
    GoVersion: release.goVersion,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: release.kernelVersion,
    BuildTime: release.buildTime,
  };
}

/** `GET /info` (a small subset of the real answer). */
export function infoBody(settings: DaemonSettings, engine?: ContainerEngine): Record<string, unknown> {
  const release = settings.release ?? INITIAL_ENGINE;
  const containers = [...(engine?.containers.values() ?? [])];
  return {
    ID: settings.id,
    Name: settings.hostname,
    ServerVersion: release.version,
    OperatingSystem: 'Ubuntu 24.04.1 LTS',
    OSType: 'linux',
    OSVersion: '24.04',
    Architecture: 'x86_64',
    KernelVersion: release.kernelVersion,
    Driver: settings.storageDriver,
    Labels: settings.labels,
    Containers: containers.length,
    ContainersRunning: containers.filter((container) => container.status === 'running').length,
    ContainersPaused: 0,
    ContainersStopped: containers.filter((container) => container.status !== 'running').length,
    Images: engine?.images.size ?? 0,
    NCPU: 2,
    MemTotal: 4_110_331_904,
    DockerRootDir: '/var/lib/docker',
    RegistryConfig: { Mirrors: settings.registryMirrors, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {} },
    InsecureRegistries: settings.insecureRegistries,
    SecurityOptions: ['name=apparmor', 'name=seccomp,profile=builtin', 'name=cgroupns'],
  };
}
