/**
 * Test helpers for drivers and hosts: a real loopback SSH server and the in-memory reference
 * driver. Not for production code paths.
 */
export * from './fake-cloud.ts';
export * from './fake-driver.ts';
export * from './openssh-server.ts';
export * from './ssh-server.ts';
export * from './import-cost.ts';
export * from './host-key-cloud-config.ts';
export * from './recording-budget.ts';
