import { type FlagDefinition, InvalidConfigError, type JsonValue } from '@machine/driver-core';

/** Marks where a credential was in a plugin's config JSON; the credential itself is not stored. */
const secretMarker = '$machineSecret';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The plugin's config JSON as stored in the machine record: every string equal to the value of
 * a secret flag is replaced by `{"$machineSecret": "<flag name>"}`, so credentials stay out of
 * config.json, as they do for npm drivers.
 */
export function redactConfig(config: unknown, flags: readonly FlagDefinition[], values: Readonly<Record<string, unknown>>): JsonValue {
  const secrets = new Map<string, string>();
  for (const flag of flags) {
    const value = values[flag.key];
    if (flag.secret === true && typeof value === 'string' && value !== '') secrets.set(value, flag.name);
  }
  const walk = (value: unknown): JsonValue => {
    if (typeof value === 'string') {
      const flag = secrets.get(value);
      return flag === undefined ? value : { [secretMarker]: flag };
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, walk(field)]));
    return value as JsonValue;
  };
  return walk(config);
}

/**
 * The stored config JSON with each credential put back from the current config (the CLI reads
 * secrets from their env vars on every command). A credential that is not available is an
 * InvalidConfigError naming its flag and env var.
 */
export function restoreConfig(stored: JsonValue, flags: readonly FlagDefinition[], values: Readonly<Record<string, unknown>>): unknown {
  const byName = new Map(flags.map((flag) => [flag.name, flag]));
  const missing = new Set<FlagDefinition>();
  const walk = (value: JsonValue): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (isRecord(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === secretMarker && typeof value[secretMarker] === 'string') {
        const flag = byName.get(value[secretMarker]);
        const secret = flag === undefined ? undefined : values[flag.key];
        if (typeof secret === 'string' && secret !== '') return secret;
        if (flag !== undefined) missing.add(flag);
        return '';
      }
      return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, walk(field as JsonValue)]));
    }
    return value;
  };
  const restored = walk(stored);
  if (missing.size > 0) {
    throw new InvalidConfigError(
      [...missing].map((flag) => ({
        flag: flag.name,
        message: `is a credential machine does not store: ${flag.envVar === undefined ? `pass --${flag.name}` : `set ${flag.envVar}`}`,
      })),
      { operation: 'config' },
    );
  }
  return restored;
}
