import { type DriverDescriptor, State } from '@machine/driver-core';
import { createFakeCloud } from '@machine/driver-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from '../test-support/run-cli.ts';

let cli: CliHarness | undefined;
afterEach(async () => {
  await cli?.close();
  cli = undefined;
});

/** Stores a machine whose instance exists in the fake cloud (pending forever: no SSH server). */
async function storeMachine(harness: CliHarness, name: string, driver = 'fake'): Promise<void> {
  const keyId = await harness.cloud.importKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIbS0bkkXwPmRJ0Pz9jgkT4XBqUpWxjVQnNSK0N7OsPh x');
  const instance = await harness.cloud.runInstance({ name, keyId });
  await harness.storeRecord({ name, driver, journal: [{ kind: 'instance', id: instance.id, preExisting: false, recordedAt: new Date().toISOString() }] });
}

describe('machine ls', () => {
  it('lists 100 stored machines, natural-sorted (its speed is measured by pnpm bench, not here)', async () => {
    cli = await cliHarness({ cloud: createFakeCloud({ instancesNeverRun: true }) });
    for (let index = 1; index <= 100; index++) await storeMachine(cli, `m${index}`);
    const result = await cli.run(['ls']);
    expect(result.code).toBe(0);
    const rows = result.stdout.trimEnd().split('\n').slice(1);
    expect(rows).toHaveLength(100);
    expect(rows[0]).toMatch(/^m1\s+-\s+fake\s+Starting/);
    expect(rows[1]).toMatch(/^m2\s+-\s+fake/); // natural sort: m2 before m10
    expect(rows[99]).toMatch(/^m100\s/);
  });

  it('ls -q and the name, driver and label filters with -q make no API call; a state filter asks', async () => {
    cli = await cliHarness({ cloud: createFakeCloud({ instancesNeverRun: true }) });
    for (const name of ['q1', 'q2', 'web3']) await storeMachine(cli, name);
    const harness = cli;
    const before = harness.cloud.totalCalls;
    const quiet = async (...args: string[]) => (await harness.run(['ls', '-q', ...args])).stdout;
    expect(await quiet()).toBe('q1\nq2\nweb3\n');
    expect(await quiet('--filter', 'name=^q')).toBe('q1\nq2\n');
    expect(await quiet('--filter', 'driver=fake')).toBe('q1\nq2\nweb3\n');
    expect(await quiet('--filter', 'driver=other')).toBe('');
    expect(await quiet('--filter', 'label=env=prod')).toBe('');
    expect(harness.cloud.totalCalls).toBe(before);
    expect(await quiet('--filter', 'state=starting')).toBe('q1\nq2\nweb3\n');
    expect(harness.cloud.totalCalls).toBeGreaterThan(before);
  });

  it('asks a driver with a batch getStates once for all its machines', async () => {
    cli = await cliHarness({ cloud: createFakeCloud({ instancesNeverRun: true }) });
    const base = cli.drivers.fake as DriverDescriptor;
    const batches: string[][] = [];
    cli.drivers.batchy = {
      ...base,
      name: 'batchy',
      createDriver: (options) => ({ ...base.createDriver(options), getState: () => Promise.reject(new Error('getState must not be called')) }),
      getStates: async (machines) => {
        batches.push(machines.map((machine) => machine.context.machineName));
        return new Map(machines.map((machine, index) => [machine.context.machineName, index === 0 ? State.Stopped : new Error('instance gone')]));
      },
    };
    for (const name of ['b1', 'b2', 'b3']) await storeMachine(cli, name, 'batchy');
    const result = await cli.run(['ls', '--format', '{{.Name}} {{.State}} {{.Error}}']);
    expect(batches).toEqual([['b1', 'b2', 'b3']]);
    expect(result.stdout).toBe('b1 Stopped \nb2 Error instance gone\nb3 Error instance gone\n');
  });

  it('shows Timeout for a machine whose driver does not answer within --timeout', async () => {
    cli = await cliHarness({ cloud: createFakeCloud({ instancesNeverRun: true }) });
    const base = cli.drivers.fake as DriverDescriptor;
    cli.drivers.slow = {
      ...base,
      name: 'slow',
      createDriver: (options) => ({ ...base.createDriver(options), getState: () => new Promise<State>(() => {}) }),
    };
    await storeMachine(cli, 'slow1', 'slow');
    await storeMachine(cli, 'quick1');
    const started = performance.now();
    const result = await cli.run(['ls', '-t', '0.3', '--format', '{{.Name}} {{.State}}']);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(result.stdout).toBe('quick1 Starting\nslow1 Timeout\n');
  });

  it('filters by driver, state and name, prints names with -q, and JSON with --format json', async () => {
    cli = await cliHarness();
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'web1'])).code).toBe(0);
    expect((await cli.run(['create', '-d', 'fake', '--no-provision', 'db1'])).code).toBe(0);
    await cli.run(['stop', 'db1']);
    expect((await cli.run(['ls', '-q', '--filter', 'state=stopped'])).stdout).toBe('db1\n');
    expect((await cli.run(['ls', '-q', '--filter', 'state=Running'])).stdout).toBe('web1\n');
    expect((await cli.run(['ls', '-q', '--filter', 'driver=fake,name=^web'])).stdout).toBe('web1\n');
    expect((await cli.run(['ls', '-q', '--filter', 'driver=other'])).stdout).toBe('');
    const json = JSON.parse((await cli.run(['ls', '--format', 'json'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({ Name: 'db1', DriverName: 'fake', State: 'Stopped', URL: '' }),
      expect.objectContaining({ Name: 'web1', DriverName: 'fake', State: 'Running', URL: 'tcp://127.0.0.1:2376' }),
    ]);
    const table = await cli.run(['ls', '--format', 'table {{.Name}}\\t{{.State}}']);
    expect(table.stdout).toBe('NAME   STATE\ndb1    Stopped\nweb1   Running\n');
    const bad = await cli.run(['ls', '--filter', 'colour=red']);
    expect(bad).toMatchObject({ code: 1, stderr: 'bad filter "colour=red": unknown key "colour"; use driver, state, name or label\n' });
  });

  it('filters by engine label (--engine-label key=value), like the reference', async () => {
    cli = await cliHarness();
    for (const [name, labels] of [['a1', ['env=prod', 'team=web']], ['a2', ['env=dev']], ['a3', []]] as const) {
      expect((await cli.run(['create', '-d', 'fake', '--no-provision', ...labels.flatMap((label) => ['--engine-label', label]), name])).code).toBe(0);
    }
    expect((await cli.run(['ls', '-q', '--filter', 'label=env=prod'])).stdout).toBe('a1\n');
    expect((await cli.run(['ls', '-q', '--filter', 'label=env'])).stdout).toBe('a1\na2\n');
    expect((await cli.run(['ls', '-q', '--filter', 'label=team=web', '--filter', 'label=env=dev'])).stdout).toBe('a1\na2\n');
  });

  it('shows a machine whose driver is not installed as an Error row', async () => {
    cli = await cliHarness();
    await storeMachine(cli, 'orphan', 'uninstalled');
    const result = await cli.run(['ls']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/orphan\s+-\s+uninstalled\s+Error\s+Unknown\s+Driver "uninstalled" not found/);
  });
});
