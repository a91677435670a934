import { type RateBucket, type RateLimit, rateBudget, retryAfterMs } from '@machine/driver-core';

/**
 * Compute Engine's per-project rate quota groups, as the driver's calls fall in them: reads (gets
 * and lists), writes (every mutation), and operation reads (`zoneOperations.wait`/`get`, counted
 * apart).
 */
export type GoogleRateGroup = 'read' | 'write' | 'operationRead';

/**
 * Compute Engine's default rate quotas are 1 500 requests a minute per project and group, counted
 * in windows aligned to the clock. A bucket of 300 and 20 a second never sends more than
 * 300 + 60 × 20 = 1 500 in any minute, wherever the window starts.
 */
const PER_MINUTE_1500: RateLimit = { burst: 300, perSecond: 20 };

/**
 * Compute Engine counts its rate quotas per minute, refilled at the start of the next minute: a
 * throttle blocks the bucket until then (the budget scales it like the limits).
 */
const QUOTA_WINDOW_MS = 60_000;

/** Real-cloud limits of each group. */
export const googleRateLimits: Readonly<Record<GoogleRateGroup, RateLimit>> = {
  read: PER_MINUTE_1500,
  write: PER_MINUTE_1500,
  operationRead: PER_MINUTE_1500,
};

const COMPUTE_PATH = /\/compute\/v1\/projects\/([^/]+)(\/.*)?$/;

/** The quota group of a Compute request by its method and path; undefined for a request that is not Compute's (a token refresh). */
export function googleRateGroup(method: string, url: string | URL): { project: string; group: GoogleRateGroup } | undefined {
  const path = typeof url === 'string' ? new URL(url, 'http://localhost').pathname : url.pathname;
  const match = COMPUTE_PATH.exec(path);
  if (match === null) return undefined;
  const project = decodeURIComponent(match[1] ?? '');
  const rest = match[2] ?? '';
  const upper = method.toUpperCase();
  if (/\/operations\/[^/]+(\/wait)?$/.test(rest) && (upper === 'GET' || rest.endsWith('/wait'))) return { project, group: 'operationRead' };
  return { project, group: upper === 'GET' ? 'read' : 'write' };
}

/** The shared budget of a project's quota group: `google:<project>:<group>` (a project id is no secret). */
export function googleRateBucket(project: string, group: GoogleRateGroup): RateBucket {
  return { key: `google:${project}:${group}`, limit: googleRateLimits[group] };
}

/** Whether an error answer is Compute Engine's rate limit (403 `rateLimitExceeded`, `userRateLimitExceeded`, 429 `RATE_LIMIT_EXCEEDED`). */
export function isGoogleRateLimitAnswer(status: number, body: unknown): boolean {
  if (status === 429) return true;
  if (status !== 403) return false;
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  return /rateLimitExceeded|RATE_LIMIT_EXCEEDED/i.test(text);
}

/** The part of gaxios's prepared request options the hook reads. */
interface PreparedRequest {
  url: URL | string;
  method?: string;
  signal?: AbortSignal;
}

/** The part of a gaxios response the hook reads. */
interface AnswerLike {
  status: number;
  headers?: { get(name: string): string | null };
}

type Adapter = (options: PreparedRequest, defaultAdapter: (options: PreparedRequest) => Promise<AnswerLike>) => Promise<AnswerLike>;

/** The part of google-auth-library's `AuthClient.transporter` (a Gaxios instance) the hook uses. */
interface TransporterLike {
  defaults: { adapter?: Adapter };
  interceptors: { response: { add(interceptor: { resolved?: (response: unknown) => unknown; rejected?: (error: unknown) => unknown }): void } };
}

const metered = new WeakSet<object>();

/**
 * Meters every Compute request an auth client sends with the process's rate budget
 * ({@link rateBudget}). The client library's REST transport sends each call through the auth
 * client's `fetch`, and the fleet listing through its `request`: both end in its gaxios
 * transporter, which calls `adapter` once per HTTP attempt (gaxios's own retries and the auth
 * client's retry after a token refresh included). So the adapter takes a slot before each attempt
 * and reads a 429 (with its `Retry-After`); a 403 is read where gaxios has parsed its body (a
 * response interceptor), and fed back when it says `rateLimitExceeded`. Token requests and other
 * hosts' URLs pass unmetered. With no budget configured it only calls on. An auth client without a
 * gaxios transporter (a bare `AuthClientLike`) is left as it is.
 */
export function meterAuthClient<T extends object>(authClient: T): T {
  const transporter = (authClient as { transporter?: TransporterLike }).transporter;
  if (transporter?.defaults === undefined || transporter.interceptors?.response === undefined || metered.has(transporter)) return authClient;
  metered.add(transporter);
  const previous = transporter.defaults.adapter;
  transporter.defaults.adapter = async (options, defaultAdapter) => {
    const send = (prepared: PreparedRequest) => (previous === undefined ? defaultAdapter(prepared) : previous(prepared, defaultAdapter));
    const budget = rateBudget();
    const target = budget === undefined ? undefined : googleRateGroup(options.method ?? 'GET', options.url);
    if (budget === undefined || target === undefined) return send(options);
    const bucket = googleRateBucket(target.project, target.group);
    await budget.take(bucket, options.signal);
    const answer = await send(options);
    if (answer.status === 429) {
      const wait = retryAfterMs(answer.headers?.get('retry-after'));
      await budget.observe(bucket, wait === undefined ? { throttled: true, windowMs: QUOTA_WINDOW_MS } : { throttled: true, retryAfterMs: wait });
    }
    return answer;
  };
  transporter.interceptors.response.add({
    rejected: async (error: unknown) => {
      const { config, response, message, error: body } = (error ?? {}) as { config?: PreparedRequest; response?: AnswerLike & { data?: unknown }; message?: unknown; error?: unknown };
      const budget = rateBudget();
      const target = config === undefined ? undefined : googleRateGroup(config.method ?? 'GET', config.url);
      // gaxios keeps the answer's body in `message` for a streamed response (the client library's),
      // and parsed in `error` and `response.data` for a JSON one (the fleet listing).
      const said = [message, body, response?.data];
      // 429s were read per attempt by the adapter.
      if (budget !== undefined && target !== undefined && response?.status === 403 && isGoogleRateLimitAnswer(403, said)) {
        await budget.observe(googleRateBucket(target.project, target.group), { throttled: true, windowMs: QUOTA_WINDOW_MS });
      }
      throw error;
    },
  });
  return authClient;
}
