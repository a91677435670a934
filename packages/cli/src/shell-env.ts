/**
 * The lines `machine env` prints, for every shell the reference supports, byte for byte like
 * docker-machine v0.16 (`commands/env.go`) with `machine` in place of `docker-machine`, so
 * `eval $(machine env NAME)` and scripts that parse the output keep working.
 */

/** Shells with their own syntax; any other name (bash, zsh, sh, ksh, …) gets the POSIX lines. */
export type ShellKind = 'posix' | 'fish' | 'powershell' | 'cmd' | 'tcsh' | 'emacs';

/** The shell names `--shell` documents. */
export const shellNames = ['bash', 'zsh', 'sh', 'fish', 'powershell', 'cmd', 'tcsh', 'emacs'] as const;

/** The syntax family of a shell name (the basename of `$SHELL` or the `--shell` value). */
export function shellKind(name: string): ShellKind {
  switch (name) {
    case 'fish':
    case 'powershell':
    case 'cmd':
    case 'tcsh':
    case 'emacs':
      return name;
    default:
      return 'posix';
  }
}

/** The reference's note when `$SHELL` is empty (it then fails with "Error: Unknown shell"). */
export const unknownShellNote = 'The default lines below are for a sh/bash shell, you can specify the shell you\'re using, with the --shell flag.';

/**
 * The shell to print for: `--shell`, else the basename of `$SHELL`; undefined when neither is set
 * (the caller prints {@link unknownShellNote} and fails, like the reference).
 */
export function detectShell(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (option !== undefined && option !== '') return option;
  const shell = env.SHELL ?? '';
  if (shell === '') return undefined;
  return shell.split(/[\\/]/).pop() || undefined;
}

interface Syntax {
  prefix: string;
  delimiter: string;
  suffix: string;
}

const setSyntax: Record<ShellKind, Syntax> = {
  posix: { prefix: 'export ', delimiter: '="', suffix: '"\n' },
  fish: { prefix: 'set -gx ', delimiter: ' "', suffix: '";\n' },
  powershell: { prefix: '$Env:', delimiter: ' = "', suffix: '"\n' },
  cmd: { prefix: 'SET ', delimiter: '=', suffix: '\n' },
  tcsh: { prefix: 'setenv ', delimiter: ' "', suffix: '";\n' },
  emacs: { prefix: '(setenv "', delimiter: '" "', suffix: '")\n' },
};

const unsetSyntax: Record<ShellKind, Syntax> = {
  posix: { prefix: 'unset ', delimiter: '', suffix: '\n' },
  fish: { prefix: 'set -e ', delimiter: '', suffix: ';\n' },
  // A literal double backslash, as the reference prints it.
  powershell: { prefix: 'Remove-Item Env:\\\\', delimiter: '', suffix: '\n' },
  cmd: { prefix: 'SET ', delimiter: '=', suffix: '\n' },
  tcsh: { prefix: 'unsetenv ', delimiter: '', suffix: ';\n' },
  emacs: { prefix: '(setenv "', delimiter: '" nil', suffix: ')\n' },
};

/**
 * The two comment lines after the variables: `# Run this command to configure your shell: ` (with
 * its trailing space) and the command that applies them, `commandLine` being how the user ran
 * `machine env` (the reference echoes its own argv).
 */
export function usageHint(shell: string, commandLine: string): string {
  let comment = '#';
  let command: string;
  switch (shellKind(shell)) {
    case 'fish':
      command = `eval (${commandLine})`;
      break;
    case 'powershell':
      command = `& ${commandLine} | Invoke-Expression`;
      break;
    case 'cmd':
      command = `\t@FOR /f "tokens=*" %i IN ('${commandLine}') DO @%i`;
      comment = 'REM';
      break;
    case 'emacs':
      command = `(with-temp-buffer (shell-command "${commandLine}" (current-buffer)) (eval-buffer))`;
      comment = ';;';
      break;
    case 'tcsh':
      command = `eval \`${commandLine}\``;
      comment = ':';
      break;
    default:
      command = `eval $(${commandLine})`;
  }
  return `${comment} Run this command to configure your shell: \n${comment} ${command}\n`;
}

/** The command line for the hint: `machine` and the arguments as given (quoted when they hold spaces). */
export function hintCommandLine(argv: readonly string[]): string {
  return ['machine', ...argv].map((arg) => (/[\s"]/.test(arg) ? `"${arg.replace(/"/g, '\\"')}"` : arg)).join(' ');
}

/** Lines that set `variables` (in order) for `shell`, then the usage hint. */
export function renderSet(shell: string, variables: readonly (readonly [string, string])[], commandLine: string): string {
  const syntax = setSyntax[shellKind(shell)];
  return variables.map(([key, value]) => `${syntax.prefix}${key}${syntax.delimiter}${value}${syntax.suffix}`).join('') + usageHint(shell, commandLine);
}

/** Lines that unset `keys` for `shell`, then the usage hint. */
export function renderUnset(shell: string, keys: readonly string[], commandLine: string): string {
  const syntax = unsetSyntax[shellKind(shell)];
  return keys.map((key) => `${syntax.prefix}${key}${syntax.delimiter}${syntax.suffix}`).join('') + usageHint(shell, commandLine);
}

/** The variables `machine env` sets, in the reference's order. */
export const dockerEnvKeys = ['DOCKER_TLS_VERIFY', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_MACHINE_NAME'] as const;

/**
 * The no-proxy variable and its value with `ip` added: `no_proxy` when that one is set (non-empty),
 * else `NO_PROXY`; existing entries are kept, and the IP is added only when it is not an entry yet
 * (an exact entry match, not the reference's substring test that took 10.0.0.12 for 10.0.0.1).
 */
export function noProxyWith(env: Readonly<Record<string, string | undefined>>, ip: string): [string, string] {
  const [key, current] = noProxyFromEnv(env);
  const entries = current.split(',').filter((entry) => entry.trim() !== '');
  if (!entries.some((entry) => entry.trim() === ip)) entries.push(ip);
  return [key, entries.join(',')];
}

/** The no-proxy variable in use: `no_proxy` when it is set, else `NO_PROXY`, with its value. */
export function noProxyFromEnv(env: Readonly<Record<string, string | undefined>>): [string, string] {
  const lower = env.no_proxy ?? '';
  if (lower !== '') return ['no_proxy', lower];
  return ['NO_PROXY', env.NO_PROXY ?? ''];
}

/** Go's `%q` for the paths `machine config` prints (ASCII paths: a JSON string is the same). */
export function goQuote(text: string): string {
  return JSON.stringify(text);
}
