import { type Driver, type DriverDescriptor, State } from '@machine/driver-core';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness } from './test-support/run-cli.ts';

/**
 * Issue 19: `ls -t` counts the provider's time, not module loading. A driver's `prepare` (SDK load,
 * client construction) runs before the clock starts; its batch answer may carry the address, and
 * then no driver call is made per machine.
 */
let cli: CliHarness;
afterEach(async () => {
  await cli?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A driver whose prepare and batch take as long as told, and whose per-machine calls are counted. */
function slowDriver(delays: { prepareMs: number; batchMs: number }) {
  const calls = { prepare: 0, getStates: 0, perMachine: 0 };
  const descriptor: DriverDescriptor = {
    name: 'slow',
    specificationVersion: 'v1',
    description: 'a driver with a slow SDK load',
    flags: [],
    createDriver: ({ context }) => {
      const perMachine = async () => {
        calls.perMachine += 1;
        return 'tcp://192.0.2.9:2376';
      };
      // Only what ls may call; anything else is a test failure.
      return { driverName: 'slow', machineName: context.machineName, getURL: perMachine, getIP: perMachine, getState: perMachine } as unknown as Driver;
    },
    prepare: async () => {
      calls.prepare += 1;
      await sleep(delays.prepareMs);
    },
    getStates: async (machines) => {
      calls.getStates += 1;
      await sleep(delays.batchMs);
      return new Map(machines.map(({ context }, index) => [context.machineName, { state: State.Running, ip: `192.0.2.${index + 1}` }]));
    },
  };
  return { descriptor, calls };
}

async function withMachines(descriptor: DriverDescriptor): Promise<void> {
  cli = await cliHarness({ drivers: { slow: descriptor } });
  for (const name of ['a', 'b', 'c']) {
    await cli.storeRecord({
      name,
      driver: 'slow',
      config: {},
      provision: { engine: { port: 2376, labels: [] }, serverCertSans: [], dockerPort: 2376, state: 'skipped' },
    });
  }
}

describe('ls -t and the driver prepare hook', () => {
  it('a prepare that takes longer than -t does not time the machines out: it runs once, before the clock starts', async () => {
    const { descriptor, calls } = slowDriver({ prepareMs: 1500, batchMs: 0 });
    await withMachines(descriptor);
    const listed = await cli.run(['ls', '-t', '1', '--format', '{{.Name}} {{.State}} {{.URL}}']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toBe('a Running tcp://192.0.2.1:2376\nb Running tcp://192.0.2.2:2376\nc Running tcp://192.0.2.3:2376\n');
    expect(calls).toEqual({ prepare: 1, getStates: 1, perMachine: 0 });
  });

  it('the provider call itself is still timed: a batch slower than -t gives Timeout rows', async () => {
    const { descriptor, calls } = slowDriver({ prepareMs: 0, batchMs: 1500 });
    await withMachines(descriptor);
    const listed = await cli.run(['ls', '-t', '1', '--format', '{{.Name}} {{.State}}']);
    expect(listed.stdout).toBe('a Timeout\nb Timeout\nc Timeout\n');
    expect(calls.perMachine).toBe(0);
  });

  it('ls -q makes no driver call at all, prepare included', async () => {
    const { descriptor, calls } = slowDriver({ prepareMs: 0, batchMs: 0 });
    await withMachines(descriptor);
    expect((await cli.run(['ls', '-q'])).stdout).toBe('a\nb\nc\n');
    expect(calls).toEqual({ prepare: 0, getStates: 0, perMachine: 0 });
  });
});
