/**
 * Parser for the small POSIX-shell subset the emulated shell runs: words with single/double
 * quotes and backslashes, `$VAR`/`${VAR}`/`$?` expansion, `;`, newlines, `&&`, `||`, `|`, and
 * redirections `>`, `>>`, `<`, `2>`, `2>>`, `2>&1`, `>&2`, `&>`. No globbing, subshells or functions.
 */

/**
 * A word after quote removal: literal text and `$NAME` references, expanded when the command runs
 * (so `A=1; echo $A` and `false; echo $?` see earlier commands' effects).
 */
export type Word = (string | { variable: string })[];

/** Where one stream goes. */
export interface Redirection {
  /** 0 stdin, 1 stdout, 2 stderr; `&>` is split into a 1 and a `2>&1`. */
  fd: 0 | 1 | 2;
  append: boolean;
  /** A file path, or `&1` for `2>&1`. */
  target: Word;
}

/** One simple command: its words and redirections. */
export interface SimpleCommand {
  words: Word[];
  redirections: Redirection[];
}

/** Expands a word's variable references (unknown names expand to ''). */
export function expandWord(word: Word, variables: Readonly<Record<string, string>>): string {
  return word.map((part) => (typeof part === 'string' ? part : (variables[part.variable] ?? ''))).join('');
}

/** Commands joined by `|`. */
export interface Pipeline {
  commands: SimpleCommand[];
}

/** Pipelines joined by `;`, `&&`, `||` (the operator before each item; the first has `;`). */
export interface CommandList {
  items: { operator: ';' | '&&' | '||'; pipeline: Pipeline }[];
}

/** A syntax error; the shell prints it like dash does. */
export class ShellSyntaxError extends Error {
  override readonly name = 'ShellSyntaxError';
}

type Token = { kind: 'word'; value: Word } | { kind: 'operator'; value: string };

/** Parses a command line. */
export function parseCommandLine(line: string): CommandList {
  const tokens = tokenize(line);
  const list: CommandList = { items: [] };
  let operator: ';' | '&&' | '||' = ';';
  let pipeline: Pipeline = { commands: [] };
  let command: SimpleCommand = { words: [], redirections: [] };
  const endCommand = (): void => {
    if (command.words.length === 0 && command.redirections.length === 0) throw new ShellSyntaxError('Syntax error: unexpected operator');
    pipeline.commands.push(command);
    command = { words: [], redirections: [] };
  };
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    if (token.kind === 'word') {
      command.words.push(token.value);
      continue;
    }
    const redirect = /^(\d|&)?(>>|>|<)(&[12])?$/.exec(token.value);
    if (redirect !== null) {
      const fdText = redirect[1];
      const mode = redirect[2]!;
      if (redirect[3] === '&1') {
        command.redirections.push({ fd: 2, append: false, target: ['&1'] });
        continue;
      }
      if (redirect[3] === '&2') {
        // `>&2` / `1>&2`: stdout goes where stderr goes (`2>&2` changes nothing).
        if (fdText !== '2') command.redirections.push({ fd: 1, append: false, target: ['&2'] });
        continue;
      }
      const next = tokens[++index];
      if (next === undefined || next.kind !== 'word') throw new ShellSyntaxError('Syntax error: newline unexpected');
      if (fdText === '&') {
        command.redirections.push({ fd: 1, append: mode === '>>', target: next.value });
        command.redirections.push({ fd: 2, append: false, target: ['&1'] });
      } else {
        const fd = mode === '<' ? 0 : fdText === '2' ? 2 : 1;
        command.redirections.push({ fd, append: mode === '>>', target: next.value });
      }
      continue;
    }
    if (token.value === '|') {
      endCommand();
      continue;
    }
    // ; && || or newline
    if (command.words.length === 0 && command.redirections.length === 0 && pipeline.commands.length === 0) {
      if (token.value === ';') continue; // empty statement, e.g. trailing newline
      throw new ShellSyntaxError(`Syntax error: "${token.value}" unexpected`);
    }
    endCommand();
    list.items.push({ operator, pipeline });
    pipeline = { commands: [] };
    operator = token.value as ';' | '&&' | '||';
  }
  if (command.words.length > 0 || command.redirections.length > 0) endCommand();
  if (pipeline.commands.length > 0) list.items.push({ operator, pipeline });
  else if (operator !== ';') throw new ShellSyntaxError('Syntax error: end of file unexpected');
  return list;
}

