import { type DriverDescriptor, type JournalEntry, parseFlags, redactSecrets, type SweepReport, secretValues } from '@machine/driver-core';
import { CliError, ExitCode, errorLine } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { parseDriverArguments } from '../driver-flags.ts';
import { writeLine } from '../io.ts';
import { alignColumns } from '../template.ts';
import { useStoreRateBudget } from '../rate-budget-host.ts';

/** What `machine sweep` was asked. */
export interface SweepCommandOptions {
  /** `-d DRIVER`; every installed driver that can sweep when undefined. */
  driver?: string;
  /** `-y`: delete what is found (otherwise only list it). */
  yes: boolean;
  /** `--sim`: sweep the bundled simulator's accounts. */
  sim: boolean;
  /** `--region`: the driver's region, zone or location flag. */
  region?: string;
  /** `--min-age SECONDS`: leave younger resources (a create may be making them right now). */
  minAgeSeconds: number;
  /** The driver's own flags (credentials, API URL, project…), with `-d`. */
  driverFlags: readonly string[];
  /** `-h`: print the usage. */
  help: boolean;
}

/** Resources younger than this are left by default: a create in another process may be making them. */
export const defaultSweepMinAgeSeconds = 300;

/** Parses `machine sweep [-d DRIVER] [--region R] [--sim] [-y] [--min-age SECONDS] [driver flags…]`. */
export function parseSweepArguments(tokens: readonly string[]): SweepCommandOptions {
  const options: SweepCommandOptions = { yes: false, sim: false, minAgeSeconds: defaultSweepMinAgeSeconds, driverFlags: [], help: false };
  const flags: string[] = [];
  const valueAt = (index: number, flag: string): string => {
    const value = tokens[index];
    if (value === undefined || value.startsWith('-')) throw new CliError(`${flag} needs a value`);
    return value;
  };
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    const [name, inline] = token.startsWith('--') && token.includes('=') ? [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)] : [token, undefined];
    if (name === '-d' || name === '--driver') options.driver = inline ?? valueAt(++index, name);
    else if (name === '-y' || name === '--yes') options.yes = true;
    else if (name === '--sim') options.sim = true;
    else if (name === '--region') options.region = inline ?? valueAt(++index, name);
    else if (name === '--min-age') {
      const text = inline ?? valueAt(++index, name);
      const seconds = Number(text);
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(seconds)) throw new CliError(`--min-age: "${text}" is not a number of seconds`);
      options.minAgeSeconds = seconds;
    } else if (name === '-h' || name === '--help') options.help = true;
    else flags.push(token);
  }
  if (flags.length > 0 && options.driver === undefined) throw new CliError(`driver flags (${flags.join(' ')}) need -d DRIVER`);
  options.driverFlags = flags;
  return options;
}

const sweepUsage = [
  'Usage: machine sweep [-d DRIVER] [--region REGION] [--sim] [--min-age SECONDS] [-y] [driver flags]',
  '',
  'Lists every resource at the provider that carries this store\'s managed-by tag and that no machine',
  'record claims (left by a killed create whose record was deleted, or by a lost store); -y deletes them.',
  `Resources younger than --min-age (default ${defaultSweepMinAgeSeconds} s) are left: a create may be making them.`,
].join('\n');

/**
 * `machine sweep`: per driver that can sweep (its descriptor has `sweep`), with the credentials of
 * the environment (or `--sim`), lists what carries the store's `managed-by: machine-<store id>` tag
 * and no record claims, with its age; `-y` deletes it. Exit 1 when a driver failed or a delete did.
 */
