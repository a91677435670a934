import { createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMemoryContext, InvalidConfigError, type MachineError, NotFoundError, type ProgressEvent, parseFlags, ProviderError, State } from '@machine/driver-core';
import { runSSH } from '@machine/driver-core/ssh';
import { type Sim, startSim } from '@machine/cloud-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyDataKey } from '../host/legacy-plugin-driver.ts';
import { openLegacyPlugin } from '../host/open-legacy-plugin.ts';
import { buildGoHarness, type GoHarness, type GoHostLine, runGoHost } from '../test-support/go-harness.ts';
import { processExists, tempDir, tsPluginEnv, writeTsPlugin } from '../test-support/plugin-fixtures.ts';

const here = dirname(fileURLToPath(import.meta.url));

let dir: { path: string; dispose(): Promise<void> };
let go: GoHarness;

beforeAll(async () => {
  dir = await tempDir('legacy-go-');
  go = await buildGoHarness(join(dir.path, 'go-bin'));
}, 300_000);
afterAll(async () => {
  await dir?.dispose();
});

/** The ssh-rsa key blob (RFC 4253 6.6: string "ssh-rsa", mpint e, mpint n) of a JWK's base64url `e` and `n`, base64. */
function rsaBlobFromJwk(e: string, n: string): string {
  const string = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, index) => (bytes.length >>> (8 * (3 - index))) & 0xff)), bytes]);
  const mpint = (bytes: Buffer) => string((bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
  return Buffer.concat([string(Buffer.from('ssh-rsa')), mpint(Buffer.from(e, 'base64url')), mpint(Buffer.from(n, 'base64url'))]).toString('base64');
}

async function failure(promise: Promise<unknown>): Promise<MachineError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as MachineError,
  );
}

