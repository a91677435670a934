import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** Any other failure of a provider API call; keeps the SDK error as `cause`. */
export class ProviderError extends MachineError {
  override readonly code = 'PROVIDER';
  override readonly isRetryable: boolean;
  /** The provider's request id, for support tickets. */
  readonly requestId: string | undefined;
  /** The provider's own error code, e.g. `InvalidParameterValue`. */
  readonly providerCode: string | undefined;
  /** The HTTP status, when there was one. */
  readonly statusCode: number | undefined;
  constructor(
    detail: string,
    options: MachineErrorOptions & { requestId?: string; providerCode?: string; statusCode?: number; retryable?: boolean } = {},
  ) {
    const withId = options.requestId === undefined ? detail : `${detail} [request id ${options.requestId}]`;
    super(withId, options);
    this.requestId = options.requestId;
    this.providerCode = options.providerCode;
    this.statusCode = options.statusCode;
    this.isRetryable = options.retryable ?? (options.statusCode !== undefined && options.statusCode >= 500);
  }
}
