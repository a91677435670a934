import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity, connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { certificateSans, ensureClientCertificates, issueServerCertificate, serverCertificateSans } from './certificates.ts';

const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';
const scratch = mkdtempSync(join(tmpdir(), 'provision-certs-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** A TLS server with `server`'s certificate that requires a client certificate from `caPem`; resolves with the handshake outcome. */
async function handshake(options: { serverCert: string; serverKey: string; serverCa: string; clientCa: string; clientCert: string; clientKey: string; host?: string }) {
  let served = 0;
  const server = createServer({ cert: options.serverCert, key: options.serverKey, ca: options.serverCa, requestCert: true, rejectUnauthorized: true }, (socket) => {
    served++;
    socket.end('hello\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const outcome = await new Promise<{ ok: true; data: string; peer: PeerCertificate } | { ok: false; error: string }>((resolve) => {
      const socket: TLSSocket = connect({ host: options.host ?? '127.0.0.1', port, ca: options.clientCa, cert: options.clientCert, key: options.clientKey });
      let data = '';
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString();
      });
      socket.on('end', () => resolve({ ok: true, data, peer: socket.getPeerCertificate() }));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, error: error.code ?? error.message }));
    });
    return { ...outcome, served };
  } finally {
    server.close();
  }
}

describe('ensureClientCertificates', () => {
  it('makes ca.pem, ca-key.pem, cert.pem and key.pem once (dir 0700, keys 0600) and reuses them after', async () => {
    const dir = join(scratch, 'once', 'certs');
    const certs = await ensureClientCertificates(dir, { organization: 'tester' });
    expect(certs).toEqual({
      dir,
      caCertPath: join(dir, 'ca.pem'),
      caKeyPath: join(dir, 'ca-key.pem'),
      clientCertPath: join(dir, 'cert.pem'),
      clientKeyPath: join(dir, 'key.pem'),
    });
    expect(mode(dir)).toBe(0o700);
    expect(mode(certs.caKeyPath)).toBe(0o600);
    expect(mode(certs.clientKeyPath)).toBe(0o600);
    const ca = new X509Certificate(readFileSync(certs.caCertPath));
    const client = new X509Certificate(readFileSync(certs.clientCertPath));
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain('O=tester');
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(client.ca).toBe(false);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(client.checkIssued(ca)).toBe(true);
    expect(client.keyUsage).toEqual([clientAuth]);
    expect(new Date(ca.validTo).getTime() - Date.now()).toBeGreaterThan(9.9 * 365 * 24 * 3600 * 1000);

    const before = readFileSync(certs.caCertPath, 'utf8') + readFileSync(certs.clientCertPath, 'utf8');
    await ensureClientCertificates(dir);
    expect(readFileSync(certs.caCertPath, 'utf8') + readFileSync(certs.clientCertPath, 'utf8')).toBe(before);

    await ensureClientCertificates(dir, { regenerate: true });
    expect(readFileSync(certs.caCertPath, 'utf8')).not.toBe(ca.toString());
    expect(new X509Certificate(readFileSync(certs.clientCertPath)).checkIssued(new X509Certificate(readFileSync(certs.caCertPath)))).toBe(true);
  });

  it('issues a missing client certificate from the existing CA', async () => {
    const dir = join(scratch, 'reissue');
    const certs = await ensureClientCertificates(dir);
    const caPem = readFileSync(certs.caCertPath, 'utf8');
    unlinkSync(certs.clientCertPath);
    await ensureClientCertificates(dir);
    expect(readFileSync(certs.caCertPath, 'utf8')).toBe(caPem);
    expect(new X509Certificate(readFileSync(certs.clientCertPath)).checkIssued(new X509Certificate(caPem))).toBe(true);
  });

  it('a client certificate left from another CA is reissued; a CA key that does not match ca.pem is refused with one line', async () => {
    const dir = join(scratch, 'mismatch');
    const certs = await ensureClientCertificates(dir);
    const other = await ensureClientCertificates(join(scratch, 'mismatch-other'));
    const { copyFileSync } = await import('node:fs');
    copyFileSync(other.clientCertPath, certs.clientCertPath);
    copyFileSync(other.clientKeyPath, certs.clientKeyPath);
    await ensureClientCertificates(dir);
    expect(new X509Certificate(readFileSync(certs.clientCertPath)).verify(new X509Certificate(readFileSync(certs.caCertPath)).publicKey)).toBe(true);

    copyFileSync(other.caKeyPath, certs.caKeyPath);
    const error = await issueServerCertificate(certs, { sans: ['10.0.0.1'], commonName: 'web1' }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error?.message).toBe(`tls-ca-key: ${certs.caKeyPath} is not the key of ${certs.caCertPath}; run "machine regenerate-certs --client-certs NAME…" for a new CA (the machines named get new certificates; the others need the same later)`);
  });

  it('parallel callers (concurrent creates) end with one CA and a client certificate it issued', async () => {
    const dir = join(scratch, 'parallel');
    const results = await Promise.all([1, 2, 3, 4].map(() => ensureClientCertificates(dir)));
    expect(new Set(results.map((result) => result.caCertPath)).size).toBe(1);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    expect(new X509Certificate(readFileSync(join(dir, 'cert.pem'))).checkIssued(ca)).toBe(true);
    expect(new X509Certificate(readFileSync(join(dir, 'cert.pem'))).verify(ca.publicKey)).toBe(true);
  });
});

