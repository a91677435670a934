import { join } from 'node:path';
import {
  type Driver,
  type DriverContext,
  type DriverDescriptor,
  type FlagDefinition,
  type JournalEntry,
  type JsonValue,
  MemoryDataStore,
  MemoryJournal,
  NotSupportedError,
  parseFlags,
} from '@machine/driver-core';
import { type GobValue, gob } from '../gob/gob-types.ts';
import { createFlagsType, fromRpcFlags, legacyApiVersion, stateNumber, toMcnFlag } from '../protocol/driver-rpc-types.ts';
import type { RpcReply, RpcService } from '../rpc/rpc-server.ts';
import { emptyStructType } from '../rpc/rpc-types.ts';

/** What the service does besides answering calls. */
export interface LegacyDriverServiceOptions {
  /** Environment for the flags' env vars (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A line the host shows at Info level (the plugin's stdout after the address). */
  readonly info?: (line: string) => void;
  /** A line the host shows only with --debug (the plugin's stderr). */
  readonly debug?: (line: string) => void;
  /** Called on each Heartbeat. */
  readonly onHeartbeat?: () => void;
  /** Called once the Close reply is written. */
  readonly onClose?: () => void;
}

const empty: RpcReply = { type: emptyStructType, value: {} };
const utf8 = new TextDecoder();

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The value a Go host sends for a flag the user did not give: docker-machine sends every flag with
 * its declared default ("" , 0, [] or false). Those fall through to the env var and the driver's
 * own default, as they would in `machine create`.
 */
function givenValue(flag: FlagDefinition, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (flag.type === 'string' && value === '') return undefined;
  if (flag.type === 'string[]' && Array.isArray(value) && value.length === 0) return undefined;
  if (flag.type === 'int' && value === 0 && flag.default === undefined) return undefined;
  if (flag.type === 'bool' && value === false) return undefined;
  return value;
}

/**
 * The `RPCServerDriver` methods for one driver-core descriptor, as libmachine's rpcdriver serves a
 * Go driver. The machine's whole state (flag values, driver data, resource journal) travels in
 * the config JSON: GetConfigRaw gives it to the host, which stores it and gives it back with
 * SetConfigRaw in the next command (each command runs a new plugin process).
 */
