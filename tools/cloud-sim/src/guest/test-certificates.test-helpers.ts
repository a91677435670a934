import { type webcrypto as WebCrypto, webcrypto } from 'node:crypto';
import { request } from 'node:https';
import 'reflect-metadata/lite'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

/** A certificate authority made for a test. */
export interface TestCA {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: WebCrypto.CryptoKeyPair;
}

/** A leaf certificate and its key. */
export interface TestLeaf {
  certPem: string;
  keyPem: string;
}

async function keyPem(key: WebCrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function newKeys(): Promise<WebCrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<WebCrypto.CryptoKeyPair>;
}

/** A self-signed CA (ECDSA P-256), as the provisioner makes one under STORAGE/certs. */
export async function createCA(name = 'machine-test-ca'): Promise<TestCA> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}, O=cloud-sim tests`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), cert, keys };
}

/** A server (`ips` as IP SANs plus `localhost`) or client certificate signed by `ca`. */
export async function issue(ca: TestCA, options: { commonName: string; ips?: readonly string[]; client?: boolean }): Promise<TestLeaf> {
  const keys = await newKeys();
  const sans: x509.JsonGeneralName[] = options.client === true ? [] : [...(options.ips ?? []).map((ip) => ({ type: 'ip' as const, value: ip })), { type: 'dns', value: 'localhost' }];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: webcrypto.getRandomValues(new Uint8Array(8)).reduce((hex, byte) => hex + byte.toString(16).padStart(2, '0'), '7'),
    subject: `CN=${options.commonName}, O=cloud-sim tests`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([options.client === true ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/** GET over HTTPS with the CA to trust and, optionally, a client certificate. */
export function tlsGet(url: string, options: { ca: string; client?: TestLeaf }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const call = request(url, { ca: options.ca, ...(options.client === undefined ? {} : { cert: options.client.certPem, key: options.client.keyPem }), agent: false, timeout: 5_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    call.on('timeout', () => call.destroy(new Error('timed out')));
    call.on('error', reject);
    call.end();
  });
}
