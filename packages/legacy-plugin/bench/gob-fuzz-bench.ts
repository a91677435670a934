// The gob fuzzers with many more iterations than the test suite runs, and their throughput.
// pnpm --filter @machine/legacy-plugin bench   (LEGACY_FUZZ_SEED=n to replay, LEGACY_FUZZ_ITERATIONS=n to change the count)
import { performance } from 'node:perf_hooks';
import { fuzzHostile, fuzzRoundTrips, fuzzSeed } from '../src/test-support/gob-fuzz.ts';

const iterations = Number.parseInt(process.env.LEGACY_FUZZ_ITERATIONS ?? '100000', 10);
const seed = fuzzSeed();
console.log(`gob fuzz bench: seed ${seed}, ${iterations} iterations each`);

let started = performance.now();
const roundTrips = fuzzRoundTrips(seed, iterations);
let seconds = (performance.now() - started) / 1000;
console.log(`round trips: ${roundTrips.values} values, ${(roundTrips.bytes / 1024 / 1024).toFixed(1)} MiB in ${seconds.toFixed(1)} s (${Math.round(roundTrips.values / seconds)} values/s)`);

started = performance.now();
const hostile = fuzzHostile(seed, iterations);
seconds = (performance.now() - started) / 1000;
console.log(`hostile streams: ${hostile.iterations} (${hostile.rejected} rejected with LegacyProtocolError) in ${seconds.toFixed(1)} s`);
