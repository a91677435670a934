import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import type { webcrypto as WebCrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { InvalidConfigError } from '@machine/driver-core';

/**
 * TLS material for the Docker engines: one CA and one client certificate per storage path (as the
 * reference's `certs/`), and one server certificate per machine whose SANs are the machine's
 * addresses. ECDSA P-256 keys, SHA-256 signatures, made with @peculiar/x509 over Node's WebCrypto.
 */

/** The CA and client certificate files under a certs directory. */
export interface ClientCertificates {
  dir: string;
  caCertPath: string;
  caKeyPath: string;
  clientCertPath: string;
  clientKeyPath: string;
}

/** A machine's server certificate and key (PEM) and the SANs it was issued for. */
export interface ServerCertificate {
  certPem: string;
  keyPem: string;
  sans: string[];
}

type X509Module = typeof import('@peculiar/x509');

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const day = 24 * 60 * 60 * 1000;
/** CA lifetime: 10 years. */
const caLifetimeMs = 3650 * day;
/** Leaf lifetime: 825 days, the longest TLS clients accept for server certificates. */
const leafLifetimeMs = 825 * day;
/** Certificates start 5 minutes in the past, so a machine whose clock is a little behind accepts them. */
const clockSkewMs = 5 * 60 * 1000;

let x509Module: Promise<X509Module> | undefined;

/** Loads @peculiar/x509 on first use (it needs a Reflect metadata polyfill for its DI container). */
function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    await import('reflect-metadata/lite');
    const x509 = await import('@peculiar/x509');
    // Node's webcrypto is the standard Crypto; its type lives in node:crypto, x509's in the DOM lib.
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Module;
}

/** The four file paths under `certsDir`. */
export function clientCertificatePaths(certsDir: string): ClientCertificates {
  return {
    dir: certsDir,
    caCertPath: join(certsDir, 'ca.pem'),
    caKeyPath: join(certsDir, 'ca-key.pem'),
    clientCertPath: join(certsDir, 'cert.pem'),
    clientKeyPath: join(certsDir, 'key.pem'),
  };
}

/**
 * Makes the CA (`ca.pem`, `ca-key.pem`) and the client certificate (`cert.pem`, `key.pem`) under
 * `certsDir` when they are missing, and returns their paths. Made once and reused after: an existing
 * CA is kept (a missing client certificate is issued from it); `regenerate: true` remakes all four,
 * which invalidates every machine's server certificate. The directory is 0700, keys 0600, every file
 * written atomically; concurrent callers (parallel creates) wait for each other.
 */
export async function ensureClientCertificates(
  certsDir: string,
  options: { organization?: string; regenerate?: boolean } = {},
): Promise<ClientCertificates> {
  const paths = clientCertificatePaths(certsDir);
  await mkdir(certsDir, { recursive: true, mode: 0o700 });
  await chmod(certsDir, 0o700).catch(() => {});
  return withDirectoryLock(certsDir, async () => {
    const organization = options.organization ?? 'machine';
    const hasCa = !options.regenerate && (await exists(paths.caCertPath)) && (await exists(paths.caKeyPath));
    const hasClient = hasCa && (await exists(paths.clientCertPath)) && (await exists(paths.clientKeyPath));
    if (hasClient && (await clientIssuedByCa(paths))) {
      await Promise.all([tightenKey(paths.caKeyPath), tightenKey(paths.clientKeyPath)]);
      return paths;
    }
    const x509 = await loadX509();
    let ca: SigningAuthority;
    if (hasCa) {
      ca = await loadAuthority(paths);
    } else {
      const keys = await generateKeys();
      const notBefore = new Date(Date.now() - clockSkewMs);
      const certificate = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serialNumber(),
        name: distinguishedName(`${organization} CA`, organization),
        notBefore,
        notAfter: new Date(notBefore.getTime() + caLifetimeMs),
        signingAlgorithm: ecdsa,
        keys,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const certPem = certificate.toString('pem');
      await writeAtomic(paths.caKeyPath, await privateKeyPem(keys.privateKey), 0o600);
      await writeAtomic(paths.caCertPath, `${certPem}\n`, 0o644);
      ca = { certPem, signingKey: keys.privateKey, signingAlgorithm: ecdsa };
    }
    const client = await issueLeaf(x509, ca, {
      commonName: `${organization} client`,
      organization,
      usage: 'client',
      sans: [],
    });
    await writeAtomic(paths.clientKeyPath, client.keyPem, 0o600);
    await writeAtomic(paths.clientCertPath, client.certPem, 0o644);
    return paths;
  });
}

