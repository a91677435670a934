import {
  AuthError,
  CancelledError,
  CapacityError,
  type ErrorMapper,
  MachineError,
  NotFoundError,
  ProviderError,
  QuotaError,
} from '@machine/driver-core';
import { credentialSources } from './azure-clients.ts';

/** What the driver reads off an Azure SDK error (a `RestError`, a failed poller, an identity error). */
export interface AzureErrorFacts {
  statusCode?: number;
  code?: string;
  message: string;
  requestId?: string;
}

const authCodes = new Set([
  'AuthenticationFailed',
  'AuthorizationFailed',
  'InvalidAuthenticationToken',
  'InvalidAuthenticationTokenTenant',
  'ExpiredAuthenticationToken',
  'LinkedAuthorizationFailed',
  'SubscriptionNotFound',
  'InvalidSubscriptionId',
]);
const quotaCodes = new Set(['QuotaExceeded', 'OperationNotAllowed', 'PublicIPCountLimitReached', 'ResourceQuotaExceeded', 'ServiceLimitReached']);
/** No capacity for the size here and now: not a quota, raising a limit does not help. */
const capacityCodes = new Set(['SkuNotAvailable', 'AllocationFailed', 'ZonalAllocationFailed', 'OverconstrainedAllocationRequest', 'OverconstrainedZonalAllocationRequest']);
const notFoundCodes = new Set(['ResourceNotFound', 'NotFound', 'ResourceGroupNotFound', 'ParentResourceNotFound']);
const identityErrorNames = new Set([
  'CredentialUnavailableError',
  'AuthenticationRequiredError',
  'AggregateAuthenticationError',
  'AuthenticationError',
]);

/** Pulls status, code, message and request id out of whatever the SDK threw. */
export function azureErrorFacts(error: unknown): AzureErrorFacts {
  if (!(error instanceof Error)) return { message: String(error) };
  const candidate = error as Error & {
    statusCode?: unknown;
    code?: unknown;
    response?: { headers?: { get?(name: string): string | undefined } };
  };
  const facts: AzureErrorFacts = { message: error.message };
  if (typeof candidate.statusCode === 'number') facts.statusCode = candidate.statusCode;
  if (typeof candidate.code === 'string') facts.code = candidate.code;
  const headers = candidate.response?.headers;
  const requestId =
    typeof headers?.get === 'function' ? (headers.get('x-ms-request-id') ?? headers.get('x-ms-correlation-request-id')) : undefined;
  if (requestId !== undefined && requestId !== '') facts.requestId = requestId;
  // A failed long-running operation: "The long-running operation has failed. <code>. <message>".
  const lro = /^The long-running operation has failed\. ([\w.]+)\. ([\s\S]*)$/.exec(error.message);
  if (lro !== null && facts.code === undefined) {
    facts.code = lro[1];
    facts.message = lro[2] ?? error.message;
  }
  return facts;
}

/** Maps SDK errors onto the core's typed errors; secrets never appear in the result. */
export function createAzureErrorMapper(secrets: () => readonly string[]): ErrorMapper {
  // guardDriver keeps the cleanup failure createWithCleanup attached to the original error.
  return (error, where) => mapAzureError(error, where, secrets);
}

function mapAzureError(error: unknown, where: { machine: string; operation: string }, secrets: () => readonly string[]): MachineError {
  {
    if (MachineError.isInstance(error)) return error;
    const base = { ...where, cause: error, secrets: secrets() };
    if (error instanceof Error && (error.name === 'AbortError' || (error as { code?: unknown }).code === 'ABORT_ERR')) {
      return new CancelledError('the operation was cancelled', base);
    }
    if (error instanceof Error && identityErrorNames.has(error.name)) {
      return new AuthError(`no usable Azure credential: ${firstLine(error.message)}`, {
        ...base,
        hint: `looked in ${credentialSources}; or pass --azure-client-id, --azure-client-secret and --azure-tenant-id`,
      });
    }
    const facts = azureErrorFacts(error);
    const withCode = facts.code === undefined ? facts.message : `${facts.code}: ${facts.message}`;
    const withRequest = { ...base, ...(facts.requestId === undefined ? {} : { requestId: facts.requestId }) };
    const requestSuffix = facts.requestId === undefined ? '' : ` [request id ${facts.requestId}]`;
    if (facts.statusCode === 401 || (facts.code !== undefined && authCodes.has(facts.code)) || facts.statusCode === 403) {
      return new AuthError(`Azure refused the request: ${withCode}${requestSuffix}`, {
        ...base,
        hint: 'check the subscription ID and that the identity has Contributor on the resource group',
      });
    }
    if (facts.code !== undefined && capacityCodes.has(facts.code)) {
      return new CapacityError(`${withCode}${requestSuffix}`, {
        ...base,
        providerCode: facts.code,
        hint: 'Azure has no capacity for this size here right now (not a quota): try another size (--azure-size) or location (--azure-location), or later',
      });
    }
    // CRP's throttling shares the top-level code OperationNotAllowed with quota errors: its detail says TooManyRequests.
    if (facts.statusCode === 429 || hasDetail(error, 'TooManyRequests')) {
      return new ProviderError(`Azure is throttling requests: ${withCode}`, { ...withRequest, ...(facts.code === undefined ? {} : { providerCode: facts.code }), statusCode: 429, retryable: true });
    }
    if (facts.code !== undefined && (quotaCodes.has(facts.code) || /quota/i.test(facts.code)) && (facts.code !== 'OperationNotAllowed' || /quota|limit/i.test(facts.message))) {
      return new QuotaError(`${withCode}${requestSuffix}`, base);
    }
    if (facts.statusCode === 404 || (facts.code !== undefined && notFoundCodes.has(facts.code))) {
      return new NotFoundError(`${withCode}${requestSuffix}`, base);
    }
    return new ProviderError(withCode, {
      ...withRequest,
      ...(facts.code === undefined ? {} : { providerCode: facts.code }),
      ...(facts.statusCode === undefined ? {} : { statusCode: facts.statusCode }),
      retryable: facts.statusCode === 429 || (facts.statusCode !== undefined && facts.statusCode >= 500),
    });
  }
}

/** True when an ARM error body has a detail with this code. */
function hasDetail(error: unknown, code: string): boolean {
  const details = (error as { details?: { error?: { details?: { code?: string }[] } } } | null)?.details?.error?.details;
  return Array.isArray(details) && details.some((detail) => detail.code === code);
}

/** True when the SDK error says the resource is not there. */
export function isAzureNotFound(error: unknown): boolean {
  if (error instanceof NotFoundError) return true;
  const facts = azureErrorFacts(error);
  return facts.statusCode === 404 || (facts.code !== undefined && notFoundCodes.has(facts.code));
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}
