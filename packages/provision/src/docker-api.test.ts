import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClientCertificates, ensureClientCertificates, issueServerCertificate } from './certificates.ts';
import { dockerApi, dockerUrl, dockerVersion } from './docker-api.ts';
import { DockerApiError } from './docker-api-error.ts';
import { freePort } from './test-support/fake-guest.ts';

const scratch = mkdtempSync(join(tmpdir(), 'provision-api-'));
let client: ClientCertificates;
const servers: { close(): void }[] = [];

beforeAll(async () => {
  client = await ensureClientCertificates(join(scratch, 'certs'));
});
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** An engine on loopback with a server certificate for `sans`, requiring client certs of `ca`. */
async function engine(sans: string[], handler: (path: string) => [number, string] = () => [200, 'OK'], caPath = client.caCertPath): Promise<string> {
  const issued = await issueServerCertificate(client, { sans, commonName: 'web1' });
  const server: Server = createHttpsServer({ cert: issued.certPem, key: issued.keyPem, ca: await readFile(caPath), requestCert: true, rejectUnauthorized: true }, (request, response) => {
    const [status, body] = handler(request.url ?? '');
    response.writeHead(status).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return dockerUrl('127.0.0.1', (server.address() as { port: number }).port);
}

async function apiError(promise: Promise<unknown>): Promise<DockerApiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(DockerApiError.isInstance(error), String(error)).toBe(true);
  return error as DockerApiError;
}

describe('dockerUrl', () => {
  it('is tcp://host:port with IPv6 in brackets', () => {
    expect(dockerUrl('203.0.113.7', 2376)).toBe('tcp://203.0.113.7:2376');
    expect(dockerUrl('2001:db8::1', 2376)).toBe('tcp://[2001:db8::1]:2376');
    expect(dockerUrl('[2001:db8::1]', 2376)).toBe('tcp://[2001:db8::1]:2376');
    expect(dockerUrl('web1.example.com', 12376)).toBe('tcp://web1.example.com:12376');
  });
});

describe('dockerApi / dockerVersion', () => {
  it('calls the engine with the client certificate', async () => {
    const url = await engine(['127.0.0.1'], (path) => (path === '/version' ? [200, '{"Version":"27.3.1","ApiVersion":"1.47"}'] : [200, 'OK']));
    expect(await dockerApi(url, client, '/_ping')).toEqual({ status: 200, body: 'OK' });
    expect(await dockerVersion(url, client)).toBe('27.3.1');
  });

  it('a refused connection says the engine is not answering', async () => {
    const port = await freePort();
    const error = await apiError(dockerApi(dockerUrl('127.0.0.1', port), client, '/_ping'));
    expect(error.failure).toBe('refused');
    expect(error.isRetryable).toBe(true);
    expect(error.message).toBe(`the Docker engine at tcp://127.0.0.1:${port} is not answering (connection refused)`);
  });

  it('a certificate for another address says to run machine regenerate-certs NAME', async () => {
    const url = await engine(['10.0.0.9']);
    const error = await apiError(dockerApi(url, client, '/_ping', { machine: 'web1' }));
    expect(error.failure).toBe('tls');
    expect(error.isRetryable).toBe(false);
    expect(error.message).toContain(`the Docker engine at ${url} has a certificate for other addresses`);
    expect(error.message).toContain('(run "machine regenerate-certs web1")');
  });

  it('an engine that does not accept our client certificate is a TLS error with the same hint', async () => {
    const other = await ensureClientCertificates(join(scratch, 'other'));
    const url = await engine(['127.0.0.1'], undefined, other.caCertPath);
    const error = await apiError(dockerApi(url, client, '/_ping', { machine: 'web1' }));
    expect(error.failure).toBe('tls');
    expect(error.message).toContain('machine regenerate-certs web1');
  });

  it('a silent engine times out; a non-200 /version is an http failure with the engine message', async () => {
    const silent = createNetServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    servers.push(silent);
    const url = dockerUrl('127.0.0.1', (silent.address() as { port: number }).port);
    const timeout = await apiError(dockerApi(url, client, '/_ping', { timeoutMs: 200 }));
    expect(timeout.failure).toBe('timeout');
    expect(timeout.message).toBe(`the Docker engine at ${url} did not answer within 0.2 s`);

    const failing = await engine(['127.0.0.1'], () => [500, '{"message":"daemon is shutting down"}']);
    const http = await apiError(dockerVersion(failing, client));
    expect(http.failure).toBe('http');
    expect(http.statusCode).toBe(500);
    expect(http.message).toContain('HTTP 500: daemon is shutting down');
  });

  it('an aborted call rejects with CancelledError', async () => {
    const silent = createNetServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    servers.push(silent);
    const controller = new AbortController();
    const call = dockerApi(dockerUrl('127.0.0.1', (silent.address() as { port: number }).port), client, '/_ping', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(call).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});
