/**
 * The driver conformance suite: one vitest suite every driver runs against its test double (the
 * cloud simulator or a loopback fake), so every driver behaves the same for the spec operations.
 */
export { type ConformanceCapabilities, type ConformanceHarness, runConformanceSuite } from './conformance-suite.ts';
export {
  type ChaosCyclePlan,
  type ChaosFault,
  type ChaosFaultKind,
  ChaosFailure,
  type ChaosHooks,
  type ChaosReport,
  type ChaosStep,
  chaosCycles,
  chaosSeed,
  describePlan,
  planChaos,
  runChaos,
  seededRandom,
} from './chaos.ts';
