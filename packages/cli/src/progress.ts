import { styleText } from 'node:util';
import type { ProgressEvent } from '@machine/driver-core';
import { createLogUpdate } from 'log-update';
import { onBeforeWriteLine, type OutputStream } from './io.ts';

/**
 * Progress of the steps of one or several machines.
 *
 * Not a terminal (CI logs, pipes, the tests that compare output): plain lines, exactly as before —
 * each step's start and info message on its own line, done messages only when marked `plain`.
 *
 * A terminal: the steps redraw in place through log-update (sindresorhus, MIT; the renderer listr2
 * itself is built on). A running step has a spinner, a finished one a tick and its duration; at
 * `close()` a single machine's steps collapse to one summary line (a failed run keeps them all).
 * Several machines (`start a b c`, `upgrade a b`) are one line each, redrawn as their steps move on.
 * listr2 was the other candidate: its tasks are declared up front and run by it, while our steps
 * arrive as events from drivers and provisioning, so only its renderer fit — log-update is that
 * renderer, without the task runner.
 *
 * Anything else written through `writeLine` while a frame is live (an error line, a prompt) first
 * freezes the frame where it is, so nothing is erased; later steps draw below.
 */

/**
 * A progress event. `plain`: a done event's message is also printed as a plain line (not a
 * terminal). `failed`: a done event that marks the machine's running step failed (✖; nothing is
 * printed as a plain line: the command reports the error itself).
 */
export interface CliProgressEvent extends ProgressEvent {
  readonly plain?: boolean;
  readonly failed?: boolean;
}

/** Where a command sends its steps. */
export interface ProgressView {
  /** The printer for `machine`'s events (several machines: one line each on a terminal). */
  printer(machine?: string): (event: CliProgressEvent) => void;
  /** Ends the live view: steps still running are shown as failed (✖); a single machine's finished steps collapse to a summary. */
  close(): void;
}

/** Options of {@link progressView}. */
export interface ProgressViewOptions {
  /** The machines the command works on, in order (their lines appear in that order). */
  machines?: readonly string[];
  now?: () => number;
  /** Spinner frame interval, ms (0: no timer; the tests render on each event). */
  spinnerMs?: number;
  /** The terminal type (default `$TERM`): `dumb` gets plain lines. */
  term?: string;
  /** Where frames go instead of log-update (tests read them). */
  renderer?: (stream: OutputStream) => FrameRenderer;
}

/** What draws frames in place: log-update's createLogUpdate() result. */
export type FrameRenderer = ((text: string) => void) & { done(): void };

/** A progress view on `stream`: live on a terminal, plain lines otherwise. */
export function progressView(stream: OutputStream, options: ProgressViewOptions = {}): ProgressView {
  // A dumb terminal cannot move the cursor: plain lines there too.
  if (stream.isTTY !== true || (options.term ?? process.env.TERM) === 'dumb') {
    return {
      printer: () => (event) => {
        if (event.failed === true) return;
        if (event.phase !== 'done' || event.plain === true) stream.write(`${event.message}\n`);
      },
      close: () => {},
    };
  }
  const live = new LiveProgress(stream, options);
  return { printer: (machine = '') => (event) => live.event(machine, event), close: () => live.close() };
}

/** A printer of one machine's events (what create and provision used before views): see {@link progressView}. */
export function progressPrinter(stream: OutputStream, now: () => number = Date.now): (event: CliProgressEvent) => void {
  return progressView(stream, { now }).printer();
}

const liveViews = new Set<LiveProgress>();
onBeforeWriteLine(() => freezeLiveProgress());

/** Freezes every live frame where it is (called before other output reaches the terminal). */
export function freezeLiveProgress(): void {
  for (const view of liveViews) view.freeze();
}

