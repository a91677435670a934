/**
 * The seeded chaos run of the conformance suite: N cycles of create → (stop, start, restart, kill
 * in random order) → remove, each with a random mix of the test double's behaviours switched on or
 * off and faults injected at random calls. Every cycle must end with an empty leak report: either
 * everything succeeded, or the first failure was a typed one-line error (a MachineError) and, with
 * the faults cleared, `remove()` then succeeded.
 *
 * The plan of every cycle (behaviours, faults, operations) comes from a seeded generator, so a
 * failing seed replays the same plan (`MACHINE_CHAOS_SEED=<seed>`). Which call a fault lands on
 * counts calls from its injection, so it moves when the driver polls a different number of times.
 */
import type { Driver, DriverContext } from '../driver.ts';
import { MachineError } from '../errors/machine-error.ts';
import { State } from '../state.ts';

/** A fault the harness can inject into the provider's answers. */
export type ChaosFaultKind = 'throttle' | 'server-error' | 'lost-reply' | 'latency' | 'outage';

/** One fault to inject. */
export interface ChaosFault {
  readonly kind: ChaosFaultKind;
  /** The fault fires on the nth matching call from now (1-based). */
  readonly nth: number;
  /** The operation it targets (one of the harness's `operations`); undefined = any call. */
  readonly operation?: string;
  /** For `latency` and `outage`: how long, ms. */
  readonly durationMs: number;
  /** For time-based faults (`outage`): when it starts, ms from now. */
  readonly afterMs: number;
}

/** What a harness gives the chaos run. */
export interface ChaosHooks {
  /** The fault kinds this test double can inject. */
  readonly faults: readonly ChaosFaultKind[];
  /** Injects one fault (cloud-sim: `sim.faults.add({ operation, nth, throttle | error | reply | latencyMs })`). */
  inject(fault: ChaosFault): Promise<void> | void;
  /** Removes every fault not fired yet (before the cycle's final remove). */
  clearFaults(): Promise<void> | void;
  /**
   * The mutating operations (names `inject` understands): lost replies and half of the other
   * faults aim at one of them; the rest hit any call.
   */
  readonly operations?: readonly string[];
  /** At most this many lifecycle steps per cycle (default 5): fewer where a step is slow (a host's reboot). */
  readonly maxSteps?: number;
  /** Behaviours the test double can switch per cycle (true = on), e.g. a cloud's listing lag. */
  readonly behaviours?: Readonly<Record<string, (on: boolean) => Promise<void> | void>>;
}

/** What one chaos run did. */
export interface ChaosReport {
  readonly seed: number;
  readonly cycles: number;
  /** Faults injected, by kind. */
  readonly faults: Readonly<Record<string, number>>;
  /** Cycles that ended in a typed error (then a clean remove). */
  readonly typedErrors: number;
  /** The codes of those errors, by count. */
  readonly errorCodes: Readonly<Record<string, number>>;
}

/** A lifecycle step of a cycle. */
export type ChaosStep = 'stop' | 'start' | 'restart' | 'kill';

/** The plan of one cycle. */
export interface ChaosCyclePlan {
  readonly behaviours: Readonly<Record<string, boolean>>;
  readonly faults: readonly ChaosFault[];
  readonly steps: readonly ChaosStep[];
}

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed: `MACHINE_CHAOS_SEED` when set, else a fresh one. */
export function chaosSeed(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const given = env.MACHINE_CHAOS_SEED;
  if (given !== undefined && given.trim() !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`MACHINE_CHAOS_SEED must be an integer 0..4294967295, not "${given}"`);
    return seed;
  }
  return Math.floor(Math.random() * 0x100000000);
}

/** The number of cycles: `MACHINE_CHAOS_CYCLES` when set, else `fallback`. */
export function chaosCycles(fallback: number, env: Readonly<Record<string, string | undefined>> = process.env): number {
  const given = env.MACHINE_CHAOS_CYCLES;
  if (given === undefined || given.trim() === '') return fallback;
  const cycles = Number(given);
  if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`MACHINE_CHAOS_CYCLES must be a positive integer, not "${given}"`);
  return cycles;
}

