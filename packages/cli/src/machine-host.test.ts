import type { DriverDescriptor } from '@machine/driver-core';
import { fakeDriverFlags } from '@machine/driver-core/testing';
import { describe, expect, it } from 'vitest';
import { configFromRecord } from './machine-host.ts';
import type { MachineRecord } from './store.ts';

const descriptor = { flags: fakeDriverFlags } as unknown as DriverDescriptor;

function simRecord(patch: Partial<MachineRecord>): MachineRecord {
  return { version: 1, name: 's1', driver: 'fake', status: 'ready', createdAt: '', config: { region: 'second-region', size: 'large', sshUser: 'root', waitTimeout: 10 }, journal: [], data: {}, sim: true, ...patch };
}

describe('configFromRecord for a --sim machine', () => {
  // The simulator's current values: its region default and a fresh token (its port changes per daemon).
  const simValues = { 'fake-region': 'local-1', 'fake-token': 'sim-token-2' };

  it('takes from the simulator only the flags it filled at create; what the user gave stays as recorded', () => {
    const config = configFromRecord(descriptor, simRecord({ simFlags: ['fake-token'] }), {}, simValues);
    expect(config).toMatchObject({ region: 'second-region', size: 'large', token: 'sim-token-2' });
  });

  it('a record from before simFlags existed takes every simulator value (the old behaviour)', () => {
    const config = configFromRecord(descriptor, simRecord({}), {}, simValues);
    expect(config).toMatchObject({ region: 'local-1', token: 'sim-token-2' });
  });

  it('a machine not made with --sim ignores simulator values', () => {
    const config = configFromRecord(descriptor, simRecord({ sim: false }), { FAKE_TOKEN: 'env-token' }, simValues);
    expect(config).toMatchObject({ region: 'second-region', token: 'env-token' });
  });
});
