import { MachineError, type MachineErrorOptions } from '@machine/driver-core';

/** Why a Docker API call failed. */
export type DockerApiFailure = 'refused' | 'timeout' | 'tls' | 'http' | 'network';

/** A call to a machine's Docker engine over TLS failed. */
export class DockerApiError extends MachineError {
  override readonly code = 'DOCKER_API';
  override readonly isRetryable: boolean;
  readonly failure: DockerApiFailure;
  /** The engine URL, `tcp://host:port`. */
  readonly url: string;
  /** The HTTP status, for `http` failures. */
  readonly statusCode: number | undefined;

  constructor(detail: string, options: MachineErrorOptions & { failure: DockerApiFailure; url: string; statusCode?: number }) {
    super(detail, options);
    this.failure = options.failure;
    this.url = options.url;
    this.statusCode = options.statusCode;
    this.isRetryable = options.failure === 'refused' || options.failure === 'timeout' || options.failure === 'network';
  }
}
