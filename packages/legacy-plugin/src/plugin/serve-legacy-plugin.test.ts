import { afterEach, describe, expect, it } from 'vitest';
import type { GobDecoded } from '../gob/gob-decoder.ts';
import type { GobInterface, GobStructValue } from '../gob/gob-types.ts';
import { LegacyRemoteError } from '../errors/legacy-remote-error.ts';
import { rpcFlags } from '../protocol/driver-rpc-types.ts';
import { RpcClient } from '../rpc/rpc-client.ts';
import { emptyStructType } from '../rpc/rpc-types.ts';
import { gob } from '../gob/gob-types.ts';
import toyDriver from '../test-support/toy-driver.ts';
import { type LegacyPluginServer, notAPluginHostNotice, serveLegacyPlugin } from './serve-legacy-plugin.ts';

interface Served {
  server: LegacyPluginServer;
  client: RpcClient;
  stdout: string[];
  stderr: string[];
  exits: number[];
  call(method: string, args?: { type: Parameters<RpcClient['call']>[1]; value: Parameters<RpcClient['call']>[2] }): Promise<GobDecoded>;
}

const running: Served[] = [];
afterEach(async () => {
  for (const served of running.splice(0)) {
    served.client.close();
    await served.server.stop();
  }
});

async function serve(env: Record<string, string> = {}, heartbeatTimeout = 10_000): Promise<Served> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exits: number[] = [];
  const server = await serveLegacyPlugin(toyDriver, {
    env: { MACHINE_PLUGIN_TOKEN: '42', ...env },
    stdout: { write: (text: string) => stdout.push(text) },
    stderr: { write: (text: string) => stderr.push(text) },
    exit: (code) => exits.push(code),
    heartbeatTimeout,
    redirectConsole: false,
  });
  if (server === undefined) throw new Error('not served');
  const client = await RpcClient.dial(server.address);
  const served: Served = {
    server,
    client,
    stdout,
    stderr,
    exits,
    call: (method, args = { type: emptyStructType, value: {} }) => client.call(`RPCServerDriver.${method}`, args.type, args.value),
  };
  running.push(served);
  return served;
}

const json = (value: unknown) => ({ type: gob.bytes, value: new TextEncoder().encode(JSON.stringify(value)) });

