import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidConfigError, type SweepReport, type SweepRequest, sweepResources } from '@machine/driver-core';
import type { VirtualBoxDescriptorOptions } from './index.ts';
import { createVBoxClient } from './vbox-client.ts';
import { execFileRunner, locateVBoxManage, type VBoxManageRunner } from './vboxmanage.ts';
import { currentHost } from './virtualbox-driver.ts';
import type { VirtualBoxConfig } from './virtualbox-flags.ts';
import { hostOnlyInterfaceKind, hostOnlyNetworkKind, virtualBoxModel } from './virtualbox-resources.ts';
import { defaultTimings } from './virtualbox-timings.ts';

/**
 * `machine sweep` for VirtualBox: the VMs whose extra data `machine/managed-by` names this store
 * and that no record claims, and the host-only interfaces and networks machine tagged that no VM
 * uses and no record claims. With `delete`, a second look finds the interfaces that only the
 * swept VMs used. The host-only lock is the one under `MACHINE_STORAGE_PATH` (default
 * `~/.docker/machine`), or the descriptor's `host.cacheDir`. A host without VBoxManage has
 * nothing to sweep (an empty report) unless `--virtualbox-vboxmanage-path` names one.
 */
export async function sweepVirtualBox(request: SweepRequest<VirtualBoxConfig, VBoxManageRunner>, options: VirtualBoxDescriptorOptions): Promise<SweepReport> {
  const timings = { ...defaultTimings, ...options.timings };
  const host = { ...currentHost(), ...options.host };
  let runner: Promise<VBoxManageRunner> | undefined;
  const client = createVBoxClient({
    runner: () => {
      const given = request.client;
      runner ??=
        given !== undefined
          ? Promise.resolve(given)
          : locateVBoxManage({ explicitPath: request.config.vboxManagePath, env: host.env, platform: host.platform }).then((path) => execFileRunner(path, timings.vboxManage));
      return runner;
    },
    machine: 'sweep',
    timings,
    lockDir: host.cacheDir ?? join(host.env.MACHINE_STORAGE_PATH ?? join(homedir(), '.docker', 'machine'), 'cache', 'virtualbox'),
  });
  const model = virtualBoxModel(async () => client, timings);
  if (request.client === undefined && (request.config.vboxManagePath ?? '') === '') {
    // No VirtualBox on this host (and none named): nothing of it to sweep. `machine sweep` without
    // -d asks every driver, and a host without VirtualBox must not fail it.
    const located = await locateVBoxManage({ env: host.env, platform: host.platform }).catch((error: unknown) => {
      if (InvalidConfigError.isInstance(error)) return undefined;
      throw error;
    });
    if (located === undefined) return { resources: [] };
  }
  const first = await sweepResources(model, request);
  if (request.delete !== true || first.resources.length === 0) return first;
  const freed = await sweepResources({ ...model, kinds: [hostOnlyInterfaceKind, hostOnlyNetworkKind] }, request);
  return { resources: [...first.resources, ...freed.resources] };
}
