// Import cost of the built package (median of fresh Node processes) next to a bare `node -e 0` and
// to importing @digitalocean/dots itself, and a check that importing the driver does not load the SDK.
// Build first (`pnpm turbo run bench` does).
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 15) };
const sdkLoaded = modulesLoadedBy('@machine/driver-digitalocean', options).filter((url) => /@digitalocean\/dots|kiota/.test(url));

const baseline = medianModuleMs('', options);
const driver = medianModuleMs("await import('@machine/driver-digitalocean')", options);
const sdk = medianModuleMs("await import('@digitalocean/dots')", options);
console.log(`node -e 0                            ${baseline.toFixed(0)} ms (median of ${options.runs} processes)`);
console.log(`import @machine/driver-digitalocean  ${driver.toFixed(0)} ms (+${(driver - baseline).toFixed(0)} ms)`);
console.log(`import @digitalocean/dots, for scale ${sdk.toFixed(0)} ms (+${(sdk - baseline).toFixed(0)} ms)`);
if (sdkLoaded.length > 0) {
  console.error(`importing the driver loaded the SDK: ${sdkLoaded.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver does not load the SDK');
