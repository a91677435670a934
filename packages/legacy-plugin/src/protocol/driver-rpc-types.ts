import { type FlagDefinition, type State, State as States } from '@machine/driver-core';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { GobInterface, type GobStructValue, type GobValue, gob } from '../gob/gob-types.ts';

/**
 * The libmachine types that cross the wire, declared as Go declares them (field order = gob
 * field numbers, names as `gob.Register` on pointers makes them: `*mcnflag.StringFlag`).
 */

/** `[]string` as a struct field (Go names it `[]string`). */
const stringSliceField = gob.slice(gob.string, '[]string');

export const mcnflagStringFlagType = gob.struct('StringFlag', [
  ['Name', gob.string],
  ['Usage', gob.string],
  ['EnvVar', gob.string],
  ['Value', gob.string],
]);
export const mcnflagIntFlagType = gob.struct('IntFlag', [
  ['Name', gob.string],
  ['Usage', gob.string],
  ['EnvVar', gob.string],
  ['Value', gob.int],
]);
export const mcnflagBoolFlagType = gob.struct('BoolFlag', [
  ['Name', gob.string],
  ['Usage', gob.string],
  ['EnvVar', gob.string],
]);
export const mcnflagStringSliceFlagType = gob.struct('StringSliceFlag', [
  ['Name', gob.string],
  ['Usage', gob.string],
  ['EnvVar', gob.string],
  ['Value', stringSliceField],
]);

/** GetCreateFlags' reply: `[]mcnflag.Flag`, a slice of interfaces. */
export const createFlagsType = gob.slice(gob.interface);

/** `*rpcdriver.RPCFlags{Values map[string]interface{}}`, SetConfigFromFlags' argument inside a `drivers.DriverOptions` interface. */
export const rpcFlagsType = gob.struct('RPCFlags', [['Values', gob.map(gob.string, gob.interface, 'map[string]interface {}')]]);

/** `[]string` at top level inside an interface (Go sends no name then). */
const interfaceStringSlice = gob.slice(gob.string);

/** The registered names (`gob.Register(new(T))` keeps the pointer: `*pkg.T`). */
export const gobNames = {
  stringFlag: '*mcnflag.StringFlag',
  intFlag: '*mcnflag.IntFlag',
  boolFlag: '*mcnflag.BoolFlag',
  stringSliceFlag: '*mcnflag.StringSliceFlag',
  rpcFlags: '*rpcdriver.RPCFlags',
} as const;

/** The API version both sides must speak (`version.APIVersion`). */
export const legacyApiVersion = 1;

/** The two spellings of the service: V1 first, then the V0 fallback. */
export const legacyServiceNames = ['RPCServerDriver', 'RpcServerDriver'] as const;

/** libmachine `state.State` values in order (rancher appends NotFound = 9). */
const stateOrder: readonly State[] = [States.None, States.Running, States.Paused, States.Saved, States.Stopped, States.Stopping, States.Starting, States.Error, States.Timeout];

/** The libmachine state number of a driver-core state. */
export function stateNumber(state: State): number {
  const index = stateOrder.indexOf(state);
  return Math.max(index, 0);
}

/** The driver-core state of a libmachine state number; `undefined` for 9 (rancher's NotFound). */
export function stateFromNumber(value: number): State | undefined {
  if (value === 9) return undefined;
  const state = stateOrder[value];
  if (state === undefined) throw new LegacyProtocolError(`the plugin reported state ${value}, which libmachine does not define (0-8)`);
  return state;
}

/** One create flag as a plugin declares it. */
export interface McnFlag {
  readonly kind: 'string' | 'int' | 'bool' | 'string[]';
  readonly name: string;
  readonly usage: string;
  readonly envVar: string;
  /** The default (absent for bool flags). */
  readonly value?: string | number | string[];
}