export async function sweepCommand(ctx: CommandContext, tokens: readonly string[]): Promise<number> {
  const options = parseSweepArguments(tokens);
  const { io, store } = ctx;
  if (options.help) {
    writeLine(io.stdout, sweepUsage);
    return ExitCode.ok;
  }
  const claimed = await claimedResources(ctx);
  const storeId = await store.storeId();
  // Sweep's listings and deletions draw from the store's shared rate budget like every driver call.
  useStoreRateBudget(store, { sim: options.sim === true });
  const descriptors = options.driver === undefined ? await sweepableDrivers(ctx) : [await ctx.registry.load(options.driver)];
  const rows = ['DRIVER\tKIND\tID\tNAME\tMACHINE\tAGE\tSTATUS'];
  let failed = 0;
  let found = 0;
  for (const descriptor of descriptors) {
    if (descriptor.sweep === undefined) {
      if (options.driver !== undefined) throw new CliError(`driver "${descriptor.name}" cannot sweep: it does not declare its resources (no sweep in its descriptor)`);
      continue;
    }
    let config: Record<string, unknown>;
    try {
      config = await sweepConfig(ctx, descriptor, options);
    } catch (error) {
      // Without -d, a driver whose credentials are not set here is skipped, and says why.
      if (options.driver !== undefined) throw error;
      writeLine(io.stderr, `${descriptor.name}: skipped (${errorLine(error)})`);
      continue;
    }
    const secrets = secretValues(descriptor.flags, config);
    let report: SweepReport;
    try {
      report = await descriptor.sweep({
        config,
        storeId,
        claimed,
        delete: options.yes,
        minAgeMs: options.minAgeSeconds * 1000,
        ...(io.signal === undefined ? {} : { signal: io.signal }),
        onProgress: (event) => ctx.debugLog(`sweep ${descriptor.name}: ${event.message}`),
      });
    } catch (error) {
      failed++;
      writeLine(io.stderr, `${descriptor.name}: ${redactSecrets(errorLine(error), secrets)}`);
      continue;
    }
    for (const resource of report.resources) {
      found++;
      if (resource.status === 'failed') failed++;
      const status = resource.status === 'failed' ? `failed: ${redactSecrets(resource.error ?? 'unknown error', secrets)}` : resource.status;
      rows.push([descriptor.name, resource.kind, resource.id, resource.name ?? '-', resource.machineName ?? '-', age(resource.ageMs), status].join('\t'));
    }
  }
  if (found === 0) writeLine(io.stdout, 'Nothing to sweep: every managed resource is claimed by a machine record.');
  else {
    writeLine(io.stdout, alignColumns(rows));
    if (!options.yes) writeLine(io.stdout, `${found} resource(s) no machine record claims; \`machine sweep${options.driver === undefined ? '' : ` -d ${options.driver}`} -y\` deletes them.`);
  }
  return failed === 0 ? ExitCode.ok : ExitCode.error;
}

/**
 * Every journal entry of every machine record in the store: what they claim is never swept. A
 * record that cannot be read could claim anything, so sweep refuses to run then.
 */
async function claimedResources(ctx: CommandContext): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  for (const name of await ctx.store.list()) {
    try {
      entries.push(...(await ctx.store.read(name)).journal);
    } catch (error) {
      throw new CliError(`cannot sweep: the record of machine "${name}" does not load (${errorLine(error)}), so what it claims is unknown; fix or remove it first`);
    }
  }
  return entries;
}

/** The installed drivers whose descriptor can sweep (loading a descriptor never loads its SDK). */
async function sweepableDrivers(ctx: CommandContext): Promise<DriverDescriptor[]> {
  const descriptors: DriverDescriptor[] = [];
  for (const installed of await ctx.registry.list()) {
    const descriptor = await ctx.registry.load(installed.name).catch(() => undefined);
    if (descriptor?.sweep !== undefined) descriptors.push(descriptor);
  }
  return descriptors;
}

/** The driver's config for sweep: its flags (with `-d`), `--region`, the simulator's values with `--sim`, then the environment. */
async function sweepConfig(ctx: CommandContext, descriptor: DriverDescriptor, options: SweepCommandOptions): Promise<Record<string, unknown>> {
  const parsed = parseDriverArguments(descriptor.flags, options.driverFlags);
  if (parsed.positionals.length > 0) throw new CliError(`unexpected argument(s): ${parsed.positionals.join(' ')}`);
  let values: Record<string, unknown> = { ...parsed.values };
  if (options.region !== undefined) {
    const regionFlag = ['region', 'zone', 'location'].map((suffix) => `${descriptor.name}-${suffix}`).find((name) => descriptor.flags.some((flag) => flag.name === name));
    if (regionFlag === undefined) throw new CliError(`--region: driver "${descriptor.name}" has no region, zone or location flag`);
    values[regionFlag] = options.region;
  }
  if (options.sim) {
    const { simFlagValues } = await import('../sim-mode.ts');
    values = { ...(await simFlagValues(ctx, descriptor, { start: true })), ...values };
  }
  return parseFlags(descriptor.flags, values, { env: ctx.io.env }) as Record<string, unknown>;
}

function age(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
