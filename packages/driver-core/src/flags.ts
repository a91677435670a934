import { type ConfigIssue, InvalidConfigError } from './errors/invalid-config-error.ts';

/** The value types a flag can have (the reference's String, Int, Bool and StringSlice flags). */
export type FlagType = 'string' | 'int' | 'bool' | 'string[]';

/** The TypeScript type of a flag's value. */
export type FlagValue<T extends FlagType> = T extends 'string'
  ? string
  : T extends 'int'
    ? number
    : T extends 'bool'
      ? boolean
      : string[];

/** One flag a driver declares: data only, the host builds `--name` options and help from it. */
export interface FlagDefinition<T extends FlagType = FlagType, K extends string = string> {
  /** Full flag name without dashes, with the driver prefix: `digitalocean-region`. */
  readonly name: string;
  /** The key of the parsed config object: `region`. */
  readonly key: K;
  readonly type: T;
  /** One line for `--help`. */
  readonly description: string;
  /** Environment variable read when the flag is not given. */
  readonly envVar?: string;
  /** Used when neither the flag nor the env var is set. Bool flags default to false. */
  readonly default?: FlagValue<T>;
  /** Creation fails before any API call when a required flag has no value. */
  readonly required?: boolean;
  /** A credential: never written to disk, never printed. */
  readonly secret?: boolean;
  /** Allowed values (string flags). */
  readonly choices?: readonly string[];
  /** Lower/upper bounds (int flags). */
  readonly min?: number;
  readonly max?: number;
  /** Extra check; returns what is wrong, or undefined when the value is fine. */
  validate?(value: FlagValue<T>): string | undefined;
}

/** Declares a flag with its value type inferred; use inside `defineFlags`. */
export function flag<const T extends FlagType, const K extends string, const D extends FlagDefinition<T, K>>(definition: D & FlagDefinition<T, K>): D {
  return definition;
}

/** Declares a driver's flags, keeping their literal keys and types for {@link ConfigOf}. */
export function defineFlags<const F extends readonly FlagDefinition<FlagType, string>[]>(flags: F): F {
  return flags;
}

type HasValue<D> = D extends { readonly required: true } | { readonly default: unknown } | { readonly type: 'bool' | 'string[]' }
  ? true
  : false;

/** The typed config object that parsing a driver's flags produces. */
export type ConfigOf<F extends readonly FlagDefinition<FlagType, string>[]> = {
  -readonly [D in F[number] as D['key']]: HasValue<D> extends true ? FlagValue<D['type']> : FlagValue<D['type']> | undefined;
};

/** Raw values by flag name, as a CLI or a library caller gives them. */
export type RawFlagValues = Readonly<Record<string, unknown>>;

