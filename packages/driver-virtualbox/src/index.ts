/**
 * @machine/driver-virtualbox: local VirtualBox VMs for machine, driven only through VBoxManage
 * (execFile with argument arrays). VMs boot an Ubuntu LTS cloud image with a cloud-init NoCloud
 * seed ISO the driver writes itself. Importing this module starts no process and reads no file.
 */
import { defineDriver, type DriverDescriptor, guardDriver } from '@machine/driver-core';
import type { VBoxManageRunner } from './vboxmanage.ts';
import { VirtualBoxDriver, type VirtualBoxHost, type VirtualBoxTimings } from './virtualbox-driver.ts';
import { virtualBoxErrorMapper } from './virtualbox-errors.ts';
import { type VirtualBoxConfig, virtualBoxFlags } from './virtualbox-flags.ts';

export { buildIsoImage, type IsoFile, type IsoImageOptions } from './iso9660.ts';
export { machineCloudConfig, networkConfig, seedFiles, type SeedOptions, writeSeedIso } from './cloud-init-seed.ts';
export { collidingRoutes, dhcpRange, type HostCidr, type HostRoute, parseHostCidr, readHostRoutes } from './host-network.ts';
export {
  execFileRunner,
  locateVBoxManage,
  parseMachineReadable,
  parseVBoxVersion,
  type VBoxManageOutput,
  type VBoxManageRunner,
  VBoxManageError,
} from './vboxmanage.ts';
export {
  currentHost,
  defaultTimings,
  minimumVersion,
  ResourceKind,
  VirtualBoxDriver,
  type VirtualBoxHost,
  type VirtualBoxTimings,
} from './virtualbox-driver.ts';
export { mapVBoxManageError } from './virtualbox-errors.ts';
export { defaultHostOnlyCidr, defaultImageUrl, type VirtualBoxConfig, virtualBoxFlags } from './virtualbox-flags.ts';
export { checksumFromSums, resolveImage } from './virtualbox-image.ts';
export { stateOfVmState } from './virtualbox-state.ts';

/** Options for {@link createVirtualBoxDescriptor}. */
export interface VirtualBoxDescriptorOptions {
  /** Poll and retry timing (tests shrink it). */
  timings?: Partial<VirtualBoxTimings>;
  /** Host facts (platform, env, /proc paths, image cache folder); tests pin them. */
  host?: Partial<VirtualBoxHost>;
}

/** A virtualbox descriptor with custom timing or host facts; the default export uses the real host. */
export function createVirtualBoxDescriptor(options: VirtualBoxDescriptorOptions = {}): DriverDescriptor<VirtualBoxConfig, VBoxManageRunner> {
  return defineDriver<VirtualBoxConfig, VBoxManageRunner>({
    name: 'virtualbox',
    specificationVersion: 'v1',
    description: 'Local VirtualBox VMs from an Ubuntu LTS cloud image (VBoxManage 6.1+)',
    flags: virtualBoxFlags,
    capabilities: { ssh: true, userData: true },
    createDriver: ({ config, context, client }) =>
      guardDriver(
        new VirtualBoxDriver({
          config,
          context,
          ...(client === undefined ? {} : { client }),
          ...(options.timings === undefined ? {} : { timings: options.timings }),
          ...(options.host === undefined ? {} : { host: options.host }),
        }),
        virtualBoxErrorMapper,
      ),
  });
}

/** The virtualbox driver descriptor. */
const virtualBoxDriver = createVirtualBoxDescriptor();
export default virtualBoxDriver;