describe('our host drives a Go plugin (net/rpc + encoding/gob from Go 1.19)', () => {
  it('reads its flags (value and pointer mcnflag types alike) and runs the whole lifecycle, reaping every process', async () => {
    const pids: number[] = [];
    const debug: string[] = [];
    const descriptor = await openLegacyPlugin(go.plugin, { env: { ...process.env }, onLaunch: (pid) => pids.push(pid), onDebug: (line) => debug.push(line) });
    expect(descriptor.name).toBe('gotoy');
    expect(descriptor.flags).toEqual([
      { name: 'gotoy-token', key: 'gotoy-token', type: 'string', description: 'gotoy API token', envVar: 'GOTOY_TOKEN', secret: true },
      { name: 'gotoy-region', key: 'gotoy-region', type: 'string', description: 'gotoy region', envVar: 'GOTOY_REGION', default: 'r1' },
      { name: 'gotoy-disk-gb', key: 'gotoy-disk-gb', type: 'int', description: 'disk size in GB', default: 20 },
      { name: 'gotoy-tag', key: 'gotoy-tag', type: 'string[]', description: 'tags', default: ['default-tag'] },
      { name: 'gotoy-private', key: 'gotoy-private', type: 'bool', description: 'private networking' },
    ]);

    const events: ProgressEvent[] = [];
    const machineDir = join(dir.path, 'store', 'machines', 'go1');
    const context = createMemoryContext('go1', machineDir, (event) => events.push(event));
    const config = parseFlags(descriptor.flags, { 'gotoy-token': 'go-secret', 'gotoy-disk-gb': 40, 'gotoy-tag': ['x', 'y'], 'gotoy-private': true }, { env: {} });
    const driver = descriptor.createDriver({ config, context });
    await driver.preCreateCheck();
    await driver.create();
    expect(events.map((event) => event.message)).toEqual(['Creating gotoy instance in r1 with 40 GB']);
    expect(debug).toContain('debug: token has 9 characters');
    expect(await driver.getState()).toBe(State.Running);
    expect(await driver.getIP()).toBe('192.0.2.10');
    expect(await driver.getURL()).toBe('tcp://192.0.2.10:2376');
    expect(await driver.getSSHHostname()).toBe('192.0.2.10');
    expect(await driver.getSSHPort()).toBe(22);
    expect(driver.getSSHUsername()).toBe('gotoy');
    expect(driver.getSSHKeyPath()).toBe(join(machineDir, 'id_rsa'));
    // The Go driver's own JSON is kept, its credential replaced by a marker.
    expect(context.data.read()[legacyDataKey]).toMatchObject({
      config: { MachineName: 'go1', StorePath: join(dir.path, 'store'), AccessToken: { $machineSecret: 'gotoy-token' }, DiskGB: 40, Tags: ['x', 'y'], Private: true, InstanceID: 'gotoy-go1', State: 1 },
    });
    expect(JSON.stringify(context.data.read())).not.toContain('go-secret');

    // Later commands: the stored JSON goes back with SetConfigRaw, the credential from the environment.
    const later = createMemoryContext('go1', machineDir);
    await later.data.write(context.data.read());
    const next = descriptor.createDriver({ config: parseFlags(descriptor.flags, {}, { env: { GOTOY_TOKEN: 'go-secret' } }), context: later });
    await next.stop();
    expect(await next.getState()).toBe(State.Stopped);
    await next.start();
    expect(await next.getState()).toBe(State.Running);
    await next.restart();
    await next.kill();
    expect(await next.getState()).toBe(State.Stopped);
    expect(await failure(descriptor.createDriver({ config: parseFlags(descriptor.flags, {}, { env: {} }), context: later }).getState())).toBeInstanceOf(InvalidConfigError);
    await next.remove();
    const gone = await failure(next.getState());
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone.message).toMatch(/^machine "go1": getState: gotoy instance not found/);
    expect(pids.length).toBeGreaterThanOrEqual(13);
    expect(pids.filter(processExists)).toEqual([]);
  });

  it('falls back to the V0 service name RpcServerDriver for old plugins', async () => {
    const descriptor = await openLegacyPlugin(go.plugin, { env: { ...process.env, GOPLUGIN_V0_ONLY: '1' } });
    const context = createMemoryContext('go0', join(dir.path, 'store', 'machines', 'go0'));
    const driver = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'gotoy-token': 't' }, { env: {} }), context });
    await driver.create();
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
  });

  it("the Go driver's errors arrive as typed errors with its text", async () => {
    const descriptor = await openLegacyPlugin(go.plugin, { env: { ...process.env } });
    const context = createMemoryContext('go2', join(dir.path, 'store', 'machines', 'go2'));
    const noToken = descriptor.createDriver({ config: parseFlags(descriptor.flags, {}, { env: {} }), context });
    const missing = await failure(noToken.preCreateCheck());
    expect(missing).toBeInstanceOf(ProviderError);
    expect(missing.message).toBe('machine "go2": preCreateCheck: gotoy driver requires the --gotoy-token option');
    const badRegion = descriptor.createDriver({ config: parseFlags(descriptor.flags, { 'gotoy-token': 't', 'gotoy-region': 'r9' }, { env: {} }), context });
    expect((await failure(badRegion.preCreateCheck())).message).toBe('machine "go2": preCreateCheck: region "r9" is not available');
  });
});

