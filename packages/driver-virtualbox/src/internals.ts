/**
 * @machine/driver-virtualbox/internals: the driver's building blocks (the ISO 9660 writer, the
 * NoCloud seed, VBoxManage lookup and parsing, host routes, the image cache, error mapping). Kept
 * off the main entry so importing the driver stays cheap.
 */
export { machineCloudConfig, networkConfig, randomVirtualBoxMac, type SeedOptions, seedFiles, writeSeedIso } from './cloud-init-seed.ts';
export {
  cidrContains,
  collidingRoutes,
  type AddressRange,
  dhcpRange,
  type HostCidr,
  type HostRoute,
  parseHostCidr,
  parseIpRoute,
  parseNetstatRoutes,
  parseProcNetRoute,
  readHostRoutes,
  staticGuestAddress,
} from './host-network.ts';
export { buildIsoImage, type IsoFile, type IsoImageOptions } from './iso9660.ts';
export {
  defaultVBoxManageTimeouts,
  execFileRunner,
  locateVBoxManage,
  parseBlocks,
  parseMachineReadable,
  parseVBoxVersion,
  parseVmList,
  type VBoxManageOutput,
  type VBoxManageRunner,
  type VBoxManageTimeouts,
  VBoxManageError,
  vboxManageTimeout,
} from './vboxmanage.ts';
export { freeLoopbackPort, isLoopbackPortFree } from './loopback-port.ts';
export { createVBoxClient, type VBoxClient, type VBoxClientOptions, withHostOnlyLock } from './vbox-client.ts';
export { currentHost, minimumVersion, VirtualBoxDriver, type VirtualBoxDriverOptions } from './virtualbox-driver.ts';
export {
  dhcpServerKind,
  diskKind,
  hostOnlyInterfaceKind,
  hostOnlyIpKey,
  hostOnlyNetworkKind,
  hostOnlyTag,
  isAmbiguousVBoxFailure,
  managedByKey,
  ResourceKind,
  seedIsoKind,
  virtualBoxKinds,
  virtualBoxModel,
  vmKind,
} from './virtualbox-resources.ts';
export { sweepVirtualBox } from './virtualbox-sweep.ts';
export { defaultTimings, type VirtualBoxTimings } from './virtualbox-timings.ts';
export { mapVBoxManageError } from './virtualbox-errors.ts';
export { checksumFromSums, imageFileName, resolveImage, sha256File } from './virtualbox-image.ts';
export { stateOfVmState } from './virtualbox-state.ts';
