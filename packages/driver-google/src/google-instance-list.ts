import type { AuthClientLike, ComputeInstance } from './google-clients.ts';
import type { GoogleEndpoint } from './google-flags.ts';

/** An auth client that can send an authorised request (google-auth-library's `AuthClient.request`). */
export interface RequestingAuthClient extends AuthClientLike {
  request<T>(options: { url: string; params?: Record<string, string | number | boolean>; signal?: AbortSignal }): Promise<{ data: T }>;
}

/** One page of `instances.aggregatedList` as the REST API answers it. */
interface AggregatedPage {
  items?: Record<string, { instances?: ComputeInstance[] }>;
  nextPageToken?: string;
}

/** Instances of a project by `zone/name`, from `instances.aggregatedList`. */
export type InstancesByZone = Map<string, ComputeInstance>;

/**
 * Every instance of a project in every zone, with one `instances.aggregatedList` call per 500
 * instances, as plain REST JSON through the auth client.
 *
 * Why not `InstancesClient.aggregatedListAsync`: constructing any `@google-cloud/compute` client
 * parses the library's full `protos.json` (11.9 MB, every Compute message) into a protobuf root,
 * in its REST (`fallback`) mode too. Measured on the 2-core CI machine: importing the instances
 * client 0.45–0.5 s, constructing it 0.8–1.0 s, about 2 CPU-s and 200 MiB RSS for the five clients
 * the driver uses; google-auth-library alone imports in about 0.09 s and 66 MiB. A fleet listing
 * needs only this one GET, so it is made without the protos; create, start, stop and rm keep the
 * client library (its operation handling, requestIds and retries).
 */
export async function listInstancesOfProject(
  authClient: RequestingAuthClient,
  settings: { project: string; endpoint?: GoogleEndpoint | undefined; signal?: AbortSignal | undefined },
): Promise<InstancesByZone> {
  const endpoint = settings.endpoint;
  const origin = endpoint === undefined ? 'https://compute.googleapis.com' : `${endpoint.protocol}://${endpoint.apiEndpoint.includes(':') ? `[${endpoint.apiEndpoint}]` : endpoint.apiEndpoint}:${endpoint.port}`;
  const url = `${origin}/compute/v1/projects/${encodeURIComponent(settings.project)}/aggregated/instances`;
  const found: InstancesByZone = new Map();
  let pageToken: string | undefined;
  do {
    const params: Record<string, string | number | boolean> = { maxResults: 500, returnPartialSuccess: true, ...(pageToken === undefined ? {} : { pageToken }) };
    const { data } = await authClient.request<AggregatedPage>({ url, params, ...(settings.signal === undefined ? {} : { signal: settings.signal }) });
    for (const [scope, list] of Object.entries(data.items ?? {})) {
      const zone = scope.startsWith('zones/') ? scope.slice('zones/'.length) : scope;
      for (const instance of list.instances ?? []) found.set(`${zone}/${instance.name ?? ''}`, instance);
    }
    pageToken = data.nextPageToken === '' ? undefined : data.nextPageToken;
  } while (pageToken !== undefined);
  return found;
}