/** Plans every cycle of a run from its seed (the same seed gives the same plans). */
export function planChaos(seed: number, cycles: number, hooks: ChaosHooks, steps: readonly ChaosStep[]): ChaosCyclePlan[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const plans: ChaosCyclePlan[] = [];
  for (let cycle = 0; cycle < cycles; cycle++) {
    const behaviours: Record<string, boolean> = {};
    for (const name of Object.keys(hooks.behaviours ?? {})) behaviours[name] = random() < 0.5;
    const faults: ChaosFault[] = [];
    const count = hooks.faults.length === 0 ? 0 : between(0, 3);
    for (let index = 0; index < count; index++) {
      const kind = pick(hooks.faults);
      const aimed = hooks.operations !== undefined && hooks.operations.length > 0 && (kind === 'lost-reply' || random() < 0.5);
      faults.push({
        kind,
        nth: aimed ? between(1, 2) : between(1, 40),
        ...(aimed ? { operation: pick(hooks.operations ?? []) } : {}),
        durationMs: between(20, 300),
        afterMs: between(0, 600),
      });
    }
    // A random order of a random selection (with repeats) of the steps the driver supports.
    const stepCount = steps.length === 0 ? 0 : between(1, Math.max(1, hooks.maxSteps ?? 5));
    const cycleSteps: ChaosStep[] = [];
    for (let index = 0; index < stepCount; index++) cycleSteps.push(pick(steps));
    plans.push({ behaviours, faults, steps: cycleSteps });
  }
  return plans;
}

/** One line describing a plan, for failure messages. */
export function describePlan(plan: ChaosCyclePlan): string {
  const on = Object.entries(plan.behaviours)
    .filter(([, value]) => value)
    .map(([name]) => name);
  const faults = plan.faults.map((fault) => `${fault.kind}@${fault.operation ?? '*'}#${fault.nth}`);
  return `behaviours [${on.join(', ')}], faults [${faults.join(', ')}], steps create → ${[...plan.steps, 'remove'].join(' → ')}`;
}

const expectedState: Readonly<Record<ChaosStep, State>> = { stop: State.Stopped, kill: State.Stopped, start: State.Running, restart: State.Running };

/** What the run needs from the suite. */
export interface ChaosRunOptions {
  readonly seed: number;
  readonly plans: readonly ChaosCyclePlan[];
  readonly hooks: ChaosHooks;
  newMachine(): { driver: Driver; context: DriverContext };
  leaks(): Promise<readonly string[]> | readonly string[];
  /** Called after each cycle (progress for long runs). */
  onCycle?(cycle: number, outcome: string): void;
}

/** A cycle that broke the rules: the message names the seed, the cycle and its plan. */
export class ChaosFailure extends Error {
  override readonly name = 'ChaosFailure';
}

/**
 * Runs the planned cycles one after another. Throws a {@link ChaosFailure} naming the seed (and how
 * to replay it), the cycle and its plan at the first cycle that breaks the rules.
 */
export async function runChaos(options: ChaosRunOptions): Promise<ChaosReport> {
  const { seed, plans, hooks } = options;
  const faults: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  let typedErrors = 0;
  for (const [index, plan] of plans.entries()) {
    const fail = (what: string): never => {
      throw new ChaosFailure(
        `chaos seed ${seed} (replay: MACHINE_CHAOS_SEED=${seed}), cycle ${index + 1} of ${plans.length}: ${what}; plan: ${describePlan(plan)}`,
      );
    };
    for (const [name, on] of Object.entries(plan.behaviours)) await hooks.behaviours?.[name]?.(on);
    for (const fault of plan.faults) {
      await hooks.inject(fault);
      faults[fault.kind] = (faults[fault.kind] ?? 0) + 1;
    }
    const { driver, context } = options.newMachine();
    const started = Date.now();
    let failure: unknown;
    try {
      await driver.create();
      for (const step of plan.steps) {
        await driver[step]();
        const state = await driver.getState();
        if (state !== expectedState[step]) fail(`after ${step} the state is ${state}, not ${expectedState[step]}`);
      }
      await driver.remove();
    } catch (error) {
      if (error instanceof ChaosFailure) throw error;
      failure = error;
    }
    await hooks.clearFaults();
    if (failure !== undefined) {
      if (!MachineError.isInstance(failure)) fail(`an operation failed with an untyped error: ${String((failure as Error)?.stack ?? failure)}`);
      const typed = failure as MachineError;
      if (typed.message.includes('\n')) fail(`the error is not one line: ${JSON.stringify(typed.message)}`);
      typedErrors++;
      errorCodes[typed.code] = (errorCodes[typed.code] ?? 0) + 1;
      try {
        await driver.remove();
      } catch (error) {
        fail(`remove after "${typed.message}" failed: ${MachineError.isInstance(error) ? error.message : String(error)}`);
      }
    }
    const left = await options.leaks();
    if (left.length > 0) fail(`leaked ${left.join(', ')}${failure === undefined ? '' : ` after "${(failure as Error).message}"`}`);
    if (context.journal.entries().length > 0) fail(`the journal still holds ${JSON.stringify(context.journal.entries())}`);
    const outcome = failure === undefined ? 'ok' : `${(failure as MachineError).code}: ${(failure as Error).message}`;
    options.onCycle?.(index + 1, `${outcome} (${Date.now() - started} ms; ${describePlan(plan)})`);
  }
  return { seed, cycles: plans.length, faults, typedErrors, errorCodes };
}
