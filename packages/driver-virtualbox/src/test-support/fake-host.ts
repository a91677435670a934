import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VirtualBoxDescriptorOptions } from '../index.ts';
import type { VirtualBoxTimings } from '../virtualbox-timings.ts';

/** Timing for tests: fast polls, few lock retries. */
export const fastTimings: Partial<VirtualBoxTimings> = { pollInterval: 20, maxPollInterval: 100, ipTimeout: 5000, lockRetries: 2, lockRetryDelay: 10 };

/** /proc/net/route of a host on 10.0.2.0/24 with a default route and a docker bridge on 172.17.0.0/16. */
export const procNetRoute = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t00000000\t0202000A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
  'eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
  'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  '',
].join('\n');

/** Writes the host facts (cpuinfo with vmx, a routing table, a tiny image) into `dir` and returns descriptor options for them. */
export async function fakeHost(
  dir: string,
  options: { cpuFlags?: string; routes?: string } = {},
): Promise<{ descriptorOptions: VirtualBoxDescriptorOptions; imagePath: string; cpuInfoPath: string; routePath: string; cacheDir: string }> {
  await mkdir(dir, { recursive: true });
  const cpuInfoPath = join(dir, 'cpuinfo');
  const routePath = join(dir, 'route');
  const imagePath = join(dir, 'ubuntu-24.04-server-cloudimg-amd64.vmdk');
  const cacheDir = join(dir, 'cache');
  await writeFile(cpuInfoPath, `processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: ${options.cpuFlags ?? 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx sse sse2'}\n`);
  await writeFile(routePath, options.routes ?? procNetRoute);
  await writeFile(imagePath, Buffer.concat([Buffer.from('# Disk DescriptorFile\nversion=1\n'), Buffer.alloc(4096, 7)]));
  return {
    descriptorOptions: {
      timings: fastTimings,
      host: { platform: 'linux', env: {}, cpuInfoPath, routes: { procNetRoute: routePath }, cacheDir, hostCpuCount: 4 },
    },
    imagePath,
    cpuInfoPath,
    routePath,
    cacheDir,
  };
}
