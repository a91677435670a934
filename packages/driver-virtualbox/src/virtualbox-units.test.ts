import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FlagDefinition, InvalidConfigError, NotFoundError, NotSupportedError, ProviderError, QuotaError, State } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machineCloudConfig, networkConfig, seedFiles } from './cloud-init-seed.ts';
import {
  cidrContains,
  collidingRoutes,
  dhcpRange,
  parseHostCidr,
  parseIpRoute,
  parseNetstatRoutes,
  parseProcNetRoute,
  staticGuestAddress,
} from './host-network.ts';
import { procNetRoute } from './test-support/fake-host.ts';
import {
  firstErrorLine,
  locateVBoxManage,
  parseBlocks,
  parseMachineReadable,
  parseVBoxVersion,
  parseVmList,
  VBoxManageError,
} from './vboxmanage.ts';
import { mapVBoxManageError } from './virtualbox-errors.ts';
import { virtualBoxFlags } from './virtualbox-flags.ts';
import { stateOfVmState } from './virtualbox-state.ts';

describe('host-only CIDR', () => {
  it('parses a host address with its network, mask and broadcast', () => {
    expect(parseHostCidr('192.168.59.1/24')).toEqual({ ip: '192.168.59.1', prefix: 24, netmask: '255.255.255.0', network: '192.168.59.0', broadcast: '192.168.59.255' });
    expect(parseHostCidr('10.20.30.40/20')).toMatchObject({ network: '10.20.16.0', broadcast: '10.20.31.255', netmask: '255.255.240.0' });
  });

  it('rejects network and broadcast addresses, odd prefixes and non-addresses with a reason', () => {
    expect(() => parseHostCidr('192.168.59.0/24')).toThrow(/network address; give the host's address, e.g. 192.168.59.1\/24/);
    expect(() => parseHostCidr('192.168.59.255/24')).toThrow(/broadcast/);
    expect(() => parseHostCidr('192.168.59.1/31')).toThrow(/between \/8 and \/29/);
    // A /30 has room for the host and the DHCP server only: no address is left to lease a VM.
    expect(() => parseHostCidr('192.168.59.1/30')).toThrow(/between \/8 and \/29/);
    expect(() => parseHostCidr('192.168.599.1/24')).toThrow(/not an IPv4 CIDR/);
    expect(() => parseHostCidr('fd00::1/64')).toThrow(/not an IPv4 CIDR/);
  });

  it('places the DHCP server beside the host and leases in the upper half', () => {
    expect(dhcpRange(parseHostCidr('192.168.59.1/24'))).toEqual({ serverIp: '192.168.59.2', lowerIp: '192.168.59.100', upperIp: '192.168.59.254' });
    expect(dhcpRange(parseHostCidr('192.168.59.150/24'))).toEqual({ serverIp: '192.168.59.1', lowerIp: '192.168.59.151', upperIp: '192.168.59.254' });
    expect(dhcpRange(parseHostCidr('10.0.0.1/28'))).toEqual({ serverIp: '10.0.0.2', lowerIp: '10.0.0.8', upperIp: '10.0.0.14' });
    // The host at the top of the range: leases stop below it instead of including it.
    expect(dhcpRange(parseHostCidr('192.168.59.254/24'))).toEqual({ serverIp: '192.168.59.1', lowerIp: '192.168.59.100', upperIp: '192.168.59.253' });
    expect(dhcpRange(parseHostCidr('192.168.59.100/24'))).toEqual({ serverIp: '192.168.59.1', lowerIp: '192.168.59.101', upperIp: '192.168.59.254' });
    // The smallest network allowed still leaves a lease that is neither the host nor the server.
    expect(dhcpRange(parseHostCidr('10.0.0.1/29'))).toEqual({ serverIp: '10.0.0.2', lowerIp: '10.0.0.4', upperIp: '10.0.0.6' });
    expect(dhcpRange(parseHostCidr('10.0.0.6/29'))).toEqual({ serverIp: '10.0.0.1', lowerIp: '10.0.0.4', upperIp: '10.0.0.5' });
    for (const host of ['10.0.0.1/29', '10.0.0.4/29', '10.0.0.6/29', '192.168.59.254/24', '172.16.0.200/24']) {
      const cidr = parseHostCidr(host);
      const range = dhcpRange(cidr);
      const [lower, upper, own, server] = [range.lowerIp, range.upperIp, cidr.ip, range.serverIp].map((ip) => Number(ip.split('.')[3]));
      expect(lower, host).toBeLessThanOrEqual(upper ?? 0);
      expect(own !== undefined && own >= (lower ?? 0) && own <= (upper ?? 0), `${host}: host address leased`).toBe(false);
      expect(server !== undefined && server >= (lower ?? 0) && server <= (upper ?? 0), `${host}: server address leased`).toBe(false);
    }
    expect(cidrContains(parseHostCidr('192.168.59.1/24'), '192.168.59.101')).toBe(true);
    expect(cidrContains(parseHostCidr('192.168.59.1/24'), '192.168.60.1')).toBe(false);
  });
});

describe('static guest address (--virtualbox-hostonly-no-dhcp)', () => {
  it('takes the lowest address that is not the network, the host, a DHCP server address or lease, or taken', () => {
    const cidr = parseHostCidr('192.168.59.1/24');
    // .0 network, .1 host, .2 the DHCP server create would add: .3.
    expect(staticGuestAddress(cidr, [])).toBe('192.168.59.3');
    expect(staticGuestAddress(cidr, ['192.168.59.3', '192.168.59.5'])).toBe('192.168.59.4');
    // Addresses outside the CIDR do not count.
    expect(staticGuestAddress(cidr, ['192.168.60.3', 'not-an-ip'])).toBe('192.168.59.3');
    // Another DHCP server's address and leases on the network are skipped.
    expect(staticGuestAddress(cidr, [], [{ lowerIp: '192.168.59.3', upperIp: '192.168.59.3' }, { lowerIp: '192.168.59.4', upperIp: '192.168.59.50' }])).toBe('192.168.59.51');
    // With the host elsewhere the DHCP server's place is .1, so the first static address is .2 (or .3 past the host).
    expect(staticGuestAddress(parseHostCidr('192.168.59.10/24'), [])).toBe('192.168.59.2');
    expect(staticGuestAddress(parseHostCidr('192.168.59.2/24'), [])).toBe('192.168.59.3');
  });

  it('never gives the broadcast address, and is undefined when the network is full', () => {
    // /29: .0 network, .1 host, .2 server, .4-.6 leases, .7 broadcast: only .3.
    const small = parseHostCidr('10.0.0.1/29');
    expect(staticGuestAddress(small, [])).toBe('10.0.0.3');
    expect(staticGuestAddress(small, ['10.0.0.3'])).toBeUndefined();
    // The whole lower part taken: never the leases (.100-.254) nor the broadcast (.255).
    const cidr = parseHostCidr('192.168.59.1/24');
    const lower = Array.from({ length: 97 }, (_, index) => `192.168.59.${index + 3}`);
    expect(staticGuestAddress(cidr, lower)).toBeUndefined();
    // A /8 skips a big reserved range at once.
    expect(staticGuestAddress(parseHostCidr('10.0.0.1/8'), [], [{ lowerIp: '10.0.0.3', upperIp: '10.255.255.253' }])).toBeUndefined();
  });
});

describe('host routes', () => {
  it('reads /proc/net/route (little-endian hex)', () => {
    expect(parseProcNetRoute(procNetRoute)).toEqual([
      { iface: 'eth0', network: '0.0.0.0', prefix: 0 },
      { iface: 'eth0', network: '10.0.2.0', prefix: 24 },
      { iface: 'docker0', network: '172.17.0.0', prefix: 16 },
    ]);
  });

  it('reads `ip -4 route` and macOS netstat output', () => {
    expect(
      parseIpRoute('default via 10.0.2.2 dev eth0 proto dhcp metric 100\n192.168.59.0/24 dev vboxnet0 proto kernel scope link src 192.168.59.1\n10.9.9.9 dev tun0 scope link\n'),
    ).toEqual([
      { iface: 'eth0', network: '0.0.0.0', prefix: 0 },
      { iface: 'vboxnet0', network: '192.168.59.0', prefix: 24 },
      { iface: 'tun0', network: '10.9.9.9', prefix: 32 },
    ]);
    expect(parseNetstatRoutes('Routing tables\n\nInternet:\nDestination        Gateway            Flags        Netif Expire\ndefault            192.168.1.1        UGScg          en0\n127                127.0.0.1          UCS            lo0\n192.168.1          link#6             UCS            en0      !\n10/8               utun3              UGSc         utun3\n')).toEqual([
      { iface: 'lo0', network: '127.0.0.0', prefix: 8 },
      { iface: 'en0', network: '192.168.1.0', prefix: 24 },
      { iface: 'utun3', network: '10.0.0.0', prefix: 8 },
    ]);
  });

  it('finds routes that overlap the CIDR, ignoring the default route and the host-only interfaces themselves', () => {
    const routes = parseProcNetRoute(procNetRoute);
    expect(collidingRoutes(parseHostCidr('192.168.59.1/24'), routes)).toEqual([]);
    expect(collidingRoutes(parseHostCidr('172.17.5.1/24'), routes)).toEqual([{ iface: 'docker0', network: '172.17.0.0', prefix: 16 }]);
    expect(collidingRoutes(parseHostCidr('10.0.0.1/16'), routes)).toEqual([{ iface: 'eth0', network: '10.0.2.0', prefix: 24 }]);
    expect(collidingRoutes(parseHostCidr('172.17.5.1/24'), routes, ['docker0'])).toEqual([]);
  });
});

describe('VBoxManage output', () => {
  it('reads versions, including distribution builds and warnings before the version', () => {
    expect(parseVBoxVersion('7.1.4r165100\n')).toMatchObject({ major: 7, minor: 1, patch: 4 });
    expect(parseVBoxVersion('6.1.50_Ubuntur161033')).toMatchObject({ major: 6, minor: 1, patch: 50 });
    expect(parseVBoxVersion('WARNING: The vboxdrv kernel module is not loaded.\n         ...\n5.2.44r139111\n')).toMatchObject({ major: 5, minor: 2 });
    expect(parseVBoxVersion('WARNING: only a warning')).toBeUndefined();
  });

  it('parses --machinereadable lines, quoted keys and values', () => {
    const info = parseMachineReadable('name="web 1"\nmemory=2048\nVMState="running"\n"SATA-0-0"="/m/disk.vdi"\nForwarding(0)="ssh,tcp,127.0.0.1,40022,,22"\ndescription="say \\"hi\\""\n');
    expect(info.get('name')).toBe('web 1');
    expect(info.get('memory')).toBe('2048');
    expect(info.get('VMState')).toBe('running');
    expect(info.get('SATA-0-0')).toBe('/m/disk.vdi');
    expect(info.get('Forwarding(0)')).toBe('ssh,tcp,127.0.0.1,40022,,22');
    expect(info.get('description')).toBe('say "hi"');
  });

  it('parses list blocks and VM lists', () => {
    const blocks = parseBlocks('Name:            vboxnet0\nIPAddress:       192.168.59.1\nNetworkMask:     255.255.255.0\n\nName:            vboxnet1\nIPAddress:       192.168.56.1\n');
    expect(blocks.map((block) => block.get('Name'))).toEqual(['vboxnet0', 'vboxnet1']);
    expect(blocks[0]?.get('NetworkMask')).toBe('255.255.255.0');
    expect(parseVmList('"web1" {0fbbb6a4-7a4d-4f3f-8a5b-1d7a3e4b9c21}\n"my vm" {A1B2C3D4-0000-4000-8000-000000000001}\n')).toEqual([
      { name: 'web1', uuid: '0fbbb6a4-7a4d-4f3f-8a5b-1d7a3e4b9c21' },
      { name: 'my vm', uuid: 'a1b2c3d4-0000-4000-8000-000000000001' },
    ]);
  });

  it('maps every VMState VBoxManage prints (machineStateToName, short form) onto the core State', () => {
    const expected: Record<string, State> = {
      poweroff: State.Stopped,
      saved: State.Saved,
      teleported: State.Stopped,
      aborted: State.Stopped,
      'aborted-saved': State.Saved,
      running: State.Running,
      paused: State.Paused,
      gurumeditation: State.Error,
      teleporting: State.Running,
      livesnapshotting: State.Running,
      starting: State.Starting,
      stopping: State.Stopping,
      saving: State.Stopping,
      restoring: State.Starting,
      teleportingpausedvm: State.Paused,
      teleportingin: State.Starting,
      deletingsnapshotlive: State.Running,
      deletingsnapshotlivepaused: State.Paused,
      onlinesnapshotting: State.Running,
      restoringsnapshot: State.Stopped,
      deletingsnapshot: State.Stopped,
      settingup: State.Stopped,
      snapshotting: State.Stopped,
    };
    expect(Object.fromEntries(Object.keys(expected).map((vmState) => [vmState, stateOfVmState(vmState)]))).toEqual(expected);
    // VBoxManage's fallback for a state it does not know, and the API's own name it never prints.
    expect(stateOfVmState('unknown')).toBe(State.None);
    expect(stateOfVmState('stuck')).toBe(State.None);
    expect(stateOfVmState(undefined)).toBe(State.None);
  });
});

describe('VBoxManage errors', () => {
  const failed = (stderr: string, args: string[] = ['showvminfo', 'web1']) => new VBoxManageError(args, { stdout: '', stderr, exitCode: 1 });
  const where = { machine: 'web1', operation: 'getState' };

  it('maps a missing VM to NotFoundError with the useful line', () => {
    const error = mapVBoxManageError(
      failed("VBoxManage: error: Could not find a registered machine named 'web1'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap\n"),
      where,
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(`machine "web1": getState: VBoxManage showvminfo: Could not find a registered machine named 'web1' (it may have been deleted outside machine; \`machine rm -f\` drops the local record)`);
  });

  it('maps a locked session to a retryable ProviderError with the VirtualBox code', () => {
    const error = mapVBoxManageError(
      failed("VBoxManage: error: The machine 'web1' is already locked for a session (or being unlocked)\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap\n", ['modifyvm', 'web1']),
      where,
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).providerCode).toBe('VBOX_E_INVALID_OBJECT_STATE');
    expect(error.isRetryable).toBe(true);
    expect(error.hint).toMatch(/another VBoxManage/);
  });

  it('maps a missing host-only interface, VT-x errors, refused ranges and missing VBoxManage', () => {
    expect(mapVBoxManageError(failed("VBoxManage: error: The host network interface named 'vboxnet7' could not be found\n", ['hostonlyif', 'remove']), where)).toBeInstanceOf(NotFoundError);
    const vtx = mapVBoxManageError(failed('VBoxManage: error: VT-x is not available (VERR_VMX_NO_VMX)\nVBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005)\n', ['startvm']), where);
    expect(vtx).toBeInstanceOf(NotSupportedError);
    expect(vtx.hint).toMatch(/VT-x/);
    const denied = mapVBoxManageError(failed('VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\n', ['hostonlyif', 'ipconfig']), where);
    expect(denied).toBeInstanceOf(InvalidConfigError);
    expect(denied.message).toMatch(/--virtualbox-hostonly-cidr: VirtualBox refused the host-only range .*networks\.conf/);
    const missing = mapVBoxManageError(new VBoxManageError(['--version'], { stdout: '', stderr: '', spawnCode: 'ENOENT' }), where);
    expect(missing).toBeInstanceOf(InvalidConfigError);
    expect(missing.message).toMatch(/--virtualbox-vboxmanage-path/);
    const driverMissing = mapVBoxManageError(
      failed('VBoxManage: error: The virtual machine has terminated unexpectedly during startup with exit code 1 (0x1)\nVBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005)\nKernel driver not installed (rc=-1908)\nThe VirtualBox Linux kernel driver is either not loaded or not set up correctly. VERR_VM_DRIVER_NOT_INSTALLED\n', ['startvm']),
      where,
    );
    expect(driverMissing).toBeInstanceOf(NotSupportedError);
    expect(driverMissing.hint).toMatch(/vboxconfig/);
    const full = mapVBoxManageError(failed('VBoxManage: error: Failed to clone medium\nVBoxManage: error: Could not write to the file (VERR_DISK_FULL)\n', ['clonemedium']), where);
    expect(full).toBeInstanceOf(QuotaError);
    expect(full.message).toMatch(/the host disk is full .*--virtualbox-disk-size/);
    const other = mapVBoxManageError(failed('0%...10%...\nVBoxManage: error: Something else went wrong\nVBoxManage: error: Details: code E_FAIL (0x80004005)\n', ['clonemedium']), where);
    expect(other).toBeInstanceOf(ProviderError);
    expect((other as ProviderError).providerCode).toBe('E_FAIL');
    expect(firstErrorLine('0%...\nVBoxManage: error: Details: code X\nVBoxManage: error: Real problem\n')).toBe('Real problem');
  });
});

describe('locateVBoxManage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'locate-'));
    for (const sub of ['msi', 'install', 'path']) {
      await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, sub)));
      await writeFile(join(dir, sub, 'VBoxManage'), '#!/bin/sh\n');
      await chmod(join(dir, sub, 'VBoxManage'), 0o755);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prefers the flag, then VBOX_MSI_INSTALL_PATH, VBOX_INSTALL_PATH, then PATH', async () => {
    const env = { VBOX_MSI_INSTALL_PATH: join(dir, 'msi'), VBOX_INSTALL_PATH: join(dir, 'install'), PATH: join(dir, 'path') };
    expect(await locateVBoxManage({ explicitPath: join(dir, 'path', 'VBoxManage'), env, platform: 'linux' })).toBe(join(dir, 'path', 'VBoxManage'));
    expect(await locateVBoxManage({ env, platform: 'linux' })).toBe(join(dir, 'msi', 'VBoxManage'));
    expect(await locateVBoxManage({ env: { VBOX_INSTALL_PATH: join(dir, 'install'), PATH: join(dir, 'path') }, platform: 'linux' })).toBe(join(dir, 'install', 'VBoxManage'));
    expect(await locateVBoxManage({ env: { PATH: `/nonexistent:${join(dir, 'path')}` }, platform: 'linux' })).toBe(join(dir, 'path', 'VBoxManage'));
  });

  it('names every place it looked in one line when VBoxManage is missing', async () => {
    const error = await locateVBoxManage({ env: { PATH: '/nonexistent-a:/nonexistent-b' }, platform: 'linux' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain('--virtualbox-vboxmanage-path/VBOX_MANAGE_PATH (unset)');
    expect(message).toContain('VBOX_MSI_INSTALL_PATH (unset)');
    expect(message).toContain('VBOX_INSTALL_PATH (unset)');
    expect(message).toContain('PATH (2 folders)');
    expect(message).toContain('/usr/bin/VBoxManage');
    const explicit = await locateVBoxManage({ explicitPath: join(dir, 'nope'), env: {}, platform: 'linux' }).catch((caught: unknown) => caught);
    expect((explicit as Error).message).toMatch(/--virtualbox-vboxmanage-path: .*nope is not an executable file/);
  });
});

