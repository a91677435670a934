import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';

/** DigitalOcean's message when a create would exceed the account's droplet limit. */
export const DROPLET_LIMIT_MESSAGE = 'creating this/these droplet(s) will exceed your droplet limit';

/** 404 `not_found`, as every DigitalOcean lookup answers. */
export function notFound(): ApiError {
  return new ApiError(404, 'not_found', 'The resource you were accessing could not be found.');
}

/** 422 `unprocessable_entity` with `message`. */
export function unprocessable(message: string): ApiError {
  return new ApiError(422, 'unprocessable_entity', message);
}

/** 400 `bad_request` with `message`. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'bad_request', message);
}

/** 401 `unauthorized`. */
export function unauthorized(): ApiError {
  return new ApiError(401, 'unauthorized', 'Unable to authenticate you');
}

/** DigitalOcean's error for an injected fault kind. */
export function digitalOceanFaultError(kind: FaultErrorKind): ApiError {
  switch (kind) {
    case 'auth':
      return unauthorized();
    case 'quota':
      return unprocessable(DROPLET_LIMIT_MESSAGE);
    case 'not_found':
      return notFound();
    case 'server':
      return new ApiError(500, 'server_error', 'Server was unable to give you a response.');
    case 'unavailable':
      return new ApiError(503, 'service_unavailable', 'Service is temporarily unavailable. Please try again later.');
  }
}

/** Error body `{"id","message","request_id"}`, DigitalOcean's shape for every error. */
export function renderDigitalOceanError(error: ApiError, request: SimRequest): SimResponse {
  return { status: error.status, body: { id: error.code, message: error.message, request_id: request.requestId } };
}

/** 429 `too_many_requests` with `ratelimit-*` and `retry-after` headers. */
export function digitalOceanThrottle(throttle: Required<ThrottleSpec>, request: SimRequest, limit: number): SimResponse {
  return {
    status: 429,
    headers: {
      'ratelimit-limit': String(limit),
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(Math.floor(Date.now() / 1000) + throttle.resetSeconds),
      'retry-after': String(throttle.retryAfterSeconds),
    },
    body: { id: 'too_many_requests', message: 'API Rate limit exceeded.', request_id: request.requestId },
  };
}
