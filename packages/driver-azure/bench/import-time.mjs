// Import cost of the built package (median of fresh Node processes) next to a bare `node -e 0` and
// to importing the four Azure SDK packages, and a check that importing the driver loads no SDK
// module and no ssh2. Build first (`pnpm turbo run bench` does).
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 15) };
const heavy = modulesLoadedBy('@machine/driver-azure', options).filter((url) => /@azure|@typespec|msal|ssh2/.test(url));

const baseline = medianModuleMs('', options);
const driver = medianModuleMs("await import('@machine/driver-azure')", options);
const sdk = medianModuleMs(
  "await Promise.all([import('@azure/arm-compute'), import('@azure/arm-network'), import('@azure/arm-resources'), import('@azure/identity')])",
  options,
);
console.log(`node -e 0                                   ${baseline.toFixed(0)} ms (median of ${options.runs} processes)`);
console.log(`import @machine/driver-azure                ${driver.toFixed(0)} ms (+${(driver - baseline).toFixed(0)} ms)`);
console.log(`import the four Azure SDK packages, for scale ${sdk.toFixed(0)} ms (+${(sdk - baseline).toFixed(0)} ms)`);
if (heavy.length > 0) {
  console.error(`importing the driver loaded SDK code: ${heavy.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver loads no Azure SDK module and no ssh2');
