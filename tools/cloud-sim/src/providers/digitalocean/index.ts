import type { ProviderDefinition, ProviderFrontEnd, SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import { DIGITALOCEAN, DigitalOceanBackend, type DigitalOceanOptions } from './digitalocean-backend.ts';
import { digitalOceanFaultError, digitalOceanThrottle, renderDigitalOceanError, unauthorized } from './digitalocean-errors.ts';
import { matchDigitalOceanRoute } from './digitalocean-routes.ts';

export type { DigitalOceanAction, DigitalOceanOptions, DropletAttributes } from './digitalocean-backend.ts';
export { DIGITALOCEAN_ROUTES } from './digitalocean-routes.ts';

/** Token the CLI prints for `DIGITALOCEAN_ACCESS_TOKEN` (any token not starting with `invalid` works). */
export const SIM_DIGITALOCEAN_TOKEN = 'cloud-sim-token';

/**
 * The DigitalOcean v2 front end: account, SSH keys, droplets (+ power actions), actions,
 * firewalls, regions, sizes and images, with DigitalOcean's JSON shapes, `links`/`meta`
 * pagination, error bodies and `ratelimit-*` headers.
 */
export const digitalOceanProvider: ProviderDefinition<DigitalOceanOptions> = {
  name: DIGITALOCEAN,
  create(context, options): ProviderFrontEnd {
    const backend = new DigitalOceanBackend(context, options);
    const windowSeconds = 3600;
    let windowStart = Math.floor(Date.now() / 1000);
    let used = 0;
    return {
      name: DIGITALOCEAN,
      route: (request) => matchDigitalOceanRoute(backend, request),
      authenticate(request: SimRequest) {
        const header = request.headers.authorization ?? '';
        const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
        if (token === undefined || token.startsWith(backend.invalidTokenPrefix)) return unauthorized();
        return undefined;
      },
      faultError: (kind) => digitalOceanFaultError(kind),
      throttleResponse: (throttle, request) => digitalOceanThrottle(throttle, request, backend.rateLimit),
      renderError: renderDigitalOceanError,
      decorate(response: SimResponse, request: SimRequest) {
        const now = Math.floor(Date.now() / 1000);
        if (now >= windowStart + windowSeconds) {
          windowStart = now;
          used = 0;
        }
        used++;
        response.headers = {
          'ratelimit-limit': String(backend.rateLimit),
          'ratelimit-remaining': String(Math.max(backend.rateLimit - used, 0)),
          'ratelimit-reset': String(windowStart + windowSeconds),
          'x-request-id': request.requestId,
          ...response.headers,
        };
      },
      env: (endpoint) => ({ DIGITALOCEAN_API_URL: endpoint, DIGITALOCEAN_ACCESS_TOKEN: SIM_DIGITALOCEAN_TOKEN }),
    };
  },
};