/** A driver-core flag as the mcnflag value a Go host expects (secrets never carry their default). */
export function toMcnFlag(flag: FlagDefinition): GobInterface {
  const common = { Name: flag.name, Usage: flag.description, EnvVar: flag.envVar ?? '' };
  const fallback = flag.secret === true ? undefined : flag.default;
  switch (flag.type) {
    case 'string':
      return new GobInterface(gobNames.stringFlag, mcnflagStringFlagType, { ...common, Value: typeof fallback === 'string' ? fallback : '' });
    case 'int':
      return new GobInterface(gobNames.intFlag, mcnflagIntFlagType, { ...common, Value: typeof fallback === 'number' ? fallback : 0 });
    case 'bool':
      return new GobInterface(gobNames.boolFlag, mcnflagBoolFlagType, common);
    case 'string[]':
      return new GobInterface(gobNames.stringSliceFlag, mcnflagStringSliceFlagType, { ...common, Value: Array.isArray(fallback) ? [...fallback] : [] });
  }
}

const kindByName: Readonly<Record<string, McnFlag['kind']>> = {
  [gobNames.stringFlag]: 'string',
  [gobNames.intFlag]: 'int',
  [gobNames.boolFlag]: 'bool',
  [gobNames.stringSliceFlag]: 'string[]',
};

/** The flags of a GetCreateFlags reply. Rancher's value names (without `*`) are accepted too. */
export function fromMcnFlags(reply: GobValue): McnFlag[] {
  if (!Array.isArray(reply)) throw new LegacyProtocolError('GetCreateFlags did not answer with a list of flags');
  return reply.map((item, index) => {
    if (!(item instanceof GobInterface)) throw new LegacyProtocolError(`GetCreateFlags: flag ${index} is not an mcnflag value`);
    const kind = kindByName[item.name] ?? kindByName[`*${item.name}`];
    if (kind === undefined) throw new LegacyProtocolError(`GetCreateFlags: flag ${index} is a ${item.name}, not one of ${Object.keys(kindByName).join(', ')}`);
    const fields = item.value as GobStructValue;
    const name = fields.Name;
    if (typeof name !== 'string' || name === '') throw new LegacyProtocolError(`GetCreateFlags: flag ${index} has no name`);
    const flag: { -readonly [K in keyof McnFlag]: McnFlag[K] } = { kind, name, usage: String(fields.Usage ?? ''), envVar: String(fields.EnvVar ?? '') };
    if (kind === 'string' && typeof fields.Value === 'string') flag.value = fields.Value;
    if (kind === 'int' && typeof fields.Value === 'number') flag.value = fields.Value;
    if (kind === 'string[]' && Array.isArray(fields.Value)) flag.value = fields.Value.filter((entry): entry is string => typeof entry === 'string');
    return flag;
  });
}

/** A flag value as the interface value inside RPCFlags.Values (`string`, `int`, `bool`, `[]string`). */
export function rpcFlagValue(value: unknown): GobInterface | undefined {
  if (typeof value === 'string') return new GobInterface('string', gob.string, value);
  if (typeof value === 'number' && Number.isInteger(value)) return new GobInterface('int', gob.int, value);
  if (typeof value === 'boolean') return new GobInterface('bool', gob.bool, value);
  if (Array.isArray(value) && value.every((entry) => typeof entry === 'string')) return new GobInterface('[]string', interfaceStringSlice, [...value]);
  return undefined;
}

/** `*rpcdriver.RPCFlags` holding `values`, as SetConfigFromFlags' argument (a top-level interface). */
export function rpcFlags(values: Readonly<Record<string, unknown>>): GobInterface {
  const map = new Map<GobValue, GobValue>();
  for (const [name, value] of Object.entries(values)) {
    const converted = rpcFlagValue(value);
    if (converted !== undefined) map.set(name, converted);
  }
  return new GobInterface(gobNames.rpcFlags, rpcFlagsType, { Values: map });
}

/** The values of a SetConfigFromFlags argument by flag name. */
export function fromRpcFlags(args: GobValue): Record<string, unknown> {
  if (!(args instanceof GobInterface) || typeof args.value !== 'object' || args.value === null) {
    throw new LegacyProtocolError('SetConfigFromFlags expects a *rpcdriver.RPCFlags value');
  }
  const values = (args.value as GobStructValue).Values;
  const result: Record<string, unknown> = {};
  if (!(values instanceof Map)) return result;
  for (const [key, value] of values) {
    if (typeof key !== 'string') continue;
    const plain = value instanceof GobInterface ? value.value : value;
    result[key] = typeof plain === 'bigint' ? Number(plain) : plain;
  }
  return result;
}