function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let parts: Word = [];
  let word = '';
  let inWord = false;
  const flush = (): void => {
    if (word !== '') parts.push(word);
    if (inWord) tokens.push({ kind: 'word', value: parts });
    parts = [];
    word = '';
    inWord = false;
  };
  const reference = (variable: string): void => {
    if (word !== '') parts.push(word);
    word = '';
    parts.push({ variable });
  };
  const expand = (start: number): number => {
    const rest = line.slice(start + 1);
    const braced = /^\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(rest);
    if (braced !== null) {
      reference(braced[1]!);
      return start + braced[0].length;
    }
    const plain = /^([A-Za-z_][A-Za-z0-9_]*|\?|\$|#)/.exec(rest);
    if (plain !== null) {
      reference(plain[1]!);
      return start + plain[0].length;
    }
    word += '$';
    return start;
  };
  for (let index = 0; index < line.length; index++) {
    const char = line[index]!;
    if (char === "'") {
      const close = line.indexOf("'", index + 1);
      if (close === -1) throw new ShellSyntaxError('Syntax error: Unterminated quoted string');
      word += line.slice(index + 1, close);
      inWord = true;
      index = close;
    } else if (char === '"') {
      inWord = true;
      index++;
      while (index < line.length && line[index] !== '"') {
        const inner = line[index]!;
        if (inner === '\\' && index + 1 < line.length && '$`"\\\n'.includes(line[index + 1]!)) {
          word += line[index + 1];
          index += 2;
        } else if (inner === '$') {
          index = expand(index) + 1;
        } else {
          word += inner;
          index++;
        }
      }
      if (index >= line.length) throw new ShellSyntaxError('Syntax error: Unterminated quoted string');
    } else if (char === '\\') {
      if (index + 1 < line.length && line[index + 1] !== '\n') word += line[index + 1];
      inWord = true;
      index++;
    } else if (char === '$') {
      index = expand(index);
      inWord = true;
    } else if (char === ' ' || char === '\t') {
      flush();
    } else if (char === '#' && !inWord) {
      const newline = line.indexOf('\n', index);
      if (newline === -1) break;
      index = newline - 1;
    } else if (char === '\n' || char === ';') {
      flush();
      tokens.push({ kind: 'operator', value: ';' });
    } else if (char === '&' || char === '|') {
      const double = line[index + 1] === char;
      if (char === '&' && !double) {
        if (line[index + 1] === '>') {
          flush();
          const append = line[index + 2] === '>';
          tokens.push({ kind: 'operator', value: append ? '&>>' : '&>' });
          index += append ? 2 : 1;
          continue;
        }
        throw new ShellSyntaxError('background jobs (&) are not supported');
      }
      flush();
      tokens.push({ kind: 'operator', value: double ? `${char}${char}` : char });
      if (double) index++;
    } else if (char === '>' || char === '<') {
      const fd = inWord && parts.length === 0 && /^\d$/.test(word) ? word : '';
      if (fd !== '') {
        word = '';
        inWord = false;
      } else {
        flush();
      }
      let operator = `${fd}${char}`;
      if (char === '>' && line[index + 1] === '>') {
        operator += '>';
        index++;
      }
      const duplicate = char === '>' ? line.slice(index + 1, index + 3) : '';
      if (duplicate === '&1' || duplicate === '&2') {
        operator += duplicate;
        index += 2;
      }
      tokens.push({ kind: 'operator', value: operator });
    } else {
      word += char;
      inWord = true;
    }
  }
  flush();
  return tokens;
}
