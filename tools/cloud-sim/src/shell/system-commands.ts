import { posix } from 'node:path';
import { INITIAL_ENGINE } from '../guest/engine-releases.ts';
import type { CommandContext, CommandImplementation } from './emulated-shell.ts';
import { MemoryFileSystem } from './memory-filesystem.ts';

/**
 * Built-ins that talk to the machine's services through the session's {@link GuestSystem}:
 * `cloud-init`, `systemctl`, `journalctl`, `curl`, `apt-get`/`apt`, `docker`, and `install`.
 * Without a guest system they fail the way a container without systemd or network does.
 */

function resolvePath(context: CommandContext, path: string): string {
  const expanded = path === '~' || path.startsWith('~/') ? `${context.session.variables.HOME ?? '/root'}${path.slice(1)}` : path;
  return MemoryFileSystem.resolve(expanded, context.session.cwd);
}

const NO_SYSTEMD = "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n";

const cloudInit: CommandImplementation = async (context) => {
  const system = context.session.system;
  if (system === undefined) {
    context.stderr('sh: 1: cloud-init: not found\n');
    return 127;
  }
  const [subcommand, ...rest] = context.args;
  if (subcommand === '--version' || subcommand === '-v') {
    context.stdout('/usr/bin/cloud-init 24.4-0ubuntu1~24.04.2\n');
    return 0;
  }
  if (subcommand !== 'status') {
    context.stderr(`usage: /usr/bin/cloud-init [-h] [--version] [--debug] [--force] [--all-stages]\n/usr/bin/cloud-init: error: argument subcommand: invalid choice: '${subcommand ?? ''}'\n`);
    return 2;
  }
  const wait = rest.includes('--wait') || rest.includes('-w');
  const long = rest.includes('--long') || rest.includes('-l');
  if (wait && ['not started', 'running'].includes(system.cloudInit().state)) {
    context.stdout('.');
    await system.waitForCloudInit();
    context.stdout('\n');
  }
  const { state, errors, lastUpdate, datasource } = system.cloudInit();
  const lines = [`status: ${state}`];
  if (long) {
    lines.push(
      `extended_status: ${state === 'error' ? 'error - done' : state}`,
      'boot_status_code: enabled-by-generator',
      `last_update: ${lastUpdate.toUTCString().replace('GMT', '+0000')}`,
      `detail: ${state === 'running' ? 'Running in stage: modules-final' : datasource}`,
      errors.length === 0 ? 'errors: []' : `errors:\n${errors.map((error) => `\t- ${error}`).join('\n')}`,
      'recoverable_errors: {}',
    );
  }
  context.stdout(`${lines.join('\n')}\n`);
  return state === 'error' ? 1 : 0;
};

const systemctl: CommandImplementation = async (context) => {
  const system = context.session.system;
  if (system === undefined) {
    context.stderr(NO_SYSTEMD);
    return 1;
  }
  const words = context.args.filter((arg) => !arg.startsWith('-'));
  const [verb, ...units] = words;
  if (verb === undefined) {
    context.stderr('Too few arguments.\n');
    return 1;
  }
  const result = await system.systemctl(verb, units, { now: context.args.includes('--now') });
  const quiet = context.args.includes('-q') || context.args.includes('--quiet');
  if (!quiet) context.stdout(result.stdout);
  context.stderr(result.stderr);
  return result.code;
};

const journalctl: CommandImplementation = (context) => {
  const system = context.session.system;
  if (system === undefined) {
    context.stdout('No journal files were found.\n-- No entries --\n');
    return 0;
  }
  let unit: string | undefined;
  let count: number | undefined;
  const args = [...context.args];
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg.startsWith('--unit=')) unit = arg.slice(7);
    else if (arg.startsWith('--lines=')) count = Number(arg.slice(8));
    else if (arg === '--unit') unit = args.shift();
    else if (arg === '--lines') count = Number(args.shift());
    else if (/^-[a-zA-Z]+$/.test(arg)) {
      const last = arg[arg.length - 1];
      if (last === 'u') unit = args.shift();
      else if (last === 'n') count = Number(args.shift());
    }
  }
  if (unit === undefined) {
    context.stdout('-- No entries --\n');
    return 0;
  }
  let lines = [...system.journal(unit.replace(/\.service$/, ''))];
  if (count !== undefined && Number.isFinite(count)) lines = count === 0 ? [] : lines.slice(-count);
  context.stdout(lines.length === 0 ? '-- No entries --\n' : `${lines.join('\n')}\n`);
  return 0;
};

