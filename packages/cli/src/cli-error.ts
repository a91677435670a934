/** Exit codes the reference's scripts rely on. */
export const ExitCode = {
  ok: 0,
  error: 1,
  /** `create`'s pre-create check failed (the reference's crashreport exit code 3). */
  preCreateCheck: 3,
  /** `ssh` could not connect or refused the host key (OpenSSH's own failure code, for both clients). */
  sshFailure: 255,
  /** Interrupted by Ctrl-C. */
  interrupted: 130,
} as const;

/** A failure the CLI reports as one line on stderr, with an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.error, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** `Docker machine "X" does not exist`, the reference's wording scripts match. */
export function machineNotFound(name: string): CliError {
  return new CliError(`Docker machine "${name}" does not exist. Use "machine ls" to list machines. Use "machine create" to add a new one.`);
}

/** `Docker machine "X" already exists`, the reference's wording. */
export function machineExists(name: string): CliError {
  return new CliError(`Docker machine "${name}" already exists`);
}

/** The reference's `drivers.ErrHostIsNotRunning`. */
export const hostNotRunningMessage = 'Host is not running';

/**
 * The one line to show for an error: a MachineError's message, without the `config:` operation
 * prefix core puts on bad-input and credential errors (they are about what the user typed, not an
 * operation); anything else's message.
 */
export function errorLine(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'detail' in error && (error as { operation?: unknown }).operation === 'config') {
    const { detail, machine, hint } = error as { detail: string; machine?: string; hint?: string };
    const body = machine === undefined ? detail : `machine "${machine}": ${detail}`;
    return hint === undefined ? body : `${body} (${hint})`;
  }
  return error instanceof Error ? error.message : String(error);
}
