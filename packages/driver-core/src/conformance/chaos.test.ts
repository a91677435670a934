import { describe, expect, it } from 'vitest';
import { createMemoryContext } from '../context.ts';
import type { Driver, DriverContext } from '../driver.ts';
import { ProviderError } from '../errors/provider-error.ts';
import { State } from '../state.ts';
import { type ChaosFault, ChaosFailure, type ChaosHooks, chaosCycles, chaosSeed, planChaos, runChaos } from './chaos.ts';

/** A driver stub whose steps can be made to fail; `remove` empties `alive`. */
function stubMachine(world: { alive: Set<string>; failOn?: string; failWith?: unknown; removes: number }): () => { driver: Driver; context: DriverContext } {
  let counter = 0;
  return () => {
    counter++;
    const name = `m${counter}`;
    const context = createMemoryContext(name, `/tmp/${name}`);
    let state: State = State.None;
    const step = (what: string, next: State) => async () => {
      if (world.failOn === what) throw world.failWith;
      state = next;
    };
    const driver = {
      create: async () => {
        world.alive.add(name);
        if (world.failOn === 'create') throw world.failWith;
        state = State.Running;
      },
      stop: step('stop', State.Stopped),
      kill: step('kill', State.Stopped),
      start: step('start', State.Running),
      restart: step('restart', State.Running),
      getState: async () => state,
      remove: async () => {
        world.removes++;
        world.alive.delete(name);
      },
    } as unknown as Driver;
    return { driver, context };
  };
}

const hooks = (injected: ChaosFault[] = [], cleared = { count: 0 }): ChaosHooks => ({
  faults: ['throttle', 'server-error', 'lost-reply', 'latency'],
  operations: ['things.create'],
  inject: (fault) => {
    injected.push(fault);
  },
  clearFaults: () => {
    cleared.count++;
  },
  behaviours: { lag: () => undefined },
});

describe('chaos run', () => {
  it('plans from the seed: the same seed gives the same plans, another seed others; only the given steps and fault kinds', () => {
    const steps = ['stop', 'start', 'restart', 'kill'] as const;
    const first = planChaos(42, 30, hooks(), steps);
    expect(planChaos(42, 30, hooks(), steps)).toEqual(first);
    expect(planChaos(43, 30, hooks(), steps)).not.toEqual(first);
    expect(first.flatMap((plan) => plan.faults).length).toBeGreaterThan(0);
    expect(first.every((plan) => plan.steps.length >= 1 && plan.steps.length <= 5)).toBe(true);
    expect(first.flatMap((plan) => plan.faults).filter((fault) => fault.kind === 'lost-reply').every((fault) => fault.operation === 'things.create')).toBe(true);
    const restartsOnly = planChaos(7, 10, { ...hooks(), faults: [] }, ['restart']);
    expect(restartsOnly.every((plan) => plan.faults.length === 0 && plan.steps.every((step) => step === 'restart'))).toBe(true);
  });

  it('a well-behaved driver passes every cycle; every planned fault is injected and cleared', async () => {
    const world = { alive: new Set<string>(), removes: 0 };
    const injected: ChaosFault[] = [];
    const cleared = { count: 0 };
    const plans = planChaos(5, 12, hooks(), ['stop', 'start', 'restart', 'kill']);
    const report = await runChaos({ seed: 5, plans, hooks: hooks(injected, cleared), newMachine: stubMachine(world), leaks: () => [...world.alive] });
    expect(report.cycles).toBe(12);
    expect(injected).toEqual(plans.flatMap((plan) => plan.faults));
    expect(Object.values(report.faults).reduce((sum, count) => sum + count, 0)).toBe(injected.length);
    expect(cleared.count).toBe(12);
    expect(report.typedErrors).toBe(0);
  });

  it('a typed one-line error ends the cycle: faults cleared, then remove, and the cycle counts as a typed error', async () => {
    const world = { alive: new Set<string>(), removes: 0, failOn: 'create', failWith: new ProviderError('the API said no (HTTP 500)', { statusCode: 500 }) };
    const report = await runChaos({ seed: 1, plans: planChaos(1, 3, hooks(), ['stop']), hooks: hooks(), newMachine: stubMachine(world), leaks: () => [...world.alive] });
    expect(report.typedErrors).toBe(3);
    expect(report.errorCodes).toEqual({ PROVIDER: 3 });
    expect(world.removes).toBe(3);
  });

  it('fails, naming the seed and how to replay it, when a cycle leaks, throws an untyped error or a multi-line one, or lands in the wrong state', async () => {
    const run = (world: { alive: Set<string>; removes: number; failOn?: string; failWith?: unknown }, leaks: () => string[], newMachine = stubMachine(world)) =>
      runChaos({ seed: 99, plans: planChaos(99, 2, hooks(), ['stop']), hooks: hooks(), newMachine, leaks }).then(
        () => undefined,
        (error: unknown) => error,
      );
    const leaky = await run({ alive: new Set(), removes: 0 }, () => ['droplet 1 (web)']);
    expect(leaky).toBeInstanceOf(ChaosFailure);
    expect((leaky as Error).message).toMatch(/^chaos seed 99 \(replay: MACHINE_CHAOS_SEED=99\), cycle 1 of 2: leaked droplet 1 \(web\); plan: /);

    const untyped = await run({ alive: new Set(), removes: 0, failOn: 'stop', failWith: new TypeError('x is undefined') }, () => []);
    expect((untyped as Error).message).toContain('untyped error');

    const multiLine = await run({ alive: new Set(), removes: 0, failOn: 'stop', failWith: new ProviderError('first\nsecond') }, () => []);
    expect((multiLine as Error).message).toContain('not one line');

    const world = { alive: new Set<string>(), removes: 0 };
    const base = stubMachine(world);
    const stuck = () => {
      const machine = base();
      return { ...machine, driver: { ...machine.driver, getState: async () => State.Running } as Driver };
    };
    const wrongState = await run(world, () => [], stuck);
    expect((wrongState as Error).message).toContain('after stop the state is Running, not Stopped');
  });

  it('reads MACHINE_CHAOS_SEED and MACHINE_CHAOS_CYCLES, and refuses bad values', () => {
    expect(chaosSeed({ MACHINE_CHAOS_SEED: '12345' })).toBe(12345);
    expect(() => chaosSeed({ MACHINE_CHAOS_SEED: 'abc' })).toThrow(/MACHINE_CHAOS_SEED/);
    expect(chaosSeed({})).toBeGreaterThanOrEqual(0);
    expect(chaosCycles(15, {})).toBe(15);
    expect(chaosCycles(15, { MACHINE_CHAOS_CYCLES: '100' })).toBe(100);
    expect(() => chaosCycles(15, { MACHINE_CHAOS_CYCLES: '0' })).toThrow(/MACHINE_CHAOS_CYCLES/);
  });
});