describe('cloud-init seed', () => {
  const base = {
    machineName: 'web1',
    instanceId: 'web1-1234',
    sshUser: 'docker',
    publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4k docker@web1\n',
    natMac: '080027AABBCC',
    hostOnlyMac: '080027DDEEFF',
  };

  it('alone, user-data is the driver cloud-config with the user, key and passwordless sudo', () => {
    const files = seedFiles(base);
    expect(files.map((file) => file.name)).toEqual(['user-data', 'meta-data', 'network-config']);
    expect(files[0]?.content).toBe(machineCloudConfig(base));
    expect(files[0]?.content).toContain('  - name: "docker"\n');
    expect(files[0]?.content).toContain('      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4k docker@web1"\n');
    expect(files[0]?.content).toContain('sudo: "ALL=(ALL) NOPASSWD:ALL"');
    expect(files[1]?.content).toBe('instance-id: "web1-1234"\nlocal-hostname: "web1"\n');
  });

  it('combines host user data, the driver cloud-config and the user file into one MIME archive, in that order', () => {
    const userData = String(seedFiles({ ...base, bootUserData: '#cloud-config\nwrite_files: []\n', extraUserData: '#!/bin/sh\necho hi\n' })[0]?.content);
    expect(userData).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
    const host = userData.indexOf('write_files: []');
    const ours = userData.indexOf('ssh_authorized_keys');
    const script = userData.indexOf('echo hi');
    expect(host).toBeGreaterThan(0);
    expect(ours).toBeGreaterThan(host);
    expect(script).toBeGreaterThan(ours);
    expect(userData).toContain('Content-Type: text/x-shellscript');
  });

  it('network-config gives both adapters DHCP by MAC, routes only through NAT', () => {
    const config = networkConfig('080027AABBCC', '080027DDEEFF');
    expect(config).toContain('macaddress: "08:00:27:aa:bb:cc"');
    expect(config).toContain('macaddress: "08:00:27:dd:ee:ff"');
    expect(config).toMatch(/hostonly:[\s\S]*use-routes: false/);
  });

  it('network-config gives the host-only adapter a static address without DHCP, gateway or DNS when asked', () => {
    const config = networkConfig('080027AABBCC', '080027DDEEFF', '192.168.59.3/24');
    const [nat, hostOnly] = config.split('  hostonly:\n');
    expect(nat).toContain('dhcp4: true');
    expect(hostOnly).toBe('    match:\n      macaddress: "08:00:27:dd:ee:ff"\n    dhcp4: false\n    addresses:\n      - "192.168.59.3/24"\n');
    expect(seedFiles({ machineName: 'm', instanceId: 'i', sshUser: 'docker', publicKey: 'ssh-ed25519 AAAA k', natMac: '080027AABBCC', hostOnlyMac: '080027DDEEFF', hostOnlyAddress: '10.0.0.3/29' }).find((file) => file.name === 'network-config')?.content).toContain('      - "10.0.0.3/29"\n');
  });
});