const CURL_OPTIONS_WITH_ARGUMENT = new Set(['-o', '--output', '-H', '--header', '-X', '--request', '-d', '--data', '-A', '--user-agent', '-m', '--max-time', '--connect-timeout', '--retry', '--retry-delay', '-w', '--write-out', '-u', '--user', '-e', '--referer', '--proto', '--tlsv1.2']);

const curl: CommandImplementation = (context) => {
  let output: string | undefined;
  let silent = false;
  let showError = false;
  let failOnHttpError = false;
  const urls: string[] = [];
  const args = [...context.args];
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === '-o' || arg === '--output') output = args.shift();
    else if (arg.startsWith('--output=')) output = arg.slice(9);
    else if (arg === '--silent') silent = true;
    else if (arg === '--show-error') showError = true;
    else if (arg === '--fail') failOnHttpError = true;
    else if (CURL_OPTIONS_WITH_ARGUMENT.has(arg)) args.shift();
    else if (/^-[a-zA-Z]+$/.test(arg)) {
      for (const [index, flag] of [...arg.slice(1)].entries()) {
        if (flag === 's') silent = true;
        else if (flag === 'S') showError = true;
        else if (flag === 'f') failOnHttpError = true;
        else if (flag === 'o') {
          const inline = arg.slice(index + 2);
          output = inline !== '' ? inline : args.shift();
          break;
        }
      }
    } else if (!arg.startsWith('-')) urls.push(arg);
  }
  const report = (code: number, message: string): number => {
    if (!silent || showError) context.stderr(`curl: (${code}) ${message}\n`);
    return code;
  };
  const url = urls[0];
  if (url === undefined) return report(2, 'no URL specified');
  const system = context.session.system;
  const result = system === undefined ? { code: 6, message: `Could not resolve host: ${hostOf(url)}` } : system.download(url);
  if ('code' in result) {
    if (result.code === 22 && !failOnHttpError) {
      context.stdout('404: Not Found');
      return 0;
    }
    return report(result.code, result.message);
  }
  if (output === undefined) {
    context.stdout(result.data);
    return 0;
  }
  try {
    context.session.fs.writeFile(resolvePath(context, output), result.data);
  } catch {
    return report(23, `Failure writing output to destination, passed ${result.data.length} returned 0`);
  }
  return 0;
};

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

const aptGet: CommandImplementation = (context) => {
  const quiet = context.args.some((arg) => /^-q+$/.test(arg) || arg === '--quiet');
  const operands = context.args.filter((arg) => !arg.startsWith('-'));
  const [action, ...packages] = operands;
  if (context.session.user !== 'root') {
    context.stderr('E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n');
    return 100;
  }
  switch (action) {
    case 'update':
      if (!quiet) context.stdout('Hit:1 http://archive.ubuntu.com/ubuntu noble InRelease\nHit:2 http://security.ubuntu.com/ubuntu noble-security InRelease\nReading package lists... Done\n');
      return 0;
    case 'upgrade':
    case 'install': {
      const system = context.session.system;
      if (system === undefined) {
        for (const name of packages) context.stderr(`E: Unable to locate package ${name}\n`);
        return 100;
      }
      const onlyUpgrade = action === 'upgrade' || context.args.includes('--only-upgrade');
      // `apt-get upgrade` without names upgrades what is installed (here: Docker's packages, when installed).
      const names = action === 'upgrade' && packages.length === 0 ? (system.docker().installed === undefined ? [] : ['docker-ce', 'docker-ce-cli', 'containerd.io']) : packages;
      const result = system.installPackages(names, quiet, { onlyUpgrade });
      context.stdout(result.stdout);
      context.stderr(result.stderr);
      return result.code;
    }
    case undefined:
      context.stderr('E: No command given\n');
      return 100;
    default:
      return 0;
  }
};

