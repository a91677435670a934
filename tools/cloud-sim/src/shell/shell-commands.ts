import { setTimeout as delay } from 'node:timers/promises';
import type { CommandContext, CommandImplementation } from './emulated-shell.ts';
import { ExitSignal } from './exit-signal.ts';
import { type FileSystemNode, MemoryFileSystem } from './memory-filesystem.ts';
import { PACKAGE_COMMANDS, SYSTEM_COMMANDS } from './system-commands.ts';
import { KERNEL_RELEASE } from './ubuntu-image.ts';

const KERNEL_VERSION = '#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024';

/** Splits `-lah`-style flags from operands (`--` ends flags). */
function parseFlags(args: string[]): { flags: Set<string>; operands: string[] } {
  const flags = new Set<string>();
  const operands: string[] = [];
  let flagsDone = false;
  for (const arg of args) {
    if (!flagsDone && arg === '--') flagsDone = true;
    else if (!flagsDone && /^-[A-Za-z0-9]+$/.test(arg)) for (const flag of arg.slice(1)) flags.add(flag);
    else operands.push(arg);
  }
  return { flags, operands };
}

function resolve(context: CommandContext, path: string): string {
  const expanded = path === '~' || path.startsWith('~/') ? `${context.session.variables.HOME ?? '/root'}${path.slice(1)}` : path;
  return MemoryFileSystem.resolve(expanded, context.session.cwd);
}

const echo: CommandImplementation = ({ args, stdout }) => {
  let newline = true;
  let rest = args;
  if (rest[0] === '-n') {
    newline = false;
    rest = rest.slice(1);
  }
  stdout(`${rest.join(' ')}${newline ? '\n' : ''}`);
  return 0;
};

const printf: CommandImplementation = ({ args, stdout }) => {
  const [format = '', ...values] = args;
  let index = 0;
  const text = format
    .replace(/%[sd%]/g, (spec) => (spec === '%%' ? '%' : (values[index++] ?? '')))
    .replace(/\\n/g, '\n')
    .replace(/\\t/g, '\t');
  stdout(text);
  return 0;
};

