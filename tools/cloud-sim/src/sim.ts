import { createServer, type Server } from 'node:net';
import { FaultInjector, type FaultSpec } from './core/faults.ts';
import { type ProviderServer, startProviderServer } from './core/http-server.ts';
import { IdGenerator } from './core/ids.ts';
import { InstanceSSHServers } from './core/instance-ssh.ts';
import { DEFAULT_DELAYS, InstanceLifecycle, type LifecycleDelays } from './core/lifecycle.ts';
import { LoopbackIpAllocator } from './core/loopback-ips.ts';
import type { ProviderContext, ProviderFrontEnd } from './core/provider-front-end.ts';
import { createRealism, type RealismProfile } from './core/realism.ts';
import { RequestLog } from './core/request-log.ts';
import { type LeakedResource, SimStore } from './core/store.ts';
import { InstanceGuests } from './guest/guest.ts';
import type { DigitalOceanOptions } from './providers/digitalocean/index.ts';
import { PROVIDERS } from './providers/registry.ts';

/** Options of {@link startSim}. */
export interface SimOptions {
  /** Provider front ends to start (default: every implemented one, see `PROVIDERS`). */
  providers?: readonly string[];
  /** Loopback address the HTTP servers bind (default 127.0.0.1). */
  host?: string;
  /** Fixed HTTP port per provider (default: a free port each). */
  ports?: Readonly<Record<string, number>>;
  /** The SSH port every instance listens on, on its own 127.1.x.y address (default: a free port). */
  sshPort?: number;
  /** Lifecycle delays (default pending→running 50 ms, stopping→stopped 30 ms, cloud-init final stage 20 ms). */
  delays?: Partial<LifecycleDelays>;
  /**
   * The port reported as `dockerPort` (default: a free port, held for the simulator's lifetime so
   * parallel simulators never get the same one). Use it as the engine port of machines you create.
   */
  dockerPort?: number;
  /** Extra URLs instances can `curl` (URL → body), e.g. a custom `--engine-install-url` script. */
  downloads?: Readonly<Record<string, string>>;
  /** Fault rules to add at start (same format as `CLOUD_SIM_FAULTS`). */
  faults?: readonly FaultSpec[];
  /** DigitalOcean front-end options (droplet limit, invalid token prefix…). */
  digitalocean?: DigitalOceanOptions;
  /** Options for other front ends, by provider name. */
  providerOptions?: Readonly<Record<string, unknown>>;
  /**
   * `realistic` (default): the real clouds' timing windows (read-after-create NotFound, late IPs,
   * in-use windows…) scaled by `timeScale`; `kind`: every call answered at once, on the happy path.
   */
  profile?: RealismProfile;
  /** Multiplier for real-cloud durations under the `realistic` profile (default 0.01: 3 s become 30 ms). */
  timeScale?: number;
}

