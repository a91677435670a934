import {
  AuthError,
  CapacityError,
  type ErrorMapper,
  type MachineError,
  type MachineErrorOptions,
  NotFoundError,
  ProviderError,
  QuotaError,
} from '@machine/driver-core';
import type { ComputeOperation } from './google-clients.ts';

/** gRPC status codes the client library uses when it reports errors as GoogleError. */
const grpcToHttp: Readonly<Record<number, number>> = {
  1: 499, // CANCELLED
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 412, // FAILED_PRECONDITION
  10: 409, // ABORTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  16: 401, // UNAUTHENTICATED
};

/** What the driver needs to know about an error from the client library, whatever its shape. */
export interface GoogleErrorInfo {
  /** HTTP status (from a GaxiosError, from GoogleError.httpStatusCode, or mapped from the gRPC code). */
  status: number | undefined;
  /** gRPC status code, when the library gave one. */
  grpcCode: number | undefined;
  /** The API's reason (`quotaExceeded`, `rateLimitExceeded`, `notFound`), when present. */
  reason: string | undefined;
  message: string;
  /** True when no credential could be found or used (ADC lookup failed, token refresh failed). */
  credentialsMissing: boolean;
}

/**
 * Reads an error of the client library. Depending on the auth object it is a GaxiosError with an
 * HTTP `status` (or `response.status`), or a GoogleError with a numeric gRPC `code` (and, in newer
 * google-gax, `httpStatusCode`). Both are handled.
 */
export function googleErrorInfo(error: unknown): GoogleErrorInfo {
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const response = (typeof record.response === 'object' && record.response !== null ? record.response : {}) as Record<string, unknown>;
  const message = error instanceof Error ? error.message : typeof record.message === 'string' ? record.message : String(error);
  const grpcCode = typeof record.code === 'number' && record.code >= 0 && record.code <= 16 ? record.code : undefined;
  const status =
    numberOf(record.httpStatusCode) ??
    numberOf(record.status) ??
    numberOf(response.status) ??
    (grpcCode === undefined ? undefined : grpcToHttp[grpcCode]) ??
    (typeof record.code === 'string' && /^\d{3}$/.test(record.code) ? Number(record.code) : undefined);
  const reason = typeof record.reason === 'string' ? record.reason : (reasonFromBody(response.data) ?? reasonFromText(message) ?? reasonFromCauses(record.cause));
  const credentialsMissing =
    /could not load the default credentials|unable to detect a project id|invalid_grant|invalid_rapt|reauth/i.test(message) ||
    (record.name === 'GaxiosError' && typeof response.config === 'object' && /oauth2\.googleapis\.com\/token/.test(String((response.config as Record<string, unknown>).url)));
  return { status, grpcCode, reason, message, credentialsMissing };
}

/**
 * True for throttling (429, rateLimitExceeded), `resourceNotReady`, transient server failures
 * (500, 502, 503, 504) and a connection that failed without an answer (every write carries a
 * `requestId`, so repeating it cannot do it twice).
 */
export function isRetryableGoogleError(error: unknown): boolean {
  const info = googleErrorInfo(error);
  if (info.credentialsMissing) return false;
  if (isWaitOutError(error)) return true;
  if (info.status === undefined) return isConnectionFailure(error);
  return [500, 502, 503, 504].includes(info.status);
}

/**
 * Refusals that clear with time rather than with tries: throttling (rate quotas refill each
 * minute) and `resourceNotReady` (another operation on the resource is still running).
 */
export function isWaitOutError(error: unknown): boolean {
  const info = googleErrorInfo(error);
  if (info.credentialsMissing) return false;
  if (info.reason === 'rateLimitExceeded' || info.reason === 'userRateLimitExceeded' || info.status === 429) return true;
  // A per-minute (or per-100-seconds) rate quota, when no reason came through.
  if (info.status === 403 && isRateQuotaText(info.message)) return true;
  // Compute Engine's `resourceNotReady`: the resource is still being changed by another operation.
  return info.reason === 'resourceNotReady' || /\bis not ready\b/i.test(info.message);
}

