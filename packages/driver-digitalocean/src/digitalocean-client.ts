/**
 * Builds the @digitalocean/dots client. This module imports the SDK, so the driver loads it only
 * through a dynamic `import()` on first use; importing the package stays cheap.
 */
import { CancelledError } from '@machine/driver-core';
import { CustomFetchHandler, FetchRequestAdapter, KiotaClientFactory, type Middleware, MiddlewareFactory, RetryHandler } from '@microsoft/kiota-http-fetchlibrary';
import type { DigitalOceanClient, DotsDroplet, DotsLinks } from './digitalocean-api-types.ts';
import { AttemptTimeoutHandler, digitalOceanRateBucket, RateBudgetHandler, requestSignal } from './digitalocean-rate-budget.ts';

export type { DigitalOceanClient } from './digitalocean-api-types.ts';

/** The two exports of @digitalocean/dots the driver uses (see digitalocean-api-types.ts for why they are typed here). */
interface DotsModule {
  createDigitalOceanClient(adapter: FetchRequestAdapter): unknown;
  DigitalOceanApiKeyAuthenticationProvider: new (token: string) => ConstructorParameters<typeof FetchRequestAdapter>[0];
}

// A specifier in a variable keeps tsc from compiling the SDK's TypeScript sources.
const dotsSpecifier: string = '@digitalocean/dots';
let dotsModule: Promise<DotsModule> | undefined;

/** Loads @digitalocean/dots once. */
export function loadDots(): Promise<DotsModule> {
  dotsModule ??= (import(dotsSpecifier) as Promise<DotsModule>).catch((error: unknown) => {
    dotsModule = undefined;
    throw error;
  });
  return dotsModule;
}

/** How throttled (429) and failed (5xx, network) calls are retried. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 5). */
  maxRetries: number;
  /** First back-off delay when the server gives no hint, ms (default 1000); doubles per retry, with full jitter. */
  baseDelayMs: number;
  /** Longest single wait, ms (default 60 000). Tests set it small. */
  maxDelayMs: number;
  /**
   * When the server asks to wait longer than this (ms), give up at once and report when the limit
   * resets instead of hanging (DigitalOcean's hourly limit can reset an hour later). Default 90 000.
   */
  giveUpAfterMs: number;
  /** A call with no answer after this many ms is aborted (and retried when idempotent). Default 60 000. */
  requestTimeoutMs: number;
}

/** The production retry policy. */
export const defaultRetryPolicy: RetryPolicy = { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 60_000, giveUpAfterMs: 90_000, requestTimeoutMs: 60_000 };

/** Options for {@link createDotsClient}. */
export interface DotsClientOptions {
  token: string;
  /** API base URL, e.g. https://api.digitalocean.com or the simulator's endpoint. */
  apiUrl: string;
  retry?: Partial<RetryPolicy>;
}

/**
 * Builds a dots client whose retry handler honours DigitalOcean's rate-limit headers. Right before
 * the fetch, every attempt (first tries, retries, redirects) takes a slot of the token's shared
 * rate budget when the host configured one (driver-core `configureRateBudget`), then gets its own
 * answer deadline.
 */
export async function createDotsClient(options: DotsClientOptions): Promise<DigitalOceanClient> {
  const { createDigitalOceanClient, DigitalOceanApiKeyAuthenticationProvider } = await loadDots();
  return createDigitalOceanClient(requestAdapter(options, DigitalOceanApiKeyAuthenticationProvider)) as DigitalOceanClient;
}

/** The adapter every client of the driver sends through: the retry handler, the rate budget and the per-attempt deadline. */
function requestAdapter(options: DotsClientOptions, Authentication: DotsModule['DigitalOceanApiKeyAuthenticationProvider']): FetchRequestAdapter {
  const policy = { ...defaultRetryPolicy, ...options.retry };
  const middlewares = MiddlewareFactory.getDefaultMiddlewares().map((middleware) => (middleware instanceof RetryHandler ? new DigitalOceanRetryHandler(policy) : middleware));
  const fetchAt = middlewares.findIndex((middleware) => middleware instanceof CustomFetchHandler);
  middlewares.splice(fetchAt < 0 ? middlewares.length : fetchAt, 0, new RateBudgetHandler(digitalOceanRateBucket(options.token), policy.giveUpAfterMs), new AttemptTimeoutHandler(policy.requestTimeoutMs));
  const adapter = new FetchRequestAdapter(new Authentication(options.token), undefined, undefined, KiotaClientFactory.create(undefined, middlewares));
  adapter.baseUrl = options.apiUrl.replace(/\/+$/, '');
  return adapter;
}

