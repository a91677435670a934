import type { ProviderDefinition, ProviderFrontEnd, SimRequest, SimResponse } from '../../core/provider-front-end.ts';
import { DIGITALOCEAN, DigitalOceanBackend, type DigitalOceanOptions } from './digitalocean-backend.ts';
import { digitalOceanFaultError, digitalOceanThrottle, renderDigitalOceanError, unauthorized } from './digitalocean-errors.ts';
import { matchDigitalOceanRoute } from './digitalocean-routes.ts';

export type { DigitalOceanAction, DigitalOceanOptions, DropletAttributes } from './digitalocean-backend.ts';
export { DIGITALOCEAN_BURST_LIMIT, DIGITALOCEAN_REALISTIC_DEFAULTS, type DigitalOceanRealism } from './digitalocean-realism.ts';
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
    const counted = new WeakMap<SimRequest, { remaining: number; reset: number }>();
    return {
      name: DIGITALOCEAN,
      route(request) {
        const route = matchDigitalOceanRoute(backend, request);
        const { throttledForSeconds, remaining, reset } = backend.countRequest();
        counted.set(request, { remaining, reset });
        if (route === undefined || throttledForSeconds === undefined) return route;
        // Over the burst (or, by knob, the hourly) limit: DigitalOcean's 429 with Retry-After.
        return {
          operation: route.operation,
          handle: () => digitalOceanThrottle({ times: 1, retryAfterSeconds: throttledForSeconds, resetSeconds: throttledForSeconds }, request, backend.rateLimit),
        };
      },
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
        const { remaining, reset } = counted.get(request) ?? backend.countRequest();
        response.headers = {
          'ratelimit-limit': String(backend.rateLimit),
          'ratelimit-remaining': String(remaining),
          'ratelimit-reset': String(reset),
          'x-request-id': request.requestId,
          ...response.headers,
        };
      },
      env: (endpoint) => ({ DIGITALOCEAN_API_URL: endpoint, DIGITALOCEAN_ACCESS_TOKEN: SIM_DIGITALOCEAN_TOKEN }),
    };
  },
};
