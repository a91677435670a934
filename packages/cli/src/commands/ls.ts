import { type BatchStatus, type DriverContext, type DriverDescriptor, type State, redactSecrets, secretValues } from '@machine/driver-core';
import { CliError, ExitCode, errorLine } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';
import { configFromRecord, persistentContext } from '../machine-host.ts';
import { dockerUrlOf, provisionHint, sansInclude } from '../docker-endpoint.ts';
import { clientCertificatesIn } from '../provisioning.ts';
import type { MachineRecord } from '../store.ts';
import { alignColumns, parseTemplate } from '../template.ts';

/** One row of `machine ls`; the field names are what `--format` templates use. */
export interface ListRow {
  Name: string;
  Active: string;
  DriverName: string;
  State: string;
  URL: string;
  /** `v27.3.1` from the engine's `GET /version` over TLS, else `Unknown`. */
  DockerVersion: string;
  Error: string;
  /** Milliseconds the state query took. */
  ResponseTime: number;
}

export interface ListOptions {
  quiet?: boolean;
  filter?: string[];
  timeout?: string;
  format?: string;
}

const defaultFormat = 'table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.DockerVersion}}\t{{.Error}}';
const headers: Record<string, string> = {
  Name: 'NAME',
  Active: 'ACTIVE',
  DriverName: 'DRIVER',
  State: 'STATE',
  URL: 'URL',
  DockerVersion: 'DOCKER',
  Error: 'ERRORS',
  ResponseTime: 'RESPONSE',
};

interface Filters {
  driver: string[];
  state: string[];
  name: RegExp[];
  /** Engine labels (`--engine-label`), `key=value` or `key`. */
  label: string[];
}

function parseFilters(raw: readonly string[]): Filters {
  const filters: Filters = { driver: [], state: [], name: [], label: [] };
  for (const item of raw.flatMap((entry) => entry.split(','))) {
    const [key, ...rest] = item.split('=');
    const value = rest.join('=');
    if (rest.length === 0 || value === '') throw new CliError(`bad filter "${item}": use key=value with key driver, state, name or label`);
    switch (key?.toLowerCase()) {
      case 'driver':
        filters.driver.push(value.toLowerCase());
        break;
      case 'state':
        filters.state.push(value.toLowerCase());
        break;
      case 'name':
        try {
          filters.name.push(new RegExp(value));
        } catch {
          throw new CliError(`bad filter "${item}": "${value}" is not a regular expression`);
        }
        break;
      case 'label':
        filters.label.push(value);
        break;
      default:
        throw new CliError(`bad filter "${item}": unknown key "${key}"; use driver, state, name or label`);
    }
  }
  return filters;
}

/** `machine ls`: every machine with its state, fetched concurrently, each within the timeout. */
export async function listCommand(ctx: CommandContext, options: ListOptions): Promise<number> {
  const filters = parseFilters(options.filter ?? []);
  const timeoutSeconds = Number(options.timeout ?? '10');
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new CliError(`--timeout expects seconds, got "${options.timeout}"`);
  const template = options.format === undefined || options.format === 'table' ? parseTemplate(defaultFormat) : options.format === 'json' ? undefined : parseTemplate(options.format);

  const names = await namesFromRecords(ctx, filters, { driverFromRecords: options.quiet === true });
  if (options.quiet === true && filters.state.length === 0) {
    // Names only (scripts, shell completion): nothing to ask the providers, like the reference.
    for (const name of names) writeLine(ctx.io.stdout, name);
    return ExitCode.ok;
  }
  const shown = await matchingRows(ctx, names, filters, timeoutSeconds * 1000);

  if (options.quiet === true) {
    for (const row of shown) writeLine(ctx.io.stdout, row.Name);
  } else if (template === undefined) {
    writeLine(ctx.io.stdout, JSON.stringify(shown, null, 2));
  } else if (template.table) {
    writeLine(ctx.io.stdout, alignColumns([template.header(headers), ...shown.map((row) => template.render(row))]));
  } else {
    for (const row of shown) writeLine(ctx.io.stdout, template.render(row));
  }
  return ExitCode.ok;
}

/**
 * The machines the filters select, by name, label and (with `driverFromRecords`) driver, all from
 * the records: no provider is asked.
 */
async function namesFromRecords(ctx: CommandContext, filters: Filters, options: { driverFromRecords: boolean }): Promise<string[]> {
  let names = await ctx.store.list();
  if (filters.name.length > 0) names = names.filter((name) => filters.name.some((pattern) => pattern.test(name)));
  if (filters.label.length === 0 && !(options.driverFromRecords && filters.driver.length > 0)) return names;
  // Like the reference, a machine matches a label filter when one of its engine labels is `key=value` (or has that key).
  const kept = await Promise.all(
    names.map(async (name) => {
      const record = await ctx.store.read(name).catch(() => undefined);
      if (filters.driver.length > 0 && !filters.driver.includes(record?.driver.toLowerCase() ?? '')) return undefined;
      const labels = record?.provision?.engine.labels;
      const list = Array.isArray(labels) ? labels.map(String) : [];
      if (filters.label.length > 0 && !filters.label.some((wanted) => list.some((label) => label === wanted || label.split('=')[0] === wanted))) return undefined;
      return name;
    }),
  );
  return kept.filter((name): name is string => name !== undefined);
}

