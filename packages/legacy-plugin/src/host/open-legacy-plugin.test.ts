import { join } from 'node:path';
import { CancelledError, createMemoryContext, InvalidConfigError, type MachineError, NotFoundError, type ProgressEvent, parseFlags, ProviderError, QuotaError, State } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { processExists, tempDir, tsPluginEnv, writeShellPlugin, writeTsPlugin } from '../test-support/plugin-fixtures.ts';
import { legacyDataKey } from './legacy-plugin-driver.ts';
import toyDriver from '../test-support/toy-driver.ts';
import { findLegacyPlugin, isLegacyPluginDescriptor, listLegacyPlugins, type OpenLegacyPluginOptions, openLegacyPlugin } from './open-legacy-plugin.ts';

let dir: { path: string; dispose(): Promise<void> };
let toyPath: string;
const pids: number[] = [];

beforeAll(async () => {
  dir = await tempDir('legacy-host-');
  toyPath = await writeTsPlugin(join(dir.path, 'bin'));
});
afterAll(async () => {
  await dir.dispose();
});

function options(env: Record<string, string> = {}, extra: Partial<OpenLegacyPluginOptions> = {}): OpenLegacyPluginOptions {
  return { env: tsPluginEnv(env), onLaunch: (pid) => pids.push(pid), ...extra };
}

function noPluginAlive(): void {
  expect(pids.length).toBeGreaterThan(0);
  expect(pids.filter(processExists)).toEqual([]);
}

async function failure(promise: Promise<unknown>): Promise<MachineError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as MachineError,
  );
}

