import type { DriverRegistry } from './driver-registry.ts';
import type { CliIO } from './io.ts';
import type { Store } from './store.ts';

/** Options every command has (the reference's global flags). */
export interface GlobalOptions {
  storagePath?: string;
  /** `--store postgres://…`. */
  store?: string;
  debug?: boolean;
  nativeSsh?: boolean;
}

/** What a command runs with. */
export interface CommandContext {
  readonly io: CliIO;
  readonly store: Store;
  readonly registry: DriverRegistry;
  readonly debug: boolean;
  readonly nativeSsh: boolean;
  /** The arguments the CLI was run with (without `node` and the script), e.g. for `env`'s hint. */
  readonly argv: readonly string[];
  /** Writes a debug line to stderr when `--debug` is on. */
  debugLog(message: string): void;
}
