import {
  type DriverDescriptor,
  InvalidConfigError,
  type ProgressEvent,
  MachineError,
  assertValidMachineName,
  parseFlags,
  redactSecrets,
  secretValues,
  withoutSecrets,
} from '@machine/driver-core';
import { waitForSSH } from '@machine/driver-core/ssh';
import { CliError, ExitCode, errorLine, machineExists } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { driverFlagHelp, parseDriverArguments } from '../driver-flags.ts';
import { writeLine } from '../io.ts';
import { lockMachine } from '../lock.ts';
import { persistentContext } from '../machine-host.ts';
import { progressPrinter } from '../progress.ts';
import { fetchHostKey, sshCredentials, writeKnownHosts } from '../ssh-target.ts';
import type { MachineRecord } from '../store.ts';

/** `create`'s own options, parsed before the driver is known. */
interface CreateOptions {
  driver: string | undefined;
  sim: boolean;
  help: boolean;
  /** Everything else: driver flags and the machine name. */
  rest: string[];
}

function parseCreateOptions(tokens: readonly string[]): CreateOptions {
  const options: CreateOptions = { driver: undefined, sim: false, help: false, rest: [] };
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] ?? '';
    if (token === '--') {
      options.rest.push(...tokens.slice(index));
      break;
    }
    if (token === '-d' || token === '--driver') {
      const value = tokens[++index];
      if (value === undefined) throw new CliError(`${token} needs a driver name, e.g. \`machine create -d digitalocean NAME\``);
      options.driver = value;
    } else if (token.startsWith('--driver=')) options.driver = token.slice('--driver='.length);
    else if (token === '--sim') options.sim = true;
    else if (token === '-h' || token === '--help') options.help = true;
    else options.rest.push(token);
  }
  return options;
}

function createUsage(descriptor: DriverDescriptor | undefined): string[] {
  const lines = [
    'Usage: machine create -d DRIVER [driver flags] NAME',
    '',
    'Creates a machine: checks the name and flags, runs the driver\'s pre-create check, creates the',
    'instance, waits until SSH answers and records the machine.',
    '',
    'Options:',
    '  -d, --driver <name>   driver to use [$MACHINE_DRIVER]',
    '  --sim                 use the bundled cloud simulator (no account needed)',
    '  -h, --help            this help; with -d, the driver\'s flags too',
  ];
  if (descriptor !== undefined) {
    lines.push('', `Flags of driver "${descriptor.name}" (${descriptor.description}):`, ...driverFlagHelp(descriptor.flags));
  } else lines.push('', '`machine drivers` lists the installed drivers; `machine create -d DRIVER --help` lists a driver\'s flags.');
  return lines;
}