/** A running simulator. */
export interface Sim {
  /** Base URL per started provider, e.g. `{ digitalocean: 'http://127.0.0.1:40123' }`. */
  readonly endpoints: Readonly<Record<string, string>>;
  /** The SSH port of every instance (connect to `<instance public IP>:<sshPort>`). */
  readonly sshPort: number;
  /**
   * A free port reserved for this simulator: pass it as the engine port (`--engine-port`) so
   * dockerd listens on `<instance public IP>:<dockerPort>` without colliding with other simulators.
   */
  readonly dockerPort: number;
  /** The booted image of every instance (cloud-init, systemd, dockerd): `guestFor(instance)`. */
  readonly guests: InstanceGuests;
  readonly store: SimStore;
  readonly faults: FaultInjector;
  readonly requestLog: RequestLog;
  readonly lifecycle: InstanceLifecycle;
  /** Per-instance SSH servers (`isOpen(instance)`, `openCount`). */
  readonly ssh: InstanceSSHServers;
  /** Every resource still alive: instances not terminated, keys, firewalls, disks, IPs… */
  leaks(): LeakedResource[];
  /** Environment variables that point every started provider's SDK and driver at the simulator (plus `CLOUD_SIM_DOCKER_PORT`). */
  env(): Record<string, string>;
  /** Stops every SSH and HTTP server and every lifecycle timer. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the cloud simulator in-process: one HTTP server per provider on loopback, a shared
 * resource store and lifecycle, and one real SSH server per running instance.
 *
 * @example
 * const sim = await startSim({ providers: ['digitalocean'] });
 * adapter.baseUrl = sim.endpoints.digitalocean;
 * // …
 * expect(sim.leaks()).toEqual([]);
 * await sim.close();
 */
export async function startSim(options: SimOptions = {}): Promise<Sim> {
  const host = options.host ?? '127.0.0.1';
  if (!host.startsWith('127.')) throw new Error(`cloud-sim binds loopback only; ${host} is not in 127.0.0.0/8`);
  const names = options.providers ?? Object.keys(PROVIDERS);
  for (const name of names) {
    if (PROVIDERS[name] === undefined) throw new Error(`cloud-sim: unknown provider "${name}"; known: ${Object.keys(PROVIDERS).join(', ')}`);
  }
  for (const url of Object.keys(options.downloads ?? {})) {
    if (!URL.canParse(url)) throw new Error(`cloud-sim: downloads: "${url}" is not a URL`);
  }
  const sshPort = options.sshPort ?? (await freePort(host));
  const dockerReservation = options.dockerPort === undefined ? await reservePort(host) : undefined;
  const dockerPort = options.dockerPort ?? dockerReservation!.port;
  const delays: LifecycleDelays = { ...DEFAULT_DELAYS, ...options.delays };
  const realism = createRealism({ ...(options.profile === undefined ? {} : { profile: options.profile }), ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }) });
  const store = new SimStore();
  const faults = new FaultInjector();
  faults.addAll(options.faults ?? []);
  const requestLog = new RequestLog();
  const ids = new IdGenerator();
  const guests = new InstanceGuests({ cloudInitMs: delays.cloudInitMs, ...(options.downloads ? { downloads: options.downloads } : {}) });
  const ssh = new InstanceSSHServers(sshPort, guests);
  const lifecycle = new InstanceLifecycle({ store, ips: new LoopbackIpAllocator(), faults, ssh, guests, delays });

  const servers: ProviderServer[] = [];
  const frontEnds: ProviderFrontEnd[] = [];
  const endpoints: Record<string, string> = {};
  try {
    for (const name of names) {
      const definition = PROVIDERS[name]!;
      const context: ProviderContext = {
        store,
        lifecycle,
        faults,
        requestLog,
        ids,
        ssh,
        sshPort,
        endpoint: () => endpoints[name] ?? '',
        realism: { profile: realism.profile, timeScale: realism.timeScale },
      };
      const providerOptions = (name === 'digitalocean' ? options.digitalocean : undefined) ?? options.providerOptions?.[name];
      const frontEnd = definition.create(context, providerOptions);
      frontEnds.push(frontEnd);
      const server = await startProviderServer(() => frontEnd, { faults, requestLog, ids }, { host, port: options.ports?.[name] ?? 0 });
      servers.push(server);
      endpoints[name] = server.url;
    }
  } catch (error) {
    await Promise.all([...servers.map((server) => server.close()), dockerReservation?.close()]);
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    endpoints,
    sshPort,
    dockerPort,
    guests,
    store,
    faults,
    requestLog,
    lifecycle,
    ssh,
    leaks: () => store.leaks(),
    env: () =>
      Object.assign({}, ...frontEnds.map((frontEnd) => frontEnd.env(endpoints[frontEnd.name]!)), { CLOUD_SIM_DOCKER_PORT: String(dockerPort) }) as Record<string, string>,
    close: () => {
      closing ??= (async () => {
        lifecycle.close();
        await Promise.all([ssh.closeAll(), guests.closeAll(), ...servers.map((server) => server.close()), dockerReservation?.close()]);
      })();
      return closing;
    },
  };
}

/** Listens on a free port of `host` until `close()`, so nobody else on this host gets it. */
function reservePort(host: string): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, host, () => {
      server.unref();
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({ port, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
