import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** Why an SSH connection failed. */
export type SSHFailure = 'refused' | 'auth' | 'host-key' | 'handshake' | 'command';

/** An SSH connection or command failed. */
export class SSHError extends MachineError {
  override readonly code = 'SSH';
  readonly failure: SSHFailure;
  override readonly isRetryable: boolean;
  constructor(detail: string, options: MachineErrorOptions & { failure: SSHFailure }) {
    super(detail, options);
    this.failure = options.failure;
    this.isRetryable = options.failure === 'refused' || options.failure === 'handshake';
  }
}
