/**
 * @machine/driver-virtualbox: local VirtualBox VMs for machine, driven only through VBoxManage
 * (execFile with argument arrays). VMs boot an Ubuntu LTS cloud image with a cloud-init NoCloud
 * seed ISO the driver writes itself. Importing this module loads the flag schema and the
 * descriptor only: the implementation loads on a driver's first operation. Its building blocks
 * are exported from `@machine/driver-virtualbox/internals`.
 */
import { defineDriver, type DriverDescriptor, guardDriver } from '@machine/driver-core';
import { LazyVirtualBoxDriver } from './lazy-driver.ts';
import type { VBoxManageRunner } from './vboxmanage.ts';
import type { VirtualBoxHost } from './virtualbox-driver.ts';
import { type VirtualBoxConfig, virtualBoxFlags } from './virtualbox-flags.ts';
import type { VirtualBoxTimings } from './virtualbox-timings.ts';

export type { VBoxManageOutput, VBoxManageRunner, VBoxManageTimeouts } from './vboxmanage.ts';
export type { VirtualBoxHost } from './virtualbox-driver.ts';
export { defaultHostOnlyCidr, defaultImageUrl, type VirtualBoxConfig, virtualBoxFlags } from './virtualbox-flags.ts';
export type { VirtualBoxTimings } from './virtualbox-timings.ts';

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
      // LazyVirtualBoxDriver already maps VBoxManage errors to typed ones.
      guardDriver(
        new LazyVirtualBoxDriver({
          config,
          context,
          ...(client === undefined ? {} : { client }),
          ...(options.timings === undefined ? {} : { timings: options.timings }),
          ...(options.host === undefined ? {} : { host: options.host }),
        }),
      ),
    // Loaded on use, like the driver: listing drivers stays cheap.
    sweep: async (request) => (await import('./virtualbox-sweep.ts')).sweepVirtualBox(request, options),
  });
}

/** The virtualbox driver descriptor. */
const virtualBoxDriver = createVirtualBoxDescriptor();
export default virtualBoxDriver;
