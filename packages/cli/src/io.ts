import type { DriverDescriptor } from '@machine/driver-core';

/** A stream the CLI writes to (process.stdout in the binary, a buffer in tests). */
export interface OutputStream {
  write(chunk: string | Uint8Array): unknown;
  /** True when it is a terminal (progress with elapsed times, prompts). */
  readonly isTTY?: boolean;
}

/** Everything the CLI touches outside itself, so tests can run it in-process. */
export interface CliIO {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Where `rm` reads its confirmation and `ssh` its input; absent means "not interactive". */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Drivers by name that take precedence over package discovery (tests, embedding). */
  readonly drivers?: Readonly<Record<string, DriverDescriptor | (() => Promise<DriverDescriptor>)>>;
  /** Aborted on Ctrl-C; create passes it to the driver so it cleans up. */
  readonly signal?: AbortSignal;
  /** Whether the process's own stdio can be handed to child processes (`machine ssh`). */
  readonly inheritStdio?: boolean;
}

const beforeWriteHooks = new Set<() => void>();

/** Runs `hook` before every `writeLine` (a live progress frame freezes itself so the line does not get erased). */
export function onBeforeWriteLine(hook: () => void): void {
  beforeWriteHooks.add(hook);
}

/** Writes a line to a stream. */
export function writeLine(stream: OutputStream, line = ''): void {
  for (const hook of beforeWriteHooks) hook();
  stream.write(`${line}\n`);
}
