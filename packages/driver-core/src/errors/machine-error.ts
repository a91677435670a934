import { redactSecrets } from '../redact.ts';

const marker = Symbol.for('@machine/driver-core.error');

/** The spec operations and helpers an error can come from. */
export type Operation =
  | 'preCreateCheck'
  | 'create'
  | 'remove'
  | 'start'
  | 'stop'
  | 'kill'
  | 'restart'
  | 'getState'
  | 'getIP'
  | 'getURL'
  | 'ssh'
  | 'config'
  | (string & {});

/** Fields every typed error accepts. */
export interface MachineErrorOptions {
  /** The machine the error is about. */
  machine?: string;
  /** The operation that failed. */
  operation?: Operation;
  /** What the user can do about it, one sentence. */
  hint?: string;
  /** The underlying error (an SDK error, a socket error). */
  cause?: unknown;
  /** Secret values that must never appear in the message (tokens, keys). */
  secrets?: readonly string[];
}

/**
 * Base class of every typed error of this project. Use {@link MachineError.isInstance}
 * rather than `instanceof`: it works across copies of this package.
 */
export class MachineError extends Error {
  readonly [marker] = true;
  /** A stable machine-readable code, e.g. `NOT_FOUND`. */
  readonly code: string = 'MACHINE_ERROR';
  /** Whether retrying the same call may succeed. */
  readonly isRetryable: boolean = false;
  readonly machine: string | undefined;
  readonly operation: Operation | undefined;
  readonly hint: string | undefined;
  /** The message without the machine/operation prefix or the hint. */
  readonly detail: string;

  constructor(detail: string, options: MachineErrorOptions = {}) {
    const safeDetail = redactSecrets(detail, options.secrets);
    const safeHint = options.hint === undefined ? undefined : redactSecrets(options.hint, options.secrets);
    super(formatMessage(safeDetail, options.machine, options.operation, safeHint), { cause: options.cause });
    this.name = new.target.name;
    this.machine = options.machine;
    this.operation = options.operation;
    this.hint = safeHint;
    this.detail = safeDetail;
  }

  /**
   * True when `value` is an error of this class (from any copy of this package):
   * `MachineError.isInstance` accepts every typed error, `NotFoundError.isInstance` only not-found ones.
   */
  static isInstance<T extends MachineError>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[marker] !== true) return false;
    // Called detached (`errors.filter(MachineError.isInstance)`), `this` is undefined: any typed error matches.
    // biome-ignore lint/complexity/noThisInStatic: the class isInstance is called on decides what matches.
    // biome-ignore lint/complexity/noUselessThisAlias: `this` is narrowed as a value below.
    const cls: unknown = this;
    if (typeof cls !== 'function' || cls === MachineError) return true;
    return value instanceof cls || (value as Error).name === cls.name;
  }
}

function formatMessage(detail: string, machine?: string, operation?: string, hint?: string): string {
  const prefix = [machine === undefined ? undefined : `machine "${machine}"`, operation]
    .filter((part) => part !== undefined)
    .join(': ');
  const body = prefix === '' ? detail : `${prefix}: ${detail}`;
  return hint === undefined ? body : `${body} (${hint})`;
}