describe('serveLegacyPlugin', () => {
  it('run by hand (no MACHINE_PLUGIN_TOKEN=42) prints libmachine notice on stderr and exits 1, writing nothing on stdout', async () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const exits: number[] = [];
    const server = await serveLegacyPlugin(toyDriver, { env: {}, stdout: { write: (t: string) => stdout.push(t) }, stderr: { write: (t: string) => stderr.push(t) }, exit: (code) => exits.push(code) });
    expect(server).toBeUndefined();
    expect(exits).toEqual([1]);
    expect(stdout).toEqual([]);
    expect(stderr.join('')).toBe(notAPluginHostNotice);
    expect(notAPluginHostNotice).toContain('(API version: 1)');
  });

  it('prints only the address first, answers GetVersion 1 under both service names', async () => {
    const served = await serve();
    expect(served.stdout).toEqual([`${served.server.address}\n`]);
    expect(served.server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    for (const service of ['RPCServerDriver', 'RpcServerDriver']) {
      const reply = await served.client.call(`${service}.GetVersion`, emptyStructType, {});
      expect(reply.type.kind).toBe('int');
      expect(reply.value).toBe(1);
    }
  });

  it('GetCreateFlags gives every flag with its exact mcnflag type name, usage, env var and default (secrets without it)', async () => {
    const served = await serve();
    const reply = await served.call('GetCreateFlags');
    const flags = (reply.value as GobInterface[]).map((flag) => ({ name: flag.name, ...(flag.value as GobStructValue) }));
    expect(flags).toEqual([
      { name: '*mcnflag.StringFlag', Name: 'toy-region', Usage: 'Region of the toy cloud', EnvVar: '', Value: 'toy-1' },
      { name: '*mcnflag.StringFlag', Name: 'toy-size', Usage: 'Instance size', EnvVar: '', Value: 'small' },
      { name: '*mcnflag.StringFlag', Name: 'toy-token', Usage: 'API token', EnvVar: 'TOY_TOKEN', Value: '' },
      { name: '*mcnflag.IntFlag', Name: 'toy-disk-gb', Usage: 'Disk size in GB', EnvVar: '', Value: 10 },
      { name: '*mcnflag.StringSliceFlag', Name: 'toy-tag', Usage: 'Tags (repeatable)', EnvVar: '', Value: [] },
      { name: '*mcnflag.BoolFlag', Name: 'toy-private', Usage: 'Attach a private network', EnvVar: '' },
      { name: '*mcnflag.BoolFlag', Name: 'toy-fail-create', Usage: 'Fail create with a quota error (tests)', EnvVar: '' },
      { name: '*mcnflag.IntFlag', Name: 'toy-create-delay-ms', Usage: 'How long create takes (tests)', EnvVar: '', Value: 0 },
    ]);
  });

  it('carries the machine through create and later commands in the config JSON, as a Go host stores it', async () => {
    const first = await serve({ TOY_TOKEN: 'from-env' });
    await first.call('SetConfigRaw', json({ MachineName: 'm1', StorePath: '/store' }));
    // docker-machine sends every flag, unset ones with their declared default.
    await first.call('SetConfigFromFlags', {
      type: gob.interface,
      value: rpcFlags({ 'toy-region': 'toy-2', 'toy-size': 'large', 'toy-token': '', 'toy-disk-gb': 25, 'toy-tag': ['a', 'b'], 'toy-private': true, 'toy-fail-create': false, 'engine-label': ['x'], 'swarm-master': false }),
    });
    await first.call('PreCreateCheck');
    await first.call('Create');
    expect(first.stdout.slice(1)).toEqual(['Creating a large toy instance in toy-2\n', 'Toy instance toy-m1 is running\n']);
    expect((await first.call('GetState')).value).toBe(1);
    expect((await first.call('GetIP')).value).toBe('10.1.2.3');
    expect((await first.call('GetURL')).value).toBe('tcp://10.1.2.3:2376');
    expect((await first.call('GetSSHPort')).value).toBe(22);
    expect((await first.call('GetSSHUsername')).value).toBe('toy');
    expect((await first.call('GetSSHKeyPath')).value).toBe('/store/machines/m1/id_rsa');
    expect((await first.call('GetMachineName')).value).toBe('m1');
    expect((await first.call('DriverName')).value).toBe('toy');
    const raw = JSON.parse(new TextDecoder().decode((await first.call('GetConfigRaw')).value as Uint8Array)) as Record<string, unknown>;
    expect(raw).toMatchObject({
      MachineName: 'm1',
      StorePath: '/store',
      IPAddress: '10.1.2.3',
      SSHUser: 'toy',
      SSHPort: 22,
      SSHKeyPath: '/store/machines/m1/id_rsa',
      DriverName: 'toy',
      Flags: { 'toy-region': 'toy-2', 'toy-size': 'large', 'toy-disk-gb': 25, 'toy-tag': ['a', 'b'], 'toy-private': true },
      Data: { instanceId: 'toy-m1', state: 'Running', tags: ['a', 'b'], diskGb: 25, privateNetwork: true },
    });
    expect(raw.Journal).toMatchObject([{ kind: 'instance', id: 'toy-m1' }]);
    await first.call('Close');
    expect(first.exits).toEqual([0]);

    // The next command: a new plugin process, given the stored JSON back.
    const second = await serve({ TOY_TOKEN: 'from-env' });
    await second.call('SetConfigRaw', json(raw));
    await second.call('Stop');
    expect((await second.call('GetState')).value).toBe(4);
    await second.call('Start');
    await second.call('Restart');
    await second.call('Kill');
    expect((await second.call('GetState')).value).toBe(4);
    await second.call('Remove');
    const gone = await second.call('GetState').catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(LegacyRemoteError);
    expect((gone as LegacyRemoteError).remoteMessage).toMatch(/^machine "m1": getState: the toy instance does not exist \(it may have been deleted outside machine/);
  });

  it('errors reach the host as non-empty texts: bad flags at SetConfigFromFlags, a failed create, unsupported calls', async () => {
    const served = await serve();
    await served.call('SetConfigRaw', json({ MachineName: 'm2', StorePath: '/store' }));
    const failure = (method: string, args?: Parameters<Served['call']>[1]) => served.call(method, args).then(() => undefined, (error: unknown) => (error as LegacyRemoteError).remoteMessage);
    expect(await failure('SetConfigFromFlags', { type: gob.interface, value: rpcFlags({ 'toy-size': 'huge', 'toy-disk-gb': -1 }) })).toBe('config: --toy-size: "huge" is not one of small, large; --toy-disk-gb: must be at least 1, got -1');
    expect(await failure('PreCreateCheck')).toBe('--toy-token: is required: pass --toy-token or set TOY_TOKEN');
    await served.call('SetConfigFromFlags', { type: gob.interface, value: rpcFlags({ 'toy-token': 't', 'toy-fail-create': true }) });
    expect(await failure('Create')).toMatch(/^machine "m2": create: the toy cloud has no room for another instance/);
    expect(await failure('Upgrade')).toBe('machine "m2": upgrade: upgrade is not supported by the toy driver');
    expect(await failure('GetIPv6')).toMatch(/reports no IPv6 address/);
    expect(await failure('GetTheMoon')).toBe("rpc: can't find method RPCServerDriver.GetTheMoon");
  });

  it('exits 1 when the host stops sending heartbeats, not while it sends them', async () => {
    // Heartbeats 300 ms apart against a 2 s watchdog: 1.2 s in all, longer than none of the gaps.
    const served = await serve({}, 2000);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await served.call('Heartbeat');
    }
    expect(served.exits).toEqual([]);
    expect(await served.server.exited).toBe(1);
    expect(served.exits).toEqual([1]);
    expect(served.stderr.join('')).toContain('no heartbeat from the host for 2000 ms');
  });

  it('a secret the host sends empty comes from its env var and is not written into the config JSON', async () => {
    const served = await serve({ TOY_TOKEN: 'env-token' });
    await served.call('SetConfigRaw', json({ MachineName: 'm3', StorePath: '/store' }));
    await served.call('SetConfigFromFlags', { type: gob.interface, value: rpcFlags({ 'toy-token': '' }) });
    await served.call('PreCreateCheck');
    const raw = new TextDecoder().decode((await served.call('GetConfigRaw')).value as Uint8Array);
    expect(raw).not.toContain('env-token');
    expect(JSON.parse(raw).Flags).toEqual({});
  });
});
