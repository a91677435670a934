import { defineDriver, guardDriver } from '@machine/driver-core';
import { GenericDriver } from './generic-driver.ts';
import { type GenericDriverConfig, genericFlags } from './generic-flags.ts';

export { GenericDriver, type GenericDriverOptions, type GenericDriverTimeouts } from './generic-driver.ts';
export { type GenericDriverConfig, genericFlags } from './generic-flags.ts';
export { type CredentialSources, resolveSSHCredentials, type SSHCredentials } from './generic-ssh-credentials.ts';

/** The generic driver: any existing host reachable over SSH. */
const genericDriver = defineDriver<GenericDriverConfig>({
  name: 'generic',
  specificationVersion: 'v1',
  description: 'An existing host reachable over SSH (no power control: stop/kill run sudo poweroff, restart sudo reboot)',
  flags: genericFlags,
  // No cloud-init run by this driver: the host provisions over SSH.
  capabilities: { userData: false },
  createDriver: ({ config, context }) => guardDriver(new GenericDriver(config, context)),
});

export default genericDriver;