describe('server certificates', () => {
  it('serverCertificateSans dedupes, adds localhost and canonicalises IPv6', () => {
    expect(
      serverCertificateSans({ ips: ['203.0.113.7', '2001:DB8:0:0:0:0:0:1', '203.0.113.7'], dnsNames: ['Web1.Example.com'], tlsSans: ['[::1]', 'localhost', ' '] }),
    ).toEqual(['203.0.113.7', '2001:db8::1', 'web1.example.com', '::1', 'localhost']);
  });

  it('issues a server certificate with IP and DNS SANs and serverAuth that certificateSans reads back', async () => {
    const client = await ensureClientCertificates(join(scratch, 'server'));
    const sans = serverCertificateSans({ ips: ['127.0.0.1', '2001:db8::5'], dnsNames: ['web1.example.com'] });
    const server = await issueServerCertificate(client, { sans, commonName: 'web1' });
    expect(server.sans).toEqual(['127.0.0.1', '2001:db8::5', 'web1.example.com', 'localhost']);
    expect(certificateSans(server.certPem)).toEqual(server.sans);
    const cert = new X509Certificate(server.certPem);
    expect(cert.subject).toContain('CN=web1');
    expect(cert.keyUsage).toEqual([serverAuth]);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(new X509Certificate(readFileSync(client.caCertPath)))).toBe(true);
    expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('TLS handshake: the server cert verifies for its SANs, the client cert is required and accepted', async () => {
    const client = await ensureClientCertificates(join(scratch, 'tls'));
    const server = await issueServerCertificate(client, { sans: serverCertificateSans({ ips: ['127.0.0.1'] }), commonName: 'web1' });
    const caPem = readFileSync(client.caCertPath, 'utf8');
    const result = await handshake({
      serverCert: server.certPem,
      serverKey: server.keyPem,
      serverCa: caPem,
      clientCa: caPem,
      clientCert: readFileSync(client.clientCertPath, 'utf8'),
      clientKey: readFileSync(client.clientKeyPath, 'utf8'),
    });
    expect(result).toMatchObject({ ok: true, data: 'hello\n', served: 1 });
    if (!result.ok) return;
    expect(checkServerIdentity('127.0.0.1', result.peer)).toBeUndefined();
    expect(checkServerIdentity('localhost', result.peer)).toBeUndefined();
    expect(checkServerIdentity('127.0.0.2', result.peer)).toBeInstanceOf(Error);
    expect(checkServerIdentity('web2.example.com', result.peer)).toBeInstanceOf(Error);
  });

  it('a client certificate from another CA is refused, and a server certificate from another CA is not trusted', async () => {
    const ours = await ensureClientCertificates(join(scratch, 'ours'));
    const theirs = await ensureClientCertificates(join(scratch, 'theirs'));
    const server = await issueServerCertificate(ours, { sans: ['127.0.0.1'], commonName: 'web1' });
    const ourCa = readFileSync(ours.caCertPath, 'utf8');
    const strangerClient = await handshake({
      serverCert: server.certPem,
      serverKey: server.keyPem,
      serverCa: ourCa,
      clientCa: ourCa,
      clientCert: readFileSync(theirs.clientCertPath, 'utf8'),
      clientKey: readFileSync(theirs.clientKeyPath, 'utf8'),
    });
    // TLS 1.3: the client finishes its side first; the server then refuses it and never serves it.
    expect(strangerClient.served).toBe(0);
    expect(strangerClient).not.toMatchObject({ data: 'hello\n' });
    const untrustedServer = await handshake({
      serverCert: server.certPem,
      serverKey: server.keyPem,
      serverCa: ourCa,
      clientCa: readFileSync(theirs.caCertPath, 'utf8'),
      clientCert: readFileSync(ours.clientCertPath, 'utf8'),
      clientKey: readFileSync(ours.clientKeyPath, 'utf8'),
    });
    // The server sends its CA along, so the client sees an untrusted root in the chain.
    expect(untrustedServer).toEqual({ ok: false, error: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/), served: 0 });
  });

  it('issues from an RSA CA key (a CA brought from the reference)', async () => {
    const dir = join(scratch, 'rsa');
    const certs = await ensureClientCertificates(dir);
    await import('reflect-metadata/lite');
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as import('node:crypto').webcrypto.CryptoKeyPair;
    const ca = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=old CA', keys, signingAlgorithm: algorithm, extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(certs.caCertPath, ca.toString('pem'));
    writeFileSync(certs.caKeyPath, `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
    const server = await issueServerCertificate(certs, { sans: ['10.0.0.9'], commonName: 'old' });
    expect(new X509Certificate(server.certPem).checkIssued(new X509Certificate(ca.toString('pem')))).toBe(true);
    expect(certificateSans(server.certPem)).toEqual(['10.0.0.9']);
  });

  it('openssl verify accepts the chain (when openssl is on PATH)', async (context) => {
    let openssl = true;
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      openssl = false;
    }
    if (!openssl) {
      context.skip('openssl is not installed');
      return;
    }
    const dir = join(scratch, 'openssl');
    const client = await ensureClientCertificates(dir);
    const server = await issueServerCertificate(client, { sans: ['127.0.0.1', 'localhost'], commonName: 'web1' });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'server.pem'), server.certPem);
    const verifyServer = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', client.caCertPath, join(dir, 'server.pem')], { encoding: 'utf8' });
    const verifyClient = execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', client.caCertPath, client.clientCertPath], { encoding: 'utf8' });
    expect(verifyServer).toContain(': OK');
    expect(verifyClient).toContain(': OK');
  });
});
