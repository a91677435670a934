import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { FaultInjector } from './faults.ts';
import type { IdGenerator } from './ids.ts';
import { ApiError, type ProviderFrontEnd, type SimRequest, type SimResponse } from './provider-front-end.ts';
import type { RequestLog } from './request-log.ts';

/** A provider's listening HTTP server. */
export interface ProviderServer {
  readonly url: string;
  close(): Promise<void>;
}

/** What the HTTP layer needs besides the front end. */
export interface HttpServerServices {
  faults: FaultInjector;
  requestLog: RequestLog;
  ids: IdGenerator;
}

/** Starts a provider's HTTP server on loopback (`port` 0 = any free port). */
export async function startProviderServer(
  frontEnd: () => ProviderFrontEnd,
  services: HttpServerServices,
  options: { host: string; port: number },
): Promise<ProviderServer> {
  const server: Server = createServer((req, res) => {
    handle(frontEnd(), services, req, res).catch((error: unknown) => {
      process.emitWarning(`cloud-sim: request failed: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // Like the clouds' front doors (60 s and more): an idle connection stays usable far longer than
  // a client keeps it, so a client never reuses one the server is closing at that moment (with
  // Node's 5 s default, a busy client's late timer did, and a POST failed with UND_ERR_SOCKET).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(frontEnd: ProviderFrontEnd, services: HttpServerServices, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const request: SimRequest = {
    method: req.method ?? 'GET',
    url: new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`),
    headers: req.headers,
    body: Buffer.concat(chunks),
    requestId: services.ids.requestId(),
  };
  const route = frontEnd.route(request);
  const operation = route?.operation ?? 'unknown';
  const decision = services.faults.decide(frontEnd.name, operation);
  if (decision.latencyMs > 0) await delay(decision.latencyMs);

  let response: SimResponse;
  let handled = false;
  const authError = frontEnd.authenticate?.(request);
  if (authError !== undefined) response = frontEnd.renderError(authError, request);
  else if (decision.throttle !== undefined) response = frontEnd.throttleResponse(decision.throttle, request);
  else if (decision.error !== undefined) {
    response = frontEnd.renderError(frontEnd.faultError(decision.error, operation), request);
    if (decision.retryAfterSeconds !== undefined) response.headers = { ...response.headers, 'retry-after': String(decision.retryAfterSeconds) };
  }
  else if (route === undefined) response = frontEnd.renderError(frontEnd.faultError('not_found', operation), request);
  else {
    handled = true;
    try {
      response = await route.handle();
    } catch (error) {
      if (!(error instanceof ApiError)) {
        process.emitWarning(`cloud-sim: ${frontEnd.name} ${operation} failed: ${(error as Error).stack ?? String(error)}`);
      }
      response = frontEnd.renderError(error instanceof ApiError ? error : frontEnd.faultError('server', operation), request);
    }
  }
  frontEnd.decorate?.(response, request);
  // A lost reply: the call was carried out (committed), its answer never arrives. A held one stays
  // open until the client gives up or the server closes (closeAllConnections).
  if (decision.reply === 'drop' && handled) res.destroy();
  else if (decision.reply === undefined || !handled) send(res, response);
  services.requestLog.record({
    provider: frontEnd.name,
    operation,
    method: request.method,
    path: `${request.url.pathname}${request.url.search}`,
    status: response.status,
    durationMs: performance.now() - started,
    retryAttempt: retryAttemptOf(req),
    time: new Date(),
  });
}

/**
 * The retry attempt a client announces: kiota's `Retry-Attempt: N`, or the AWS SDK's
 * `amz-sdk-request: attempt=N; max=M` (1-based there). 0 for a first try.
 */
function retryAttemptOf(req: IncomingMessage): number {
  const kiota = Number(req.headers['retry-attempt']);
  if (Number.isInteger(kiota) && kiota > 0) return kiota;
  const aws = /attempt=(\d+)/.exec(String(req.headers['amz-sdk-request'] ?? ''));
  return aws === null ? 0 : Math.max(Number(aws[1]) - 1, 0);
}

function send(res: ServerResponse, response: SimResponse): void {
  const headers: Record<string, string> = { ...response.headers };
  let body: Buffer | undefined;
  if (Buffer.isBuffer(response.body)) body = response.body;
  else if (typeof response.body === 'string') body = Buffer.from(response.body, 'utf8');
  else if (response.body !== undefined) {
    body = Buffer.from(JSON.stringify(response.body), 'utf8');
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  if (body !== undefined) headers['content-length'] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}
