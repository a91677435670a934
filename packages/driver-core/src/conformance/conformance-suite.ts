import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryContext, MemoryDataStore } from '../context.ts';
import type { Driver, DriverContext, DriverDescriptor, JsonValue } from '../driver.ts';
import { CancelledError } from '../errors/cancelled-error.ts';
import { InvalidConfigError } from '../errors/invalid-config-error.ts';
import { MachineError } from '../errors/machine-error.ts';
import { NotFoundError } from '../errors/not-found-error.ts';
import { SSHError } from '../errors/ssh-error.ts';
import { parseFlags, type RawFlagValues } from '../flags.ts';
import { type JournalEntry, MemoryJournal } from '../journal.ts';
import { runSSH } from '../ssh.ts';
import { State } from '../state.ts';
import { type ChaosHooks, type ChaosStep, chaosCycles, chaosSeed, planChaos, runChaos } from './chaos.ts';

/** Operations a driver may not support (e.g. `generic` cannot power a host on). */
export interface ConformanceCapabilities {
  start: boolean;
  stop: boolean;
  kill: boolean;
  restart: boolean;
  /** The harness can make a create fail after some resources exist. */
  failCreate: boolean;
  /** Aborting create through its signal cleans up. */
  abortCreate: boolean;
  /** The harness can delete the instance behind the driver's back. */
  deleteOutside: boolean;
  /** The machine offers SSH with a key the driver keeps (false for `none`, which only records a URL). */
  ssh: boolean;
  /**
   * Kill points: the mutating requests create sends (operation names the harness's
   * `loseNextReply` and `callCount` understand, e.g. `droplets.create`). For each, the suite checks
   * a create killed after the provider committed it, and a reply lost with the process alive.
   */
  killPoints: readonly string[];
  /**
   * Cycles of the seeded chaos run (0 = off; needs the harness's `chaos` hooks).
   * `MACHINE_CHAOS_CYCLES` overrides it (e.g. 100 in `pnpm bench`), `MACHINE_CHAOS_SEED` replays a run.
   */
  chaosCycles: number;
}

/** What a driver package gives the suite. */
export interface ConformanceHarness<Config = Record<string, unknown>, Client = unknown> {
  descriptor: DriverDescriptor<Config, Client>;
  /** Raw flag values (by flag name) of a valid create against the test double. */
  validFlags: RawFlagValues;
  /** Raw flag values that `parseFlags` must reject. */
  invalidFlags: RawFlagValues;
  /** Environment for parseFlags (default: empty, so the developer's env never leaks in). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The SDK client to inject, if the driver takes one. */
  client?: Client;
  /** Resources still alive at the provider (the leak report). */
  leaks(): Promise<readonly string[]> | readonly string[];
  /** API calls made so far. */
  apiCalls(): Promise<number> | number;
  /** Makes the next create fail after it has made at least one resource. */
  failNextCreate?(): Promise<void> | void;
  /** Deletes the machine's instance outside the driver. */
  deleteOutside?(driver: Driver, context: DriverContext): Promise<void>;
  /**
   * Makes the provider carry out the next `operation` call and lose its answer: `hold` never
   * answers, `drop` closes the connection (cloud-sim: `sim.faults.add({ operation, reply })`).
   */
  loseNextReply?(operation: string, how: 'hold' | 'drop'): Promise<void> | void;
  /** Calls of `operation` the provider has received so far, answered or not. */
  callCount?(operation: string): Promise<number> | number;
  /** Fault injection and behaviour switches for the chaos run (see chaos.ts). */
  chaos?: ChaosHooks;
  /** The URL `getURL` must return for a machine at `ip` (default `tcp://<ip>:2376`). */
  expectedUrl?(ip: string): string;
  /** Releases the test double. */
  close?(): Promise<void> | void;
}

const allCapabilities: ConformanceCapabilities = {
  start: true,
  stop: true,
  kill: true,
  restart: true,
  failCreate: true,
  abortCreate: true,
  deleteOutside: true,
  ssh: true,
  killPoints: [],
  chaosCycles: 0,
};

