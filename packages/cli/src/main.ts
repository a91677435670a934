import { Argument, Command, CommanderError, Option } from 'commander';
import { CliError, ExitCode, errorLine } from './cli-error.ts';
import type { CommandContext, GlobalOptions } from './context.ts';
import { DriverRegistry } from './driver-registry.ts';
import { type CliIO, writeLine } from './io.ts';
import { isPostgresUrl, PostgresStore } from './postgres-store.ts';
import { MachineStore, type Store, storagePath } from './store.ts';
import { versionLine } from './version.ts';

/**
 * Runs the CLI in-process: parses `argv` (without `node` and the script), runs the command and
 * returns the exit code. All I/O goes through `io`, so tests and embedders can run it.
 * Command modules are imported only when their command runs.
 */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let context: CommandContext | undefined;
  const program = new Command('machine');
  const ctx = (): CommandContext => {
    if (context === undefined) context = commandContext(program.opts<GlobalOptions>(), io, argv);
    return context;
  };
  const run =
    <A extends unknown[]>(handler: (ctx: CommandContext, ...args: A) => Promise<number> | number) =>
    async (...args: A): Promise<void> => {
      exitCode = await handler(ctx(), ...args);
    };

  program
    .description('Create and manage cloud machines through Machine Driver Specification v1 drivers')
    .usage('[options] COMMAND [arg...]')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .version(versionLine(), '-v, --version', 'print the version')
    .addOption(new Option('-s, --storage-path <path>', 'where machines are stored [$MACHINE_STORAGE_PATH] (default: ~/.machine)'))
    .addOption(new Option('--store <url>', 'keep machines in PostgreSQL (postgres://…) instead of the storage path [$MACHINE_STORE]; secrets need $MACHINE_STORE_KEY'))
    .addOption(new Option('-D, --debug', 'print debug output and stack traces [$MACHINE_DEBUG]'))
    .addOption(new Option('--native-ssh', 'use the built-in SSH client instead of the system\'s ssh [$MACHINE_NATIVE_SSH]'))
    .addOption(new Option('--sim', 'send every create to the bundled cloud simulator, as `create --sim` [$MACHINE_SIM]'));

  program
    .command('create')
    .description('Create a machine: machine create -d DRIVER [driver flags] NAME (-d DRIVER --help lists the flags)')
    .usage('-d DRIVER [driver flags] NAME')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[args...]')
    .action(
      run(async (c, given: string[]) => {
        // `machine --sim create …` or MACHINE_SIM=1: scripts written for docker-machine run against the simulator unchanged.
        const simWanted = program.opts<{ sim?: boolean }>().sim === true || truthy(io.env.MACHINE_SIM);
        const args = simWanted && !given.includes('--sim') ? ['--sim', ...given] : given;
        const many = await import('./commands/create-many.ts');
        return many.wantsMany(args) ? many.createManyCommand(c, args) : (await import('./commands/create.ts')).createCommand(c, args);
      }),
    );

  program
    .command('ls')
    .description('List machines')
    .option('-q, --quiet', 'print machine names only')
    .option('-f, --filter <key=value>', 'filter by driver, state or name (regex); repeatable', collect, [])
    .option('-t, --timeout <seconds>', 'timeout per machine when asking its state', '10')
    .option('--format <format>', 'json, or a Go template: table {{.Name}}\\t{{.State}}')
    .action(run(async (c, options: { quiet?: boolean; filter?: string[]; timeout?: string; format?: string }) => (await import('./commands/ls.ts')).listCommand(c, options)));

  for (const [name, description] of [
    ['start', 'Start machines'],
    ['stop', 'Stop machines'],
    ['kill', 'Kill (force stop) machines'],
    ['restart', 'Restart machines'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .option('--filter <key=value>', 'every machine the filter selects (driver, state, name regex, label; repeatable), like ls', collect, [])
      .argument('[names...]', 'machine names (default: default)')
      .action(
        run(async (c, names: string[], options: { filter: string[] }) =>
          (await import('./commands/lifecycle.ts')).lifecycleCommand(c, name, await selectedMachines(c, names, options.filter, ['default'])),
        ),
      );
  }

  program
    .command('rm')
    .description('Remove machines: their cloud resources, then the local record')
    .option('-f, --force', 'Remove local configuration even if machine cannot be removed, also implies an automatic yes (`-y`)')
    .option('-y', 'Assumes automatic yes to proceed with remove, without prompting further user confirmation')
    .option('--filter <key=value>', 'every machine the filter selects (driver, state, name regex, label; repeatable), like ls', collect, [])
    .argument('[names...]', 'machine names')
    .action(
      run(async (c, names: string[], options: { force?: boolean; y?: boolean; filter: string[] }) =>
        (await import('./commands/lifecycle.ts')).removeCommand(c, await selectedMachines(c, names, options.filter, []), { force: options.force === true, yes: options.y === true }),
      ),
    );

  program
    .command('sweep')
    .description('List (and with -y delete) resources at the provider that carry this store\'s tag and that no machine record claims')
    .usage('[-d DRIVER] [--region REGION] [--sim] [--min-age SECONDS] [-y] [driver flags]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[args...]')
    .action(run(async (c, args: string[]) => (await import('./commands/sweep.ts')).sweepCommand(c, args)));

  program
    .command('store')
    .description('The machine store: migrate --to postgres://… (or a folder) copies every machine there and verifies it')
    .command('migrate')
    .description('Copy every machine, its files and the CA/client certificate to another store, then verify; the source is unchanged')
    .requiredOption('--to <url-or-path>', 'a postgres:// URL (secrets need $MACHINE_STORE_KEY) or a storage folder')
    .action(run(async (c, options: { to: string }) => (await import('./commands/store.ts')).storeMigrateCommand(c, options)));

  const info = async () => import('./commands/info.ts');
  program.command('status').description('Get the status of a machine').argument('[name]', 'machine name', 'default').action(run(async (c, name: string) => (await info()).statusCommand(c, name)));
  program.command('ip').description('Get the IP address of a machine').argument('[name]', 'machine name', 'default').action(run(async (c, name: string) => (await info()).ipCommand(c, name)));
  program.command('url').description('Get the Docker URL of a machine').argument('[name]', 'machine name', 'default').action(run(async (c, name: string) => (await info()).urlCommand(c, name)));
  const env = async () => import('./commands/env.ts');
  program.command('config').description('Print the docker client flags of a machine').argument('[name]', 'machine name', 'default').action(run(async (c, name: string) => (await env()).configCommand(c, name)));
  program
    .command('inspect')
    .description('Inspect a machine (JSON, secrets redacted)')
    .option('-f, --format <template>', 'Go template, e.g. {{.Driver.IPAddress}} or {{json .Driver}}')
    .argument('[name]', 'machine name', 'default')
    .action(run(async (c, name: string, options: { format?: string }) => (await info()).inspectCommand(c, name, options)));
  program
    .command('env')
    .description('Print the commands that set up the Docker environment of a machine')
    .option('--shell <shell>', 'bash, zsh, sh, fish, powershell, cmd, tcsh or emacs (default: from $SHELL)')
    .option('-u, --unset', 'print the commands that unset the variables')
    .option('--no-proxy', 'add the machine IP to NO_PROXY (or no_proxy when that is set), keeping its entries')
    .argument('[name]', 'machine name')
    .action(
      run(async (c, name: string | undefined, options: { shell?: string; unset?: boolean; proxy?: boolean }) =>
        (await env()).envCommand(c, name, { ...(options.shell === undefined ? {} : { shell: options.shell }), unset: options.unset === true, noProxy: options.proxy === false }),
      ),
    );
  program
    .command('active')
    .description('Print which machine is active ($DOCKER_HOST)')
    .option('-t, --timeout <seconds>', 'timeout per machine', '10')
    .action(run(async (c, options: { timeout?: string }) => (await info()).activeCommand(c, options)));

  program
    .command('ssh')
    .description('Log into or run a command on a machine: machine ssh NAME [ssh options] [-- command...]')
    .usage('NAME [ssh options] [-- command...]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[args...]')
    .action(run(async (c, args: string[]) => (await import('./commands/ssh.ts')).sshCommand(c, args)));
  program
    .command('scp')
    .description('Copy files between the local host and machines, or between machines: [[user@]machine:]path')
    .option('-r, --recursive', 'copy directories recursively')
    .option('-q, --quiet', 'no progress output')
    .argument('<source>')
    .argument('<destination>')
    .action(run(async (c, source: string, destination: string, options: { recursive?: boolean; quiet?: boolean }) => (await import('./commands/scp.ts')).scpCommand(c, source, destination, options)));

  const provision = async () => import('./commands/provision.ts');
  program
    .command('provision')
    .description('Provision machines again: install/configure Docker Engine, new TLS certificates, wait for the Docker API')
    .argument('[names...]', 'machine names', ['default'])
    .action(run(async (c, names: string[]) => (await provision()).provisionCommand(c, names)));
  program
    .command('regenerate-certs')
    .description('Issue new TLS certificates for machines and install them (restarts dockerd)')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--client-certs', 'also make a new CA and client certificate (every machine then needs new certificates)')
    .argument('[names...]', 'machine names', ['default'])
    .action(
      run(async (c, names: string[], options: { force?: boolean; clientCerts?: boolean }) =>
        (await provision()).regenerateCertsCommand(c, names, { force: options.force === true, clientCerts: options.clientCerts === true }),
      ),
    );
  program
    .command('upgrade')
    .description('Upgrade Docker Engine on machines (a stopped machine is started first), restart it with the same TLS configuration')
    .argument('[names...]', 'machine names', ['default'])
    .action(run(async (c, names: string[]) => (await import('./commands/upgrade.ts')).upgradeCommand(c, names)));
  program
    .command('mount')
    .description('Mount a machine folder with sshfs: machine mount NAME:PATH LOCALDIR (-u unmounts)')
    .option('-u, --unmount', 'unmount LOCALDIR (fusermount -u, else umount)')
    .argument('<name:path>', 'machine and folder, e.g. web1:/var/log')
    .argument('<local-dir>', 'local mount point (an existing folder)')
    .action(run(async (c, source: string, localDir: string, options: { unmount?: boolean }) => (await import('./commands/mount.ts')).mountCommand(c, source, localDir, { unmount: options.unmount === true })));
  program
    .command('trust-host-key')
    .description('Show the SSH host key a machine presents and, with --fingerprint or --yes, record it as its pinned key')
    .option('--fingerprint <SHA256:…>', 'record the presented key only if it has this fingerprint (checked out of band)')
    .option('-y, --yes', 'record whatever key the machine presents')
    .argument('<name>', 'machine name')
    .action(
      run(async (c, name: string, options: { fingerprint?: string; yes?: boolean }) =>
        (await import('./commands/host-key.ts')).trustHostKeyCommand(c, name, { ...(options.fingerprint === undefined ? {} : { fingerprint: options.fingerprint }), yes: options.yes === true }),
      ),
    );

  const misc = async () => import('./commands/misc.ts');
  const drivers = async () => import('./commands/drivers.ts');
  const driversCommand = program
    .command('drivers')
    .description('List (ls), install, update and remove drivers; without a subcommand, ls')
    .action(run(async (c) => (await drivers()).listDriversCommand(c)));
  driversCommand.command('ls').description('Every driver found, where, and which copy wins').action(run(async (c) => (await drivers()).listDriversCommand(c)));
  driversCommand
    .command('install')
    .description('Install drivers into STORAGE/drivers with npm: NAME, NAME@VERSION, @scope/pkg, machine-driver-x, cloud-sim or a tarball path')
    .option('--allow-scripts', 'run the packages\' install scripts (not needed by the first-party drivers)')
    .argument('<specs...>')
    .action(run(async (c, specs: string[], options: { allowScripts?: boolean }) => (await drivers()).installDriversCommand(c, specs, { allowScripts: options.allowScripts === true })));
  driversCommand
    .command('update')
    .description('Update drivers installed in STORAGE/drivers (all without names)')
    .option('--allow-scripts', 'run the packages\' install scripts')
    .argument('[names...]')
    .action(run(async (c, names: string[], options: { allowScripts?: boolean }) => (await drivers()).updateDriversCommand(c, names, { allowScripts: options.allowScripts === true })));
  driversCommand
    .command('remove')
    .alias('rm')
    .description('Remove drivers installed in STORAGE/drivers')
    .argument('<names...>')
    .action(run(async (c, names: string[]) => (await drivers()).removeDriversCommand(c, names)));
  program
    .command('version')
    .description('Print the version of machine, or with NAME the Docker Engine version of that machine')
    .argument('[name]', 'machine name')
    .action(
      run(async (c, name: string | undefined) => {
        if (name !== undefined) return (await info()).engineVersionCommand(c, name);
        writeLine(c.io.stdout, versionLine());
        return ExitCode.ok;
      }),
    );
  program
    .command('sim')
    .description('Manage the bundled cloud simulator daemon used by --sim')
    .addArgument(new Argument('<action>', 'stop or status').choices(['stop', 'status']))
    .action(run(async (c, action: string) => (await misc()).simCommand(c, action)));
  program
    .command('completion')
    .description('Print a shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('[shell]', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']).default('bash'))
    .action(run(async (c, shell: string) => (await misc()).completionCommand(c, shell)));

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return ExitCode.ok;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    return await reportError(error, io, context?.debug ?? debugWanted(argv, io));
  } finally {
    // Flushes the store and removes its local copies of secrets (PostgreSQL).
    await context?.store.close().catch((error: unknown) => writeLine(io.stderr, `Error closing the machine store: ${(error as Error).message}`));
  }
}

