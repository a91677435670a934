// Import cost of the built package (median of fresh Node processes) next to a bare `node -e 0`, and
// a check that importing it loads neither ssh2, yaml nor @peculiar/x509 (each is loaded by the
// function that needs it). Build first (`pnpm turbo run bench` does).
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 15) };
const heavy = modulesLoadedBy('@machine/provision', options).filter((url) => /\/(ssh2|yaml|@peculiar|tsyringe|reflect-metadata)\//.test(url));

const baseline = medianModuleMs('', options);
const provision = medianModuleMs("await import('@machine/provision')", options);
const x509 = medianModuleMs("await import('reflect-metadata/lite'); await import('@peculiar/x509')", options);
console.log(`node -e 0                              ${baseline.toFixed(0)} ms (median of ${options.runs} processes)`);
console.log(`import @machine/provision              ${provision.toFixed(0)} ms (+${(provision - baseline).toFixed(0)} ms)`);
console.log(`import @peculiar/x509, for scale       ${x509.toFixed(0)} ms (+${(x509 - baseline).toFixed(0)} ms)`);
if (heavy.length > 0) {
  console.error(`importing @machine/provision loaded: ${heavy.slice(0, 5).join(', ')}`);
  process.exit(1);
}
console.log('importing @machine/provision loads neither ssh2, yaml nor @peculiar/x509');