describe('README', () => {
  /** The README's flag table: flag name → its env var and default cells, exactly as written. */
  async function flagTable(): Promise<Map<string, { envVar: string; fallback: string }>> {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const rows = new Map<string, { envVar: string; fallback: string }>();
    for (const line of readme.split('\n')) {
      const cells = /^\| `--([a-z0-9-]+)` \|/.test(line) ? line.split('|').map((cell) => cell.trim()) : undefined;
      if (cells === undefined) continue;
      rows.set((cells[1] ?? '').replace(/^`--|`$/g, ''), { envVar: cells[2] ?? '', fallback: cells[3] ?? '' });
    }
    return rows;
  }

  /** How the table writes a default: numbers bare, strings in backticks, bools as false, none as a dash. */
  function documentedDefault(flag: FlagDefinition): string | RegExp {
    if (flag.type === 'bool') return flag.default === true ? 'true' : 'false';
    if (typeof flag.default === 'number') return String(flag.default);
    if (typeof flag.default === 'string' && flag.default !== '') return `\`${flag.default}\``;
    return /^—/;
  }

  it('lists every flag, and only those, with its env var and exact default', async () => {
    const table = await flagTable();
    const flags = virtualBoxFlags as readonly FlagDefinition[];
    expect([...table.keys()].sort()).toEqual(flags.map((flag) => flag.name).sort());
    for (const flag of flags) {
      const row = table.get(flag.name);
      expect(row?.envVar, `env var of --${flag.name}`).toBe(flag.envVar === undefined ? '—' : `\`${flag.envVar}\``);
      const wanted = documentedDefault(flag);
      if (typeof wanted === 'string') expect(row?.fallback, `default of --${flag.name}`).toBe(wanted);
      else expect(row?.fallback, `default of --${flag.name}`).toMatch(wanted);
    }
  });
});
