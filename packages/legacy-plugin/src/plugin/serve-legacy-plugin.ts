import { format } from 'node:util';
import { type DriverDescriptor, driverDescriptorProblem } from '@machine/driver-core';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { legacyApiVersion, legacyServiceNames } from '../protocol/driver-rpc-types.ts';
import { RpcServer } from '../rpc/rpc-server.ts';
import { legacyDriverService } from './legacy-driver-service.ts';

/** Where a served plugin writes and how it exits; the defaults are the process's own. */
export interface ServeLegacyPluginOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The host reads the address from the first line, then shows each line at Info level. */
  readonly stdout?: { write(text: string): unknown };
  /** Shown by the host only with --debug. */
  readonly stderr?: { write(text: string): unknown };
  readonly exit?: (code: number) => void;
  /** Exit 1 when no Heartbeat came for this long, ms (libmachine: 10000). */
  readonly heartbeatTimeout?: number;
  /** Send console.log/info/debug to stderr so nothing but the address reaches stdout first (default true). */
  readonly redirectConsole?: boolean;
}

/** A plugin being served. */
export interface LegacyPluginServer {
  /** `127.0.0.1:PORT`, the line printed on stdout. */
  readonly address: string;
  /** Resolves with the exit code once Close, a missed heartbeat or `stop` ends it. */
  readonly exited: Promise<number>;
  /** Stops serving without exiting the process (tests). */
  stop(): Promise<void>;
}

/** What libmachine's plugin prints when run by hand (its own text, with the API version). */
export const notAPluginHostNotice = `This is a Docker Machine plugin binary.
Plugin binaries are not intended to be invoked directly.
Please use this plugin through the main 'docker-machine' binary.
(API version: ${legacyApiVersion})
`;

/** Sends console.log/info/debug/warn to stderr: stdout belongs to the plugin protocol. */
export function redirectConsoleToStderr(stderr: { write(text: string): unknown } = process.stderr): void {
  const toStderr = (...args: unknown[]) => {
    stderr.write(`${format(...args)}\n`);
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
}

/**
 * Serves a driver-core driver as a `docker-machine-driver-NAME` plugin, the way libmachine's
 * `plugin.RegisterDriver` does: refuses to run without `MACHINE_PLUGIN_TOKEN=42`, listens on
 * 127.0.0.1, prints the address as the first stdout line, serves `RPCServerDriver` and
 * `RpcServerDriver`, exits 0 after Close and 1 when heartbeats stop. Arguments are ignored
 * (rancher-machine passes its own argv).
 */
export async function serveLegacyPlugin<Config>(descriptor: DriverDescriptor<Config>, options: ServeLegacyPluginOptions = {}): Promise<LegacyPluginServer | undefined> {
  const env = options.env ?? process.env;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  if (env.MACHINE_PLUGIN_TOKEN !== '42') {
    stderr.write(notAPluginHostNotice);
    exit(1);
    return undefined;
  }
  const problem = driverDescriptorProblem(descriptor as unknown);
  if (problem !== undefined) throw new LegacyProtocolError(`cannot serve this module as a plugin: ${problem}`);
  if (options.redirectConsole !== false) redirectConsoleToStderr(stderr);

  let finish: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    finish = resolve;
  });
  let done = false;
  const end = async (code: number) => {
    if (done) return;
    done = true;
    clearTimeout(watchdog);
    await server.close();
    finish(code);
    exit(code);
  };
  const heartbeatTimeout = options.heartbeatTimeout ?? 10_000;
  const watchdog = setTimeout(() => {
    stderr.write(`no heartbeat from the host for ${heartbeatTimeout} ms: exiting\n`);
    void end(1);
  }, heartbeatTimeout);

  const service = legacyDriverService(descriptor, {
    env,
    info: (line) => stdout.write(`${line}\n`),
    debug: (line) => stderr.write(`${line}\n`),
    onHeartbeat: () => watchdog.refresh(),
    onClose: () => void end(0),
  });
  const server = new RpcServer(new Map(legacyServiceNames.map((name) => [name, service])));
  const address = await server.listen('127.0.0.1', 0);
  stdout.write(`${address}\n`);
  return {
    address,
    exited,
    stop: async () => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      await server.close();
      finish(0);
    },
  };
}

/**
 * The main of a generated plugin binary: checks the token before loading the driver (running it
 * by hand only prints the notice), keeps stdout clean while the driver module loads, then serves
 * the module's default export.
 */
export async function runLegacyPlugin(loadDriver: () => Promise<Record<string, unknown>>, options: ServeLegacyPluginOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  if (env.MACHINE_PLUGIN_TOKEN !== '42') {
    (options.stderr ?? process.stderr).write(notAPluginHostNotice);
    (options.exit ?? ((code: number) => process.exit(code)))(1);
    return;
  }
  if (options.redirectConsole !== false) redirectConsoleToStderr(options.stderr);
  const module = await loadDriver();
  await serveLegacyPlugin((module.default ?? module.driver) as DriverDescriptor, { ...options, redirectConsole: false });
}
