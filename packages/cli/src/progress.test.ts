import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { writeLine } from './io.ts';
import { progressPrinter, progressView } from './progress.ts';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, columns: 100, write: (text: string | Uint8Array) => writes.push(String(text)) }, writes };
}

/** A terminal stand-in: the frames the view draws in place; `screen()` is what is on it now (persisted frames, then the live one). */
function terminal() {
  const persisted: string[] = [];
  let live: string[] = [];
  const writes: string[] = [];
  const stream = {
    isTTY: true,
    columns: 100,
    write: (text: string | Uint8Array) => {
      // Lines written by others land below what is on screen.
      persisted.push(...live, ...String(text).replace(/\n$/, '').split('\n'));
      live = [];
      writes.push(String(text));
    },
  };
  const renderer = () =>
    Object.assign(
      (frame: string) => {
        live = frame === '' ? [] : stripVTControlCharacters(frame).split('\n');
      },
      {
        done: () => {
          persisted.push(...live);
          live = [];
        },
      },
    );
  return { stream, renderer, screen: () => [...persisted, ...live] };
}

describe('progress, not on a terminal (CI logs)', () => {
  it('a dumb terminal gets plain lines too', () => {
    const { stream, writes } = sink(true);
    const print = progressView(stream, { term: 'dumb' }).printer();
    print({ step: 'create', phase: 'start', message: 'Creating machine "web1"...' });
    expect(writes).toEqual(['Creating machine "web1"...\n']);
  });

  it('prints each start and info message as a plain line, done messages only when marked plain', () => {
    const { stream, writes } = sink(false);
    const print = progressPrinter(stream);
    print({ step: 'create-instance', phase: 'start', message: 'creating droplet web1' });
    print({ step: 'wait-ssh', phase: 'info', message: 'attempt 2: key not accepted yet' });
    print({ step: 'create-instance', phase: 'done', message: 'droplet web1 is active' });
    print({ step: 'start', phase: 'done', message: 'Started "web1".', plain: true });
    print({ step: 'start', phase: 'done', message: 'failed', failed: true });
    expect(writes).toEqual(['creating droplet web1\n', 'attempt 2: key not accepted yet\n', 'Started "web1".\n']);
  });
});

describe('progress on a terminal', () => {
  it('one machine: a running step has a spinner, a finished one a tick and its duration; close collapses them to a summary', () => {
    const { stream, renderer, screen } = terminal();
    let now = 1000;
    const view = progressView(stream, { now: () => now, spinnerMs: 0, renderer, term: 'xterm' });
    const print = view.printer();
    print({ step: 'pre-create-check', phase: 'start', message: 'Running pre-create checks...' });
    expect(screen()).toEqual(['⠋ Running pre-create checks...']);
    now += 200;
    print({ step: 'pre-create-check', phase: 'done', message: 'Pre-create checks passed' });
    print({ step: 'create', phase: 'start', message: 'Creating machine "web1"...' });
    print({ step: 'create', phase: 'info', message: 'droplet 42 is new' });
    expect(screen()).toEqual(['✔ Pre-create checks passed (0.2s)', '⠋ Creating machine "web1"...', '    droplet 42 is new']);
    now += 2345;
    print({ step: 'create', phase: 'done', message: 'Created machine "web1"' });
    expect(screen()).toEqual(['✔ Pre-create checks passed (0.2s)', '✔ Created machine "web1" (2.3s)']);
    view.close();
    expect(screen()).toEqual(['✔ Created machine "web1" (2 steps, 2.5s)']);
  });

  it('a line written while a step runs freezes the frame (nothing is erased); a failed run keeps every step', () => {
    const { stream, renderer, screen } = terminal();
    const view = progressView(stream, { now: () => 0, spinnerMs: 0, renderer, term: 'xterm' });
    const print = view.printer();
    print({ step: 'provision', phase: 'start', message: 'Provisioning Docker Engine on "web1"...' });
    writeLine(stream, 'provisioning web1 failed at cloud-init: …');
    view.close();
    expect(screen()).toEqual(['… Provisioning Docker Engine on "web1"...', 'provisioning web1 failed at cloud-init: …']);
  });

  it('several machines: one line each, in the order given, with the step each is at; a failure is ✖', () => {
    const { stream, renderer, screen } = terminal();
    let now = 0;
    const view = progressView(stream, { machines: ['a', 'bb', 'c'], now: () => now, spinnerMs: 0, renderer, term: 'xterm' });
    const [a, b, c] = ['a', 'bb', 'c'].map((name) => view.printer(name)) as [ReturnType<ReturnType<typeof progressView>['printer']>, ReturnType<ReturnType<typeof progressView>['printer']>, ReturnType<ReturnType<typeof progressView>['printer']>];
    c({ step: 'start', phase: 'start', message: 'Starting "c"...' });
    a({ step: 'start', phase: 'start', message: 'Starting "a"...' });
    b({ step: 'start', phase: 'start', message: 'Starting "bb"...' });
    now = 1500;
    a({ step: 'start', phase: 'done', message: 'Started "a".' });
    b({ step: 'start', phase: 'done', message: 'no such droplet', failed: true });
    expect(screen()).toEqual(['✔ a   Started "a". (1.5s)', '✖ bb  Starting "bb"... (1.5s)', '⠋ c   Starting "c"... (1.5s)']);
    now = 2000;
    c({ step: 'start', phase: 'done', message: 'Started "c".' });
    view.close();
    expect(screen()).toEqual(['✔ a   Started "a". (1.5s)', '✖ bb  Starting "bb"... (1.5s)', '✔ c   Started "c". (2.0s)']);
  });
});
