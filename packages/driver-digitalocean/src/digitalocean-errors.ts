import { AuthError, type ErrorMapper, MachineError, NotFoundError, ProviderError, QuotaError } from '@machine/driver-core';

/**
 * What dots throws for an HTTP error: a plain object (not an Error) built from DigitalOcean's
 * error body `{id, message, request_id}`, plus the status and the response headers.
 */
export interface DigitalOceanApiError {
  responseStatusCode: number;
  id?: string | null;
  messageEscaped?: string | null;
  requestId?: string | null;
  responseHeaders?: Record<string, string[]>;
}

/** True for the error objects dots throws on HTTP errors. */
export function isDigitalOceanApiError(error: unknown): error is DigitalOceanApiError {
  return typeof error === 'object' && error !== null && typeof (error as { responseStatusCode?: unknown }).responseStatusCode === 'number';
}

/** The HTTP status of a dots error, or undefined for anything else. */
export function statusOf(error: unknown): number | undefined {
  return isDigitalOceanApiError(error) ? error.responseStatusCode : undefined;
}

/** A header of a dots error (dots splits header values on commas). */
function header(error: DigitalOceanApiError, name: string): string | undefined {
  const values = error.responseHeaders?.[name];
  return values === undefined ? undefined : values.join(',').trim();
}

/**
 * Builds the typed error for a failed DigitalOcean call. `secrets` (the token) never appear.
 * 401/403 → AuthError, 404 → NotFoundError, 422 about a limit → QuotaError, anything else →
 * ProviderError with the status, DigitalOcean's error id and request id (429 and 5xx retryable).
 */
export function mapDigitalOceanError(
  error: unknown,
  where: { machine?: string; operation?: string; resource?: string },
  secrets: readonly string[] = [],
): MachineError {
  if (MachineError.isInstance(error)) return error;
  const context = {
    ...(where.machine === undefined ? {} : { machine: where.machine }),
    ...(where.operation === undefined ? {} : { operation: where.operation }),
    secrets,
    cause: error,
  };
  if (isDigitalOceanApiError(error)) {
    const status = error.responseStatusCode;
    const requestId = error.requestId ?? header(error, 'x-request-id');
    const message = error.messageEscaped ?? `HTTP ${status}`;
    const what = where.resource === undefined ? '' : `${where.resource}: `;
    const ids = requestId === undefined || requestId === null || requestId === '' ? {} : { requestId };
    if (status === 401) {
      return new AuthError(`DigitalOcean refused the access token (401 ${message})${requestId ? ` [request id ${requestId}]` : ''}`, {
        ...context,
        hint: 'check --digitalocean-access-token / DIGITALOCEAN_ACCESS_TOKEN; tokens can expire or be revoked',
      });
    }
    if (status === 403) {
      return new AuthError(`${what}the access token may not do this (403 ${message})${requestId ? ` [request id ${requestId}]` : ''}`, {
        ...context,
        hint: 'use a token with read and write scope',
      });
    }
    if (status === 404) {
      return new NotFoundError(`${what}not found (404 ${message})`, {
        ...context,
        ...(where.resource === undefined ? {} : { resource: where.resource }),
      });
    }
    if (status === 422 && /limit|quota|exceed/i.test(message)) {
      return new QuotaError(`${what}${message}${requestId ? ` [request id ${requestId}]` : ''}`, {
        ...context,
        hint: 'delete droplets or ask DigitalOcean to raise the droplet limit (Settings → Team → Droplet limit)',
      });
    }
    if (status === 429) {
      const reset = Number(header(error, 'ratelimit-reset'));
      const when = Number.isFinite(reset) && reset > 0 ? ` until ${new Date(reset * 1000).toISOString()}` : '';
      return new ProviderError(`${what}DigitalOcean's API rate limit is exhausted${when} (429 ${message})`, {
        ...context,
        ...ids,
        statusCode: 429,
        providerCode: error.id ?? 'too_many_requests',
        retryable: true,
        hint: 'wait for the limit to reset; fewer parallel machine commands help',
      });
    }
    return new ProviderError(`${what}${message} (HTTP ${status})`, {
      ...context,
      ...ids,
      statusCode: status,
      ...(error.id ? { providerCode: error.id } : {}),
    });
  }
  if (error instanceof Error && error.name === 'TimeoutError') {
    return new ProviderError('the DigitalOcean API did not answer in time', {
      ...context,
      retryable: true,
      hint: 'check the network and --digitalocean-api-url',
    });
  }
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return new ProviderError(`could not reach the DigitalOcean API: ${cause?.code ?? cause?.message ?? error.message}`, {
      ...context,
      retryable: true,
      hint: 'check the network and --digitalocean-api-url',
    });
  }
  return new ProviderError(error instanceof Error ? error.message : String(error), context);
}

/** The `mapError` for guardDriver, with the token to redact. */
export function digitalOceanErrorMapper(secrets: () => readonly string[]): ErrorMapper {
  return (error, where) => mapDigitalOceanError(error, where, secrets());
}