const cat: CommandImplementation = async (context) => {
  const { operands } = parseFlags(context.args);
  if (operands.length === 0 || (operands.length === 1 && operands[0] === '-')) {
    context.stdout(await context.stdin());
    return 0;
  }
  let status = 0;
  for (const operand of operands) {
    try {
      context.stdout(context.session.fs.readFile(resolve(context, operand)));
    } catch (error) {
      context.stderr(`cat: ${operand}: ${(error as Error).message}\n`);
      status = 1;
    }
  }
  return status;
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function permissions(node: FileSystemNode): string {
  const bits = ['r', 'w', 'x'];
  let text = node.type === 'directory' ? 'd' : '-';
  for (let shift = 8; shift >= 0; shift--) text += node.mode & (1 << shift) ? bits[(8 - shift) % 3] : '-';
  if (node.mode & 0o1000) text = `${text.slice(0, 9)}${node.mode & 1 ? 't' : 'T'}`;
  return text;
}

/** `1.5K`, `4.0K`, `12M`, as GNU tools print human sizes. */
export function humanSize(bytes: number): string {
  const units = ['', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return String(bytes);
  return value < 10 ? `${(Math.ceil(value * 10) / 10).toFixed(1)}${units[unit]}` : `${Math.ceil(value)}${units[unit]}`;
}

function ownerName(id: number): string {
  return id === 0 ? 'root' : id === 1000 ? 'ubuntu' : String(id);
}

function longLine(name: string, node: FileSystemNode, human: boolean): string {
  const size = node.type === 'directory' ? 4096 : node.data.length;
  const links = node.type === 'directory' ? 2 + [...node.children.values()].filter((child) => child.type === 'directory').length : 1;
  const time = node.mtime;
  const stamp = `${MONTHS[time.getUTCMonth()]} ${String(time.getUTCDate()).padStart(2)} ${String(time.getUTCHours()).padStart(2, '0')}:${String(time.getUTCMinutes()).padStart(2, '0')}`;
  const sizeText = human ? humanSize(size) : String(size);
  return `${permissions(node)} ${links} ${ownerName(node.uid)} ${ownerName(node.gid)} ${sizeText.padStart(human ? 4 : 5)} ${stamp} ${name}`;
}

const ls: CommandImplementation = (context) => {
  const { flags, operands } = parseFlags(context.args);
  const long = flags.has('l');
  const all = flags.has('a');
  const human = flags.has('h');
  const targets = operands.length === 0 ? ['.'] : operands;
  let status = 0;
  const blocks: string[] = [];
  for (const target of targets) {
    const path = resolve(context, target);
    const node = context.session.fs.lookup(path);
    if (node === undefined) {
      context.stderr(`ls: cannot access '${target}': No such file or directory\n`);
      status = 2;
      continue;
    }
    if (node.type === 'file' || flags.has('d')) {
      blocks.push(long ? longLine(target, node, human) : target);
      continue;
    }
    const entries: [string, FileSystemNode][] = context.session.fs.readdir(path).filter(([name]) => all || !name.startsWith('.'));
    if (all) entries.unshift(['.', node], ['..', context.session.fs.lookup(MemoryFileSystem.resolve('..', path)) ?? node]);
    const lines: string[] = [];
    if (targets.length > 1) lines.push(`${target}:`);
    if (long) {
      const blocksUsed = entries.reduce((sum, [, child]) => sum + (child.type === 'directory' ? 4 : Math.ceil(child.data.length / 4096) * 4), 0);
      lines.push(`total ${human ? humanSize(blocksUsed * 1024) : blocksUsed}`);
      for (const [name, child] of entries) lines.push(longLine(name, child, human));
    } else if (entries.length > 0) {
      lines.push(entries.map(([name]) => name).join('  '));
    }
    blocks.push(lines.join('\n'));
  }
  if (blocks.length > 0) context.stdout(`${blocks.filter((block) => block !== '').join(targets.length > 1 ? '\n\n' : '\n')}\n`);
  return status;
};

const df: CommandImplementation = ({ args, session, stdout }) => {
  const human = parseFlags(args).flags.has('h');
  const size = (session.host.diskGb ?? 25) * 1024 ** 3;
  const used = 1.6 * 1024 ** 3 + session.fs.usedBytes();
  const available = size - used;
  const percent = `${Math.ceil((used / size) * 100)}%`;
  const shm = 492 * 1024 ** 2;
  const format = (bytes: number): string => (human ? humanSize(bytes) : String(Math.round(bytes / 1024)));
  const header = human ? 'Filesystem      Size  Used Avail Use% Mounted on' : 'Filesystem     1K-blocks    Used Available Use% Mounted on';
  const width = human ? 5 : 10;
  const row = (name: string, total: number, usedBytes: number, free: number, use: string, mount: string): string =>
    `${name.padEnd(14)} ${format(total).padStart(width)} ${format(usedBytes).padStart(width)} ${format(free).padStart(width)} ${use.padStart(4)} ${mount}`;
  stdout(`${header}\n${row('/dev/vda1', size, used, available, percent, '/')}\n${row('tmpfs', shm, 0, shm, '0%', '/dev/shm')}\n`);
  return 0;
};

const uname: CommandImplementation = ({ args, session, stdout }) => {
  const { flags } = parseFlags(args);
  const fields: [string, string][] = [
    ['s', 'Linux'],
    ['n', session.host.hostname],
    ['r', KERNEL_RELEASE],
    ['v', KERNEL_VERSION],
    ['m', 'x86_64'],
    ['p', 'x86_64'],
    ['i', 'x86_64'],
    ['o', 'GNU/Linux'],
  ];
  const selected = flags.has('a') ? fields : fields.filter(([flag]) => flags.has(flag));
  stdout(`${(selected.length === 0 ? [fields[0]!] : selected).map(([, value]) => value).join(' ')}\n`);
  return 0;
};

const hostname: CommandImplementation = ({ args, session, stdout }) => {
  const { flags, operands } = parseFlags(args);
  if (operands[0] !== undefined) {
    session.host.hostname = operands[0];
    return 0;
  }
  stdout(`${flags.has('I') ? '10.0.0.2' : session.host.hostname}\n`);
  return 0;
};

const whoami: CommandImplementation = ({ session, stdout }) => {
  stdout(`${session.user}\n`);
  return 0;
};

const id: CommandImplementation = ({ session, stdout }) => {
  const number = session.user === 'root' ? 0 : 1000;
  stdout(`uid=${number}(${session.user}) gid=${number}(${session.user}) groups=${number}(${session.user})\n`);
  return 0;
};

const pwd: CommandImplementation = ({ session, stdout }) => {
  stdout(`${session.cwd}\n`);
  return 0;
};

const cd: CommandImplementation = (context) => {
  const target = context.args[0] ?? context.session.variables.HOME ?? '/';
  const path = resolve(context, target);
  const node = context.session.fs.lookup(path);
  if (node?.type !== 'directory') {
    context.stderr(`sh: 1: cd: can't cd to ${target}\n`);
    return 2;
  }
  context.session.cwd = path;
  return 0;
};

const exit: CommandImplementation = ({ args, session }) => {
  const code = args[0] === undefined ? Number(session.variables['?'] ?? 0) : Number(args[0]);
  throw new ExitSignal(Number.isInteger(code) ? code & 0xff : 2);
};

const sudo: CommandImplementation = (context) => {
  const args = [...context.args];
  while (args[0]?.startsWith('-')) {
    const option = args.shift()!;
    if (option === '-u' || option === '-g') args.shift();
  }
  if (args.length === 0) {
    context.stderr('usage: sudo command\n');
    return 1;
  }
  return context.run(args.map(quote).join(' '), context.stdin);
};

const sh: CommandImplementation = async (context) => {
  const index = context.args.indexOf('-c');
  if (index !== -1) {
    const script = context.args[index + 1];
    if (script === undefined) {
      context.stderr('sh: 0: -c requires an argument\n');
      return 2;
    }
    return context.run(script, context.stdin);
  }
  const file = context.args.find((arg) => !arg.startsWith('-'));
  const script = file === undefined ? (await context.stdin()).toString('utf8') : context.session.fs.readFile(resolve(context, file)).toString('utf8');
  return context.run(script, () => Promise.resolve(Buffer.alloc(0)));
};

const mkdir: CommandImplementation = (context) => {
  const { flags, operands } = parseFlags(context.args);
  for (const operand of operands) context.session.fs.mkdir(resolve(context, operand), { recursive: flags.has('p') });
  return 0;
};

const rm: CommandImplementation = (context) => {
  const { flags, operands } = parseFlags(context.args);
  let status = 0;
  for (const operand of operands) {
    const path = resolve(context, operand);
    if (!context.session.fs.exists(path)) {
      if (!flags.has('f')) {
        context.stderr(`rm: cannot remove '${operand}': No such file or directory\n`);
        status = 1;
      }
      continue;
    }
    context.session.fs.remove(path, { recursive: flags.has('r') || flags.has('R') });
  }
  return status;
};

const touch: CommandImplementation = (context) => {
  for (const operand of parseFlags(context.args).operands) {
    const path = resolve(context, operand);
    const node = context.session.fs.lookup(path);
    if (node === undefined) context.session.fs.writeFile(path, '');
    else node.mtime = new Date();
  }
  return 0;
};

const tee: CommandImplementation = async (context) => {
  const { flags, operands } = parseFlags(context.args);
  const data = await context.stdin();
  for (const operand of operands) context.session.fs.writeFile(resolve(context, operand), data, { append: flags.has('a') });
  context.stdout(data);
  return 0;
};

const test: CommandImplementation = (context) => {
  const args = context.args[context.args.length - 1] === ']' ? context.args.slice(0, -1) : context.args;
  let negate = false;
  if (args[0] === '!') {
    negate = true;
    args.shift();
  }
  let result: boolean;
  const [first, second, third] = args;
  if (args.length === 2 && first !== undefined && second !== undefined && /^-[efdsnzxrw]$/.test(first)) {
    const node = context.session.fs.lookup(resolve(context, second));
    result =
      first === '-e' || first === '-r' || first === '-w' ? node !== undefined
      : first === '-x' ? node !== undefined && (node.mode & 0o111) !== 0
      : first === '-f' ? node?.type === 'file'
      : first === '-d' ? node?.type === 'directory'
      : first === '-s' ? node?.type === 'file' && node.data.length > 0
      : first === '-n' ? second !== ''
      : second === '';
  } else if (args.length === 3 && second === '=') result = first === third;
  else if (args.length === 3 && second === '!=') result = first !== third;
  else if (args.length === 1) result = (first ?? '') !== '';
  else result = false;
  return result !== negate ? 0 : 1;
};

const chmod: CommandImplementation = (context) => {
  const [mode, ...paths] = context.args;
  for (const path of paths) {
    const node = context.session.fs.stat(resolve(context, path));
    if (mode !== undefined && /^[0-7]{3,4}$/.test(mode)) node.mode = Number.parseInt(mode, 8);
  }
  return 0;
};

const mv: CommandImplementation = (context) => {
  const { operands } = parseFlags(context.args);
  const [from, to] = operands;
  if (from === undefined || to === undefined) {
    context.stderr('mv: missing file operand\n');
    return 1;
  }
  context.session.fs.rename(resolve(context, from), resolve(context, to));
  return 0;
};

const cp: CommandImplementation = (context) => {
  const { operands } = parseFlags(context.args);
  const [from, to] = operands;
  if (from === undefined || to === undefined) {
    context.stderr('cp: missing file operand\n');
    return 1;
  }
  context.session.fs.writeFile(resolve(context, to), context.session.fs.readFile(resolve(context, from)));
  return 0;
};

function lineCount(args: string[]): { count: number; operands: string[] } {
  const rest = [...args];
  let count = 10;
  const index = rest.findIndex((arg) => arg === '-n' || /^-n?\d+$/.test(arg));
  if (index !== -1) {
    const flag = rest[index]!;
    const value = flag === '-n' ? rest[index + 1] : flag.replace(/^-n?/, '');
    rest.splice(index, flag === '-n' ? 2 : 1);
    count = Number(value ?? 10);
  }
  return { count, operands: rest };
}

async function readInput(context: CommandContext, operands: string[]): Promise<string> {
  if (operands.length === 0) return (await context.stdin()).toString('utf8');
  return operands.map((operand) => context.session.fs.readFile(resolve(context, operand)).toString('utf8')).join('');
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

const head: CommandImplementation = async (context) => {
  const { count, operands } = lineCount(context.args);
  const lines = splitLines(await readInput(context, operands)).slice(0, count);
  if (lines.length > 0) context.stdout(`${lines.join('\n')}\n`);
  return 0;
};

const tail: CommandImplementation = async (context) => {
  const { count, operands } = lineCount(context.args);
  const lines = splitLines(await readInput(context, operands));
  const selected = count === 0 ? [] : lines.slice(-count);
  if (selected.length > 0) context.stdout(`${selected.join('\n')}\n`);
  return 0;
};

/** Where a command lives, or undefined: built-ins always, package commands once installed. */
function commandPath(context: CommandContext, name: string): string | undefined {
  const packaged = PACKAGE_COMMANDS[name];
  if (packaged !== undefined) return context.session.fs.exists(packaged) ? packaged : undefined;
  if (SHELL_COMMANDS[name] === undefined) return undefined;
  return ['cloud-init', 'systemctl', 'journalctl'].includes(name) && context.session.system === undefined ? undefined : `/usr/bin/${name}`;
}

const which: CommandImplementation = (context) => {
  let status = 0;
  for (const name of context.args.filter((arg) => !arg.startsWith('-'))) {
    const path = commandPath(context, name);
    if (path === undefined) status = 1;
    else context.stdout(`${path}\n`);
  }
  return status;
};

/** `command -v NAME…` / `command -V NAME`; `command NAME ARGS` runs NAME. */
const command: CommandImplementation = (context) => {
  const [option, ...names] = context.args;
  if (option !== '-v' && option !== '-V') {
    if (option === undefined) return 0;
    return context.run(context.args.map(quote).join(' '), context.stdin);
  }
  let status = 0;
  for (const name of names) {
    const path = commandPath(context, name);
    if (path === undefined) {
      if (option === '-V') context.stderr(`sh: 1: command: ${name}: not found\n`);
      status = 1;
    } else context.stdout(option === '-v' ? `${path}\n` : `${name} is ${path}\n`);
  }
  return status;
};

const sleep: CommandImplementation = async ({ args }) => {
  const seconds = Number(args[0] ?? 0);
  await delay(Math.min(Number.isFinite(seconds) ? seconds : 0, 2) * 1000);
  return 0;
};

function quote(word: string): string {
  return /^[A-Za-z0-9_./=:,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Every built-in, by name. Unknown commands exit 127 (`sh: 1: X: not found`). */
export const SHELL_COMMANDS: Readonly<Record<string, CommandImplementation>> = {
  echo,
  printf,
  cat,
  ls,
  df,
  uname,
  hostname,
  whoami,
  id,
  pwd,
  cd,
  true: () => 0,
  false: () => 1,
  ':': () => 0,
  exit,
  sudo,
  sh,
  bash: sh,
  mkdir,
  rm,
  touch,
  tee,
  test,
  '[': test,
  chmod,
  mv,
  cp,
  which,
  sleep,
  head,
  tail,
  command,
  ...SYSTEM_COMMANDS,
};
