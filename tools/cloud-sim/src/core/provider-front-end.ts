import type { IncomingHttpHeaders } from 'node:http';
import type { FaultErrorKind, FaultInjector, ThrottleSpec } from './faults.ts';
import type { IdGenerator } from './ids.ts';
import type { InstanceSSHServers } from './instance-ssh.ts';
import type { InstanceLifecycle } from './lifecycle.ts';
import type { RealismOptions } from './realism.ts';
import type { RequestLog } from './request-log.ts';
import type { SimStore } from './store.ts';

/** An HTTP request as front ends see it (body already read). */
export interface SimRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** A fresh id for this request (echoed in error bodies). */
  readonly requestId: string;
}

/** What a front end answers; an object `body` is sent as JSON. */
export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** An API error a handler throws; the front end renders it in the provider's format. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** Provider error code, e.g. `not_found`, `InvalidInstanceID.NotFound`. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A matched route: its stable operation name and the handler. */
export interface Route {
  /** e.g. `droplets.create`: counted in the request log and matched by fault rules. */
  readonly operation: string;
  handle(): SimResponse | Promise<SimResponse>;
}

/** Services the simulator gives each front end. */
export interface ProviderContext {
  readonly store: SimStore;
  readonly lifecycle: InstanceLifecycle;
  readonly faults: FaultInjector;
  readonly requestLog: RequestLog;
  readonly ids: IdGenerator;
  readonly ssh: InstanceSSHServers;
  /** The shared SSH port every instance listens on. */
  readonly sshPort: number;
  /** This front end's base URL (`http://127.0.0.1:PORT`), known once its server listens. */
  endpoint(): string;
  /** The simulator-wide realism (`startSim({ profile, timeScale })`); front ends resolve it with `realismOf`. */
  readonly realism?: RealismOptions;
}

/**
 * One provider's API, in its real wire format. The core HTTP layer reads the body, asks `route`,
 * checks `authenticate`, applies faults (rendered through `faultError` / `throttleResponse`), runs
 * the handler, renders thrown {@link ApiError}s with `renderError`, and logs the call.
 */
export interface ProviderFrontEnd {
  readonly name: string;
  /** The route for a request, or undefined (answered with the provider's not-found error). */
  route(request: SimRequest): Route | undefined;
  /** An auth error for bad credentials, or undefined to let the request through. */
  authenticate?(request: SimRequest): ApiError | undefined;
  /** The provider's error for an injected fault kind. */
  faultError(kind: FaultErrorKind, operation: string): ApiError;
  /** The provider's throttling answer (429 with its rate-limit headers). */
  throttleResponse(throttle: Required<ThrottleSpec>, request: SimRequest): SimResponse;
  /** Renders an error in the provider's format. */
  renderError(error: ApiError, request: SimRequest): SimResponse;
  /** Adds headers every answer carries (rate-limit counters…). */
  decorate?(response: SimResponse, request: SimRequest): void;
  /** Environment variables that point this provider's SDK and driver at `endpoint`. */
  env(endpoint: string): Record<string, string>;
}

/** A provider the simulator can start: a name and a factory. */
export interface ProviderDefinition<Options = Record<string, unknown>> {
  readonly name: string;
  create(context: ProviderContext, options?: Options): ProviderFrontEnd;
}
