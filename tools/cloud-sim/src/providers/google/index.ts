import type { ProviderDefinition, ProviderFrontEnd, SimRequest } from '../../core/provider-front-end.ts';
import { GOOGLE, GoogleBackend, type GoogleOptions } from './google-backend.ts';
import { googleFaultError, googleThrottle, renderGoogleError, unauthenticated } from './google-errors.ts';
import { matchGoogleRoute } from './google-routes.ts';

export { GOOGLE, GoogleBackend, type GoogleInstanceAttributes, type GoogleOperation, type GoogleOptions, MACHINE_TYPES } from './google-backend.ts';
export type { GoogleRealism, RateQuotaGroup } from './google-realism.ts';
export { preemptInstance } from './google-instances.ts';
export { GOOGLE_ROUTES } from './google-routes.ts';

/** Project the CLI prints for `GOOGLE_PROJECT` (any valid project ID works). */
export const SIM_GOOGLE_PROJECT = 'cloud-sim-project';

/**
 * The Compute Engine v1 front end (REST JSON, as `@google-cloud/compute` sends it over its REST
 * transport): instances (insert/get/list/aggregated list/delete/start/stop/reset/setMetadata/
 * setTags), zone and global operations (`wait` blocks until DONE — realistic: not the first
 * time — and failed operations carry `error`), firewall rules and reserved addresses, with
 * Compute Engine's error bodies and real-cloud behaviours (see `google-realism.ts`).
 */
export const googleProvider: ProviderDefinition<GoogleOptions> = {
  name: GOOGLE,
  create(context, options): ProviderFrontEnd {
    const backend = new GoogleBackend(context, options);
    return {
      name: GOOGLE,
      route: (request) => matchGoogleRoute(backend, request),
      authenticate(request: SimRequest) {
        const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
        if (token === undefined || token.startsWith(backend.invalidTokenPrefix)) return unauthenticated();
        return undefined;
      },
      faultError: (kind) => googleFaultError(kind),
      throttleResponse: googleThrottle,
      renderError: (error) => renderGoogleError(error),
      env: (endpoint) => ({ GOOGLE_COMPUTE_ENDPOINT: endpoint, GOOGLE_PROJECT: SIM_GOOGLE_PROJECT }),
    };
  },
};