/** Closes every live frame (the command ended, or failed). */
export function closeLiveProgress(): void {
  for (const view of [...liveViews]) view.close();
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

interface Step {
  readonly id: string;
  message: string;
  readonly startedAt: number;
  endedAt: number | undefined;
  failed: boolean;
  info: string | undefined;
}

interface MachineSteps {
  readonly name: string;
  readonly steps: Step[];
  /** Shown as finished in a frozen frame: not drawn again. */
  shown: boolean;
}


class LiveProgress {
  readonly #stream: OutputStream;
  readonly #now: () => number;
  readonly #spinnerMs: number;
  readonly #machines = new Map<string, MachineSteps>();
  readonly #shownSteps = new Set<Step>();
  /** Running when a frame froze: drawn again only once they change. */
  readonly #frozenRunning = new Set<Step>();
  readonly #startedAt: number;
  #log: FrameRenderer | undefined;
  readonly #renderer: (stream: OutputStream) => FrameRenderer;
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;
  #closed = false;

  constructor(stream: OutputStream, options: ProgressViewOptions) {
    this.#stream = stream;
    this.#now = options.now ?? Date.now;
    this.#spinnerMs = options.spinnerMs ?? 80;
    // log-update wants a tty.WriteStream; it only writes to it and reads `columns`/`rows` when present.
    this.#renderer = options.renderer ?? ((stream) => createLogUpdate(stream as NodeJS.WriteStream, { showCursor: true }));
    this.#startedAt = this.#now();
    // Several machines: their lines in the order given (one machine is drawn step by step, unnamed).
    if ((options.machines?.length ?? 0) > 1) for (const name of options.machines ?? []) this.#machine(name);
  }

  event(machine: string, event: CliProgressEvent): void {
    if (this.#closed) return;
    const state = this.#machine(machine);
    const at = this.#now();
    const current = [...state.steps].reverse().find((step) => step.id === event.step && step.endedAt === undefined);
    if (event.failed === true) {
      const running = current ?? state.steps.findLast((step) => step.endedAt === undefined);
      if (running === undefined) return; // the command reports the error itself
      running.endedAt = at;
      running.failed = true;
      this.#frozenRunning.delete(running);
      liveViews.add(this);
      this.#render();
      return;
    }
    if (current !== undefined) this.#frozenRunning.delete(current);
    if (event.phase === 'start') state.steps.push({ id: event.step, message: event.message, startedAt: at, endedAt: undefined, failed: false, info: undefined });
    else if (event.phase === 'done') {
      if (current === undefined) state.steps.push({ id: event.step, message: event.message, startedAt: at, endedAt: at, failed: false, info: undefined });
      else {
        current.endedAt = at;
        current.message = event.message;
        current.info = undefined;
      }
    } else {
      const running = current ?? state.steps.findLast((step) => step.endedAt === undefined);
      if (running !== undefined) running.info = event.message;
      else state.steps.push({ id: event.step, message: event.message, startedAt: at, endedAt: at, failed: false, info: undefined });
    }
    liveViews.add(this);
    this.#render();
  }

  /** Persists the frame as it is; the next event starts a new one below (finished steps are not repeated). */
  freeze(): void {
    if (this.#log === undefined) return;
    this.#draw(true);
    this.#log.done();
    this.#log = undefined;
    for (const machine of this.#machines.values()) {
      for (const step of machine.steps) {
        if (step.endedAt !== undefined) this.#shownSteps.add(step);
        else this.#frozenRunning.add(step);
      }
      if (machine.steps.length > 0 && machine.steps.every((step) => step.endedAt !== undefined)) machine.shown = true;
    }
    this.#stopTimer();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    liveViews.delete(this);
    this.#stopTimer();
    const at = this.#now();
    for (const machine of this.#machines.values()) {
      for (const step of machine.steps) {
        if (step.endedAt !== undefined) continue;
        step.endedAt = at;
        step.failed = true;
        // Left running in a frozen frame (an error was printed below it): not drawn again.
        if (this.#frozenRunning.has(step)) this.#shownSteps.add(step);
      }
    }
    if (this.#log === undefined && !this.#hasUnshown()) return;
    this.#draw(false, true);
    this.#log?.done();
    this.#log = undefined;
  }

  #machine(name: string): MachineSteps {
    let state = this.#machines.get(name);
    if (state === undefined) {
      state = { name, steps: [], shown: false };
      this.#machines.set(name, state);
    }
    return state;
  }

  #hasUnshown(): boolean {
    return [...this.#machines.values()].some((machine) => !machine.shown && machine.steps.some((step) => !this.#shownSteps.has(step)));
  }

  #render(): void {
    this.#draw(false);
    const running = [...this.#machines.values()].some((machine) => machine.steps.some((step) => step.endedAt === undefined));
    if (running && this.#timer === undefined && this.#spinnerMs > 0) {
      this.#timer = setInterval(() => {
        this.#frame++;
        this.#draw(false);
      }, this.#spinnerMs);
      this.#timer.unref();
    } else if (!running) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #draw(frozen: boolean, final = false): void {
    const lines = this.#lines(frozen, final);
    if (lines.length === 0 && this.#log === undefined) return;
    this.#log ??= this.#logUpdate();
    this.#log(lines.join('\n'));
  }

  #logUpdate(): FrameRenderer {
    return this.#renderer(this.#stream);
  }

  #lines(frozen: boolean, final: boolean): string[] {
    const machines = [...this.#machines.values()].filter((machine) => !machine.shown);
    const named = [...this.#machines.keys()].some((name) => name !== '');
    if (!named) return machines.flatMap((machine) => this.#stepLines(machine, frozen, final));
    const width = Math.max(...machines.map((machine) => machine.name.length), 0);
    return machines.filter((machine) => machine.steps.length > 0).map((machine) => this.#machineLine(machine, width, frozen));
  }

  /** One machine, step by step; at the end a successful run collapses to its last message and totals. */
  #stepLines(machine: MachineSteps, frozen: boolean, final: boolean): string[] {
    const steps = machine.steps.filter((step) => !this.#shownSteps.has(step) && !this.#frozenRunning.has(step));
    if (final && steps.length > 0 && machine.steps.every((step) => !step.failed)) {
      // The step that finished last says best what the whole run did ("Created machine …").
      const last = steps.reduce((latest, step) => ((step.endedAt ?? 0) >= (latest.endedAt ?? 0) ? step : latest));
      const total = (last.endedAt ?? this.#now()) - (steps[0]?.startedAt ?? this.#startedAt);
      return [`${styleText('green', '✔')} ${last.message} ${styleText('dim', `(${steps.length} ${steps.length === 1 ? 'step' : 'steps'}, ${seconds(total)})`)}`];
    }
    const lines: string[] = [];
    for (const step of steps) {
      lines.push(this.#stepLine(step, frozen));
      if (step.endedAt === undefined && step.info !== undefined) lines.push(styleText('dim', `    ${step.info}`));
    }
    return lines;
  }

  #stepLine(step: Step, frozen: boolean): string {
    if (step.failed) return `${styleText('red', '✖')} ${step.message}`;
    if (step.endedAt !== undefined) return `${styleText('green', '✔')} ${step.message} ${styleText('dim', `(${seconds(step.endedAt - step.startedAt)})`)}`;
    return `${frozen ? '…' : styleText('cyan', SPINNER[this.#frame % SPINNER.length] as string)} ${step.message}`;
  }

  /** Several machines: one line each with the step it is at (or its last one) and its time so far. */
  #machineLine(machine: MachineSteps, width: number, frozen: boolean): string {
    const running = machine.steps.findLast((step) => step.endedAt === undefined);
    const last = running ?? machine.steps.at(-1);
    const first = machine.steps[0];
    const failed = machine.steps.some((step) => step.failed);
    const end = running === undefined ? (last?.endedAt ?? this.#now()) : this.#now();
    const elapsed = first === undefined ? '' : ` ${styleText('dim', `(${seconds(end - first.startedAt)})`)}`;
    const icon = failed ? styleText('red', '✖') : running !== undefined ? (frozen ? '…' : styleText('cyan', SPINNER[this.#frame % SPINNER.length] as string)) : styleText('green', '✔');
    const detail = running?.info === undefined ? (last?.message ?? '') : `${running.message}: ${running.info}`;
    const columns = (this.#stream as { columns?: number }).columns ?? 80;
    const text = `${machine.name.padEnd(width)}  ${detail}`;
    const room = columns - 14;
    return `${icon} ${text.length > room ? `${text.slice(0, Math.max(10, room - 1))}…` : text}${elapsed}`;
  }
}

function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}