const connectionCodes = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** A request that got no HTTP answer: the connection was reset or closed (the call may or may not have been carried out). */
export function isConnectionFailure(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const record = current as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
    if (typeof record.code === 'string' && connectionCodes.has(record.code)) return true;
    if (typeof record.message === 'string' && /socket hang up|other side closed|fetch failed|network error|ECONNRESET/i.test(record.message)) return true;
    current = record.cause;
  }
  return false;
}

/** True when the error says the resource does not exist. */
export function isNotFound(error: unknown): boolean {
  return googleErrorInfo(error).status === 404;
}

/** True when the error says the resource already exists. */
export function isAlreadyExists(error: unknown): boolean {
  const info = googleErrorInfo(error);
  return info.status === 409 || info.grpcCode === 6 || /already exists/i.test(info.message);
}

/** True when the error is a failed precondition on a fingerprint (someone else changed the resource). */
export function isFingerprintConflict(error: unknown): boolean {
  const info = googleErrorInfo(error);
  return info.status === 412 || /fingerprint/i.test(info.message);
}

/** Where Application Default Credentials are looked for, for the missing-credential message. */
export const credentialSources =
  'GOOGLE_APPLICATION_CREDENTIALS (a service-account or external-account JSON file), ' +
  'the gcloud ADC file (~/.config/gcloud/application_default_credentials.json; run `gcloud auth application-default login`), ' +
  'and the metadata server (on Google Cloud)';

/** Maps a client-library error to a typed error; credentials never appear in the message. */
export const mapGoogleError: ErrorMapper = (error, where) => {
  const info = googleErrorInfo(error);
  const base: MachineErrorOptions = { ...where, cause: error };
  return typedError(info, base, undefined);
};

function typedError(info: GoogleErrorInfo, options: MachineErrorOptions, requestId: string | undefined): MachineError {
  if (info.credentialsMissing) {
    return new AuthError(`no usable Google credentials: ${firstLine(info.message)}`, {
      ...options,
      hint: `looked in ${credentialSources}`,
    });
  }
  if (info.status === 401) {
    return new AuthError(`Compute Engine refused the credentials: ${firstLine(info.message)}`, {
      ...options,
      hint: `check the account found through ${credentialSources}`,
    });
  }
  if (isCapacity(info.reason, info.message)) return new CapacityError(firstLine(info.message), { ...options, hint: capacityHint, ...(info.reason === undefined ? {} : { providerCode: info.reason }) });
  if (isQuota(info)) return new QuotaError(firstLine(info.message), options);
  if (info.status === 403) {
    return new AuthError(`permission denied: ${firstLine(info.message)}`, {
      ...options,
      hint: 'the account needs the Compute Instance Admin (v1) and Compute Security Admin roles on the project, and the Compute Engine API enabled',
    });
  }
  if (info.status === 404) return new NotFoundError(firstLine(info.message), options);
  return new ProviderError(firstLine(info.message), {
    ...options,
    ...(info.status === undefined ? {} : { statusCode: info.status }),
    ...(info.reason === undefined ? {} : { providerCode: info.reason }),
    ...(requestId === undefined ? {} : { requestId }),
    retryable: isRetryableInfo(info),
  });
}

function isRetryableInfo(info: GoogleErrorInfo): boolean {
  if (info.reason === 'rateLimitExceeded' || info.reason === 'userRateLimitExceeded') return true;
  return info.status !== undefined && (info.status === 429 || info.status >= 500);
}

/** "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' …": a rate, not a resource quota. */
function isRateQuotaText(message: string): boolean {
  return /quota exceeded for quota (metric|group)\b.*\bper (minute|100 seconds)\b/i.test(message);
}

