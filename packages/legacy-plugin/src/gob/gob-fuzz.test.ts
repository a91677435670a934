import { describe, expect, it } from 'vitest';
import { fuzzHostile, fuzzRoundTrips, fuzzSeed } from '../test-support/gob-fuzz.ts';

// Fixed iteration counts that fit CI; `pnpm --filter @machine/legacy-plugin bench` runs many more.
// Replay a failure with LEGACY_FUZZ_SEED=<the printed seed>.
const roundTripIterations = 5000;
const hostileIterations = 10_000;

describe('gob fuzzing (seeded)', () => {
  it(`${roundTripIterations} random streams of the RPC types round-trip: decoded as Go would, re-encoded byte for byte`, () => {
    const seed = fuzzSeed();
    console.log(`gob round-trip fuzz seed ${seed} (replay: LEGACY_FUZZ_SEED=${seed})`);
    const report = fuzzRoundTrips(seed, roundTripIterations);
    expect(report.values).toBeGreaterThanOrEqual(roundTripIterations);
    expect(report.bytes).toBeGreaterThan(roundTripIterations * 3);
  });

  it(`${hostileIterations} mutated streams each decode or fail with a LegacyProtocolError`, () => {
    const seed = fuzzSeed();
    console.log(`gob hostile fuzz seed ${seed} (replay: LEGACY_FUZZ_SEED=${seed})`);
    const report = fuzzHostile(seed, hostileIterations);
    // Most mutations break the stream; a fuzzer that never produced a rejection would test nothing.
    expect(report.rejected).toBeGreaterThan(hostileIterations / 4);
  });
});
