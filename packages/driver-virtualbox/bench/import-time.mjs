// Import cost of the built package (median of fresh Node processes) next to a bare `node -e 0`,
// and a check that importing the driver does not load ssh2 (it is loaded on the first SSH wait).
// Build first (`pnpm turbo run bench` does).
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 15) };
// Neither ssh2 nor the implementation (VBoxManage runner, ISO writer, image cache) loads on import.
const heavy = modulesLoadedBy('@machine/driver-virtualbox', options).filter((url) => /\/ssh2\/|cpu-features|virtualbox-driver\.js|iso9660\.js|node:child_process/.test(url));

const baseline = medianModuleMs('', options);
const core = medianModuleMs("await import('@machine/driver-core')", options);
const driver = medianModuleMs("await import('@machine/driver-virtualbox')", options);
console.log(`node -e 0                           ${baseline.toFixed(0)} ms (median of ${options.runs} processes)`);
console.log(`import @machine/driver-core         ${core.toFixed(0)} ms (+${(core - baseline).toFixed(0)} ms)`);
console.log(`import @machine/driver-virtualbox   ${driver.toFixed(0)} ms (+${(driver - baseline).toFixed(0)} ms)`);
if (heavy.length > 0) {
  console.error(`importing the driver loaded what should load on first use: ${heavy.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver loads neither ssh2 nor the implementation');