function isQuota(info: GoogleErrorInfo): boolean {
  if (info.reason === 'rateLimitExceeded' || info.reason === 'userRateLimitExceeded' || isRateQuotaText(info.message)) return false;
  if (info.reason === 'quotaExceeded' || info.reason === 'QUOTA_EXCEEDED') return true;
  // 429 RESOURCE_EXHAUSTED is API rate limiting ("Quota exceeded for quota metric 'Queries'"): retried, not a quota.
  return info.status === 403 && /\bquota\b/i.test(info.message) && !/rate ?limit/i.test(info.message);
}

/** Operation error codes that mean a quota of the project. */
const quotaCodes = new Set(['QUOTA_EXCEEDED']);

/** A stockout: the zone has no resources for the request. Not a quota: another zone/size, or later, may work. */
const capacityCodes = new Set(['ZONE_RESOURCE_POOL_EXHAUSTED', 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', 'RESOURCE_POOL_EXHAUSTED']);

function isCapacity(code: string | null | undefined, message: string): boolean {
  return (code !== undefined && code !== null && capacityCodes.has(code)) || /does not have enough resources available to fulfill the request/i.test(message);
}

const capacityHint = 'the zone has no resources for this machine type right now: try another zone (--google-zone) or machine type (--google-machine-type), or later';

/**
 * The typed error for a finished operation that failed (a failed operation does not throw in the
 * client library: its `error` field says what went wrong).
 */
export function operationError(operation: ComputeOperation, options: MachineErrorOptions): MachineError {
  const errors = operation.error?.errors ?? [];
  const first = errors[0];
  const code = first?.code ?? undefined;
  const text = errors.map((item) => `${item.code ?? 'ERROR'}: ${item.message ?? ''}`.trim()).join('; ') || operation.httpErrorMessage || 'the operation failed';
  const what = `${operation.operationType ?? 'operation'} ${operation.name ?? ''}`.trim();
  const detail = `${what} failed: ${text}`;
  const status = operation.httpErrorStatusCode ?? undefined;
  if (isCapacity(code, text)) return new CapacityError(detail, { ...options, hint: capacityHint, ...(code ? { providerCode: code } : {}) });
  if (code !== undefined && code !== null && quotaCodes.has(code)) return new QuotaError(detail, options);
  if (code === 'RESOURCE_NOT_FOUND' || status === 404) return new NotFoundError(detail, options);
  if (status === 401 || status === 403 || code === 'PERMISSION_DENIED') {
    return new AuthError(detail, { ...options, hint: 'the account needs the Compute Instance Admin (v1) and Compute Security Admin roles' });
  }
  return new ProviderError(detail, {
    ...options,
    ...(status === undefined ? {} : { statusCode: status }),
    ...(code === undefined || code === null ? {} : { providerCode: code }),
    ...(operation.name ? { requestId: operation.name } : {}),
    retryable: status !== undefined && status >= 500,
  });
}

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 100 && value < 600 ? value : undefined;
}

function reasonFromBody(data: unknown): string | undefined {
  let body = data;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const errorObject = (body as { error?: { errors?: { reason?: unknown }[] } }).error;
  const reason = errorObject?.errors?.[0]?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/**
 * The reason from the errors a GoogleError was made from: google-gax keeps the HTTP body (with
 * `errors[].reason`) only in its `cause` chain, e.g. for a 403 `rateLimitExceeded`.
 */
function reasonFromCauses(cause: unknown): string | undefined {
  for (let current = cause, depth = 0; typeof current === 'object' && current !== null && depth < 4; depth++) {
    const record = current as { reason?: unknown; message?: unknown; response?: { data?: unknown }; cause?: unknown };
    const found =
      (typeof record.reason === 'string' ? record.reason : undefined) ??
      reasonFromBody(record.response?.data) ??
      (typeof record.message === 'string' ? (reasonFromBody(record.message) ?? reasonFromText(record.message)) : undefined);
    if (found !== undefined) return found;
    current = record.cause;
  }
  return undefined;
}

function reasonFromText(message: string): string | undefined {
  const match = /"reason"\s*:\s*"([A-Za-z_]+)"/.exec(message);
  return match?.[1];
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message;
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}