/** The machines a fleet command acts on: the names given, or what `--filter` selects (never both). */
async function selectedMachines(ctx: CommandContext, names: string[], filters: string[], fallback: string[]): Promise<string[]> {
  if (filters.length === 0) {
    if (names.length > 0) return names;
    if (fallback.length > 0) return fallback;
    throw new CliError('name the machines, or select them with --filter key=value (driver, state, name, label)');
  }
  if (names.length > 0) throw new CliError('give machine names or --filter, not both');
  const { machinesMatching } = await import('./commands/ls.ts');
  const selected = await machinesMatching(ctx, filters);
  if (selected.length === 0) throw new CliError(`no machine matches --filter ${filters.join(' --filter ')}`);
  return selected;
}

/** The store a command uses: PostgreSQL for a postgres:// URL, else the folder at the storage path. */
function openStore(url: string | undefined, root: string, env: Readonly<Record<string, string | undefined>>): Store {
  if (url === undefined || url === '') return new MachineStore(root);
  if (isPostgresUrl(url)) return new PostgresStore(url, root, env);
  throw new CliError(`--store/MACHINE_STORE "${url}" is not a postgres:// URL (leave it unset for the folder store at the storage path)`);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function debugWanted(argv: readonly string[], io: CliIO): boolean {
  return argv.includes('-D') || argv.includes('--debug') || truthy(io.env.MACHINE_DEBUG);
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function commandContext(options: GlobalOptions, io: CliIO, argv: readonly string[]): CommandContext {
  const debug = options.debug === true || truthy(io.env.MACHINE_DEBUG);
  const root = storagePath(options.storagePath, io.env);
  return {
    io,
    store: openStore(options.store ?? io.env.MACHINE_STORE, root, io.env),
    registry: new DriverRegistry(io, root),
    debug,
    nativeSsh: options.nativeSsh === true || truthy(io.env.MACHINE_NATIVE_SSH),
    argv,
    debugLog: (message) => {
      if (debug) writeLine(io.stderr, `[debug] ${message}`);
    },
  };
}

/** Prints an error as one line (a stack trace too with --debug) and returns its exit code. */
async function reportError(error: unknown, io: CliIO, debug: boolean): Promise<number> {
  if (error instanceof CommanderError) {
    // Commander already printed its message; help and version are not failures.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.ok;
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.error;
  }
  if (error instanceof CliError) {
    writeLine(io.stderr, error.message);
    if (debug && error.cause instanceof Error && error.cause.stack !== undefined) writeLine(io.stderr, error.cause.stack);
    return error.exitCode;
  }
  // Loaded only on failure: the spec package is not needed to start.
  const { MachineError } = await import('@machine/driver-core');
  if (MachineError.isInstance(error)) {
    writeLine(io.stderr, errorLine(error));
    if (debug && error.stack !== undefined) writeLine(io.stderr, error.stack);
    return error.code === 'CANCELLED' ? ExitCode.interrupted : ExitCode.error;
  }
  const message = error instanceof Error ? error.message : String(error);
  writeLine(io.stderr, `Error: ${message}`);
  if (debug && error instanceof Error && error.stack !== undefined) writeLine(io.stderr, error.stack);
  return ExitCode.error;
}
