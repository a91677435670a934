import type { ProgressEvent } from '@machine/driver-core';
import type { OutputStream } from './io.ts';

/** Prints progress events: on a terminal each step with its elapsed time, otherwise plain lines. */
export function progressPrinter(stream: OutputStream, now: () => number = Date.now): (event: ProgressEvent) => void {
  const started = new Map<string, number>();
  const begin = now();
  return (event) => {
    if (!stream.isTTY) {
      if (event.phase !== 'done') stream.write(`${event.message}\n`);
      return;
    }
    const at = now();
    if (event.phase === 'start') {
      started.set(event.step, at);
      stream.write(`  … ${event.message}\n`);
    } else if (event.phase === 'done') {
      const since = started.get(event.step) ?? begin;
      stream.write(`  ✔ ${event.message} (${seconds(at - since)})\n`);
    } else stream.write(`    ${event.message}\n`);
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
