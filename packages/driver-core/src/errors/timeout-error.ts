import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** A wait (for a state, an operation, SSH) passed its deadline. */
export class TimeoutError extends MachineError {
  override readonly code = 'TIMEOUT';
  override readonly isRetryable = true;
  constructor(detail: string, options: MachineErrorOptions = {}) {
    super(detail, options);
  }
}
