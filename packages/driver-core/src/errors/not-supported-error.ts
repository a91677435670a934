import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** The driver cannot do this operation (e.g. Start on the `none` driver). */
export class NotSupportedError extends MachineError {
  override readonly code = 'NOT_SUPPORTED';
  constructor(detail: string, options: MachineErrorOptions = {}) {
    super(detail, options);
  }
}