/** `GET /v2/droplets`, the one call a fleet listing makes (the shape of dots' request builder, the fields ls reads). */
export interface DropletLister {
  get(config: { queryParameters: { tagName: string; perPage: number; page: number } }): Promise<Partial<DropletPage> | undefined>;
}

/** A page of the droplet list with what a listing reads of it, in dots' model names. */
export interface DropletPage {
  droplets: DotsDroplet[];
  links?: DotsLinks | null;
  meta?: { total?: number | null } | null;
}

/** The modules a droplet lister loads: kiota's abstractions and DigitalOcean's authentication, not dots' request builders or models. */
interface DropletListModules {
  readonly authentication: Pick<DotsModule, 'DigitalOceanApiKeyAuthenticationProvider'>;
  readonly abstractions: typeof import('@microsoft/kiota-abstractions');
}
// A specifier in a variable keeps tsc from compiling the SDK's TypeScript source beside it.
const authenticationSpecifier: string = '@digitalocean/dots/src/dots/DigitalOceanApiKeyAuthenticationProvider.js';
let dropletListModules: Promise<DropletListModules> | undefined;

/**
 * Loads what {@link createDropletLister} needs, once. The whole dots client (every request builder
 * of the API) costs about 0.3 CPU-s to load on the 2-core CI machine, and its models decode 250
 * droplets in about 0.09 CPU-s more; a listing reads four fields of each.
 */
export function loadDropletListModules(): Promise<DropletListModules> {
  dropletListModules ??= Promise.all([import(authenticationSpecifier) as Promise<DropletListModules['authentication']>, import('@microsoft/kiota-abstractions')])
    .then(([authentication, abstractions]) => ({ authentication, abstractions }))
    .catch((error: unknown) => {
      dropletListModules = undefined;
      throw error;
    });
  return dropletListModules;
}

/** DigitalOcean's error body (`{ id, message, request_id }`) on any failed status, as dots' error mapping reads it. */
const errorBody = {
  XXX: (_node: unknown) => (error: Record<string, unknown>) => ({
    id: (node: { getStringValue(): string | undefined }) => {
      error.id = node.getStringValue();
    },
    message: (node: { getStringValue(): string | undefined }) => {
      error.messageEscaped = node.getStringValue();
    },
    request_id: (node: { getStringValue(): string | undefined }) => {
      error.requestId = node.getStringValue();
    },
  }),
};

/**
 * A client of `GET /v2/droplets` alone, for `getStates`: the same adapter as
 * {@link createDotsClient} (retry handler, rate budget, per-attempt deadline, DigitalOcean's
 * authentication, the same error body in a failure), with the answer's JSON read directly into the
 * fields a listing needs (id, name, status, networks, paging) instead of through dots' models.
 */
export async function createDropletLister(options: DotsClientOptions): Promise<DropletLister> {
  const { authentication, abstractions } = await loadDropletListModules();
  const adapter = requestAdapter(options, authentication.DigitalOceanApiKeyAuthenticationProvider);
  const parseNodes = adapter.getParseNodeFactory();
  if (parseNodes instanceof abstractions.ParseNodeFactoryRegistry) {
    const { JsonParseNodeFactory } = await import('@microsoft/kiota-serialization-json');
    parseNodes.registerDefaultDeserializer(JsonParseNodeFactory, adapter.getBackingStoreFactory());
  }
  return {
    async get({ queryParameters }) {
      const request = new abstractions.RequestInformation(abstractions.HttpMethod.GET, '{+baseurl}/v2/droplets{?page*,per_page*,tag_name*}');
      request.pathParameters.baseurl = adapter.baseUrl;
      request.queryParameters = { tag_name: queryParameters.tagName, per_page: queryParameters.perPage, page: queryParameters.page };
      request.headers.tryAdd('Accept', 'application/json');
      // The error factory has kiota's ParsableFactory shape (a function of the parse node giving field deserializers).
      const body = await adapter.sendPrimitive<ArrayBuffer>(request, 'ArrayBuffer', errorBody as unknown as Parameters<typeof adapter.sendPrimitive>[2]);
      return dropletPageOf(body === undefined ? undefined : JSON.parse(Buffer.from(body).toString('utf8')));
    },
  };
}

