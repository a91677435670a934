import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';

/** How a plugin binary is started. */
export interface LaunchOptions {
  /** The driver's name, passed as MACHINE_PLUGIN_DRIVER_NAME. */
  readonly driverName: string;
  /** The environment the plugin inherits (default `process.env`); the token is added. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How long the plugin may take to print its address, ms (libmachine: 10000). */
  readonly startTimeout?: number;
  /** Each stdout line after the address (libmachine logs them at Info). */
  readonly onStdout?: (line: string) => void;
  /** Each stderr line (libmachine logs them at Debug). */
  readonly onStderr?: (line: string) => void;
  /** Called with the pid once the process runs. */
  readonly onLaunch?: (pid: number) => void;
}

/** A running plugin process. */
export interface PluginProcess {
  readonly pid: number;
  /** `127.0.0.1:PORT`, its first stdout line. */
  readonly address: string;
  /** Resolves when the process has exited and been reaped. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once it exited. */
  readonly hasExited: () => boolean;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `docker-machine-driver-NAME` as libmachine's localbinary does: no arguments,
 * MACHINE_PLUGIN_TOKEN=42 and MACHINE_PLUGIN_DRIVER_NAME in its environment, the first stdout
 * line is the address. A plugin that cannot start, exits first or stays silent is a
 * LegacyProtocolError, and its process is gone by then.
 */
export function launchPluginProcess(path: string, options: LaunchOptions): Promise<PluginProcess> {
  const timeout = options.startTimeout ?? 10_000;
  const env = { ...(options.env ?? process.env), MACHINE_PLUGIN_TOKEN: '42', MACHINE_PLUGIN_DRIVER_NAME: options.driverName };
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(path, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      reject(new LegacyProtocolError(`cannot run the plugin ${path}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    let exitedFlag = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
      // 'exit' (reaped), not 'close': a grandchild holding the pipes must not keep us waiting.
      child.once('exit', (code, signal) => {
        exitedFlag = true;
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolveExit({ code, signal });
      });
    });
    const stderrTail: string[] = [];
    let address: string | undefined;
    const settle = (error?: LegacyProtocolError) => {
      clearTimeout(timer);
      if (error === undefined) return;
      if (!exitedFlag) child.kill('SIGKILL');
      // Reject only once the process is reaped: no plugin outlives a failed launch.
      void exited.then(() => reject(error));
    };
    const timer = setTimeout(() => {
      if (address === undefined) settle(new LegacyProtocolError(`the plugin ${path} did not print its address within ${timeout} ms`, { hint: 'run it with MACHINE_PLUGIN_TOKEN=42 to see what it prints first' }));
    }, timeout);
    child.once('error', (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'ENOENT' ? 'check that the file exists' : error.code === 'EACCES' ? 'make the file executable (chmod +x)' : undefined;
      const failure = new LegacyProtocolError(`cannot run the plugin ${path}: ${error.message}`, { cause: error, ...(hint === undefined ? {} : { hint }) });
      if (child.pid === undefined) {
        // It never started: there is no process to reap.
        clearTimeout(timer);
        reject(failure);
        return;
      }
      settle(failure);
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (address === undefined) {
        stderrTail.push(line);
        if (stderrTail.length > 5) stderrTail.shift();
      }
      options.onStderr?.(line);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (address !== undefined) {
        options.onStdout?.(line);
        return;
      }
      address = line.trim();
      if (!/^[^\s]+:\d+$/.test(address)) {
        settle(new LegacyProtocolError(`the plugin ${path} printed "${line.slice(0, 120)}" where its address belongs`, { hint: 'a plugin must print nothing on stdout before its 127.0.0.1:PORT line' }));
        return;
      }
      settle();
      options.onLaunch?.(child.pid!);
      resolve({
        pid: child.pid!,
        address,
        exited,
        hasExited: () => exitedFlag,
        kill: (signal = 'SIGKILL') => {
          if (!exitedFlag) child.kill(signal);
        },
      });
    });
    void exited.then(({ code, signal }) => {
      if (address !== undefined) return;
      const said = stderrTail.length === 0 ? '' : `: ${stderrTail.join(' | ')}`;
      settle(new LegacyProtocolError(`the plugin ${path} exited (${signal ?? `code ${code}`}) before printing its address${said}`));
    });
  });
}
