import type { FlagDefinition } from '@machine/driver-core';

/** Driver flag values by flag name, and the arguments that were not flags. */
export interface DriverArguments {
  values: Record<string, unknown>;
  positionals: string[];
  /** Flags given last without their value. */
  missingValues: string[];
}

/**
 * Parses a driver's flags from command-line tokens using its flag schema: `--name value`,
 * `--name=value`, bool flags as `--name` or `--name=false`, and repeatable `string[]` flags.
 * Flags the schema does not know are kept by name (as `true`, or their `=value`) so that
 * `parseFlags` reports them together with every other problem.
 */
export function parseDriverArguments(flags: readonly FlagDefinition[], tokens: readonly string[]): DriverArguments {
  const byName = new Map(flags.map((definition) => [definition.name, definition]));
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const missingValues: string[] = [];
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] ?? '';
    if (token === '--') {
      positionals.push(...tokens.slice(index + 1));
      break;
    }
    if (!token.startsWith('--') || token === '--') {
      positionals.push(token);
      continue;
    }
    const equals = token.indexOf('=');
    const name = token.slice(2, equals === -1 ? undefined : equals);
    const inline = equals === -1 ? undefined : token.slice(equals + 1);
    const definition = byName.get(name);
    if (definition === undefined) {
      // An unknown flag takes the next word as its value unless that is the last one (the name).
      const next = tokens[index + 1];
      if (inline === undefined && next !== undefined && !next.startsWith('-') && index + 2 < tokens.length) {
        values[name] = next;
        index++;
      } else values[name] = inline ?? true;
      continue;
    }
    let value: string | boolean;
    if (inline !== undefined) value = inline;
    else if (definition.type === 'bool') value = true;
    else {
      const next = tokens[index + 1];
      if (next === undefined) {
        missingValues.push(name);
        continue;
      }
      value = next;
      index++;
    }
    if (definition.type === 'string[]') {
      const previous = values[name];
      values[name] = [...(Array.isArray(previous) ? previous : []), String(value)];
    } else values[name] = value;
  }
  return { values, positionals, missingValues };
}

/** Values by flag name of a parsed config (by key), for re-parsing a stored config. */
export function valuesByFlagName(flags: readonly FlagDefinition[], config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const definition of flags) {
    const value = config[definition.key];
    if (value !== undefined && value !== null) values[definition.name] = value;
  }
  return values;
}

/** The help lines of a driver's flags, generated from its schema: name, value, description, env var, default. */
export function driverFlagHelp(flags: readonly FlagDefinition[]): string[] {
  const rows = flags.map((definition) => {
    const placeholder = definition.type === 'bool' ? '' : definition.type === 'int' ? ' <number>' : definition.type === 'string[]' ? ' <value>…' : ' <value>';
    const notes: string[] = [];
    if (definition.required === true) notes.push('required');
    if (definition.secret === true) notes.push('secret: never stored');
    if (definition.choices !== undefined) notes.push(`one of: ${definition.choices.join(', ')}`);
    if (definition.default !== undefined && !(Array.isArray(definition.default) && definition.default.length === 0)) {
      notes.push(`default: ${Array.isArray(definition.default) ? definition.default.join(',') : JSON.stringify(definition.default)}`);
    }
    if (definition.envVar !== undefined) notes.push(`$${definition.envVar}`);
    if (definition.type === 'string[]') notes.push('repeatable');
    return { left: `--${definition.name}${placeholder}`, right: `${definition.description}${notes.length > 0 ? ` [${notes.join('; ')}]` : ''}` };
  });
  const width = Math.max(0, ...rows.map((row) => row.left.length));
  return rows.map((row) => `  ${row.left.padEnd(width)}   ${row.right}`);
}
