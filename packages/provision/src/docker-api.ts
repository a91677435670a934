import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { CancelledError } from '@machine/driver-core';
import type { ClientCertificates } from './certificates.ts';
import { DockerApiError } from './docker-api-error.ts';

/** `tcp://host:port`, the DOCKER_HOST form (IPv6 in brackets). */
export function dockerUrl(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return `tcp://${isIP(bare) === 6 ? `[${bare}]` : bare}:${port}`;
}

/** Options for {@link dockerApi}. */
export interface DockerApiOptions {
  /** Per-request timeout, ms (default 10 000). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The machine name, for the "run machine regenerate-certs NAME" hint. */
  machine?: string;
}

const certificateErrorCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One GET to a machine's Docker engine over TLS with the client certificate (the CA of `client`
 * verifies the server, the server requires the client certificate). Resolves with any HTTP status;
 * rejects with DockerApiError: `refused` ("is not answering"), `timeout`, `network`, or `tls` with a
 * hint to run `machine regenerate-certs NAME`.
 */
export async function dockerApi(
  url: string,
  client: ClientCertificates,
  path: string,
  options: DockerApiOptions = {},
): Promise<{ status: number; body: string }> {
  const target = new URL(url.replace(/^tcp:\/\//, 'https://'));
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.port || 2376);
  const displayUrl = dockerUrl(host, port);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const machine = options.machine;
  const machineOption = machine === undefined ? {} : { machine };
  if (options.signal?.aborted) throw new CancelledError('the Docker API call was cancelled', machineOption);
  // node:https (with tls) costs ~20 ms to load: only callers that talk to an engine pay it.
  const [{ request }, ca, cert, key] = await Promise.all([
    import('node:https'),
    readFile(client.caCertPath, 'utf8'),
    readFile(client.clientCertPath, 'utf8'),
    readFile(client.clientKeyPath, 'utf8'),
  ]);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      reject(error);
    };
    const req = request(
      {
        host,
        port,
        path,
        method: 'GET',
        ca,
        cert,
        key,
        agent: false,
        headers: { Accept: 'application/json', Host: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` },
        ...(isIP(host) === 0 ? { servername: host } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => fail(classify(error, displayUrl, machine)));
        response.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const onAbort = () => fail(new CancelledError('the Docker API call was cancelled', machineOption));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () =>
        fail(
          new DockerApiError(`the Docker engine at ${displayUrl} did not answer within ${formatSeconds(timeoutMs)}`, {
            failure: 'timeout',
            url: displayUrl,
            ...machineOption,
          }),
        ),
      timeoutMs,
    );
    // With TLS 1.3 a server that refuses our client certificate does so after the client finished its
    // side of the handshake: the request then fails with a bare ECONNRESET.
    let handshakeDone = false;
    req.on('socket', (socket) => socket.once('secureConnect', () => (handshakeDone = true)));
    req.on('error', (error: Error & { code?: string }) => fail(classify(error, displayUrl, machine, handshakeDone)));
    req.end();
  });
}

/** The engine's version (`GET /version` → `Version`, e.g. `27.3.1`). */
export async function dockerVersion(url: string, client: ClientCertificates, options: DockerApiOptions = {}): Promise<string> {
  const response = await dockerApi(url, client, '/version', options);
  const machineOption = options.machine === undefined ? {} : { machine: options.machine };
  if (response.status !== 200) {
    throw new DockerApiError(`the Docker engine at ${url} answered GET /version with HTTP ${response.status}: ${apiMessage(response.body)}`, {
      failure: 'http',
      url,
      statusCode: response.status,
      ...machineOption,
    });
  }
  let version: unknown;
  try {
    version = (JSON.parse(response.body) as { Version?: unknown }).Version;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || version === '') {
    throw new DockerApiError(`the Docker engine at ${url} answered GET /version without a Version`, { failure: 'http', url, statusCode: 200, ...machineOption });
  }
  return version;
}

function apiMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON: show the start of the body
  }
  return body.trim().slice(0, 200) || '(empty body)';
}

function classify(error: Error & { code?: string }, url: string, machine: string | undefined, handshakeDone = false): DockerApiError {
  const code = error.code ?? '';
  const base = { url, cause: error, ...(machine === undefined ? {} : { machine }) };
  const regenerate = `run "machine regenerate-certs ${machine ?? 'NAME'}"`;
  if (code === 'ECONNREFUSED') return new DockerApiError(`the Docker engine at ${url} is not answering (connection refused)`, { ...base, failure: 'refused' });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new DockerApiError(`the Docker engine at ${url} has a certificate for other addresses: ${error.message}`, { ...base, failure: 'tls', hint: regenerate });
  }
  if (certificateErrorCodes.has(code)) {
    return new DockerApiError(`the Docker engine at ${url} has a certificate this host does not trust (${code})`, { ...base, failure: 'tls', hint: regenerate });
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /alert|certificate|ssl/i.test(error.message)) {
    return new DockerApiError(`the TLS handshake with the Docker engine at ${url} failed (${code || error.message})`, {
      ...base,
      failure: 'tls',
      hint: `the engine may not accept this host's client certificate; ${regenerate}`,
    });
  }
  if (handshakeDone && code === 'ECONNRESET') {
    return new DockerApiError(`the Docker engine at ${url} closed the connection after the TLS handshake`, {
      ...base,
      failure: 'tls',
      hint: `it does not seem to accept this host's client certificate; ${regenerate}`,
    });
  }
  return new DockerApiError(`the Docker engine at ${url} is not answering (${code || error.message})`, { ...base, failure: 'network' });
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