/**
 * Registers the conformance tests for one driver. `setup` runs once before the tests; every test
 * makes its own machine and asserts the leak report is empty at its end.
 */
export function runConformanceSuite<Config, Client>(
  name: string,
  setup: () => Promise<ConformanceHarness<Config, Client>>,
  capabilities: Partial<ConformanceCapabilities> = {},
): void {
  const can = { ...allCapabilities, ...capabilities };
  describe(`driver conformance: ${name}`, () => {
    let harness: ConformanceHarness<Config, Client>;
    let root: string;
    let counter = 0;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), `conformance-${name}-`));
      harness = await setup();
    });
    afterAll(async () => {
      await harness?.close?.();
      await rm(root, { recursive: true, force: true });
    });

    const newMachine = (): { driver: Driver; context: DriverContext } => {
      counter += 1;
      const machineName = `conf-${counter}-${Date.now().toString(36)}`;
      const context = createMemoryContext(machineName, join(root, machineName));
      const config = parseFlags(harness.descriptor.flags, harness.validFlags, { env: harness.env ?? {} }) as Config;
      const driver = harness.descriptor.createDriver({
        config,
        context,
        ...(harness.client === undefined ? {} : { client: harness.client }),
      });
      return { driver, context };
    };

    const expectNoLeaks = async () => {
      expect(await harness.leaks()).toEqual([]);
    };

    /**
     * A machine whose journal and data persist as the host's record does. `kill()` stops the first
     * driver's writes reaching the record (the process is gone) and returns a fresh driver built
     * from what had been persisted.
     */
    const persistedMachine = () => {
      counter += 1;
      const machineName = `conf-${counter}-${Date.now().toString(36)}`;
      const machineDir = join(root, machineName);
      const config = parseFlags(harness.descriptor.flags, harness.validFlags, { env: harness.env ?? {} }) as Config;
      let generation = 0;
      let journalRecord: readonly JournalEntry[] = [];
      let dataRecord: Readonly<Record<string, JsonValue>> = {};
      const open = () => {
        const mine = generation;
        const context: DriverContext = {
          machineName,
          machineDir,
          journal: new MemoryJournal(journalRecord, async (entries) => {
            if (mine === generation) journalRecord = entries;
          }),
          data: new MemoryDataStore(dataRecord, async (data) => {
            if (mine === generation) dataRecord = data;
          }),
        };
        const driver = harness.descriptor.createDriver({ config, context, ...(harness.client === undefined ? {} : { client: harness.client }) });
        return { driver, context };
      };
      return {
        ...open(),
        kill: () => {
          generation += 1;
          return open();
        },
      };
    };

    const waitUntil = async (condition: () => Promise<boolean>, what: string) => {
      const deadline = Date.now() + 15_000;
      while (!(await condition())) {
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };

    let resourcesPerMachine: number | undefined;
    /** How many resources one plain create leaves at the provider (measured once). */
    const measureResourcesPerMachine = async () => {
      if (resourcesPerMachine !== undefined) return resourcesPerMachine;
      const { driver } = newMachine();
      await driver.create();
      resourcesPerMachine = (await harness.leaks()).length;
      await driver.remove();
      await expectNoLeaks();
      return resourcesPerMachine;
    };

    it('walks the whole lifecycle: create, SSH, stop, start, restart, kill, remove', async () => {
      const { driver, context } = newMachine();
      await driver.preCreateCheck();
      await driver.create();
      expect(await driver.getState()).toBe(State.Running);

      const ip = await driver.getIP();
      expect(ip).not.toBe('');
      expect(await driver.getURL()).toBe(harness.expectedUrl?.(ip) ?? `tcp://${ip}:2376`);
      if (can.ssh) {
        const keyPath = driver.getSSHKeyPath();
        expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
        const ssh = await runSSH(
          {
            host: await driver.getSSHHostname(),
            port: await driver.getSSHPort(),
            username: driver.getSSHUsername(),
            privateKey: await readFile(keyPath, 'utf8'),
          },
          'exit 0',
        );
        expect(ssh.code).toBe(0);
        expect(context.journal.entries().length).toBeGreaterThan(0);
        // The host key seen at create is kept for later connections (and is the one SSH presents).
        expect(context.data.read().hostKeyFingerprint).toBe(ssh.hostKeyFingerprint);
      }

      if (can.stop) {
        await driver.stop();
        expect(await driver.getState()).toBe(State.Stopped);
      }
      if (can.start && can.stop) {
        await driver.start();
        expect(await driver.getState()).toBe(State.Running);
      }
      if (can.restart) {
        await driver.restart();
        expect(await driver.getState()).toBe(State.Running);
      }
      if (can.kill) {
        await driver.kill();
        expect(await driver.getState()).toBe(State.Stopped);
      }
      await driver.remove();
      await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
      expect(context.journal.entries()).toEqual([]);
      await expectNoLeaks();
    });

    it('remove is idempotent: a second remove succeeds and makes no resource', async () => {
      const { driver } = newMachine();
      await driver.create();
      await driver.remove();
      await driver.remove();
      await expectNoLeaks();
    });

    it('rejects every operation on a machine that was never created with a typed error', async () => {
      const { driver } = newMachine();
      const lifecycle: [keyof ConformanceCapabilities, () => Promise<unknown>][] = [
        ['start', () => driver.start()],
        ['stop', () => driver.stop()],
        ['kill', () => driver.kill()],
        ['restart', () => driver.restart()],
      ];
      const operations: [string, () => Promise<unknown>][] = [
        ['getState', () => driver.getState()],
        ['getIP', () => driver.getIP()],
        ...lifecycle.filter(([operation]) => can[operation]),
      ];
      for (const [operation, run] of operations) {
        const error = await run().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(MachineError.isInstance(error), `${operation} must reject with a MachineError`).toBe(true);
        expect((error as MachineError).code, operation).toBe('NOT_FOUND');
      }
    });

    it.runIf(can.ssh)('create verifies the host key it is told to expect: another key fails create with an SSHError and leaves nothing', async () => {
      const { driver, context } = newMachine();
      const expected = `SHA256:${'A'.repeat(43)}`; // a well-formed fingerprint no machine presents
      const error = await driver.create({ boot: { hostKeyFingerprint: expected } }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(SSHError.isInstance(error), `create must reject with an SSHError, got ${String(error)}`).toBe(true);
      expect((error as SSHError).failure).toBe('host-key');
      expect(context.journal.entries()).toEqual([]);
      await expectNoLeaks();
    });

    it.runIf(can.deleteOutside)('reports a machine deleted outside the tool as not found, and remove still succeeds', async () => {
      const { driver, context } = newMachine();
      await driver.create();
      await harness.deleteOutside?.(driver, context);
      await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
      await driver.remove();
      await expectNoLeaks();
    });

    it('rejects invalid flags before any API call', async () => {
      const before = await harness.apiCalls();
      expect(() => parseFlags(harness.descriptor.flags, harness.invalidFlags, { env: harness.env ?? {} })).toThrow(InvalidConfigError);
      expect(await harness.apiCalls()).toBe(before);
    });

    it.runIf(can.failCreate)('a failed create leaves no resource behind and an empty journal', async () => {
      const { driver, context } = newMachine();
      await harness.failNextCreate?.();
      await expect(driver.create()).rejects.toSatisfy(MachineError.isInstance);
      expect(context.journal.entries()).toEqual([]);
      await expectNoLeaks();
    });

    it.runIf(can.abortCreate)('an aborted create cleans up and rejects with CancelledError', async () => {
      const { driver, context } = newMachine();
      const controller = new AbortController();
      const created = driver.create({ signal: controller.signal });
      setTimeout(() => controller.abort(), 5);
      await expect(created).rejects.toBeInstanceOf(CancelledError);
      expect(context.journal.entries()).toEqual([]);
      await expectNoLeaks();
    });

    // Registered only when on: a suite without chaos hooks shows no skipped test for it.
    const cycles = can.chaosCycles > 0 ? chaosCycles(can.chaosCycles) : 0;
    if (cycles > 0) it(
      `chaos: ${cycles} seeded cycles of create → stop/start/restart/kill in random order → remove with faults at random calls; each ends with no leak`,
      async () => {
        const hooks = harness.chaos;
        if (hooks === undefined) throw new Error('the chaos run needs the harness hooks `chaos`');
        const seed = chaosSeed();
        // Said first, so a run cut off by the test timeout still tells how to replay it.
        console.info(`chaos ${name}: seed ${seed} (replay: MACHINE_CHAOS_SEED=${seed}), ${cycles} cycles`);
        const steps = (['stop', 'start', 'restart', 'kill'] as const).filter((step): step is ChaosStep => can[step]);
        const report = await runChaos({
          seed,
          plans: planChaos(seed, cycles, hooks, steps),
          hooks,
          newMachine,
          leaks: () => harness.leaks(),
          // MACHINE_CHAOS_VERBOSE=1: one line per cycle (its outcome and time).
          ...(process.env.MACHINE_CHAOS_VERBOSE ? { onCycle: (cycle: number, outcome: string) => console.info(`chaos ${name}: cycle ${cycle}: ${outcome}`) } : {}),
        });
        const injected = Object.values(report.faults).reduce((sum, count) => sum + count, 0);
        console.info(
          `chaos ${name}: seed ${seed}, ${report.cycles} cycles, ${injected} faults injected ${JSON.stringify(report.faults)}, ` +
            `${report.typedErrors} cycles ended in a typed error ${JSON.stringify(report.errorCodes)} then a clean remove, 0 leaks`,
        );
        expect(report.cycles).toBe(cycles);
      },
      // A cycle takes 1-10 s; a stuck one is cut off (with the seed above) rather than waited for.
      60_000 + cycles * 30_000,
    );

    // Last: a killed create's orphan may still hold a request open until the test double closes.
    for (const point of can.killPoints) {
      it(`kill point ${point}: the provider committed, the process died before the reply; a fresh driver from the record removes everything`, async () => {
        const machine = persistedMachine();
        const before = await harness.callCount?.(point);
        if (before === undefined || harness.loseNextReply === undefined) throw new Error('kill points need the harness hooks loseNextReply and callCount');
        await harness.loseNextReply(point, 'hold');
        // Never awaited: this process is about to be "killed" (its answer never comes).
        void machine.driver.create().catch(() => undefined);
        await waitUntil(async () => (await harness.callCount?.(point) ?? 0) > before, `the provider to receive ${point}`);
        const fresh = machine.kill();
        await fresh.driver.remove();
        expect(fresh.context.journal.entries()).toEqual([]);
        await expectNoLeaks();
      });

      it(`lost reply at ${point} with the process alive: create makes no twin, and remove (or rollback) deletes what the call made`, async () => {
        const perMachine = await measureResourcesPerMachine();
        const { driver, context } = newMachine();
        await harness.loseNextReply?.(point, 'drop');
        const outcome = await driver.create().then(
          () => 'created' as const,
          (error: unknown) => error,
        );
        if (outcome === 'created') {
          expect(await harness.leaks(), 'a created machine has exactly the resources of a plain create').toHaveLength(perMachine);
        } else {
          expect(MachineError.isInstance(outcome), `create must reject with a MachineError, got ${String(outcome)}`).toBe(true);
          expect(context.journal.entries()).toEqual([]);
          await expectNoLeaks();
        }
        await driver.remove();
        expect(context.journal.entries()).toEqual([]);
        await expectNoLeaks();
      });

      it.runIf(can.failCreate)(`lost reply at ${point}, then create fails: rollback finds and deletes what the call made`, async () => {
        const { driver, context } = newMachine();
        await harness.loseNextReply?.(point, 'drop');
        await harness.failNextCreate?.();
        await expect(driver.create()).rejects.toSatisfy(MachineError.isInstance);
        expect(context.journal.entries()).toEqual([]);
        await expectNoLeaks();
      });
    }
  });
}
