import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { combineUserData } from '@machine/driver-core';
import { buildIsoImage, type IsoFile } from './iso9660.ts';

/** What goes into a machine's NoCloud seed. */
export interface SeedOptions {
  machineName: string;
  /** cloud-init runs its per-instance modules once per instance id. */
  instanceId: string;
  sshUser: string;
  /** The machine key's public line (`ssh-ed25519 AAAA… comment`). */
  publicKey: string;
  /** The host's provisioning user data (`CreateOptions.boot.userData`). */
  bootUserData?: string | undefined;
  /** The user's own user data (`--virtualbox-userdata` file content). */
  extraUserData?: string | undefined;
  /** MAC addresses (`080027AABBCC`) of the NAT and host-only adapters, for the network config. */
  natMac: string;
  hostOnlyMac: string;
  /**
   * `--virtualbox-hostonly-no-dhcp`: the host-only adapter's static address with its prefix
   * (`192.168.59.3/24`) instead of DHCP.
   */
  hostOnlyAddress?: string | undefined;
}

/** A VirtualBox MAC address (Oracle's 08:00:27 prefix), as `modifyvm --macaddressN` takes it. */
export function randomVirtualBoxMac(): string {
  return `080027${randomBytes(3).toString('hex').toUpperCase()}`;
}

function colonMac(mac: string): string {
  return (mac.toLowerCase().match(/../g) ?? []).join(':');
}

/** The driver's own cloud-config: the SSH user with the machine key and passwordless sudo. */
export function machineCloudConfig(options: Pick<SeedOptions, 'machineName' | 'sshUser' | 'publicKey'>): string {
  return [
    '#cloud-config',
    `hostname: ${JSON.stringify(options.machineName)}`,
    'users:',
    `  - name: ${JSON.stringify(options.sshUser)}`,
    '    groups: [sudo]',
    '    shell: /bin/bash',
    '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
    '    lock_passwd: true',
    '    ssh_authorized_keys:',
    `      - ${JSON.stringify(options.publicKey.trim())}`,
    'ssh_pwauth: false',
    '',
  ].join('\n');
}

/**
 * Netplan v2 for both adapters, matched by MAC (cloud-init's fallback config would bring up just
 * the first NIC). The NAT adapter uses DHCP and is the only one that may set the default route and
 * DNS. The host-only adapter uses DHCP too, or, given `hostOnlyAddress` (`ip/prefix`), that static
 * address: no DHCP, no gateway, no DNS, only the on-link route of its network.
 */
export function networkConfig(natMac: string, hostOnlyMac: string, hostOnlyAddress?: string): string {
  const hostOnly =
    hostOnlyAddress === undefined
      ? ['    dhcp4: true', '    dhcp4-overrides:', '      use-routes: false', '      use-dns: false']
      : ['    dhcp4: false', '    addresses:', `      - "${hostOnlyAddress}"`];
  return [
    'version: 2',
    'ethernets:',
    '  nat:',
    '    match:',
    `      macaddress: "${colonMac(natMac)}"`,
    '    dhcp4: true',
    '  hostonly:',
    '    match:',
    `      macaddress: "${colonMac(hostOnlyMac)}"`,
    ...hostOnly,
    '',
  ].join('\n');
}

/** The seed's files: `user-data`, `meta-data` and `network-config`. */
export function seedFiles(options: SeedOptions): IsoFile[] {
  const userData = combineUserData([options.bootUserData, machineCloudConfig(options), options.extraUserData]) ?? '';
  const metaData = `instance-id: ${JSON.stringify(options.instanceId)}\nlocal-hostname: ${JSON.stringify(options.machineName)}\n`;
  return [
    { name: 'user-data', content: userData },
    { name: 'meta-data', content: metaData },
    { name: 'network-config', content: networkConfig(options.natMac, options.hostOnlyMac, options.hostOnlyAddress) },
  ];
}

/** Writes the NoCloud seed ISO (volume label `cidata`) to `path`, 0600 (it may carry secrets from user data). */
export async function writeSeedIso(path: string, options: SeedOptions): Promise<void> {
  await writeFile(path, buildIsoImage({ volumeId: 'cidata', files: seedFiles(options) }), { mode: 0o600 });
}
