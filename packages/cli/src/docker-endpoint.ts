import { isIP } from 'node:net';
import { CliError } from './cli-error.ts';
import type { MachineRecord } from './store.ts';

/**
 * `tcp://host:port`, with an IPv6 address in brackets (like `@machine/provision`'s dockerUrl, which
 * this avoids loading for `ls`, `url` and `env`).
 */
export function dockerUrlOf(host: string, port: number): string {
  const bare = unbracket(host);
  return `tcp://${isIP(bare) === 6 ? `[${bare}]` : bare}:${port}`;
}

/**
 * Whether a certificate with these SANs is valid for `host`: DNS names case-insensitively, IPv6
 * addresses in any spelling (`2001:DB8:0::1` is `2001:db8::1`, the form the SANs are stored in).
 */
export function sansInclude(sans: readonly string[], host: string): boolean {
  const wanted = comparableName(host);
  return sans.some((san) => comparableName(san) === wanted);
}

function unbracket(host: string): string {
  return host.trim().replace(/^\[(.*)\]$/, '$1');
}

function comparableName(name: string): string {
  const bare = unbracket(name);
  if (isIP(bare) === 6) return new URL(`http://[${bare}]`).hostname;
  return bare.toLowerCase();
}

/** The hint every "no usable engine" message ends with. */
export function provisionHint(name: string): string {
  return `run "machine provision ${name}" to retry, or "machine rm ${name}"`;
}

/**
 * The Docker URL of a running machine at `ip`, checked like the reference's connection checker
 * before `env` and `config` hand it out: the engine was provisioned, and the server certificate
 * names the machine's current IP (else the docker client would fail with "x509: certificate is
 * valid for A, not B"). `driverUrl` answers for machines without a provision record (the `none`
 * driver's existing engine, records made before provisioning existed).
 */
export async function checkedDockerUrl(record: MachineRecord, ip: string, driverUrl: () => Promise<string>): Promise<string> {
  const provision = record.provision;
  if (provision === undefined) return driverUrl();
  const name = record.name;
  if (provision.state === 'skipped') {
    throw new CliError(`machine "${name}" has no Docker engine (it was created with --no-provision); "machine provision ${name}" installs one`);
  }
  if (provision.state === 'failed') {
    throw new CliError(`machine "${name}" has no working Docker engine: ${provision.error ?? 'provisioning failed'}; ${provisionHint(name)}`);
  }
  const url = dockerUrlOf(ip, provision.dockerPort);
  if (!sansInclude(provision.serverCertSans, ip)) {
    throw new CliError(
      `Error checking TLS connection: the server certificate of "${name}" is valid for ${provision.serverCertSans.join(', ')}, not ${ip}; ` +
        `"machine regenerate-certs ${name}" (or "machine restart ${name}") issues a new one`,
    );
  }
  return url;
}
