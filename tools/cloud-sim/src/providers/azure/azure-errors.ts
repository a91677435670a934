import { ApiError } from '../../core/provider-front-end.ts';

/** One entry of an ARM error's `details`. */
export interface ArmErrorDetail {
  code: string;
  message: string;
  target?: string;
}

/** An ARM error with the parts plain {@link ApiError}s lack: `details`, `target` and extra headers (`Retry-After`…). */
export class AzureApiError extends ApiError {
  readonly details: readonly ArmErrorDetail[] | undefined;
  readonly target: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, extra: { details?: readonly ArmErrorDetail[]; target?: string; headers?: Record<string, string> } = {}) {
    super(status, code, message);
    this.details = extra.details;
    this.target = extra.target;
    this.headers = extra.headers ?? {};
  }
}

/** A duration in seconds as `Retry-After` carries it (scaled simulator seconds may be fractional: 0.15). */
export function retryAfterValue(ms: number): string {
  return String(Math.max(0, Math.round(ms) / 1000));
}

/** 409 `MissingSubscriptionRegistration` with the namespace as `details[].target`. */
export function missingRegistration(namespace: string): AzureApiError {
  const message = `The subscription is not registered to use namespace '${namespace}'. See https://aka.ms/rps-not-found for how to register subscriptions.`;
  return new AzureApiError(409, 'MissingSubscriptionRegistration', message, { details: [{ code: 'MissingSubscriptionRegistration', target: namespace, message }] });
}

/** 403 `AuthorizationFailed`, as ARM words it while a role assignment has not reached the request's region. */
export function authorizationFailed(principal: string, action: string, scope: string): AzureApiError {
  return new AzureApiError(
    403,
    'AuthorizationFailed',
    `The client '${principal}' with object id '${principal}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
  );
}

/** CRP's throttling answer: 429, top-level `OperationNotAllowed` (as quota errors), the bucket in `details`. */
export function computeThrottled(bucket: string, allowed: number, retryAfterMs: number, remaining: string): AzureApiError {
  const now = new Date();
  return new AzureApiError(429, 'OperationNotAllowed', 'The server rejected the request because too many requests have been received for this subscription.', {
    details: [
      {
        code: 'TooManyRequests',
        target: bucket,
        message: JSON.stringify({
          operationGroup: bucket,
          startTime: new Date(now.getTime() - 180_000).toISOString(),
          endTime: now.toISOString(),
          allowedRequestCount: allowed,
          measuredRequestCount: allowed + 1,
        }),
      },
    ],
    headers: { 'retry-after': retryAfterValue(retryAfterMs), 'x-ms-ratelimit-remaining-resource': remaining },
  });
}

/** ARM's own (subscription-level) throttling answer. */
export function armThrottled(write: boolean, retryAfterMs: number): AzureApiError {
  return new AzureApiError(429, 'TooManyRequests', `The request is being throttled as the limit has been reached for operation type - ${write ? 'Write' : 'Read'}.`, {
    headers: { 'retry-after': retryAfterValue(retryAfterMs), [`x-ms-ratelimit-remaining-subscription-${write ? 'writes' : 'reads'}`]: '0' },
  });
}

/** NRP's 409 for a write while another operation holds the resource or one it depends on. */
export function anotherOperationInProgress(operationUrl: string): AzureApiError {
  return new AzureApiError(
    409,
    'AnotherOperationInProgress',
    `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: ${operationUrl}.`,
  );
}

/** NRP's 429 for a write referencing a resource that is still `Updating`. */
export function referencedNotProvisioned(referenced: string): AzureApiError {
  return new AzureApiError(429, 'RetryableError', 'A retryable error occurred.', {
    details: [
      {
        code: 'ReferencedResourceNotProvisioned',
        message: `Cannot proceed with operation because resource ${referenced} used by resource is not in Succeeded state. Resource is in Updating state and the last operation that updated/is updating the resource is PutSubnetOperation.`,
      },
    ],
  });
}

/** 400 `NicReservedForAnotherVm` (a NIC whose VM failed to be made, for 180 s). */
export function nicReserved(): AzureApiError {
  return new AzureApiError(
    400,
    'NicReservedForAnotherVm',
    'Nic(s) in request is reserved for another Virtual Machine for 180 seconds. Please provide another nic(s) or retry after 180 seconds. Reserved VM: see the NIC.',
  );
}
