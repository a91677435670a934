import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** The provider refused because a quota or limit of the account is reached. */
export class QuotaError extends MachineError {
  override readonly code = 'QUOTA';
  constructor(detail: string, options: MachineErrorOptions = {}) {
    super(detail, { hint: 'free some resources or ask the provider to raise the limit', ...options });
  }
}