/**
 * Issues a server certificate for a machine's Docker engine, signed by the CA of `client`: the SANs
 * become IP or DNS names (see {@link serverCertificateSans}), extended key usage serverAuth.
 * Nothing is written: the caller stores the PEMs and uploads them.
 */
export async function issueServerCertificate(
  client: ClientCertificates,
  options: { sans: readonly string[]; commonName: string; organization?: string },
): Promise<ServerCertificate> {
  const sans = normalizeSans(options.sans);
  if (sans.length === 0) throw new InvalidConfigError([{ flag: 'tls-san', kind: 'input', message: 'a server certificate needs at least one IP or DNS name' }]);
  const x509 = await loadX509();
  const ca = await loadAuthority(client);
  const issued = await issueLeaf(x509, ca, {
    commonName: options.commonName,
    organization: options.organization ?? 'machine',
    usage: 'server',
    sans,
  });
  return { certPem: issued.certPem, keyPem: issued.keyPem, sans };
}

/**
 * The SANs for a machine's server certificate: its IPs, its DNS names, every `--tls-san`, and
 * `localhost`, without duplicates (IPv6 written in the canonical short form, DNS names lower-case).
 */
export function serverCertificateSans(inputs: { ips: readonly string[]; dnsNames?: readonly string[]; tlsSans?: readonly string[] }): string[] {
  return normalizeSans([...inputs.ips, ...(inputs.dnsNames ?? []), ...(inputs.tlsSans ?? []), 'localhost']);
}

function normalizeSans(names: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const raw of names) {
    const name = normalizeSan(raw);
    if (name !== '') seen.add(name);
  }
  return [...seen];
}

/** The IP addresses and DNS names a certificate (PEM) is valid for, normalized like {@link serverCertificateSans}. */
export function certificateSans(certPem: string): string[] {
  const altNames = new X509Certificate(certPem).subjectAltName ?? '';
  const names: string[] = [];
  for (const match of altNames.matchAll(/(DNS|IP Address):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = match[2] ?? '';
    names.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return normalizeSans(names);
}

/** Trims, strips IPv6 brackets, canonicalises IPv6 and lower-cases DNS names. */
function normalizeSan(raw: string): string {
  const trimmed = raw.trim().replace(/^\[(.*)\]$/, '$1');
  if (trimmed === '') return '';
  if (isIP(trimmed) === 6) return new URL(`http://[${trimmed}]`).hostname.slice(1, -1);
  if (isIP(trimmed) === 4) return trimmed;
  return trimmed.toLowerCase();
}

interface SigningAuthority {
  certPem: string;
  signingKey: WebCrypto.CryptoKey;
  signingAlgorithm: WebCrypto.Algorithm | WebCrypto.EcdsaParams;
}

interface IssuedLeaf {
  certPem: string;
  keyPem: string;
}

async function issueLeaf(
  x509: X509Module,
  ca: SigningAuthority,
  options: { commonName: string; organization: string; usage: 'server' | 'client'; sans: readonly string[] },
): Promise<IssuedLeaf> {
  const keys = await generateKeys();
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const notBefore = new Date(Date.now() - clockSkewMs);
  const caNotAfter = caCertificate.notAfter.getTime();
  const extensions: InstanceType<X509Module['Extension']>[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCertificate),
  ];
  if (options.sans.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(options.sans.map((san) => ({ type: isIP(san) === 0 ? 'dns' : 'ip', value: san }))),
    );
  }
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: distinguishedName(options.commonName, options.organization),
    issuer: caCertificate.subject,
    notBefore,
    // A leaf never outlives its CA.
    notAfter: new Date(Math.min(notBefore.getTime() + leafLifetimeMs, caNotAfter)),
    signingAlgorithm: ca.signingAlgorithm,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    extensions,
  });
  return { certPem: `${certificate.toString('pem')}\n`, keyPem: await privateKeyPem(keys.privateKey) };
}

