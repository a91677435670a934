import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from './errors/invalid-config-error.ts';
import { anywhere, cidrProblem, machineFirewallRules, parseOpenPort } from './firewall.ts';

describe('firewall model', () => {
  it('opens SSH and Docker TLS from anywhere by default', () => {
    expect(machineFirewallRules()).toEqual([
      { protocol: 'tcp', fromPort: 22, toPort: 22, sources: anywhere, purpose: 'ssh' },
      { protocol: 'tcp', fromPort: 2376, toPort: 2376, sources: anywhere, purpose: 'docker' },
    ]);
  });

  it('adds user ports and ranges, skips duplicates, applies allowed CIDRs to all', () => {
    const rules = machineFirewallRules({ openPorts: ['8080', '8000-8010', '53/udp', '22'], allowedCidrs: ['203.0.113.0/24'] });
    expect(rules.map((rule) => `${rule.fromPort}-${rule.toPort}/${rule.protocol}`)).toEqual([
      '22-22/tcp',
      '2376-2376/tcp',
      '8080-8080/tcp',
      '8000-8010/tcp',
      '53-53/udp',
    ]);
    expect(rules.every((rule) => rule.sources.length === 1 && rule.sources[0] === '203.0.113.0/24')).toBe(true);
  });

  it('reports every bad port and CIDR with the flag names', () => {
    let caught: unknown;
    try {
      machineFirewallRules({ openPorts: ['http', '70000'], allowedCidrs: ['10.0.0.0/33', 'nope'], openPortFlag: 'x-open-port', allowedCidrFlag: 'x-allowed-cidr' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    expect((caught as InvalidConfigError).issues.map((issue) => issue.flag)).toEqual(['x-allowed-cidr', 'x-allowed-cidr', 'x-open-port', 'x-open-port']);
  });

  it('parses ports and CIDRs', () => {
    expect(parseOpenPort('443/TCP')).toEqual({ protocol: 'tcp', fromPort: 443, toPort: 443 });
    expect(parseOpenPort('10-5')).toHaveProperty('problem');
    expect(parseOpenPort('0')).toHaveProperty('problem');
    expect(cidrProblem('2001:db8::/32')).toBeUndefined();
    expect(cidrProblem('::/0')).toBeUndefined();
    expect(cidrProblem('2001:db8::/129')).toMatch(/over 128/);
    expect(cidrProblem('10.0.0.1')).toMatch(/not a CIDR/);
  });
});