export function legacyDriverService<Config>(descriptor: DriverDescriptor<Config>, options: LegacyDriverServiceOptions = {}): RpcService {
  const env = options.env ?? process.env;
  let raw: Record<string, unknown> = {};
  let flagValues: Record<string, unknown> = {};
  let data = new MemoryDataStore();
  let journal = new MemoryJournal();
  let driver: Driver | undefined;
  let lastIP = '';
  let lastSSHPort = 0;

  const machineName = () => (typeof raw.MachineName === 'string' ? raw.MachineName : '');
  const storePath = () => (typeof raw.StorePath === 'string' && raw.StorePath !== '' ? raw.StorePath : process.cwd());

  const currentDriver = (): Driver => {
    if (driver !== undefined) return driver;
    if (machineName() === '') throw new Error(`the ${descriptor.name} plugin has no machine name: the host must call SetConfigRaw first`);
    const config = parseFlags(descriptor.flags, flagValues, { env });
    const context: DriverContext = {
      machineName: machineName(),
      machineDir: join(storePath(), 'machines', machineName()),
      journal,
      data,
      onProgress: (event) => options.info?.(event.message),
    };
    // parseFlags produced the config from the descriptor's own flags.
    driver = descriptor.createDriver({ config: config as Config, context });
    return driver;
  };

  const run = (operation: (target: Driver) => Promise<unknown>) => async (): Promise<RpcReply> => {
    await operation(currentDriver());
    return empty;
  };
  const text = (value: string): RpcReply => ({ type: gob.string, value });
  const int = (value: number): RpcReply => ({ type: gob.int, value });

  const configJson = (): Record<string, unknown> => {
    let sshUser = typeof raw.SSHUser === 'string' ? raw.SSHUser : '';
    let sshKeyPath = typeof raw.SSHKeyPath === 'string' ? raw.SSHKeyPath : '';
    try {
      const current = currentDriver();
      sshUser = current.getSSHUsername();
      sshKeyPath = current.getSSHKeyPath();
    } catch (error) {
      options.debug?.(`GetConfigRaw: ${(error as Error).message}`);
    }
    return {
      ...raw,
      // libmachine's BaseDriver fields, which `inspect` and the host's SSH provisioning read.
      IPAddress: lastIP !== '' ? lastIP : (raw.IPAddress ?? ''),
      MachineName: machineName(),
      SSHUser: sshUser,
      SSHPort: lastSSHPort !== 0 ? lastSSHPort : (raw.SSHPort ?? 0),
      SSHKeyPath: sshKeyPath,
      StorePath: typeof raw.StorePath === 'string' ? raw.StorePath : '',
      SwarmMaster: raw.SwarmMaster ?? false,
      SwarmHost: raw.SwarmHost ?? '',
      SwarmDiscovery: raw.SwarmDiscovery ?? '',
      DriverName: descriptor.name,
      // This driver's own state: the flag values by name, its data and its resource journal.
      Flags: flagValues,
      Data: data.read(),
      Journal: journal.entries(),
    };
  };

  return {
    GetVersion: () => int(legacyApiVersion),
    Heartbeat: () => {
      options.onHeartbeat?.();
      return empty;
    },
    Close: () => ({ ...empty, afterReply: () => options.onClose?.() }),
    GetCreateFlags: () => ({ type: createFlagsType, value: descriptor.flags.map(toMcnFlag) as GobValue[] }),
    SetConfigRaw: (args) => {
      if (!(args.value instanceof Uint8Array)) throw new Error('SetConfigRaw expects the config JSON as []byte');
      const parsed: unknown = JSON.parse(utf8.decode(args.value));
      if (!isRecord(parsed)) throw new Error('SetConfigRaw expects a JSON object');
      raw = parsed;
      flagValues = isRecord(parsed.Flags) ? { ...parsed.Flags } : flagValues;
      if (isRecord(parsed.Data)) data = new MemoryDataStore(parsed.Data as Record<string, JsonValue>);
      if (Array.isArray(parsed.Journal)) journal = new MemoryJournal(parsed.Journal as JournalEntry[]);
      if (typeof parsed.IPAddress === 'string') lastIP = parsed.IPAddress;
      driver = undefined;
      return empty;
    },
    GetConfigRaw: () => ({ type: gob.bytes, value: new TextEncoder().encode(JSON.stringify(configJson())) }),
    SetConfigFromFlags: (args) => {
      const values = fromRpcFlags(args.value);
      const given: Record<string, unknown> = {};
      for (const flag of descriptor.flags) {
        const value = givenValue(flag, values[flag.name]);
        if (value !== undefined) given[flag.name] = value;
      }
      parseFlags(descriptor.flags, given, { env }); // reports every bad flag now, as `create` would
      flagValues = given;
      driver = undefined;
      return empty;
    },
    DriverName: () => text(descriptor.name),
    GetMachineName: () => text(machineName()),
    GetURL: async () => text(await currentDriver().getURL()),
    GetIP: async () => {
      lastIP = await currentDriver().getIP();
      return text(lastIP);
    },
    GetSSHHostname: async () => text(await currentDriver().getSSHHostname()),
    GetSSHPort: async () => {
      lastSSHPort = await currentDriver().getSSHPort();
      return int(lastSSHPort);
    },
    GetSSHUsername: () => text(currentDriver().getSSHUsername()),
    GetSSHKeyPath: () => text(currentDriver().getSSHKeyPath()),
    GetState: async () => int(stateNumber(await currentDriver().getState())),
    PreCreateCheck: run((target) => target.preCreateCheck()),
    Create: run((target) => target.create()),
    Remove: run((target) => target.remove()),
    Start: run((target) => target.start()),
    Stop: run((target) => target.stop()),
    Restart: run((target) => target.restart()),
    Kill: run((target) => target.kill()),
    Upgrade: () => {
      throw new NotSupportedError(`upgrade is not supported by the ${descriptor.name} driver`, { machine: machineName() || undefined, operation: 'upgrade' });
    },
    GetIPv6: () => {
      throw new NotSupportedError(`the ${descriptor.name} driver reports no IPv6 address`, { machine: machineName() || undefined, operation: 'getIPv6' });
    },
  };
}
