import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { VirtualBoxConfig } from './virtualbox-flags.ts';

/** The shared folder create adds: `--virtualbox-share-folder`, else the OS's home folders when they exist; none with `--virtualbox-no-share`. */
export function sharedFolder(config: VirtualBoxConfig, platform: NodeJS.Platform): { name: string; hostPath: string } | undefined {
  if (config.noShare) return undefined;
  if (config.shareFolder !== undefined && config.shareFolder !== '') {
    const colon = config.shareFolder.lastIndexOf(':');
    return { hostPath: config.shareFolder.slice(0, colon), name: config.shareFolder.slice(colon + 1) };
  }
  const defaults: Partial<Record<NodeJS.Platform, { name: string; hostPath: string }>> = {
    linux: { name: 'hosthome', hostPath: '/home' },
    darwin: { name: 'Users', hostPath: '/Users' },
    win32: { name: 'c/Users', hostPath: 'C:\\Users' },
  };
  const share = defaults[platform];
  return share !== undefined && existsSync(share.hostPath) ? share : undefined;
}

/** What the VM's one `modifyvm` at create sets. */
export interface VmNetwork {
  sshPort: number;
  natMac: string;
  hostOnlyMac: string;
  hostOnlyInterface: string;
  hostOnlyMode: 'if' | 'net';
}

/** The `modifyvm` arguments that give a new VM every setting: firmware, CPUs, memory, boot order, both adapters, the SSH forward, the serial console log. */
export function modifyVmArgs(config: VirtualBoxConfig, host: { hostCpuCount: number; machineDir: string }, uuid: string, network: VmNetwork): string[] {
  const cpus = config.cpuCount === -1 ? Math.min(32, host.hostCpuCount) : config.cpuCount;
  const onOff = (value: boolean) => (value ? 'on' : 'off');
  return [
    'modifyvm',
    uuid,
    '--firmware',
    'bios',
    '--cpus',
    String(cpus),
    '--memory',
    String(config.memory),
    '--acpi',
    'on',
    '--ioapic',
    'on',
    '--rtcuseutc',
    'on',
    '--boot1',
    'disk',
    '--boot2',
    'dvd',
    '--boot3',
    'none',
    '--boot4',
    'none',
    '--nic1',
    'nat',
    '--nictype1',
    config.natNicType,
    '--cableconnected1',
    'on',
    '--macaddress1',
    network.natMac,
    '--natdnshostresolver1',
    onOff(config.hostDnsResolver),
    '--natdnsproxy1',
    onOff(!config.noDnsProxy),
    '--natpf1',
    `ssh,tcp,127.0.0.1,${network.sshPort},,22`,
    '--nic2',
    network.hostOnlyMode === 'net' ? 'hostonlynet' : 'hostonly',
    '--nictype2',
    config.hostOnlyNicType,
    '--nicpromisc2',
    config.hostOnlyNicPromisc,
    network.hostOnlyMode === 'net' ? '--host-only-net2' : '--hostonlyadapter2',
    network.hostOnlyInterface,
    '--cableconnected2',
    'on',
    '--macaddress2',
    network.hostOnlyMac,
    // Ubuntu cloud images log to ttyS0 and stall at boot without a serial port; the log helps debugging.
    '--uart1',
    '0x3F8',
    '4',
    '--uartmode1',
    'file',
    join(host.machineDir, 'console.log'),
  ];
}
