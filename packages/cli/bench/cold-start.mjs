// Cold start of the built `machine` binary: median wall time of fresh processes.
// Usage: pnpm bench (builds first through turbo), or node bench/cold-start.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const runs = Number(process.argv[2] ?? 25);
const storage = mkdtempSync(join(tmpdir(), 'machine-bench-'));
const drivers = mkdtempSync(join(tmpdir(), 'machine-bench-drivers-'));
const env = { ...process.env, MACHINE_STORAGE_PATH: storage, MACHINE_DRIVER_PATH: drivers };
const crowded = mkdtempSync(join(tmpdir(), 'machine-bench-100-'));

/** 100 stored machines of a driver that answers from its data store (no cloud): what `ls` itself costs. */
function storeHundredMachines() {
  const packageDir = join(drivers, 'machine-driver-bench');
  mkdirSync(packageDir, { recursive: true });
  writeFileSync(join(packageDir, 'package.json'), JSON.stringify({ name: 'machine-driver-bench', version: '0.0.0', type: 'module', main: 'index.js' }));
  writeFileSync(
    join(packageDir, 'index.js'),
    `export default { name: 'bench', specificationVersion: 'v1', description: 'bench', flags: [],
  createDriver: ({ context }) => ({ driverName: 'bench', machineName: context.machineName,
    getState: async () => context.data.read().state ?? 'Running', getURL: async () => 'tcp://192.0.2.1:2376',
    getSSHUsername: () => 'root', getSSHKeyPath: () => '' }) };\n`,
  );
  for (let index = 1; index <= 100; index++) {
    const dir = join(crowded, 'machines', `m${index}`);
    mkdirSync(dir, { recursive: true });
    const record = { version: 1, name: `m${index}`, driver: 'bench', status: 'ready', createdAt: '', config: {}, journal: [], data: { state: index % 2 ? 'Running' : 'Stopped' } };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(record, null, 4));
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(label, args, target, extraEnv = {}) {
  const runEnv = { ...env, ...extraEnv };
  spawnSync(process.execPath, [bin, ...args], { env: runEnv }); // warm the file cache
  const times = [];
  for (let index = 0; index < runs; index++) {
    const started = performance.now();
    const result = spawnSync(process.execPath, [bin, ...args], { env: runEnv, encoding: 'utf8' });
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
  storeHundredMachines();
  const ok = [
    measure('machine --version', ['--version'], 150),
    measure('machine ls (empty)', ['ls']),
    measure('machine --help', ['--help']),
    measure('machine ls (100 machines)', ['ls'], 1000, { MACHINE_STORAGE_PATH: crowded }),
  ];
  if (!ok.every(Boolean)) process.exitCode = 1;
} finally {
  for (const dir of [storage, drivers, crowded]) rmSync(dir, { recursive: true, force: true });
}
