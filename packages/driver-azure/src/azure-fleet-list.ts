import type { TokenCredential } from '@azure/core-auth';
import type { Pipeline } from '@azure/core-rest-pipeline';
import { armTransport } from './azure-clients.ts';
import { azureRateBudgetPolicy } from './azure-rate-budget.ts';
import { throttleWatchPolicy } from './azure-throttle-watch.ts';

/** One ARM resource as a list answers it (REST JSON: the `properties` envelope is kept). */
export interface ArmResource {
  id?: string;
  properties?: Record<string, unknown>;
}

/** Lists every resource of a subscription-wide ARM collection (`api-version` in the query), following `nextLink`. */
export interface ArmLister {
  list(path: string, query: Readonly<Record<string, string>>, abortSignal: AbortSignal): Promise<ArmResource[]>;
}

/** API versions of the three collections `machine ls` reads (those of the generated clients the driver uses). */
export const listApiVersions = { compute: '2024-07-01', network: '2024-05-01' } as const;

/**
 * The fleet listing of `machine ls` (virtual machines with their statuses, public IPs, network
 * interfaces) as plain ARM GETs through `@azure/core-rest-pipeline`: the same pipeline the
 * generated clients build (bearer token, retries of 429 and 5xx with Retry-After, the throttle
 * watch, the rate budget), without importing `@azure/arm-compute`, `@azure/arm-network` and `@azure/arm-resources`.
 * Measured on the 2-core CI machine: the three generated clients import in 0.8–1.0 CPU-s, the
 * pipeline alone in 0.2–0.3 CPU-s; `ls` needs three GETs. Create, start, stop and rm keep the
 * generated clients (their pollers and models).
 */
export async function createArmLister(options: { endpoint: string; credential: TokenCredential }): Promise<ArmLister> {
  const pipeline = await import('@azure/core-rest-pipeline');
  const { endpoint, httpClient, scope } = armTransport(pipeline, options.endpoint);
  const requests: Pipeline = pipeline.createPipelineFromOptions({ userAgentOptions: { userAgentPrefix: 'machine-driver-azure' } });
  requests.addPolicy(pipeline.bearerTokenAuthenticationPolicy({ credential: options.credential, scopes: [scope] }));
  // Sees each throttled answer before the pipeline waits out its Retry-After (as the generated clients do).
  requests.addPolicy(throttleWatchPolicy, { afterPhase: 'Retry' });
  // Takes a rate-budget slot per attempt (after the retry phase), of the subscription each URL names.
  requests.addPolicy(azureRateBudgetPolicy(), { afterPhase: 'Retry' });
  return {
    async list(path, query, abortSignal) {
      const found: ArmResource[] = [];
      let url: string | undefined = `${endpoint}${path}?${new URLSearchParams(query).toString()}`;
      while (url !== undefined) {
        const request = pipeline.createPipelineRequest({ url, method: 'GET', abortSignal });
        const response = await requests.sendRequest(httpClient, request);
        const body = parseBody(response.bodyAsText);
        if (response.status >= 400) {
          const error = (body.error ?? {}) as { code?: string; message?: string };
          const failure = new pipeline.RestError(error.message ?? `HTTP ${response.status}`, {
            statusCode: response.status,
            request,
            response,
            ...(error.code === undefined ? {} : { code: error.code }),
          });
          // As the generated clients do: the body, for what reads `details` (e.g. the namespace to register).
          failure.details = body;
          throw failure;
        }
        found.push(...((body.value as ArmResource[] | undefined) ?? []));
        url = typeof body.nextLink === 'string' && body.nextLink !== '' ? body.nextLink : undefined;
      }
      return found;
    },
  };
}

function parseBody(text: string | undefined | null): Record<string, unknown> {
  if (text === undefined || text === null || text === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return { error: { message: text.slice(0, 200) } };
  }
}