/** The rows of `names` that match the driver and state filters (states asked only when a state filter needs them). */
async function matchingRows(ctx: CommandContext, names: readonly string[], filters: Filters, timeoutMs: number): Promise<ListRow[]> {
  const rows = await listRows(ctx, names, { timeoutMs, drivers: filters.driver });
  return rows.filter(
    (row) => (filters.driver.length === 0 || filters.driver.includes(row.DriverName.toLowerCase())) && (filters.state.length === 0 || filters.state.includes(row.State.toLowerCase())),
  );
}

/**
 * The machines `--filter key=value…` selects for a fleet command (`rm`, `start`, `stop`, …): name,
 * driver and label from the records; states asked only when a state filter is given.
 */
export async function machinesMatching(ctx: CommandContext, rawFilters: readonly string[]): Promise<string[]> {
  const filters = parseFilters(rawFilters);
  const names = await namesFromRecords(ctx, filters, { driverFromRecords: true });
  if (filters.state.length === 0) return names;
  return (await matchingRows(ctx, names, filters, 10_000)).map((row) => row.Name);
}

/**
 * The rows of `ls`. Machines are grouped by driver; each driver's descriptor is loaded once (no
 * SDK), and its batch `getStates` is used when it has one, else one `getState` per machine, all
 * concurrently. A machine whose config does not load is an Error row, not a failure of `ls`.
 */
export async function listRows(ctx: CommandContext, names: readonly string[], options: { timeoutMs: number; drivers?: readonly string[] }): Promise<ListRow[]> {
  const dockerHost = ctx.io.env.DOCKER_HOST ?? '';
  const records = await Promise.all(
    names.map(async (name) => {
      try {
        return await ctx.store.read(name);
      } catch (error) {
        return { name, loadError: (error as Error).message };
      }
    }),
  );
  const rows = new Map<string, ListRow>();
  const byDriver = new Map<string, MachineRecord[]>();
  for (const entry of records) {
    if ('loadError' in entry) {
      rows.set(entry.name, row(entry.name, 'not found', 'Error', entry.loadError));
      continue;
    }
    if (options.drivers !== undefined && options.drivers.length > 0 && !options.drivers.includes(entry.driver)) {
      rows.set(entry.name, row(entry.name, entry.driver, 'None', ''));
      continue;
    }
    if (entry.status === 'creating') {
      const holder = await ctx.store.lockHolder(entry.name);
      rows.set(
        entry.name,
        holder === undefined
          ? row(entry.name, entry.driver, 'Error', `create was interrupted; \`machine rm ${entry.name}\` deletes what it made`)
          : row(entry.name, entry.driver, 'Starting', `being created by ${holder}`),
      );
      continue;
    }
    if (entry.status === 'failed') {
      rows.set(entry.name, row(entry.name, entry.driver, 'Error', `create failed: ${entry.error ?? 'unknown error'}; \`machine rm ${entry.name}\` deletes what it made`));
      continue;
    }
    if (entry.provision?.state === 'failed') {
      rows.set(entry.name, row(entry.name, entry.driver, 'Error', `${entry.provision.error ?? 'provisioning failed'}; ${provisionHint(entry.name)}`));
      continue;
    }
    byDriver.set(entry.driver, [...(byDriver.get(entry.driver) ?? []), entry]);
  }

  await Promise.all(
    [...byDriver].map(async ([driverName, group]) => {
      let descriptor: DriverDescriptor;
      try {
        descriptor = await ctx.registry.load(driverName);
      } catch (error) {
        for (const record of group) rows.set(record.name, row(record.name, driverName, 'Error', (error as Error).message));
        return;
      }
      for (const result of await queryGroup(ctx, descriptor, group, options.timeoutMs, dockerHost)) rows.set(result.Name, result);
    }),
  );
  return names.map((name) => rows.get(name) ?? row(name, '', 'Error', 'no state'));
}