/** `install [-m MODE] [-d] [-D] [-o OWNER] [-g GROUP] SRC… DEST` (GNU coreutils). */
const install: CommandImplementation = (context) => {
  let mode = 0o755;
  let directories = false;
  let leading = false;
  let uid = 0;
  let gid = 0;
  const operands: string[] = [];
  const args = [...context.args];
  while (args.length > 0) {
    const arg = args.shift()!;
    const option = /^(-m|--mode=?|-o|--owner=?|-g|--group=?)(.*)$/.exec(arg);
    if (option !== null) {
      const value = option[2] !== '' ? option[2]! : (args.shift() ?? '');
      if (option[1]!.startsWith('-m') || option[1]!.startsWith('--mode')) {
        if (!/^[0-7]{1,4}$/.test(value)) {
          context.stderr(`install: invalid mode '${value}'\n`);
          return 1;
        }
        mode = Number.parseInt(value, 8);
      } else if (option[1]!.startsWith('-o') || option[1]!.startsWith('--owner')) uid = value === 'root' || value === '0' ? 0 : 1000;
      else gid = value === 'root' || value === '0' ? 0 : 1000;
    } else if (arg === '--directory') directories = true;
    else if (/^-[dDTvpCc]+$/.test(arg)) {
      if (arg.includes('d')) directories = true;
      if (arg.includes('D')) leading = true;
    } else operands.push(arg);
  }
  const fs = context.session.fs;
  if (directories) {
    for (const operand of operands) {
      const node = fs.mkdir(resolvePath(context, operand), { recursive: true, owner: { uid, gid } });
      node.mode = mode;
    }
    return 0;
  }
  if (operands.length < 2) {
    context.stderr(operands.length === 0 ? 'install: missing file operand\n' : `install: missing destination file operand after '${operands[0]}'\n`);
    return 1;
  }
  const destination = operands.pop()!;
  const destinationPath = resolvePath(context, destination);
  const intoDirectory = fs.lookup(destinationPath)?.type === 'directory';
  if (operands.length > 1 && !intoDirectory) {
    context.stderr(`install: target '${destination}' is not a directory\n`);
    return 1;
  }
  let status = 0;
  for (const source of operands) {
    const sourcePath = resolvePath(context, source);
    const node = fs.lookup(sourcePath);
    if (node === undefined) {
      context.stderr(`install: cannot stat '${source}': No such file or directory\n`);
      status = 1;
      continue;
    }
    if (node.type !== 'file') {
      context.stderr(`install: omitting directory '${source}'\n`);
      status = 1;
      continue;
    }
    const target = intoDirectory ? posix.join(destinationPath, posix.basename(sourcePath)) : destinationPath;
    if (leading) fs.mkdir(posix.dirname(target), { recursive: true });
    if (!fs.exists(posix.dirname(target))) {
      context.stderr(`install: cannot create regular file '${target}': No such file or directory\n`);
      status = 1;
      continue;
    }
    if (fs.lookup(target)?.type === 'file') fs.remove(target); // install unlinks and creates: new mode and owner
    const file = fs.writeFile(target, node.data, { mode, owner: { uid, gid } });
    file.mode = mode;
  }
  return status;
};