/** Where parsed values may come from besides the explicit ones. */
export interface ParseFlagsOptions {
  /** Environment to read `envVar`s from; defaults to `process.env`. Pass `{}` to ignore the environment. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Parses and validates a driver's flags: explicit values first, then env vars, then defaults.
 * Collects every problem and throws one {@link InvalidConfigError} listing them all, one per flag.
 * Unknown flag names are reported too.
 */
export function parseFlags<const F extends readonly FlagDefinition<FlagType, string>[]>(
  flags: F,
  values: RawFlagValues,
  options: ParseFlagsOptions = {},
): ConfigOf<F> {
  const env = options.env ?? process.env;
  const issues: ConfigIssue[] = [];
  const known = new Set(flags.map((definition) => definition.name));
  for (const name of Object.keys(values)) {
    if (!known.has(name) && values[name] !== undefined) {
      issues.push({ flag: name, message: `unknown flag; known flags: ${[...known].map((n) => `--${n}`).join(', ')}` });
    }
  }
  const config: Record<string, unknown> = {};
  for (const definition of flags) {
    const explicit = values[definition.name];
    const fromEnv = definition.envVar === undefined ? undefined : env[definition.envVar];
    const source = explicit !== undefined ? explicit : fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
    if (source === undefined) {
      if (definition.required === true) {
        const where = definition.envVar === undefined ? '' : ` or set ${definition.envVar}`;
        issues.push({ flag: definition.name, message: `is required: pass --${definition.name}${where}` });
        continue;
      }
      config[definition.key] = defaultValue(definition);
      continue;
    }
    const converted = convert(definition, source);
    if (typeof converted === 'object' && converted !== null && 'problem' in converted) {
      issues.push({ flag: definition.name, message: converted.problem });
      continue;
    }
    const problem = check(definition, converted.value);
    if (problem !== undefined) issues.push({ flag: definition.name, message: problem });
    else config[definition.key] = converted.value;
  }
  if (issues.length > 0) throw new InvalidConfigError(issues, { operation: 'config' });
  return config as ConfigOf<F>;
}

/** The secret values among the parsed config, for redaction. */
export function secretValues(flags: readonly FlagDefinition[], config: Readonly<Record<string, unknown>>): string[] {
  return flags
    .filter((definition) => definition.secret === true)
    .map((definition) => config[definition.key])
    .filter((value): value is string => typeof value === 'string' && value !== '');
}

/** A copy of the config without the secret flags, safe to store and print. */
export function withoutSecrets<C extends Record<string, unknown>>(flags: readonly FlagDefinition[], config: C): Partial<C> {
  const secretKeys = new Set(flags.filter((definition) => definition.secret === true).map((definition) => definition.key));
  return Object.fromEntries(Object.entries(config).filter(([key]) => !secretKeys.has(key))) as Partial<C>;
}

function defaultValue(definition: FlagDefinition): unknown {
  if (definition.default !== undefined) {
    return Array.isArray(definition.default) ? [...definition.default] : definition.default;
  }
  if (definition.type === 'bool') return false;
  if (definition.type === 'string[]') return [];
  return undefined;
}

type Conversion = { value: unknown } | { problem: string };

function convert(definition: FlagDefinition, raw: unknown): Conversion {
  switch (definition.type) {
    case 'string':
      if (typeof raw === 'string') return { value: raw };
      if (typeof raw === 'number') return { value: String(raw) };
      return { problem: `expects a string, got ${describe(raw)}` };
    case 'int': {
      if (typeof raw === 'number' && Number.isInteger(raw)) return { value: raw };
      if (typeof raw === 'string' && /^-?\d+$/.test(raw.trim())) return { value: Number.parseInt(raw, 10) };
      return { problem: `expects a whole number, got ${describe(raw)}` };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      if (typeof raw === 'string') {
        const lowered = raw.trim().toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(lowered)) return { value: true };
        if (['0', 'false', 'no', 'off', ''].includes(lowered)) return { value: false };
      }
      return { problem: `expects true or false, got ${describe(raw)}` };
    }
    case 'string[]': {
      if (typeof raw === 'string') {
        return { value: raw.split(',').map((part) => part.trim()).filter((part) => part !== '') };
      }
      if (Array.isArray(raw) && raw.every((item) => typeof item === 'string')) {
        return { value: raw.flatMap((item: string) => item.split(',')).map((part) => part.trim()).filter((part) => part !== '') };
      }
      return { problem: `expects a list of strings, got ${describe(raw)}` };
    }
  }
}

function check(definition: FlagDefinition, value: unknown): string | undefined {
  if (definition.choices !== undefined && typeof value === 'string' && !definition.choices.includes(value)) {
    return `"${value}" is not one of ${definition.choices.join(', ')}`;
  }
  if (typeof value === 'number') {
    if (definition.min !== undefined && value < definition.min) return `must be at least ${definition.min}, got ${value}`;
    if (definition.max !== undefined && value > definition.max) return `must be at most ${definition.max}, got ${value}`;
  }
  if (definition.required === true && typeof value === 'string' && value.trim() === '') {
    return `is required and cannot be empty`;
  }
  // The validator's parameter type is the flag's own value type; `value` was converted to it above.
  return (definition.validate as ((value: unknown) => string | undefined) | undefined)?.(value);
}

function describe(raw: unknown): string {
  if (typeof raw === 'string') return `"${raw}"`;
  return Array.isArray(raw) ? 'a list' : typeof raw;
}