describe('our host drives a Go plugin that calls the DigitalOcean API, against cloud-sim', () => {
  it('create, status, ip, stop, start, restart, kill and rm act on a simulated droplet; nothing is left', async () => {
    const sim = await startSim({ providers: ['digitalocean'], delays: { pendingMs: 20, stoppingMs: 10 } });
    try {
      const pids: number[] = [];
      const descriptor = await openLegacyPlugin(go.digitalOceanPlugin, { env: { ...process.env }, onLaunch: (pid) => pids.push(pid) });
      expect(descriptor.flags.find((flag) => flag.name === 'godo-access-token')).toMatchObject({ secret: true, envVar: 'GODO_ACCESS_TOKEN' });
      const events: ProgressEvent[] = [];
      const context = createMemoryContext('do-go-1', join(dir.path, 'store', 'machines', 'do-go-1'), (event) => events.push(event));
      const values = { 'godo-access-token': 'dop_v1_sim_token', 'godo-api-url': sim.endpoints.digitalocean, 'godo-ssh-port': sim.sshPort };
      const driver = descriptor.createDriver({ config: parseFlags(descriptor.flags, values, { env: {} }), context });
      await driver.preCreateCheck();
      await driver.create();
      expect(events.map((event) => event.message)).toEqual(['Creating SSH key...', 'Creating droplet do-go-1 in nyc3']);
      const [droplet] = sim.store.listInstances('digitalocean');
      expect(droplet?.name).toBe('do-go-1');
      expect(await driver.getState()).toBe(State.Running);
      expect(await driver.getIP()).toBe(droplet?.publicIp);
      expect(await driver.getURL()).toBe(`tcp://${droplet?.publicIp}:2376`);
      expect(await driver.getSSHPort()).toBe(sim.sshPort);
      expect(driver.getSSHUsername()).toBe('root');

      // As docker-machine's DigitalOcean driver: an RSA key (PEM PKCS#1, 0600) in the machine
      // folder, its public half uploaded to the account and given to the droplet.
      const keyPath = join(dir.path, 'store', 'machines', 'do-go-1', 'id_rsa');
      expect(driver.getSSHKeyPath()).toBe(keyPath);
      expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
      const privateKey = await readFile(keyPath, 'utf8');
      expect(privateKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
      const publicLine = (await readFile(`${keyPath}.pub`, 'utf8')).trim();
      const [type, blob, comment] = publicLine.split(' ');
      expect([type, comment]).toEqual(['ssh-rsa', 'do-go-1']);
      // The hand-encoded wire-format blob is the one Node derives from the private key.
      const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
      expect(rsaBlobFromJwk(jwk.e ?? '', jwk.n ?? '')).toBe(blob);
      const [accountKey] = sim.store.listResources('digitalocean', 'ssh_key');
      expect(accountKey).toMatchObject({ name: 'do-go-1', attributes: { publicKey: publicLine } });
      expect(droplet?.authorizedKeys).toEqual([publicLine]);
      const login = await runSSH({ host: droplet?.publicIp ?? '', port: sim.sshPort, username: 'root', privateKey }, 'hostname');
      expect(login.stdout.trim()).toBe('do-go-1');
      await driver.stop();
      expect(await driver.getState()).toBe(State.Stopped);
      expect(droplet?.state).toBe('stopped');
      await driver.start();
      expect(await driver.getState()).toBe(State.Running);
      await driver.restart();
      expect(await driver.getState()).toBe(State.Running);
      await driver.kill();
      expect(await driver.getState()).toBe(State.Stopped);
      // What the plugin made is invisible to machine's journal: only the plugin's own Remove knows it.
      expect(context.journal.entries()).toEqual([]);
      expect(JSON.stringify(context.data.read())).not.toContain('dop_v1_sim_token');
      await driver.remove();
      expect(await failure(driver.getState())).toBeInstanceOf(NotFoundError);
      // A deleted droplet stays readable for a moment (realistic DigitalOcean), so wait for the report to empty.
      await expect.poll(() => sim.leaks(), { timeout: 15_000 }).toEqual([]);
      expect(pids.filter(processExists)).toEqual([]);
    } finally {
      await sim.close();
    }
  }, 120_000);
});

function steps(lines: readonly GoHostLine[], session: string): Record<string, GoHostLine> {
  return Object.fromEntries(lines.filter((line) => line.session === session && line.step !== 'line').map((line) => [line.step, line]));
}

describe('a Go host (net/rpc + encoding/gob from Go 1.19) drives a driver we serve', () => {
  it('through create, stop, start, restart, kill, status, an idle command kept alive by heartbeats, rm, and exits without heartbeats', async () => {
    const bin = await writeTsPlugin(join(dir.path, 'ts-bin'));
    const store = join(dir.path, 'go-host-store');
    const lines = await runGoHost(go.host, {
      plugin: bin,
      name: 'toy',
      store,
      commands: ['create', 'stop', 'start', 'restart', 'kill', 'state', 'idle', 'rm', 'noheartbeat'],
      flags: { 'toy-size': 'large', 'toy-tag': ['a', 'b'], 'toy-disk-gb': 30, 'toy-private': true },
      env: tsPluginEnv({ TOY_TOKEN: 'env-token' }),
    });
    const create = steps(lines, 'create');
    expect(create.version?.value).toBe('RPCServerDriver');
    expect(create.GetMachineName?.value).toBe('gohost-m1');
    // Go decoded every flag into the libmachine type its name says.
    expect(((create.GetCreateFlags?.value ?? []) as { type: string; name: string; default: unknown }[]).map((flag) => [flag.type, flag.name, flag.default])).toEqual([
      ['*mcnflag.StringFlag', 'toy-region', 'toy-1'],
      ['*mcnflag.StringFlag', 'toy-size', 'small'],
      ['*mcnflag.StringFlag', 'toy-token', ''],
      ['*mcnflag.IntFlag', 'toy-disk-gb', 10],
      ['*mcnflag.StringSliceFlag', 'toy-tag', null], // an empty default is omitted on the wire: Go decodes a nil slice
      ['*mcnflag.BoolFlag', 'toy-private', null],
      ['*mcnflag.BoolFlag', 'toy-fail-create', null],
      ['*mcnflag.IntFlag', 'toy-create-delay-ms', 0],
    ]);
    for (const step of ['SetConfigRaw', 'SetConfigFromFlags', 'PreCreateCheck', 'Create']) expect(create[step], step).toEqual({ session: 'create', step, value: 'ok' });
    expect(create.GetState?.value).toBe(1);
    expect(create.GetIP?.value).toBe('10.1.2.3');
    expect(create.GetURL?.value).toBe('tcp://10.1.2.3:2376');
    expect(create.GetSSHPort?.value).toBe(22);
    expect(create.GetSSHUsername?.value).toBe('toy');
    expect(create.GetSSHKeyPath?.value).toBe(join(store, 'machines', 'gohost-m1', 'id_rsa'));
    expect(create.DriverName?.value).toBe('toy');
    expect(create.GetIPv6?.error).toMatch(/reports no IPv6 address/);
    expect(create.GetConfigRaw?.value).toMatchObject({
      MachineName: 'gohost-m1',
      StorePath: store,
      Flags: { 'toy-size': 'large', 'toy-tag': ['a', 'b'], 'toy-disk-gb': 30, 'toy-private': true },
      Data: { instanceId: 'toy-gohost-m1', state: 'Running', diskGb: 30, privateNetwork: true, tags: ['a', 'b'] },
    });
    expect(lines.filter((line) => line.session === 'create' && line.step === 'line').map((line) => line.value)).toEqual([
      'stdout: Creating a large toy instance in toy-1',
      'stdout: Toy instance toy-gohost-m1 is running',
    ]);
    const states = ['create', 'stop', 'start', 'restart', 'kill', 'state', 'idle'].map((session) => steps(lines, session).GetState?.value);
    expect(states).toEqual([1, 4, 1, 1, 4, 4, 4]);
    for (const session of ['create', 'stop', 'start', 'restart', 'kill', 'state', 'idle', 'rm']) expect(steps(lines, session).exit?.value, session).toBe(0);
    expect(steps(lines, 'rm').Remove?.value).toBe('ok');
    expect(steps(lines, 'rm').GetState?.error).toMatch(/^machine "gohost-m1": getState: the toy instance does not exist/);
    expect(steps(lines, 'noheartbeat').exit?.value).toBe(1);
  }, 180_000);
});

interface ServedCloudDriver {
  readonly name: 'digitalocean' | 'amazonec2';
  readonly module: string;
  readonly flags: (sim: Sim) => Record<string, unknown>;
  readonly sshUser: string;
  readonly journalKinds: readonly string[];
}

const servedCloudDrivers: readonly ServedCloudDriver[] = [
  {
    name: 'digitalocean',
    module: 'digitalocean-fast-driver.ts',
    flags: (sim) => ({ 'digitalocean-access-token': 'dop_v1_sim_token', 'digitalocean-api-url': sim.endpoints.digitalocean, 'digitalocean-ssh-port': sim.sshPort, 'digitalocean-wait-timeout': 10 }),
    sshUser: 'root',
    journalKinds: ['ssh-key', 'droplet'],
  },
  {
    name: 'amazonec2',
    module: 'amazonec2-fast-driver.ts',
    flags: (sim) => ({
      'amazonec2-endpoint': sim.endpoints.amazonec2,
      'amazonec2-access-key': 'AKIDLEGACYPLUGIN0001',
      'amazonec2-secret-key': 'legacy-plugin-secret',
      'amazonec2-region': 'eu-west-3',
      'amazonec2-ssh-port': sim.sshPort,
      'amazonec2-wait-timeout': 10,
    }),
    sshUser: 'ubuntu',
    journalKinds: ['key-pair', 'security-group', 'instance'],
  },
];

describe('a Go host drives our cloud drivers, served as plugins, against cloud-sim', () => {
  it.each(servedCloudDrivers.map((driver) => [driver.name, driver]))(
    '%s: create, stop, start, restart, kill, status and rm, with rancher-machine style argv, leaving nothing behind',
    async (_name, served) => {
      const sim = await startSim({ providers: [served.name], delays: { pendingMs: 20, stoppingMs: 10 } });
      try {
        const bin = await writeTsPlugin(join(dir.path, `${served.name}-bin`), served.name, join(here, '..', 'test-support', served.module));
        const store = join(dir.path, `${served.name}-store`);
        const lines = await runGoHost(go.host, {
          plugin: bin,
          name: served.name,
          store,
          commands: ['create', 'stop', 'start', 'restart', 'kill', 'state', 'rm'],
          flags: served.flags(sim),
          env: tsPluginEnv({ AWS_EC2_METADATA_DISABLED: 'true' }),
          // rancher-machine runs plugins with its own argv; the plugin must not care.
          pluginArgs: ['rancher-machine', 'create', '-d', served.name, '--debug', 'gohost-m1'],
        });
        const create = steps(lines, 'create');
        for (const step of ['SetConfigFromFlags', 'PreCreateCheck', 'Create']) expect(create[step], JSON.stringify(create[step])).toEqual({ session: 'create', step, value: 'ok' });
        expect(create.GetIP?.value).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        expect(create.GetURL?.value).toBe(`tcp://${String(create.GetIP?.value)}:2376`);
        expect(create.GetSSHPort?.value).toBe(sim.sshPort);
        expect(create.GetSSHUsername?.value).toBe(served.sshUser);
        expect(String(create.GetSSHKeyPath?.value)).toMatch(new RegExp(`^${join(store, 'machines', 'gohost-m1')}/id_`));
        // What create made is in the journal carried by the config JSON; rm empties it.
        const journalKinds = (session: string) => ((steps(lines, session).GetConfigRaw?.value as { Journal?: { kind: string }[] } | undefined)?.Journal ?? []).map((entry) => entry.kind);
        expect(journalKinds('create')).toEqual(expect.arrayContaining([...served.journalKinds]));
        const states = ['create', 'stop', 'start', 'restart', 'kill', 'state'].map((session) => steps(lines, session).GetState?.value);
        expect(states).toEqual([1, 4, 1, 1, 4, 4]);
        for (const session of ['create', 'stop', 'start', 'restart', 'kill', 'state', 'rm']) expect(steps(lines, session).exit?.value, session).toBe(0);
        expect(steps(lines, 'rm').Remove?.value).toBe('ok');
        expect(journalKinds('rm')).toEqual([]);
        // A deleted droplet stays readable for a moment (realistic DigitalOcean), so wait for the report to empty.
      await expect.poll(() => sim.leaks(), { timeout: 15_000 }).toEqual([]);
      } finally {
        await sim.close();
      }
    },
    180_000,
  );
});
