import type { FaultErrorKind, ThrottleSpec } from '../../core/faults.ts';
import { ApiError, type SimRequest, type SimResponse } from '../../core/provider-front-end.ts';

/** Compute Engine's canonical status names by HTTP status (sent only where the API sends them). */
const statusNames: Readonly<Record<number, string>> = {
  401: 'UNAUTHENTICATED',
  429: 'RESOURCE_EXHAUSTED',
};

/** `reason` values Compute Engine puts in `error.errors[].reason`. */
const reasons: Readonly<Record<string, { domain: string; reason: string }>> = {
  notFound: { domain: 'global', reason: 'notFound' },
  alreadyExists: { domain: 'global', reason: 'alreadyExists' },
  invalid: { domain: 'global', reason: 'invalid' },
  conditionNotMet: { domain: 'global', reason: 'conditionNotMet' },
  required: { domain: 'global', reason: 'required' },
  forbidden: { domain: 'global', reason: 'forbidden' },
  quotaExceeded: { domain: 'usageLimits', reason: 'quotaExceeded' },
  rateLimitExceeded: { domain: 'usageLimits', reason: 'rateLimitExceeded' },
  backendError: { domain: 'global', reason: 'backendError' },
};

/** 404 for a resource path such as `projects/p/zones/z/instances/i`. */
export function notFound(path: string): ApiError {
  return new ApiError(404, 'notFound', `The resource '${path}' was not found`);
}

/** 409 for a name already taken. */
export function alreadyExists(path: string): ApiError {
  return new ApiError(409, 'alreadyExists', `The resource '${path}' already exists`);
}

/** 400 `invalid` for a bad field. */
export function invalidField(field: string, value: unknown, why: string): ApiError {
  return new ApiError(400, 'invalid', `Invalid value for field '${field}': '${String(value)}'. ${why}`);
}

/** 412 for a stale metadata/tags fingerprint. */
export function fingerprintMismatch(what: 'metadata' | 'tags'): ApiError {
  return new ApiError(412, 'conditionNotMet', `Supplied fingerprint does not match current ${what} fingerprint.`);
}

/** 401, as Compute Engine answers a missing or bad bearer token. */
export function unauthenticated(): ApiError {
  return new ApiError(
    401,
    'required',
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  );
}

/** Compute Engine's error for an injected fault kind. */
export function googleFaultError(kind: FaultErrorKind): ApiError {
  switch (kind) {
    case 'auth':
      return unauthenticated();
    case 'quota':
      return new ApiError(403, 'quotaExceeded', "Quota 'CPUS' exceeded.  Limit: 8.0 in region us-central1.");
    case 'not_found':
      return new ApiError(404, 'notFound', 'The requested resource was not found');
    case 'server':
      return new ApiError(500, 'backendError', 'Internal error. Please try again or contact Google Support.');
    case 'unavailable':
      return new ApiError(503, 'backendError', 'The service is currently unavailable.');
  }
}

/** The JSON error body of the Compute v1 API: `{error: {code, message, errors: [{message, domain, reason}]}}`. */
export function renderGoogleError(error: ApiError): SimResponse {
  const reason = reasons[error.code] ?? { domain: 'global', reason: error.code };
  const status = statusNames[error.status];
  return {
    status: error.status,
    body: {
      error: {
        code: error.status,
        message: error.message,
        errors: [{ message: error.message, ...reason }],
        ...(status === undefined ? {} : { status }),
      },
    },
  };
}

/** Compute Engine's rate-limit answer: 429 RESOURCE_EXHAUSTED with `retry-after`. */
export function googleThrottle(throttle: Required<ThrottleSpec>, _request: SimRequest): SimResponse {
  const response = renderGoogleError(new ApiError(429, 'rateLimitExceeded', 'Rate Limit Exceeded'));
  return { ...response, headers: { 'retry-after': String(throttle.retryAfterSeconds) } };
}