describe('openLegacyPlugin: a docker-machine-driver-NAME binary as a driver-core driver', () => {
  it('takes its create flags from GetCreateFlags, with help, env vars, defaults, and credentials marked secret', async () => {
    const descriptor = await openLegacyPlugin(toyPath, options());
    expect(descriptor.name).toBe('toy');
    expect(isLegacyPluginDescriptor(descriptor)).toBe(true);
    expect(isLegacyPluginDescriptor(toyDriver)).toBe(false);
    expect(descriptor.description).toBe(`docker-machine plugin ${toyPath}`);
    expect(descriptor.flags).toEqual([
      { name: 'toy-region', key: 'toy-region', type: 'string', description: 'Region of the toy cloud', default: 'toy-1' },
      { name: 'toy-size', key: 'toy-size', type: 'string', description: 'Instance size', default: 'small' },
      { name: 'toy-token', key: 'toy-token', type: 'string', description: 'API token', envVar: 'TOY_TOKEN', secret: true },
      { name: 'toy-disk-gb', key: 'toy-disk-gb', type: 'int', description: 'Disk size in GB', default: 10 },
      { name: 'toy-tag', key: 'toy-tag', type: 'string[]', description: 'Tags (repeatable)' },
      { name: 'toy-private', key: 'toy-private', type: 'bool', description: 'Attach a private network' },
      { name: 'toy-fail-create', key: 'toy-fail-create', type: 'bool', description: 'Fail create with a quota error (tests)' },
      { name: 'toy-create-delay-ms', key: 'toy-create-delay-ms', type: 'int', description: 'How long create takes (tests)', default: 0 },
    ]);
    noPluginAlive();
  });

  it('runs the whole lifecycle, one reaped plugin process per operation, the config JSON kept in the machine data without the credential', async () => {
    const descriptor = await openLegacyPlugin(toyPath, options());
    const events: ProgressEvent[] = [];
    const context = createMemoryContext('web1', join(dir.path, 'store', 'machines', 'web1'), (event) => events.push(event));
    const config = parseFlags(descriptor.flags, { 'toy-size': 'large', 'toy-tag': ['a', 'b'], 'toy-private': true }, { env: { TOY_TOKEN: 'secret-token' } });
    const driver = descriptor.createDriver({ config, context });
    await driver.preCreateCheck();
    expect(context.data.read()).toEqual({}); // nothing stored before create
    await driver.create();
    expect(events.map((event) => event.message)).toEqual(['Creating a large toy instance in toy-1', 'Toy instance toy-web1 is running']);
    expect(events.every((event) => event.step === 'plugin' && event.phase === 'info')).toBe(true);
    const stored = JSON.stringify(context.data.read());
    expect(stored).not.toContain('secret-token');
    expect(context.data.read()[legacyDataKey]).toMatchObject({
      sshUser: 'toy',
      sshKeyPath: join(dir.path, 'store', 'machines', 'web1', 'id_rsa'),
      config: { MachineName: 'web1', StorePath: join(dir.path, 'store'), DriverName: 'toy', Flags: { 'toy-token': { $machineSecret: 'toy-token' }, 'toy-size': 'large' } },
    });
    expect(await driver.getState()).toBe(State.Running);
    expect(await driver.getIP()).toBe('10.1.2.3');
    expect(await driver.getURL()).toBe('tcp://10.1.2.3:2376');
    expect(await driver.getSSHHostname()).toBe('10.1.2.3');
    expect(await driver.getSSHPort()).toBe(22);
    expect(driver.getSSHUsername()).toBe('toy');
    expect(driver.getSSHKeyPath()).toBe(join(dir.path, 'store', 'machines', 'web1', 'id_rsa'));
    noPluginAlive();

    // A later command: a new driver from the record's data and a config without the credential in it.
    const later = createMemoryContext('web1', context.machineDir);
    await later.data.write(context.data.read());
    const fromEnv = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'toy-size': 'large' }, { env: { TOY_TOKEN: 'secret-token' } }), context: later });
    await fromEnv.stop();
    expect(await fromEnv.getState()).toBe(State.Stopped);
    await fromEnv.start();
    await fromEnv.restart();
    await fromEnv.kill();
    expect(await fromEnv.getState()).toBe(State.Stopped);
    const withoutToken = descriptor.createDriver({ config: parseFlags(descriptor.flags, {}, { env: {} }), context: later });
    const missing = await failure(withoutToken.getState());
    expect(missing).toBeInstanceOf(InvalidConfigError);
    expect(missing.message).toBe('config: --toy-token: is a credential machine does not store: set TOY_TOKEN');
    await fromEnv.remove();
    expect(await failure(fromEnv.getState())).toBeInstanceOf(NotFoundError);
    noPluginAlive();
    expect(pids.length).toBeGreaterThanOrEqual(18);
  });

  it("a plugin's error is a typed error with its text; a failed create still saves what the plugin knows", async () => {
    const descriptor = await openLegacyPlugin(toyPath, options());
    const context = createMemoryContext('web2', join(dir.path, 'store', 'machines', 'web2'));
    const driver = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'toy-token': 't', 'toy-fail-create': true }, { env: {} }), context });
    const error = await failure(driver.create());
    expect(error).toBeInstanceOf(ProviderError);
    expect(QuotaError.isInstance(error)).toBe(false);
    expect(error.message).toMatch(/^machine "web2": create: machine "web2": create: the toy cloud has no room for another instance/);
    expect(context.data.read()[legacyDataKey]).toBeDefined();
    const badFlags = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'toy-size': 'small', 'toy-disk-gb': 0 }, { env: {} }), context: createMemoryContext('web3', join(dir.path, 'store', 'machines', 'web3')) });
    expect((await failure(badFlags.preCreateCheck())).message).toMatch(/--toy-disk-gb: must be at least 1, got 0/);
    noPluginAlive();
  });

  it('a binary that is not a working plugin is a LegacyProtocolError, and no process is left behind', async () => {
    const bin = join(dir.path, 'broken');
    const junk = await writeShellPlugin(bin, 'junk', 'echo "Starting plugin..."; exec sleep 30');
    expect((await failure(openLegacyPlugin(junk, options()))).message).toMatch(/printed "Starting plugin\.\.\." where its address belongs \(a plugin must print nothing on stdout before/);
    const dies = await writeShellPlugin(bin, 'dies', 'echo "cannot load config" >&2; exit 3');
    expect((await failure(openLegacyPlugin(dies, options()))).message).toMatch(/exited \(code 3\) before printing its address: cannot load config/);
    const silent = await writeShellPlugin(bin, 'silent', `echo started >&2; exec sleep 30`);
    const silentError = await failure(openLegacyPlugin(silent, options({}, { startTimeout: 500 })));
    expect(silentError).toBeInstanceOf(LegacyProtocolError);
    expect(silentError.message).toMatch(/did not print its address within 500 ms/);
    const notExecutable = await writeShellPlugin(bin, 'noexec', 'exit 0', 0o644);
    expect((await failure(openLegacyPlugin(notExecutable, options()))).message).toMatch(/EACCES.*\(make the file executable/);
    expect((await failure(openLegacyPlugin(join(bin, 'docker-machine-driver-nothere'), options()))).message).toMatch(/ENOENT/);
    const wrongServer = await writeShellPlugin(bin, 'wrong', 'echo 127.0.0.1:1; exec sleep 30');
    expect(await failure(openLegacyPlugin(wrongServer, options()))).toBeInstanceOf(LegacyProtocolError);
    // Every launched shell (the ones that printed an address included) is gone.
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toMatch(/docker-machine-driver-(junk|silent|wrong)/);
  });

  it('heartbeats every 5 s keep the plugin alive through a create longer than its 10 s watchdog', async () => {
    const descriptor = await openLegacyPlugin(toyPath, options());
    const context = createMemoryContext('slow1', join(dir.path, 'store', 'machines', 'slow1'));
    const driver = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'toy-token': 't', 'toy-create-delay-ms': 11_000 }, { env: {} }), context });
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
    noPluginAlive();
  }, 60_000);

  it('an aborted operation stops its plugin at once and rejects with CancelledError', async () => {
    const launched: number[] = [];
    const descriptor = await openLegacyPlugin(toyPath, options({}, { onLaunch: (pid) => launched.push(pid) }));
    const controller = new AbortController();
    // Abort as soon as the plugin reports that create began.
    const context = createMemoryContext('slow2', join(dir.path, 'store', 'machines', 'slow2'), () => controller.abort());
    const driver = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'toy-token': 't', 'toy-create-delay-ms': 60_000 }, { env: {} }), context });
    const error = await failure(driver.create({ signal: controller.signal }));
    expect(error).toBeInstanceOf(CancelledError);
    expect(error.message).toMatch(/create was cancelled; the plugin was stopped/);
    expect(launched.length).toBe(2);
    expect(launched.filter(processExists)).toEqual([]);
    await expect(driver.create({ signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('finds plugins on MACHINE_DRIVER_PATH before PATH, executable files only', async () => {
    const first = join(dir.path, 'first');
    const second = join(dir.path, 'second');
    await writeShellPlugin(first, 'alpha', 'exit 0');
    await writeShellPlugin(second, 'alpha', 'exit 0');
    await writeShellPlugin(second, 'beta', 'exit 0');
    await writeShellPlugin(second, 'gamma', 'exit 0', 0o644);
    const env = { MACHINE_DRIVER_PATH: first, PATH: second };
    expect(await findLegacyPlugin('alpha', env)).toEqual({ name: 'alpha', path: join(first, 'docker-machine-driver-alpha'), source: first });
    expect((await findLegacyPlugin('beta', env))?.source).toBe(second);
    expect(await findLegacyPlugin('gamma', env)).toBeUndefined();
    expect(await findLegacyPlugin('../x', env)).toBeUndefined();
    expect((await listLegacyPlugins(env)).map((plugin) => [plugin.name, plugin.source])).toEqual([
      ['alpha', first],
      ['beta', second],
    ]);
  });
});
