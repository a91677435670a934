import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Driver, ProgressEvent } from '@machine/driver-core';
import type { SSHTarget } from '@machine/driver-core/ssh';
import type { ClientCertificates, EngineOptions, ServerCertificate } from '@machine/provision';
import { sansInclude } from './docker-endpoint.ts';
import { atomicWrite, type ProvisionRecord, type Store } from './store.ts';

/**
 * The CLI's side of provisioning: where the certificates live in the store, and the steps shared by
 * create, `machine provision`, `regenerate-certs` and start/restart. `@machine/provision` does the
 * work (and is imported only by the commands that need it).
 */

/** The CA/client file paths under `dir` (without creating anything). */
export function clientCertificatesIn(dir: string): ClientCertificates {
  return {
    dir,
    caCertPath: join(dir, 'ca.pem'),
    caKeyPath: join(dir, 'ca-key.pem'),
    clientCertPath: join(dir, 'cert.pem'),
    clientKeyPath: join(dir, 'key.pem'),
  };
}

/**
 * Copies the CA and client certificate into the machine's folder (`ca.pem`, `cert.pem`, `key.pem`
 * 0600), where DOCKER_CERT_PATH points, like the reference.
 */
export async function copyClientFiles(client: ClientCertificates, machineDir: string): Promise<void> {
  const copies: [from: string, to: string][] = [
    [client.caCertPath, 'ca.pem'],
    [client.clientCertPath, 'cert.pem'],
    [client.clientKeyPath, 'key.pem'],
  ];
  for (const [from, to] of copies) await atomicWrite(join(machineDir, to), await readFile(from, 'utf8'));
}

/**
 * Writes the machine's `server.pem` and `server-key.pem`, like the reference: each through a temp
 * file and a rename, 0600 even where an older file had wider permissions.
 */
export async function writeServerCertificate(machineDir: string, server: ServerCertificate): Promise<void> {
  await atomicWrite(join(machineDir, 'server.pem'), server.certPem);
  await atomicWrite(join(machineDir, 'server-key.pem'), server.keyPem);
}

/** Issues a server certificate for the machine's current IP (plus `--tls-san`) and saves it in its folder. */
export async function issueFor(name: string, machineDir: string, client: ClientCertificates, engine: EngineOptions, ip: string): Promise<ServerCertificate> {
  const { issueServerCertificate, serverCertificateSans } = await import('@machine/provision');
  const sans = serverCertificateSans({ ips: [ip], tlsSans: engine.tlsSans });
  const server = await issueServerCertificate(client, { sans, commonName: name });
  await writeServerCertificate(machineDir, server);
  return server;
}

/** A provision record for `engine` in `state`. */
export function provisionRecord(engine: EngineOptions, state: ProvisionRecord['state'], sans: string[] = []): ProvisionRecord {
  return { engine: { ...engine }, serverCertSans: sans, dockerPort: engine.port, state };
}

/** The stored engine options as `@machine/provision` takes them (re-checked: a hand-edited file gets one-line errors). */
export async function engineOf(provision: ProvisionRecord): Promise<EngineOptions> {
  const { engineOptionsFrom } = await import('@machine/provision');
  const engine = provision.engine as Partial<EngineOptions>;
  return engineOptionsFrom({
    engineInstallUrl: engine.installUrl,
    enginePort: provision.dockerPort,
    engineOpt: engine.opts,
    engineEnv: engine.env,
    engineInsecureRegistry: engine.insecureRegistries,
    engineRegistryMirror: engine.registryMirrors,
    engineLabel: engine.labels,
    engineStorageDriver: engine.storageDriver,
    tlsSan: engine.tlsSans,
    noProvision: false,
  });
}

/**
 * After start/restart: when the machine's IP is not among its server certificate's SANs (a new
 * public IP after a stop), issues a new certificate and installs it on the machine, saying so.
 * Returns whether it did.
 */
export async function refreshCertificateAfterIpChange(options: {
  name: string;
  store: Store;
  driver: Driver;
  provision: ProvisionRecord;
  ssh: () => Promise<SSHTarget>;
  signal?: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
}): Promise<boolean> {
  const { name, driver, provision } = options;
  if (provision.state !== 'provisioned') return false;
  const operation = options.signal === undefined ? {} : { signal: options.signal };
  const ip = await driver.getIP(operation);
  if (sansInclude(provision.serverCertSans, ip)) return false;
  options.onProgress({ step: 'regenerate-certs', phase: 'start', message: `The IP of "${name}" changed to ${ip}: issuing a new server certificate and installing it...` });
  await installNewServerCertificate({ ...options, ip });
  options.onProgress({ step: 'regenerate-certs', phase: 'done', message: `Installed a server certificate for ${ip} on "${name}"` });
  return true;
}

/** Issues a server certificate for `ip`, installs it (upload, restart dockerd, wait for `_ping`) and records its SANs. */
export async function installNewServerCertificate(options: {
  name: string;
  store: Store;
  provision: ProvisionRecord;
  ip: string;
  ssh: () => Promise<SSHTarget>;
  signal?: AbortSignal;
  client?: ClientCertificates;
  onProgress?: (event: ProgressEvent) => void;
}): Promise<void> {
  const { name, store, provision, ip } = options;
  const { ensureClientCertificates, installServerCertificate } = await import('@machine/provision');
  const client = options.client ?? (await store.withCerts((dir) => ensureClientCertificates(dir)));
  const engine = await engineOf(provision);
  const server = await issueFor(name, store.machineDir(name), client, engine, ip);
  const target = await options.ssh();
  await installServerCertificate(
    { ssh: target, dockerHost: ip },
    { engine, client, server, ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) },
  );
  provision.serverCertSans = server.sans;
}

/**
 * Waits until the machine's engine answers `GET /_ping` with the client certificate (after a start
 * or restart, like the reference's WaitForDocker), polling with backoff up to `timeoutMs`.
 */
export async function waitForEngine(name: string, url: string, client: ClientCertificates, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const { dockerApi } = await import('@machine/provision');
  const { waitFor } = await import('@machine/driver-core');
  await waitFor(
    async () => {
      try {
        const answer = await dockerApi(url, client, '/_ping', { timeoutMs: 5000, machine: name, ...(options.signal === undefined ? {} : { signal: options.signal }) });
        return answer.status === 200 ? { done: true, value: undefined } : { done: false, reason: `/_ping answered HTTP ${answer.status}` };
      } catch (error) {
        const failure = (error as { failure?: unknown }).failure;
        if (failure === 'tls') throw error; // certificates do not match: waiting will not help
        return { done: false, reason: (error as Error).message };
      }
    },
    {
      interval: 250,
      maxInterval: 2000,
      timeout: options.timeoutMs ?? 60_000,
      description: `the Docker engine of "${name}" at ${url}`,
      machine: name,
      operation: 'start',
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  );
}
