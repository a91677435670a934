/**
 * @machine/cloud-sim: a loopback cloud simulator the official SDKs talk to. Start it with
 * {@link startSim}; see README.md for fault injection and adding a provider front end.
 */
export type {
  ApiFaultRule,
  FaultDecision,
  FaultErrorKind,
  FaultHandle,
  FaultSpec,
  InstanceFaultKind,
  InstanceFaultRule,
  InstanceSelector,
  ThrottleSpec,
} from './core/faults.ts';
export { chaosFaultRule, FAULT_ERROR_KINDS, FaultInjector, INSTANCE_FAULT_KINDS, parseFaultSpecs } from './core/faults.ts';
export { IdGenerator } from './core/ids.ts';
export { InstanceSSHServers } from './core/instance-ssh.ts';
export { type AddressChangeListener, DEFAULT_DELAYS, InstanceLifecycle, type LaunchSpec, type LifecycleDelays } from './core/lifecycle.ts';
export { LoopbackIpAllocator } from './core/loopback-ips.ts';
export {
  ApiError,
  type ProviderContext,
  type ProviderDefinition,
  type ProviderFrontEnd,
  type Route,
  type SimRequest,
  type SimResponse,
} from './core/provider-front-end.ts';
export { RequestLog, type RequestLogEntry } from './core/request-log.ts';
export { type InstanceState, type LeakedResource, type SimInstance, type SimResource, SimStore } from './core/store.ts';
export { type DigitalOceanOptions, digitalOceanProvider, SIM_DIGITALOCEAN_TOKEN } from './providers/digitalocean/index.ts';
export { type BootPlan, planBoot, runcmdLine, type WriteFileEntry } from './guest/cloud-config.ts';
export { DOCKER_ENGINE, type DaemonSettings } from './guest/dockerd.ts';
export { BUILT_IN_DOWNLOADS, DOCKER_INSTALL_SCRIPT } from './guest/downloads.ts';
export { Guest, type GuestOptions, InstanceGuests } from './guest/guest.ts';
export { splitUserData, type UserDataPart } from './guest/user-data.ts';
export { PROVIDERS } from './providers/registry.ts';
export { EmulatedShell, type HostFacts } from './shell/emulated-shell.ts';
export type { CloudInitState, GuestSystem, SystemResult } from './shell/guest-system.ts';
export { type FileSystemNode, MemoryFileSystem } from './shell/memory-filesystem.ts';
export { serveSftp } from './shell/sftp-handler.ts';
export { createUbuntuFileSystem, type ImageSeed } from './shell/ubuntu-image.ts';
export { type Sim, type SimOptions, startSim } from './sim.ts';
export {
  type CountedSelector,
  createRealism,
  DEFAULT_TIME_SCALE,
  type Realism,
  type RealismOptions,
  type RealismProfile,
  REALISM_PROFILES,
  realismOf,
} from './core/realism.ts';
export type { AmazonEC2Options, AmazonEC2Realism } from './providers/amazonec2/index.ts';
export type { GoogleOptions, GoogleRealism } from './providers/google/index.ts';
