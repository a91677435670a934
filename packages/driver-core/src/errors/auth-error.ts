import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** Credentials are missing, invalid or lack a permission. */
export class AuthError extends MachineError {
  override readonly code = 'AUTH';
  constructor(detail: string, options: MachineErrorOptions = {}) {
    super(detail, options);
  }
}
