// Cold start of the built `machine` binary: median wall time of fresh processes.
// Usage: pnpm bench (builds first through turbo), or node bench/cold-start.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const runs = Number(process.argv[2] ?? 25);
const storage = mkdtempSync(join(tmpdir(), 'machine-bench-'));
const env = { ...process.env, MACHINE_STORAGE_PATH: storage };

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(label, args, target) {
  spawnSync(process.execPath, [bin, ...args], { env }); // warm the file cache
  const times = [];
  for (let index = 0; index < runs; index++) {
    const started = performance.now();
    const result = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8' });
    times.push(performance.now() - started);
    if (result.status !== 0) throw new Error(`${label} failed: ${result.stderr}`);
  }
  const baseline = [];
  for (let index = 0; index < runs; index++) {
    const started = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    baseline.push(performance.now() - started);
  }
  const value = median(times);
  const verdict = target === undefined ? '' : value <= target ? ` (target ${target} ms: ok)` : ` (target ${target} ms: SLOWER)`;
  console.log(`${label}: median ${value.toFixed(1)} ms over ${runs} runs; bare node ${median(baseline).toFixed(1)} ms${verdict}`);
  return value <= (target ?? Number.POSITIVE_INFINITY);
}

try {
  const ok = [measure('machine --version', ['--version'], 150), measure('machine ls (empty)', ['ls']), measure('machine --help', ['--help'])];
  if (!ok.every(Boolean)) process.exitCode = 1;
} finally {
  rmSync(storage, { recursive: true, force: true });
}
