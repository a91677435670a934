/**
 * @machine/driver-core: the Machine Driver Specification v1 for TypeScript.
 * Helpers with heavier imports live behind subpaths: `./keys`, `./ssh`, `./testing`, `./conformance`.
 */
export * from './cleanup.ts';
export * from './context.ts';
export * from './driver.ts';
export * from './errors/index.ts';
export * from './firewall.ts';
export * from './flags.ts';
export * from './guard-driver.ts';
export * from './journal.ts';
export * from './machine-name.ts';
export * from './rate-budget.ts';
export * from './redact.ts';
export * from './resource-sweep.ts';
export * from './resources.ts';
export * from './state.ts';
export * from './user-data.ts';
export * from './wait.ts';