/** Reads a droplet list answer (DigitalOcean's JSON names) into dots' model names; anything malformed reads as absent. */
export function dropletPageOf(answer: unknown): DropletPage {
  const object = (value: unknown): Record<string, unknown> | undefined => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const root = object(answer);
  const networks = (value: unknown) =>
    Array.isArray(value) ? value.map(object).flatMap((network) => (network === undefined ? [] : [{ ipAddress: text(network.ip_address) ?? null, type: text(network.type) ?? null }])) : null;
  const droplets = (Array.isArray(root?.droplets) ? root.droplets : []).map(object).flatMap((droplet): DotsDroplet[] => {
    if (droplet === undefined) return [];
    const net = object(droplet.networks);
    return [
      {
        id: typeof droplet.id === 'number' ? droplet.id : null,
        name: text(droplet.name) ?? null,
        status: text(droplet.status) ?? null,
        networks: net === undefined ? null : { v4: networks(net.v4), v6: networks(net.v6) },
      },
    ];
  });
  const pages = object(object(root?.links)?.pages);
  const total = object(root?.meta)?.total;
  return {
    droplets,
    links: pages === undefined ? null : { pages: { next: text(pages.next) ?? null, last: text(pages.last) ?? null } },
    meta: { total: typeof total === 'number' ? total : null },
  };
}

const idempotentMethods = new Set(['GET', 'HEAD', 'DELETE', 'PUT', 'OPTIONS']);
const transientStatuses = new Set([500, 502, 503, 504]);

/**
 * Replaces kiota's RetryHandler, which knows only `Retry-After` and retries 429/503/504 three
 * times. DigitalOcean answers a throttled call with 429 and `ratelimit-reset` (epoch seconds);
 * this handler waits until then (capped), backs off exponentially otherwise, retries 5xx and
 * network errors only for idempotent methods (a POST that may have gone through is never
 * repeated: DigitalOcean has no idempotency tokens), and gives up at once when the reset is
 * too far away.
 */
export class DigitalOceanRetryHandler implements Middleware {
  next: Middleware | undefined;
  readonly #policy: RetryPolicy;

  constructor(policy: RetryPolicy) {
    this.#policy = policy;
  }

  async execute(url: string, requestInit: RequestInit, requestOptions?: Parameters<Middleware['execute']>[2]): Promise<Response> {
    const next = this.next;
    if (next === undefined) throw new Error('DigitalOceanRetryHandler has no next middleware');
    const method = (requestInit.method ?? 'GET').toUpperCase();
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        // A hung connection must not hang the command: each attempt gets its own deadline (AttemptTimeoutHandler, after the rate budget's wait).
        response = await next.execute(url, requestInit, requestOptions);
      } catch (error) {
        // A cancelled wait for a rate-budget slot ends the call: nothing was sent.
        if (error instanceof CancelledError || requestSignal()?.aborted === true) throw error;
        if (attempt >= this.#policy.maxRetries || !idempotentMethods.has(method)) throw error;
        await sleep(this.#backoff(attempt));
        continue;
      }
      const retryable = response.status === 429 || (transientStatuses.has(response.status) && idempotentMethods.has(method));
      if (!retryable || attempt >= this.#policy.maxRetries) return response;
      // Every DigitalOcean answer carries the hourly window's `ratelimit-reset`; it only means "wait" on a 429.
      const hinted = serverDelayMs(response.headers, Date.now(), response.status === 429);
      if (hinted !== undefined && hinted > this.#policy.giveUpAfterMs) return response;
      await response.body?.cancel();
      await sleep(Math.min(hinted ?? this.#backoff(attempt), this.#policy.maxDelayMs));
    }
  }

  #backoff(attempt: number): number {
    return Math.random() * Math.min(this.#policy.baseDelayMs * 2 ** attempt, this.#policy.maxDelayMs);
  }
}

/** How long the server asks to wait: `Retry-After` (seconds or a date), else (for a 429) `ratelimit-reset`. */
export function serverDelayMs(headers: Headers, now = Date.now(), throttled = true): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null && retryAfter.trim() !== '') {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms)) return Math.max(0, ms);
  }
  if (!throttled) return undefined;
  const reset = Number(headers.get('ratelimit-reset') ?? Number.NaN);
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - now);
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
