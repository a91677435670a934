import { describe, expect, it } from 'vitest';
import { progressPrinter } from './progress.ts';

function sink(isTTY: boolean) {
  const lines: string[] = [];
  return { stream: { isTTY, write: (text: string | Uint8Array) => lines.push(String(text)) }, lines };
}

describe('create progress', () => {
  it('shows each step with its elapsed time on a terminal', () => {
    const { stream, lines } = sink(true);
    let now = 1000;
    const print = progressPrinter(stream, () => now);
    print({ step: 'create-instance', phase: 'start', message: 'creating droplet web1' });
    now += 2345;
    print({ step: 'wait-ssh', phase: 'info', message: 'attempt 2: key not accepted yet' });
    print({ step: 'create-instance', phase: 'done', message: 'droplet web1 is active' });
    expect(lines).toEqual(['  … creating droplet web1\n', '    attempt 2: key not accepted yet\n', '  ✔ droplet web1 is active (2.3s)\n']);
  });

  it('prints plain lines otherwise, without the done echoes', () => {
    const { stream, lines } = sink(false);
    const print = progressPrinter(stream);
    print({ step: 'create-instance', phase: 'start', message: 'creating droplet web1' });
    print({ step: 'create-instance', phase: 'done', message: 'droplet web1 is active' });
    expect(lines).toEqual(['creating droplet web1\n']);
  });
});
