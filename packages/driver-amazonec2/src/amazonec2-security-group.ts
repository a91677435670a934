import type { IpPermission, SecurityGroup } from '@aws-sdk/client-ec2';
import type { FirewallRule } from '@machine/driver-core';

/** True when the group already lets `cidr` reach the rule's ports. */
function covers(permission: IpPermission, rule: FirewallRule, cidr: string): boolean {
  const allTraffic = permission.IpProtocol === '-1';
  if (!allTraffic) {
    if (permission.IpProtocol !== rule.protocol) return false;
    if ((permission.FromPort ?? -1) > rule.fromPort || (permission.ToPort ?? -1) < rule.toPort) return false;
  }
  return cidr.includes(':')
    ? (permission.Ipv6Ranges ?? []).some((range) => range.CidrIpv6 === cidr)
    : (permission.IpRanges ?? []).some((range) => range.CidrIp === cidr);
}

/** The ingress permissions a group lacks for the machine's rules (all of them for a new group). */
export function missingPermissions(group: Pick<SecurityGroup, 'IpPermissions'>, rules: readonly FirewallRule[], description: string): IpPermission[] {
  const permissions: IpPermission[] = [];
  for (const rule of rules) {
    const missing = rule.sources.filter((cidr) => !(group.IpPermissions ?? []).some((permission) => covers(permission, rule, cidr)));
    if (missing.length === 0) continue;
    const v4 = missing.filter((cidr) => !cidr.includes(':'));
    const v6 = missing.filter((cidr) => cidr.includes(':'));
    permissions.push({
      IpProtocol: rule.protocol,
      FromPort: rule.fromPort,
      ToPort: rule.toPort,
      ...(v4.length === 0 ? {} : { IpRanges: v4.map((CidrIp) => ({ CidrIp, Description: `${description} ${rule.purpose}` })) }),
      ...(v6.length === 0 ? {} : { Ipv6Ranges: v6.map((CidrIpv6) => ({ CidrIpv6, Description: `${description} ${rule.purpose}` })) }),
    });
  }
  return permissions;
}