/** What to run when the CA cannot be used: the command needs the machines to install new certificates on. */
const newCaHint = 'run "machine regenerate-certs --client-certs NAME…" for a new CA (the machines named get new certificates; the others need the same later)';

/** Reads the CA certificate and key; accepts the ECDSA keys made here and RSA CAs of the reference. */
async function loadAuthority(paths: Pick<ClientCertificates, 'caCertPath' | 'caKeyPath'>): Promise<SigningAuthority> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(paths.caCertPath, 'utf8'), readFile(paths.caKeyPath, 'utf8')]);
  } catch (error) {
    throw new InvalidConfigError(
      [{ flag: 'tls-ca-cert', kind: 'input', message: `cannot read the CA (${(error as NodeJS.ErrnoException).code ?? String(error)}); ${newCaHint}` }],
      { cause: error },
    );
  }
  const key = createPrivateKey(keyPem);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const certificateKey = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  if (!certificateKey.equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))) {
    throw new InvalidConfigError([
      { flag: 'tls-ca-key', kind: 'input', message: `${paths.caKeyPath} is not the key of ${paths.caCertPath}; ${newCaHint}` },
    ]);
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : 'P-256';
    const hash = namedCurve === 'P-384' ? 'SHA-384' : namedCurve === 'P-521' ? 'SHA-512' : 'SHA-256';
    const signingKey = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve }, false, ['sign']);
    return { certPem, signingKey, signingAlgorithm: { name: 'ECDSA', hash } as WebCrypto.EcdsaParams };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const signingKey = await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
    return { certPem, signingKey, signingAlgorithm: algorithm };
  }
  throw new InvalidConfigError([
    { flag: 'tls-ca-key', kind: 'input', message: `${paths.caKeyPath} is a ${key.asymmetricKeyType ?? 'unknown'} key; use an ECDSA or RSA CA` },
  ]);
}

/** Whether cert.pem was signed by ca.pem (an interrupted regenerate can leave an old one behind). */
async function clientIssuedByCa(paths: ClientCertificates): Promise<boolean> {
  try {
    const [caPem, clientPem] = await Promise.all([readFile(paths.caCertPath), readFile(paths.clientCertPath)]);
    const ca = new X509Certificate(caPem);
    const client = new X509Certificate(clientPem);
    return client.checkIssued(ca) && client.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function generateKeys(): Promise<WebCrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']) as Promise<WebCrypto.CryptoKeyPair>;
}

async function privateKeyPem(key: WebCrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A positive random 128-bit serial number (hex). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function distinguishedName(commonName: string, organization: string): string {
  const escaped = (value: string) => value.replace(/([,+"\\<>;=])/g, '\\$1');
  return `CN=${escaped(commonName)}, O=${escaped(organization)}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function tightenKey(path: string): Promise<void> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
}

/** Writes `path` through a temporary file in the same directory and a rename, with `mode`. */
async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(temporary, content, { mode, flag: 'wx' });
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}

/** Runs `body` holding `<dir>/.lock` (a directory, made atomically); a lock older than 60 s is stale. */
async function withDirectoryLock<T>(dir: string, body: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.lock');
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await mkdir(lock, { mode: 0o700 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lock).then((info) => Date.now() - info.mtimeMs, () => 0);
      if (age > 60_000) await rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} is held by another process; remove it if no machine command is running`);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