/** `machine create -d DRIVER [--DRIVER-flags…] NAME`. */
export async function createCommand(ctx: CommandContext, tokens: readonly string[]): Promise<number> {
  const { io, store } = ctx;
  const options = parseCreateOptions(tokens);
  const driverName = options.driver ?? io.env.MACHINE_DRIVER;
  if (driverName === undefined || driverName === '') {
    if (options.help) {
      for (const line of createUsage(undefined)) writeLine(io.stdout, line);
      return ExitCode.ok;
    }
    throw new CliError('a driver is required: `machine create -d DRIVER NAME` (`machine drivers` lists them)');
  }
  const descriptor = await ctx.registry.load(driverName);
  if (options.help) {
    for (const line of createUsage(descriptor)) writeLine(io.stdout, line);
    return ExitCode.ok;
  }

  // Everything is checked before any API call: the name, every flag, the credentials.
  const parsed = parseDriverArguments(descriptor.flags, options.rest);
  const known = new Set(descriptor.flags.map((definition) => definition.name));
  const unknown = Object.keys(parsed.values).filter((flagName) => !known.has(flagName));
  if (unknown.length > 0) {
    const list = [...known].map((flagName) => `--${flagName}`).join(', ');
    throw new InvalidConfigError(unknown.map((flagName) => ({ flag: flagName, message: `unknown flag; known flags: ${list}` })));
  }
  if (parsed.positionals.length === 0) throw new CliError(`a machine name is required: \`machine create -d ${driverName} NAME\``);
  if (parsed.positionals.length > 1) {
    throw new CliError(`expected one machine name, got ${parsed.positionals.map((p) => `"${p}"`).join(' ')} (flags go before the name; \`machine create -d ${driverName} --help\` lists them)`);
  }
  const name = parsed.positionals[0] as string;
  if (parsed.missingValues.length > 0) throw new InvalidConfigError(parsed.missingValues.map((flag) => ({ flag, message: 'needs a value' })));
  assertValidMachineName(name);
  let values = parsed.values;
  if (options.sim) {
    // The simulator's endpoint and fake credentials; what the user gave explicitly wins.
    const { simFlagValues } = await import('../sim-mode.ts');
    values = { ...(await simFlagValues(ctx, descriptor, { start: true })), ...values };
  }
  const config = parseFlags(descriptor.flags, values, { env: io.env }) as Record<string, unknown>;
  const secrets = secretValues(descriptor.flags, config);

  const lock = await lockMachine(store.root, name);
  try {
    if (await store.exists(name)) throw machineExists(name);
    const record: MachineRecord = {
      version: 1,
      name,
      driver: descriptor.name,
      status: 'creating',
      createdAt: new Date().toISOString(),
      config: withoutSecrets(descriptor.flags, config) as Record<string, unknown>,
      journal: [],
      data: {},
      ...(options.sim ? { sim: true } : {}),
    };
    await store.create(record);
    const printProgress = progressPrinter(io.stdout);
    let driverWaitedForSSH = false;
    const onProgress = (event: ProgressEvent) => {
      if (event.step === 'wait-ssh' && event.phase === 'done') driverWaitedForSSH = true;
      printProgress(event);
    };
    const context = persistentContext(store, record, onProgress);
    const driver = descriptor.createDriver({ config, context });
    const signal = io.signal;
    const operation = signal === undefined ? {} : { signal };

    onProgress({ step: 'pre-create-check', phase: 'start', message: 'Running pre-create checks...' });
    try {
      await driver.preCreateCheck(operation);
    } catch (error) {
      await store.remove(name);
      throw new CliError(`Error with pre-create check: "${messageOf(error, secrets)}"`, ExitCode.preCreateCheck, { cause: error });
    }
    onProgress({ step: 'pre-create-check', phase: 'done', message: 'Pre-create checks passed' });

    onProgress({ step: 'create', phase: 'start', message: `Creating machine "${name}" with driver ${descriptor.name}...` });
    try {
      await driver.create(operation);
      onProgress({ step: 'create', phase: 'done', message: `Created machine "${name}"` });
      const sshHost = await driver.getSSHHostname(operation).catch((error: unknown) => {
        // A driver without SSH (like the reference's `none`) says so; there is nothing to wait for.
        if (MachineError.isInstance(error) && error.code === 'NOT_SUPPORTED') return undefined;
        throw error;
      });
      if (sshHost !== undefined) {
        const keyPath = driver.getSSHKeyPath();
        const target = {
          host: sshHost,
          port: await driver.getSSHPort(operation),
          username: driver.getSSHUsername(),
          ...(await sshCredentials(name, keyPath)),
          machine: name,
        };
        // Drivers usually wait for SSH themselves; this check is then one quick handshake, not shown again.
        const fingerprint = await waitForSSH(target, { ...(driverWaitedForSSH ? {} : { onProgress }), ...operation });
        const hostKey = await fetchHostKey(target, fingerprint);
        await writeKnownHosts(store.machineDir(name), `machine-${name}`, hostKey);
        record.ssh = { user: target.username, port: target.port, keyPath, hostKeyFingerprint: fingerprint, hostKey };
      }
      record.status = 'ready';
      await store.write(record);
    } catch (error) {
      const interrupted = MachineError.isInstance(error) && error.code === 'CANCELLED';
      const message = messageOf(error, secrets);
      if (record.journal.length === 0) {
        await store.remove(name);
        throw new CliError(
          interrupted ? `create of "${name}" was interrupted; nothing is left behind` : `Error creating machine: ${message}`,
          interrupted ? ExitCode.interrupted : ExitCode.error,
          { cause: error },
        );
      }
      record.status = 'failed';
      record.error = message;
      await store.write(record);
      const left = record.journal.map((entry) => `${entry.kind} ${entry.id}`).join(', ');
      throw new CliError(
        `${interrupted ? `create of "${name}" was interrupted` : `Error creating machine: ${message}`}; still recorded: ${left}. \`machine rm ${name}\` deletes it`,
        interrupted ? ExitCode.interrupted : ExitCode.error,
        { cause: error },
      );
    }
  } finally {
    await lock.release();
  }
  writeLine(io.stdout, `Machine "${name}" is ready. Connect with \`machine ssh ${name}\`; \`machine env ${name}\` prints its Docker environment.`);
  return ExitCode.ok;
}

function messageOf(error: unknown, secrets: readonly string[]): string {
  return redactSecrets(errorLine(error), secrets);
}
