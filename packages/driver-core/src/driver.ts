import type { FlagDefinition } from './flags.ts';
import type { JournalEntry, ResourceJournal } from './journal.ts';
import type { SweepReport } from './resource-sweep.ts';
import type { State } from './state.ts';

/** The spec version a driver implements. */
export type SpecificationVersion = 'v1';

/** Options every driver operation takes. */
export interface OperationOptions {
  /** Aborts the operation; a create that is aborted cleans up what it made. */
  signal?: AbortSignal;
}

/**
 * What the host wants a new machine to boot with. Drivers whose descriptor declares
 * `capabilities.userData` hand `userData` to the provider's cloud-init (combined with the user's own
 * user-data flag, see `combineUserData`); every driver pins `hostKeyFingerprint` when it is given.
 */
export interface BootConfig {
  /** cloud-init user data from the host (a `#cloud-config`, a script or MIME multipart). */
  userData?: string;
  /**
   * `SHA256:…` of the SSH host key the machine will present because `userData` installs it. The
   * driver's first SSH connection must verify it (refusing any other key) and store it as
   * `hostKeyFingerprint` in its machine data.
   */
  hostKeyFingerprint?: string;
}

/** Options of `Driver.create`. */
export interface CreateOptions extends OperationOptions {
  /** Boot configuration from the host (provisioning); absent for a bare machine. */
  boot?: BootConfig;
}

/** What a driver can do beyond the spec's operations; every field has a safe default. */
export interface DriverCapabilities<Config = Record<string, unknown>> {
  /** The machine is reachable over SSH (default true; `none` is not). */
  ssh?: boolean;
  /**
   * `create` passes `boot.userData` to a cloud-init image (default false: the host then runs the
   * same provisioning steps over SSH). A function decides per machine (e.g. an adopted instance
   * that already booted runs no new user data).
   */
  userData?: boolean | ((config: Config) => boolean);
}

/** True when `create` of a machine with this config hands `boot.userData` to cloud-init. */
export function acceptsBootUserData<Config>(descriptor: Pick<DriverDescriptor<Config>, 'capabilities'>, config: Config): boolean {
  const userData = descriptor.capabilities?.userData;
  return typeof userData === 'function' ? userData(config) : userData === true;
}

/** True unless the descriptor says the machine has no SSH (the `none` driver). */
export function offersSSH(descriptor: Pick<DriverDescriptor, 'capabilities'>): boolean {
  return descriptor.capabilities?.ssh !== false;
}

/** A progress event a driver reports while it works (`machine create` prints them). */
export interface ProgressEvent {
  /** A short step name, e.g. `upload-key`, `create-instance`, `wait-running`, `wait-ssh`. */
  step: string;
  /** One human line. */
  message: string;
  /** `start` when a step begins, `done` when it ends, `info` for anything else. */
  phase: 'start' | 'done' | 'info';
}

/** JSON values a driver may keep in its machine data. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Small per-machine data a driver keeps between runs (IP address, instance id), persisted by the host. */
export interface MachineDataStore {
  /** The current data. */
  read(): Readonly<Record<string, JsonValue>>;
  /** Merges `patch` (a key set to `null` is kept as null); resolves once durable. */
  write(patch: Readonly<Record<string, JsonValue>>): Promise<void>;
}

/** What the host gives a driver: where the machine lives and where to record what it makes. */
export interface DriverContext {
  /** The machine's name, already validated. */
  readonly machineName: string;
  /** The machine's own folder (keys go here, 0600). */
  readonly machineDir: string;
  /** Where every cloud resource is recorded the moment the API returns it. */
  readonly journal: ResourceJournal;
  /** The driver's persisted data. */
  readonly data: MachineDataStore;
  /** Progress sink; may be absent. */
  readonly onProgress?: (event: ProgressEvent) => void;
  /**
   * The id of the host's store of machine records (lowercase letters and digits). Drivers on the
   * resource model tag what they make `managed-by: machine-<storeId>` (see `managedByValue`), so
   * `machine sweep` of one store never touches another store's resources on the same account.
   */
  readonly storeId?: string;
}

/**
 * A machine driver: the operations of the Machine Driver Specification v1, plus the accessors the
 * reference's libmachine `drivers.Driver` has. One instance manages one machine. Every operation
 * rejects with a typed error (a `MachineError`) on failure.
 */
