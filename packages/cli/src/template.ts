import { CliError } from './cli-error.ts';

/**
 * A small subset of Go's text/template, the syntax docker users write in `--format`:
 * `{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{prettyjson .X}}`, `{{upper .X}}`,
 * `{{lower .X}}`, string literals, and `table` formats with headers and aligned columns.
 */
export interface Template {
  /** Renders one value. */
  render(value: unknown): string;
  /** True for `table …` formats: one header row, then tab-aligned rows. */
  readonly table: boolean;
  /** The header row of a table format. */
  header(headers: Readonly<Record<string, string>>): string;
}

type Argument = { kind: 'field'; path: string[] } | { kind: 'literal'; value: string };
type Action = { kind: 'call'; fn: string | undefined; args: Argument[] };
type Segment = { kind: 'text'; text: string } | Action;

const functions: Record<string, (value: unknown) => string> = {
  json: (value) => JSON.stringify(value ?? null),
  prettyjson: (value) => JSON.stringify(value ?? null, null, 4),
  upper: (value) => stringify(value).toUpperCase(),
  lower: (value) => stringify(value).toLowerCase(),
};

/** Parses a format; a syntax error is a CliError naming the problem. */
export function parseTemplate(source: string): Template {
  let text = source.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const table = /^table(\s|$)/.test(text);
  if (table) text = text.replace(/^table\s*/, '');
  const segments = parseSegments(text);
  return {
    table,
    render: (value) => segments.map((segment) => (segment.kind === 'text' ? segment.text : evaluate(segment, value))).join(''),
    header: (headers) =>
      segments
        .map((segment) => {
          if (segment.kind === 'text') return segment.text;
          const field = segment.args[0];
          if (field?.kind !== 'field') return '';
          const name = field.path.join('.');
          return headers[name] ?? name.toUpperCase();
        })
        .join(''),
  };
}

function parseSegments(text: string): Segment[] {
  const segments: Segment[] = [];
  let position = 0;
  while (position < text.length) {
    const open = text.indexOf('{{', position);
    if (open === -1) {
      segments.push({ kind: 'text', text: text.slice(position) });
      break;
    }
    if (open > position) segments.push({ kind: 'text', text: text.slice(position, open) });
    const close = text.indexOf('}}', open + 2);
    if (close === -1) throw new CliError(`template: unclosed action in "${text}"`);
    segments.push(parseAction(text.slice(open + 2, close).replace(/^-\s|\s-$/g, '').trim()));
    position = close + 2;
  }
  return segments;
}

function parseAction(source: string): Action {
  const words = source.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  if (words.length === 0) throw new CliError('template: empty action {{}}');
  const [first, ...rest] = words;
  if (first !== undefined && !first.startsWith('.') && !first.startsWith('"')) {
    if (functions[first] === undefined) throw new CliError(`template: function "${first}" not defined (known: ${Object.keys(functions).join(', ')})`);
    if (rest.length !== 1) throw new CliError(`template: ${first} takes one argument`);
    return { kind: 'call', fn: first, args: rest.map(parseArgument) };
  }
  if (rest.length > 0) throw new CliError(`template: unexpected "${rest.join(' ')}" in {{${source}}}`);
  return { kind: 'call', fn: undefined, args: words.map(parseArgument) };
}

function parseArgument(word: string): Argument {
  if (word.startsWith('"')) return { kind: 'literal', value: JSON.parse(word) as string };
  if (word === '.') return { kind: 'field', path: [] };
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(word)) throw new CliError(`template: bad field "${word}"`);
  return { kind: 'field', path: word.slice(1).split('.') };
}

function evaluate(action: Action, root: unknown): string {
  const argument = action.args[0];
  const value = argument === undefined ? undefined : argument.kind === 'literal' ? argument.value : lookup(root, argument.path);
  if (action.fn !== undefined) return (functions[action.fn] as (value: unknown) => string)(value);
  return stringify(value);
}

function lookup(root: unknown, path: readonly string[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '<no value>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Lays out tab-separated rows in aligned columns like Go's tabwriter with minwidth 5, tab width 1
 * and padding 3 (the reference's `ls` settings). The last cell of a row is not padded.
 */
export function alignColumns(lines: readonly string[]): string {
  const rows = lines.map((line) => line.split('\t'));
  const widths: number[] = [];
  for (const row of rows) {
    row.slice(0, -1).forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, Math.max(5, cell.length + 3));
    });
  }
  return rows.map((row) => row.map((cell, index) => (index < row.length - 1 ? cell.padEnd(widths[index] ?? 0) : cell)).join('').trimEnd()).join('\n');
}
