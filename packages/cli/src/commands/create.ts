import {
  acceptsBootUserData,
  type BootConfig,
  type DriverDescriptor,
  type FlagDefinition,
  InvalidConfigError,
  type ProgressEvent,
  MachineError,
  assertValidMachineName,
  offersSSH,
  parseFlags,
  redactSecrets,
  secretValues,
  withoutSecrets,
} from '@machine/driver-core';
import { waitForSSHHostKey } from '@machine/driver-core/ssh';
import type { ClientCertificates, MachineHostKey } from '@machine/provision';
import { CliError, ExitCode, errorLine, machineExists } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { driverFlagHelp, parseDriverArguments } from '../driver-flags.ts';
import { writeLine } from '../io.ts';
import { persistentContext } from '../machine-host.ts';
import { progressView } from '../progress.ts';
import { copyClientFiles, issueFor, provisionRecord } from '../provisioning.ts';
import { explainHostKeyError, sshCredentials, writeKnownHosts } from '../ssh-target.ts';
import type { MachineRecord } from '../store.ts';
import { type ProvisionPlan, reportProvisionFailure, runProvisioning } from './provision.ts';

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
    else if (token === '--swarm' || token.startsWith('--swarm-') || token.startsWith('--swarm=')) {
      throw new CliError(`${token.split('=')[0]}: Swarm classic is not supported (it was retired by Docker); create the machine, then run \`docker swarm init\` on it`);
    }
    else if (token === '-h' || token === '--help') options.help = true;
    else options.rest.push(token);
  }
  return options;
}

