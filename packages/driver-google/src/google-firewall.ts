import type { FirewallRule } from '@machine/driver-core';
import type { ComputeFirewall } from './google-clients.ts';

/** The network tag every machine carries; the firewall rule targets it. */
export const machineTag = 'docker-machine';

/** Marks rules this tool made (only those are ever deleted, and only when no machine uses them). */
export const managedMarker = 'managed by machine';

/** The rule's name for a network: `docker-machines` on `default` (the reference's name), `docker-machines-<network>` elsewhere. */
export function firewallRuleName(network: string): string {
  if (network === 'default') return 'docker-machines';
  return `docker-machines-${network}`.slice(0, 63).replace(/-+$/, '');
}

/** `allowed` entries for the rules: one per protocol, ports as `22`, `8000-8010`. */
export function allowedFromRules(rules: readonly FirewallRule[]): { IPProtocol: string; ports: string[] }[] {
  const byProtocol = new Map<string, string[]>();
  for (const rule of rules) {
    const port = rule.fromPort === rule.toPort ? String(rule.fromPort) : `${rule.fromPort}-${rule.toPort}`;
    const ports = byProtocol.get(rule.protocol) ?? [];
    if (!ports.includes(port)) ports.push(port);
    byProtocol.set(rule.protocol, ports);
  }
  return [...byProtocol].map(([IPProtocol, ports]) => ({ IPProtocol, ports }));
}

/** The firewall resource for a new rule. */
export function newFirewall(name: string, networkUrl: string, rules: readonly FirewallRule[], sources: readonly string[]): ComputeFirewall {
  return {
    name,
    network: networkUrl,
    direction: 'INGRESS',
    priority: 1000,
    targetTags: [machineTag],
    sourceRanges: [...sources],
    allowed: allowedFromRules(rules),
    description: `SSH, Docker TLS and --google-open-port ports for instances tagged ${machineTag} (${managedMarker})`,
  };
}

/**
 * What an existing rule lacks for this machine: the union of its and our ports and sources, or
 * undefined when it already allows everything we need.
 */
export function firewallPatch(
  existing: ComputeFirewall,
  rules: readonly FirewallRule[],
  sources: readonly string[],
): Pick<ComputeFirewall, 'allowed' | 'sourceRanges'> | undefined {
  const have = new Set(
    (existing.allowed ?? []).flatMap((entry) => (entry.ports ?? ['*']).map((port) => `${(entry.IPProtocol ?? '').toLowerCase()}:${port}`)),
  );
  const want = allowedFromRules(rules).flatMap((entry) => entry.ports.map((port) => `${entry.IPProtocol}:${port}`));
  const missingPorts = want.filter((token) => !have.has(token) && !have.has(`${token.split(':')[0]}:*`) && !have.has('all:*'));
  const existingSources = existing.sourceRanges ?? [];
  const missingSources = sources.filter((source) => !existingSources.includes(source));
  if (missingPorts.length === 0 && missingSources.length === 0) return undefined;
  const merged = new Map<string, string[]>();
  for (const entry of existing.allowed ?? []) {
    const protocol = (entry.IPProtocol ?? '').toLowerCase();
    merged.set(protocol, [...(merged.get(protocol) ?? []), ...(entry.ports ?? [])]);
  }
  for (const token of missingPorts) {
    const [protocol = 'tcp', port = ''] = token.split(':');
    merged.set(protocol, [...(merged.get(protocol) ?? []), port]);
  }
  return {
    allowed: [...merged].map(([IPProtocol, ports]) => (ports.length === 0 ? { IPProtocol } : { IPProtocol, ports })),
    sourceRanges: [...existingSources, ...missingSources],
  };
}

/** The last path segment of a resource URL (`…/networks/default` → `default`). */
export function lastSegment(url: string | null | undefined): string {
  return (url ?? '').split('/').filter((part) => part !== '').pop() ?? '';
}