const docker: CommandImplementation = (context) => {
  if (!context.session.fs.exists('/usr/bin/docker')) {
    context.stderr('sh: 1: docker: not found\n');
    return 127;
  }
  const [subcommand, ...rest] = context.args;
  const daemon = context.session.system?.docker() ?? { running: false };
  const clientRelease = daemon.installed ?? INITIAL_ENGINE;
  const server = daemon.server ?? clientRelease;
  const client = `Client: Docker Engine - Community\n Version:           ${clientRelease.version}\n API version:       ${clientRelease.apiVersion}\n Go version:        ${clientRelease.goVersion}\n Git commit:        ce12230\n Built:             Fri Sep 20 11:41:00 2024\n OS/Arch:           linux/amd64\n Context:           default\n`;
  const unreachable = 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n';
  if (subcommand === '--version' || subcommand === '-v') {
    context.stdout(`Docker version ${clientRelease.version}, build ce12230\n`);
    return 0;
  }
  const formatIndex = rest.findIndex((arg) => arg === '--format' || arg === '-f');
  const format = formatIndex === -1 ? undefined : rest[formatIndex + 1];
  switch (subcommand) {
    case 'version': {
      if (format !== undefined) {
        if (/\.Server\./.test(format) && !daemon.running) {
          context.stderr(unreachable);
          return 1;
        }
        context.stdout(
          `${format
            .replace(/\{\{\s*\.Server\.Version\s*\}\}/g, server.version)
            .replace(/\{\{\s*\.Client\.Version\s*\}\}/g, clientRelease.version)
            .replace(/\{\{\s*\.Server\.APIVersion\s*\}\}/g, server.apiVersion)}\n`,
        );
        return 0;
      }
      context.stdout(client);
      if (!daemon.running) {
        context.stderr(unreachable);
        return 1;
      }
      context.stdout(
        `\nServer: Docker Engine - Community\n Engine:\n  Version:          ${server.version}\n  API version:      ${server.apiVersion} (minimum version ${server.minApiVersion})\n  Go version:       ${server.goVersion}\n  Git commit:       ${server.gitCommit}\n  OS/Arch:          linux/amd64\n  Experimental:     false\n containerd:\n  Version:          ${server.containerdVersion}\n`,
      );
      return 0;
    }
    case 'info': {
      if (!daemon.running || daemon.info === undefined) {
        context.stdout(`Client: Docker Engine - Community\n Version:    ${clientRelease.version}\n Context:    default\n\nServer:\n`);
        context.stderr(`ERROR: ${unreachable}`);
        return 1;
      }
      const info = daemon.info;
      const labels = (info.Labels as string[]).map((label) => `  ${label}\n`).join('');
      context.stdout(
        `Client: Docker Engine - Community\n Version:    ${clientRelease.version}\n Context:    default\n\nServer:\n Containers: ${String(info.Containers)}\n Images: ${String(info.Images)}\n Server Version: ${server.version}\n Storage Driver: ${String(info.Driver)}\n Operating System: ${String(info.OperatingSystem)}\n Name: ${String(info.Name)}\n ID: ${String(info.ID)}\n${labels === '' ? '' : ` Labels:\n${labels}`}`,
      );
      return 0;
    }
    case 'ps':
      if (!daemon.running) {
        context.stderr(unreachable);
        return 1;
      }
      {
        const all = rest.includes('-a') || rest.includes('--all');
        const rows = (daemon.containers ?? []).filter((row) => all || row.running);
        const table = [
          ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
          ...rows.map((row) => [row.id.slice(0, 12), row.image, `"${row.command.length > 20 ? `${row.command.slice(0, 19)}…` : row.command}"`, `${ago(row.created)}`, row.status, '', row.name]),
        ];
        // Go's tabwriter as docker sets it up: cells at least 10 wide, 3 spaces of padding.
        const widths = table[0]!.map((_, column) => Math.max(10, ...table.map((cells) => cells[column]!.length + 3)));
        const lines = table.map((cells) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('').trimEnd());
        context.stdout(`${lines.join('\n')}\n`);
      }
      return 0;
    default:
      context.stderr(`docker: '${subcommand ?? ''}' is not a docker command.\nSee 'docker --help'\n`);
      return 1;
  }
};

/** `3 seconds ago`, as `docker ps` shows CREATED. */
function ago(created: Date): string {
  const seconds = Math.round((Date.now() - created.getTime()) / 1000);
  if (seconds < 1) return 'Less than a second ago';
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return minutes === 1 ? 'About a minute ago' : `${minutes} minutes ago`;
  const hours = Math.round(minutes / 60);
  return hours === 1 ? 'About an hour ago' : `${hours} hours ago`;
}

/** The system built-ins, by name. */
export const SYSTEM_COMMANDS: Readonly<Record<string, CommandImplementation>> = {
  'cloud-init': cloudInit,
  systemctl,
  journalctl,
  curl,
  'apt-get': aptGet,
  apt: aptGet,
  install,
  docker,
};

/** Commands that exist only once a package put them on disk. */
export const PACKAGE_COMMANDS: Readonly<Record<string, string>> = {
  docker: '/usr/bin/docker',
  dockerd: '/usr/bin/dockerd',
};