function createUsage(descriptor: DriverDescriptor | undefined, provisionFlags: readonly FlagDefinition[]): string[] {
  const lines = [
    'Usage: machine create -d DRIVER [driver flags] NAME',
    '',
    'Creates a machine: checks the name and flags, runs the driver\'s pre-create check, creates the',
    'instance (installing Docker Engine while it boots where the image has cloud-init), waits until SSH',
    'answers with the pinned host key, installs the TLS certificates and waits for the Docker API.',
    '',
    'Options:',
    '  -d, --driver <name>   driver to use [$MACHINE_DRIVER]',
    '  --sim                 use the bundled cloud simulator (no account needed)',
    '  -h, --help            this help; with -d, the driver\'s flags too',
    '',
    'Docker Engine flags:',
    ...driverFlagHelp(provisionFlags),
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
      for (const line of createUsage(undefined, (await import('@machine/provision')).provisionFlags)) writeLine(io.stdout, line);
      return ExitCode.ok;
    }
    throw new CliError('a driver is required: `machine create -d DRIVER NAME` (`machine drivers` lists them)');
  }
  const descriptor = await ctx.registry.load(driverName);
  const provisionModule = await import('@machine/provision');
  const { provisionFlags } = provisionModule;
  if (options.help) {
    for (const line of createUsage(descriptor, provisionFlags)) writeLine(io.stdout, line);
    return ExitCode.ok;
  }

  // Everything is checked before any API call: the name, every flag, the credentials.
  const parsed = parseDriverArguments([...provisionFlags, ...descriptor.flags], options.rest);
  const known = new Set([...provisionFlags, ...descriptor.flags].map((definition) => definition.name));
  const unknown = Object.keys(parsed.values).filter((flagName) => !known.has(flagName));
  if (unknown.length > 0) {
    // The driver's flags; the Docker Engine flags are in `machine create --help`.
    const list = descriptor.flags.map((definition) => `--${definition.name}`).join(', ');
    throw new InvalidConfigError(unknown.map((flagName) => ({ flag: flagName, message: `unknown flag; known flags: ${list}` })));
  }
  if (parsed.positionals.length === 0) throw new CliError(`a machine name is required: \`machine create -d ${driverName} NAME\``);
  if (parsed.positionals.length > 1) {
    throw new CliError(`expected one machine name, got ${parsed.positionals.map((p) => `"${p}"`).join(' ')} (flags go before the name; \`machine create -d ${driverName} --help\` lists them)`);
  }
  const name = parsed.positionals[0] as string;
  if (parsed.missingValues.length > 0) throw new InvalidConfigError(parsed.missingValues.map((flag) => ({ flag, message: 'needs a value' })));
  assertValidMachineName(name);
  const hostFlagNames = new Set<string>(provisionFlags.map((definition) => definition.name));
  let values = Object.fromEntries(Object.entries(parsed.values).filter(([flagName]) => !hostFlagNames.has(flagName)));
  const hostValues = Object.fromEntries(Object.entries(parsed.values).filter(([flagName]) => hostFlagNames.has(flagName)));
  let simFlags: string[] = [];
  if (options.sim) {
    // The simulator's endpoint and fake credentials; what the user gave explicitly wins.
    const { simFlagValues, simEnginePort } = await import('../sim-mode.ts');
    const fromSim = await simFlagValues(ctx, descriptor, { start: true });
    simFlags = Object.keys(fromSim).filter((flag) => !(flag in values));
    values = { ...fromSim, ...values };
    // Each simulator has its own docker port, so parallel simulators never collide on 2376.
    const port = await simEnginePort(ctx);
    if (port !== undefined && hostValues['engine-port'] === undefined) hostValues['engine-port'] = port;
  }
  // A driver with its own engine port flag (generic's --generic-engine-port, used by its URL) sets
  // the engine port when --engine-port is not given.
  const driverEnginePort = descriptor.flags.find((definition) => definition.name === `${descriptor.name}-engine-port`);
  if (driverEnginePort !== undefined && hostValues['engine-port'] === undefined) {
    const fromDriver = values[driverEnginePort.name] ?? (driverEnginePort.envVar === undefined ? undefined : io.env[driverEnginePort.envVar]);
    if (fromDriver !== undefined && fromDriver !== '') hostValues['engine-port'] = fromDriver;
  }
  let [config, engine] = parseAll(
    () => parseFlags(descriptor.flags, values, { env: io.env }) as Record<string, unknown>,
    () => provisionModule.engineOptionsFrom(parseFlags(provisionFlags, hostValues, { env: io.env }) as Record<string, unknown>),
  );
  // Provisioning needs SSH; `none` (an existing engine at a URL) has none.
  const sshCapable = offersSSH(descriptor);
  // The drivers' firewalls open 22 and 2376: another --engine-port goes into the driver's open ports.
  const openPort = descriptor.flags.find((definition) => definition.name === `${descriptor.name}-open-port` && definition.type === 'string[]');
  if (sshCapable && !engine.noProvision && !options.sim && engine.port !== provisionModule.defaultEnginePort && openPort !== undefined) {
    const current = Array.isArray(config[openPort.key]) ? (config[openPort.key] as string[]) : [];
    if (!current.includes(String(engine.port))) {
      values = { ...values, [openPort.name]: [...current, String(engine.port)] };
      config = parseFlags(descriptor.flags, values, { env: io.env }) as Record<string, unknown>;
    }
  }
  const secrets = secretValues(descriptor.flags, config);
  // cloud-init user data where the driver takes it for this config (google: not for an adopted instance).
  const cloudInit = acceptsBootUserData(descriptor, config);
  const provisioning = sshCapable && !engine.noProvision;
  // daemon.json is checked as a whole too (an --engine-opt that contradicts another flag), before any API call.
  if (provisioning) provisionModule.daemonConfig(engine);

  // Another command holding the name's lock is a create of the same name (or a command on an
  // existing machine): the reference's "already exists", not "busy".
  const lock = await store.lock(name, { whenBusy: () => machineExists(name) });
  let provisionTarget: ProvisionPlan | undefined;
  let provisioned = false;
  // On a terminal the steps redraw in place and collapse to a summary when create ends.
  const progress = progressView(io.stdout);
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
      ...(options.sim ? { sim: true, simFlags } : {}),
      storeId: await store.storeId(),
    };
    // Like the reference, the CA and client certificate come first (made once per store).
    const client: ClientCertificates | undefined = provisioning ? await store.withCerts((dir) => provisionModule.ensureClientCertificates(dir)) : undefined;
    await store.create(record);
    const machineDir = store.machineDir(name);
    let hostKey: MachineHostKey | undefined;
    let boot: BootConfig | undefined;
    try {
      if (client !== undefined) await copyClientFiles(client, machineDir);
      if (sshCapable && cloudInit) {
        // The machine boots with a host key made here, so the first SSH connection verifies it
        // (with --no-provision too: the cloud-config then only sets the host key).
        hostKey = provisionModule.generateHostKey(`machine-${name}`);
        boot = { userData: provisionModule.buildCloudConfig({ engine, hostKey }), hostKeyFingerprint: hostKey.fingerprint };
      }
    } catch (error) {
      await store.remove(name); // nothing was made yet: no half-made record either
      throw error;
    }
    const printProgress = progress.printer();
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
      // Ctrl-C during the check is an interruption like anywhere else in create (130), not a failed check (3).
      if ((MachineError.isInstance(error) && error.code === 'CANCELLED') || signal?.aborted === true) {
        throw new CliError(`create of "${name}" was interrupted; nothing is left behind`, ExitCode.interrupted, { cause: error });
      }
      throw new CliError(`Error with pre-create check: "${messageOf(error, secrets)}"`, ExitCode.preCreateCheck, { cause: error });
    }
    onProgress({ step: 'pre-create-check', phase: 'done', message: 'Pre-create checks passed' });

    onProgress({ step: 'create', phase: 'start', message: `Creating machine "${name}" with driver ${descriptor.name}...` });
    try {
      await driver.create({ ...operation, ...(boot === undefined ? {} : { boot }) });
      onProgress({ step: 'create', phase: 'done', message: `Created machine "${name}"` });
      const sshHost = await driver.getSSHHostname(operation).catch((error: unknown) => {
        // A driver without SSH (like the reference's `none`) says so; there is nothing to wait for.
        if (MachineError.isInstance(error) && error.code === 'NOT_SUPPORTED') return undefined;
        throw error;
      });
      if (sshHost !== undefined) {
        const keyPath = driver.getSSHKeyPath();
        // The key the machine booted with (pinned), else the first key the driver saw (trust on first use).
        const seenByDriver = typeof record.data.hostKeyFingerprint === 'string' ? record.data.hostKeyFingerprint : undefined;
        const pinned = boot?.hostKeyFingerprint ?? seenByDriver;
        const target = {
          host: sshHost,
          port: await driver.getSSHPort(operation),
          username: driver.getSSHUsername(),
          ...(await sshCredentials(name, keyPath)),
          machine: name,
          ...(pinned === undefined ? {} : { hostKeyFingerprint: pinned }),
        };
        // Drivers usually wait for SSH themselves; this check is then one quick handshake, not shown again.
        // The same handshake gives the key itself for the machine's known_hosts.
        const { fingerprint, hostKey: publicKey } = await waitForSSHHostKey(target, { ...(driverWaitedForSSH ? {} : { onProgress }), ...operation }).catch(
          (error: unknown) => {
            throw explainHostKeyError(error, name);
          },
        );
        await writeKnownHosts(machineDir, `machine-${name}`, publicKey);
        record.ssh = { user: target.username, port: target.port, keyPath, hostKeyFingerprint: fingerprint, hostKey: publicKey };
        if (provisioning && client !== undefined) {
          const ip = await driver.getIP(operation);
          const server = await issueFor(name, machineDir, client, engine, ip);
          record.provision = provisionRecord(engine, 'failed', server.sans);
          provisionTarget = { ssh: { ...target, hostKeyFingerprint: fingerprint }, dockerHost: ip, server, client, engine };
        } else if (engine.noProvision && sshCapable) record.provision = provisionRecord(engine, 'skipped');
      }
      record.status = 'ready';
      await store.write(record);
    } catch (error) {
      const interrupted = MachineError.isInstance(error) && error.code === 'CANCELLED';
      const message = messageOf(error, secrets);
      // A docker-machine plugin journals nothing: what it made is known only to its saved config, which `rm` hands back to it.
      const pluginConfigKept = 'legacyPlugin' in descriptor && record.data.legacyPlugin !== undefined;
      if (record.journal.length === 0 && !pluginConfigKept) {
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
      const left = pluginConfigKept ? `what docker-machine plugin ${descriptor.name} made, in its config` : record.journal.map((entry) => `${entry.kind} ${entry.id}`).join(', ');
      throw new CliError(
        `${interrupted ? `create of "${name}" was interrupted` : `Error creating machine: ${message}`}; still recorded: ${left}. \`machine rm ${name}\` deletes it`,
        interrupted ? ExitCode.interrupted : ExitCode.error,
        { cause: error },
      );
    }
    if (provisionTarget !== undefined) {
      // The machine exists and is recorded; a failure from here on keeps it, as `Error` in `ls`.
      try {
        await runProvisioning(ctx, { ...provisionTarget, cloudInit, record, onProgress });
        provisioned = true;
      } catch (error) {
        return await reportProvisionFailure(ctx, record, error, secrets);
      }
    }
  } finally {
    progress.close();
    await lock.release();
  }
  const next = provisioned ? `\`eval $(machine env ${name})\` points the docker client at it` : `connect with \`machine ssh ${name}\``;
  writeLine(io.stdout, `Machine "${name}" is ready: ${next}.`);
  return ExitCode.ok;
}

/** Runs both parsers and reports every bad flag of both in one error. */
function parseAll<A, B>(first: () => A, second: () => B): [A, B] {
  const issues: ConstructorParameters<typeof InvalidConfigError>[0][number][] = [];
  let a: A | undefined;
  let b: B | undefined;
  for (const [index, parse] of [first, second].entries()) {
    try {
      if (index === 0) a = parse() as A;
      else b = parse() as B;
    } catch (error) {
      if (!(MachineError.isInstance(error) && error.code === 'INVALID_CONFIG')) throw error;
      issues.push(...(error as InvalidConfigError).issues);
    }
  }
  if (issues.length > 0) throw new InvalidConfigError(issues);
  return [a as A, b as B];
}

function messageOf(error: unknown, secrets: readonly string[]): string {
  return redactSecrets(errorLine(error), secrets);
}
