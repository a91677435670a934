import { isIPv4, isIPv6 } from 'node:net';
import { type ConfigIssue, InvalidConfigError } from './errors/invalid-config-error.ts';

/** A network protocol a rule opens. */
export type FirewallProtocol = 'tcp' | 'udp';

/** One inbound rule a machine needs; each provider translates it to its firewall's format. */
export interface FirewallRule {
  readonly protocol: FirewallProtocol;
  /** First port of the range. */
  readonly fromPort: number;
  /** Last port of the range (equal to `fromPort` for one port). */
  readonly toPort: number;
  /** Source CIDRs allowed (IPv4 and IPv6). */
  readonly sources: readonly string[];
  /** Why the rule exists: `ssh`, `docker`, `user`. */
  readonly purpose: 'ssh' | 'docker' | 'user';
}

/** Inputs to {@link machineFirewallRules}. */
export interface MachineFirewallOptions {
  sshPort?: number;
  /** Docker TLS port (2376). */
  enginePort?: number;
  /** Extra ports as users write them: `8080`, `8000-8010`, `53/udp`. */
  openPorts?: readonly string[];
  /** Allowed source CIDRs; defaults to anywhere (`0.0.0.0/0`, `::/0`). */
  allowedCidrs?: readonly string[];
  /** The flag names, for error messages. */
  openPortFlag?: string;
  allowedCidrFlag?: string;
}

/** The everywhere sources. */
export const anywhere: readonly string[] = ['0.0.0.0/0', '::/0'];

/**
 * The inbound rules a machine needs: SSH, Docker TLS and the user's extra ports, from the allowed
 * sources. Throws InvalidConfigError listing every bad port or CIDR.
 */
export function machineFirewallRules(options: MachineFirewallOptions = {}): FirewallRule[] {
  const issues: ConfigIssue[] = [];
  const sources = options.allowedCidrs === undefined || options.allowedCidrs.length === 0 ? anywhere : options.allowedCidrs;
  for (const cidr of sources) {
    const problem = cidrProblem(cidr);
    if (problem !== undefined) issues.push({ flag: options.allowedCidrFlag ?? 'allowed-cidr', message: problem });
  }
  const rules: FirewallRule[] = [
    { protocol: 'tcp', fromPort: options.sshPort ?? 22, toPort: options.sshPort ?? 22, sources, purpose: 'ssh' },
    { protocol: 'tcp', fromPort: options.enginePort ?? 2376, toPort: options.enginePort ?? 2376, sources, purpose: 'docker' },
  ];
  for (const text of options.openPorts ?? []) {
    const parsed = parseOpenPort(text);
    if ('problem' in parsed) {
      issues.push({ flag: options.openPortFlag ?? 'open-port', message: parsed.problem });
      continue;
    }
    const duplicate = rules.some(
      (rule) => rule.protocol === parsed.protocol && rule.fromPort === parsed.fromPort && rule.toPort === parsed.toPort,
    );
    if (!duplicate) rules.push({ ...parsed, sources, purpose: 'user' });
  }
  if (issues.length > 0) throw new InvalidConfigError(issues, { operation: 'config' });
  return rules;
}

/** Parses `8080`, `8000-8010`, `53/udp`, `8000-8010/tcp`. */
export function parseOpenPort(text: string): { protocol: FirewallProtocol; fromPort: number; toPort: number } | { problem: string } {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/i.exec(text.trim());
  if (match === null) return { problem: `"${text}" is not a port; write 8080, 8000-8010 or 53/udp` };
  const fromPort = Number(match[1]);
  const toPort = match[2] === undefined ? fromPort : Number(match[2]);
  const protocol = (match[3]?.toLowerCase() ?? 'tcp') as FirewallProtocol;
  if (fromPort < 1 || toPort > 65535 || toPort < fromPort) return { problem: `"${text}" is not a port range within 1-65535` };
  return { protocol, fromPort, toPort };
}

/** Why `cidr` is not an IPv4 or IPv6 CIDR, or undefined. */
export function cidrProblem(cidr: string): string | undefined {
  const [address, prefixText, ...rest] = cidr.split('/');
  if (address === undefined || prefixText === undefined || rest.length > 0 || !/^\d{1,3}$/.test(prefixText)) {
    return `"${cidr}" is not a CIDR; write e.g. 203.0.113.0/24 or 2001:db8::/32`;
  }
  const prefix = Number(prefixText);
  if (isIPv4(address)) return prefix <= 32 ? undefined : `"${cidr}" has a prefix over 32`;
  if (isIPv6(address)) return prefix <= 128 ? undefined : `"${cidr}" has a prefix over 128`;
  return `"${cidr}" does not start with an IP address`;
}