async function queryGroup(ctx: CommandContext, descriptor: DriverDescriptor, group: readonly MachineRecord[], timeoutMs: number, dockerHost: string): Promise<ListRow[]> {
  let simValues: Record<string, unknown> = {};
  let simProblem: string | undefined;
  if (group.some((record) => record.sim === true)) {
    try {
      const { simFlagValues } = await import('../sim-mode.ts');
      simValues = await simFlagValues(ctx, descriptor, { start: false });
    } catch (error) {
      simProblem = errorLine(error);
    }
  }
  const ready: { record: MachineRecord; config: Record<string, unknown>; context: DriverContext; started: number; secrets: string[] }[] = [];
  const results: ListRow[] = [];
  for (const record of group) {
    try {
      if (record.sim === true && simProblem !== undefined) throw new Error(simProblem);
      const config = configFromRecord(descriptor, record, ctx.io.env, simValues);
      ready.push({ record, config, context: persistentContext(ctx.store, record), started: Date.now(), secrets: secretValues(descriptor.flags, config) });
    } catch (error) {
      results.push(row(record.name, descriptor.name, 'Error', errorLine(error)));
    }
  }

  if (descriptor.prepare !== undefined && ready.length > 0) {
    // The SDK loads and the clients are built before the clock starts: -t counts the provider's time.
    await descriptor.prepare(ready.map((entry) => entry.config)).catch((error: unknown) => ctx.debugLog(`ls: ${descriptor.name} prepare: ${errorLine(error)}`));
    const prepared = Date.now();
    for (const entry of ready) entry.started = prepared;
  }

  let batch: Map<string, State | BatchStatus | Error> | undefined;
  if (descriptor.getStates !== undefined && ready.length > 0) {
    const controller = new AbortController();
    const answer = await withTimeout(
      descriptor.getStates(
        ready.map((entry) => ({ config: entry.config, context: entry.context })),
        { signal: controller.signal },
      ),
      timeoutMs,
      controller,
    );
    batch = answer === 'timeout' ? new Map(ready.map((entry) => [entry.record.name, 'Timeout' as State])) : answer instanceof Error ? new Map(ready.map((entry) => [entry.record.name, answer])) : answer;
  }

  const queried = await Promise.all(
    ready.map(async (entry) => {
      const name = entry.record.name;
      const driver = descriptor.createDriver({ config: entry.config, context: entry.context });
      const controller = new AbortController();
      const deadline = entry.started + timeoutMs;
      const answered = batch !== undefined ? (batch.get(name) ?? new Error('the driver returned no state')) : await withTimeout(driver.getState({ signal: controller.signal }), timeoutMs, controller);
      // A batch answer may carry the address too: then no call per machine is needed for it.
      const batchIp = typeof answered === 'object' && !(answered instanceof Error) ? answered.ip : undefined;
      const state = typeof answered === 'object' && !(answered instanceof Error) ? answered.state : answered;
      if (state === 'timeout' || state === 'Timeout') return { ...row(name, descriptor.name, 'Timeout', ''), ResponseTime: Date.now() - entry.started };
      if (state instanceof Error) return { ...row(name, descriptor.name, 'Error', redactSecrets(errorLine(await explainStateError(state, name)), entry.secrets)), ResponseTime: Date.now() - entry.started };
      let url = '';
      let error = '';
      let dockerVersion = 'Unknown';
      const provision = entry.record.provision;
      const remaining = () => Math.max(1, deadline - Date.now());
      if (state === 'Running' && provision === undefined) {
        const answer = await withTimeout(driver.getURL({ signal: controller.signal }), remaining(), controller);
        if (typeof answer === 'string' && answer !== 'timeout') url = answer;
        else if (answer instanceof Error) error = redactSecrets(errorLine(answer), entry.secrets);
      } else if (state === 'Running' && provision !== undefined) {
        // The engine listens on the recorded --engine-port; its version comes from GET /version over TLS.
        const ip = batchIp ?? (await withTimeout(driver.getIP({ signal: controller.signal }), remaining(), controller));
        if (ip instanceof Error) error = redactSecrets(errorLine(ip), entry.secrets);
        else if (ip !== 'timeout') {
          url = dockerUrlOf(ip, provision.dockerPort);
          if (provision.state === 'provisioned' && !sansInclude(provision.serverCertSans, ip)) {
            error = `the server certificate is not valid for ${ip}: run "machine regenerate-certs ${name}"`;
          } else if (provision.state === 'provisioned') {
            const { dockerVersion: askVersion } = await import('@machine/provision');
            const answer = await withTimeout(askVersion(url, clientCertificatesIn(await ctx.store.certsDir()), { timeoutMs: remaining(), signal: controller.signal }), remaining(), controller);
            if (typeof answer === 'string' && answer !== 'timeout') dockerVersion = `v${answer}`;
            else if (answer instanceof Error) ctx.debugLog(`ls ${name}: docker version: ${errorLine(answer)}`);
          }
        }
      }
      return {
        Name: name,
        Active: url !== '' && url === dockerHost ? '*' : '-',
        DriverName: descriptor.name,
        State: state,
        URL: url,
        DockerVersion: dockerVersion,
        Error: error,
        ResponseTime: Date.now() - entry.started,
      };
    }),
  );
  return [...results, ...queried];
}

/** A refused host key in a state answer (generic's state comes from SSH) as the CLI's line with the trust-host-key command. */
async function explainStateError(error: Error, name: string): Promise<unknown> {
  if ((error as { failure?: unknown }).failure !== 'host-key') return error;
  const { explainHostKeyError } = await import('../ssh-target.ts');
  return explainHostKeyError(error, name);
}

function row(name: string, driver: string, state: string, error: string): ListRow {
  return { Name: name, Active: '-', DriverName: driver, State: state, URL: '', DockerVersion: 'Unknown', Error: error, ResponseTime: 0 };
}

/** The promise's value, its error as a value, or `timeout` (aborting the controller) after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number, controller: AbortController): Promise<T | Error | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve('timeout');
    }, ms);
  });
  try {
    return await Promise.race([promise.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
