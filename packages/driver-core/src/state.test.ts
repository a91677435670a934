import { describe, expect, it } from 'vitest';
import { driverDescriptorProblem } from './driver.ts';
import { allStates, isState, State } from './state.ts';
import { createFakeCloud } from './testing/fake-cloud.ts';
import { fakeDriverDescriptor } from './testing/fake-driver.ts';

describe('State', () => {
  it('has the reference states in order', () => {
    expect(allStates).toEqual(['None', 'Running', 'Paused', 'Saved', 'Stopped', 'Stopping', 'Starting', 'Error', 'Timeout']);
    expect(isState(State.Running)).toBe(true);
    expect(isState('running')).toBe(false);
  });
});

describe('driverDescriptorProblem', () => {
  it('accepts a valid descriptor and explains invalid ones', () => {
    expect(driverDescriptorProblem(fakeDriverDescriptor(createFakeCloud()))).toBeUndefined();
    expect(driverDescriptorProblem(undefined)).toMatch(/not an object/);
    expect(driverDescriptorProblem({ name: 'x', specificationVersion: 'v2', flags: [], createDriver() {} })).toMatch(/specification v2/);
    expect(driverDescriptorProblem({ name: 'x', specificationVersion: 'v1', flags: [] })).toMatch(/createDriver/);
  });
});
