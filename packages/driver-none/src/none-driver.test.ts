import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMemoryContext,
  driverDescriptorProblem,
  InvalidConfigError,
  type MachineError,
  NotFoundError,
  NotSupportedError,
  parseFlags,
  SSHError,
  State,
} from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import noneDriver, { noneFlags, stateAfterProbeFailure } from './index.ts';

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'driver-none-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function newMachine(url: string) {
  counter += 1;
  const context = createMemoryContext(`none-${counter}`, join(root, `none-${counter}`));
  const driver = noneDriver.createDriver({ config: parseFlags(noneFlags, { url }, { env: {} }), context });
  return { driver, context };
}

async function listening(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('none driver', () => {
  it('is a valid descriptor whose only flag is the required --url', () => {
    expect(driverDescriptorProblem(noneDriver)).toBeUndefined();
    expect(noneDriver.name).toBe('none');
    // No SSH: the host neither provisions nor logs in; no user data either.
    expect(noneDriver.capabilities).toEqual({ ssh: false });
    expect(noneFlags.map((flag) => flag.name)).toEqual(['url']);
    expect(parseFlags(noneFlags, { url: 'tcp://10.0.0.5:2376' }, { env: {} })).toEqual({ url: 'tcp://10.0.0.5:2376' });
    expect(() => parseFlags(noneFlags, {}, { env: {} })).toThrow(/--url: is required: pass --url/);
    expect(() => parseFlags(noneFlags, { url: 'not a url' }, { env: {} })).toThrow(InvalidConfigError);
    expect(() => parseFlags(noneFlags, { url: 'unix:///var/run/docker.sock' }, { env: {} })).toThrow(/names no host/);
  });

  it('create records only the URL; Status is Running while its port answers, Stopped once it refuses', async () => {
    const server = await listening();
    const { driver, context } = newMachine(`tcp://127.0.0.1:${server.port}`);
    await driver.preCreateCheck();
    await driver.create();
    expect(context.data.read()).toEqual({ url: `tcp://127.0.0.1:${server.port}` });
    expect(context.journal.entries()).toEqual([]);
    await expect(stat(context.machineDir)).rejects.toMatchObject({ code: 'ENOENT' }); // no files made
    expect(await driver.getURL()).toBe(`tcp://127.0.0.1:${server.port}`);
    expect(await driver.getIP()).toBe('127.0.0.1');
    expect(await driver.getState()).toBe(State.Running);
    await server.close();
    expect(await driver.getState()).toBe(State.Stopped);
  });

  it('gives the bare address of an IPv6 URL', async () => {
    const { driver } = newMachine('tcp://[::1]:2376');
    await driver.create();
    expect(await driver.getIP()).toBe('::1');
    expect(await driver.getURL()).toBe('tcp://[::1]:2376');
  });

  it('power operations and the SSH address are NotSupportedErrors naming the none driver', async () => {
    const { driver } = newMachine('tcp://127.0.0.1:2376');
    await driver.create();
    const operations: [string, () => Promise<unknown>][] = [
      ['start', () => driver.start()],
      ['stop', () => driver.stop()],
      ['kill', () => driver.kill()],
      ['restart', () => driver.restart()],
      ['getSSHHostname', () => driver.getSSHHostname()],
      ['getSSHPort', () => driver.getSSHPort()],
    ];
    for (const [operation, run] of operations) {
      const error = await failure(run());
      expect(error, operation).toBeInstanceOf(NotSupportedError);
      expect((error as MachineError).code).toBe('NOT_SUPPORTED');
      expect((error as Error).message).toContain(`${operation}: ${operation} is not supported by the none driver`);
    }
    // The synchronous accessors answer '' so hosts can list and inspect the machine.
    expect(driver.getSSHUsername()).toBe('');
    expect(driver.getSSHKeyPath()).toBe('');
  });

  it('remove forgets the URL only, is idempotent, and a removed or never-created machine is not found', async () => {
    const { driver, context } = newMachine('tcp://127.0.0.1:2376');
    for (const run of [() => driver.getState(), () => driver.getIP(), () => driver.getURL()]) {
      expect(await failure(run())).toBeInstanceOf(NotFoundError);
    }
    await driver.create();
    await driver.remove();
    await driver.remove();
    expect(context.data.read()).toEqual({ url: null });
    expect(await failure(driver.getState())).toBeInstanceOf(NotFoundError);
  });

  it('maps a refused port to Stopped and any other probe failure to Error', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const unreachable = Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' });
    expect(stateAfterProbeFailure(new SSHError('refused', { failure: 'refused', cause: refused }))).toBe(State.Stopped);
    expect(stateAfterProbeFailure(new SSHError('unreachable', { failure: 'refused', cause: unreachable }))).toBe(State.Error);
    expect(stateAfterProbeFailure(new SSHError('did not accept a connection within 3000 ms', { failure: 'refused' }))).toBe(State.Error);
  });
});
