import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** The operation was aborted through its AbortSignal (Ctrl-C, a caller's timeout). */
export class CancelledError extends MachineError {
  override readonly code = 'CANCELLED';
  constructor(detail = 'the operation was cancelled', options: MachineErrorOptions = {}) {
    super(detail, options);
  }
}