export interface Driver {
  /** The driver's name, e.g. `digitalocean`. */
  readonly driverName: string;
  /** The machine this driver manages. */
  readonly machineName: string;
  /** Checks that create can work (credentials, region, image) without making anything. */
  preCreateCheck(options?: OperationOptions): Promise<void>;
  /** Launches the instance with SSH access and its firewall; cleans up what it made on failure. */
  create(options?: CreateOptions): Promise<void>;
  /** Deletes the instance and every resource create made; succeeds on a half-made machine. */
  remove(options?: OperationOptions): Promise<void>;
  /** Starts a stopped instance and waits until it runs. */
  start(options?: OperationOptions): Promise<void>;
  /** Stops a running instance gracefully and waits until it is stopped. */
  stop(options?: OperationOptions): Promise<void>;
  /** Stops a running instance forcibly and waits until it is stopped. */
  kill(options?: OperationOptions): Promise<void>;
  /** Restarts a running instance and waits until it runs. */
  restart(options?: OperationOptions): Promise<void>;
  /** The current state; rejects with `NotFoundError` when the instance is gone. */
  getState(options?: OperationOptions): Promise<State>;
  /** The address the machine is reachable at. */
  getIP(options?: OperationOptions): Promise<string>;
  /** The host name or address for SSH. */
  getSSHHostname(options?: OperationOptions): Promise<string>;
  /** The SSH port. */
  getSSHPort(options?: OperationOptions): Promise<number>;
  /** The SSH user. */
  getSSHUsername(): string;
  /** The path of the private key for SSH. */
  getSSHKeyPath(): string;
  /** The Docker URL, `tcp://IP:2376`. */
  getURL(options?: OperationOptions): Promise<string>;
}

/** What a host passes to a descriptor's `createDriver`. */
export interface CreateDriverOptions<Config, Client = unknown> {
  /** The parsed flags (see `parseFlags`). */
  readonly config: Config;
  readonly context: DriverContext;
  /** An SDK client to use instead of building one (tests, the simulator). */
  readonly client?: Client;
}

/** One machine in a batch state query. */
export interface BatchStateRequest<Config> {
  readonly config: Config;
  readonly context: DriverContext;
}

/** A machine's state with its address, from a batch answer (`getStates`). */
export interface BatchStatus {
  readonly state: State;
  /** The address `getIP` would give, when the batch answer carries it. */
  readonly ip?: string;
}

/** What a host passes to a descriptor's `sweep`. */
export interface SweepRequest<Config, Client = unknown> {
  /** Parsed flags: credentials, region, API URL (the same flags as create). */
  readonly config: Config;
  /** An SDK client to use instead of building one. */
  readonly client?: Client;
  /** The host's store id: only resources tagged `managed-by: machine-<storeId>` are looked at. */
  readonly storeId?: string;
  /** The journal entries of every machine record in the store; what they claim is never swept. */
  readonly claimed: readonly JournalEntry[];
  /** Delete what is found (default: only list it). */
  readonly delete?: boolean;
  /** Leave resources younger than this (ms). */
  readonly minAgeMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
}

/**
 * A driver package's default export: plain data plus a factory. Importing it must not load the
 * provider's SDK.
 */
export interface DriverDescriptor<Config = Record<string, unknown>, Client = unknown> {
  readonly name: string;
  readonly specificationVersion: SpecificationVersion;
  /** One line for `machine drivers`. */
  readonly description: string;
  readonly flags: readonly FlagDefinition[];
  /** What the driver can do beyond the spec's operations (boot user data, SSH). */
  readonly capabilities?: DriverCapabilities<Config>;
  createDriver(options: CreateDriverOptions<Config, Client>): Driver;
  /**
   * Optional batch state query: the state of many machines with one API call per
   * provider-account-region. Returns a map by machine name; a value is a State, a
   * {@link BatchStatus} (the state and, when the same answer carries it, the public address, so a
   * host listing a fleet needs no call per machine), or the error for that machine.
   */
  getStates?(machines: readonly BatchStateRequest<Config>[], options?: OperationOptions): Promise<Map<string, State | BatchStatus | Error>>;
  /**
   * Optional: loads the provider's SDK and builds (and caches) the clients these configs need, one
   * set per provider-account-region, without calling the provider. A host awaits it before it starts
   * timing provider calls (`ls -t`), so a timeout counts the provider's time, not module loading.
   * It should not reject: a config whose clients cannot be built fails again, typed, in the call.
   */
  prepare?(configs: readonly Config[]): Promise<void>;
  /**
   * Optional: lists (and with `delete`, deletes) every resource at the provider that carries the
   * store's managed-by tag and that no record claims. Drivers on resource kinds implement it with
   * `sweepResources(model, request)`.
   */
  sweep?(request: SweepRequest<Config, Client>): Promise<SweepReport>;
}

/** Checks that an imported module is a valid driver descriptor; returns the problem or undefined. */
export function driverDescriptorProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'its default export is not an object';
  const candidate = value as Partial<DriverDescriptor>;
  if (typeof candidate.name !== 'string' || candidate.name === '') return 'it has no `name`';
  if (candidate.specificationVersion !== 'v1') return `it implements specification ${String(candidate.specificationVersion)}, not v1`;
  if (!Array.isArray(candidate.flags)) return 'it has no `flags` array';
  if (typeof candidate.createDriver !== 'function') return 'it has no `createDriver` function';
  return undefined;
}

/** Identity helper that types a descriptor. */
export function defineDriver<Config, Client = unknown>(descriptor: DriverDescriptor<Config, Client>): DriverDescriptor<Config, Client> {
  return descriptor;
}
