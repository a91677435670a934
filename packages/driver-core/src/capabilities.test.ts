import { describe, expect, it } from 'vitest';
import { acceptsBootUserData, offersSSH } from './driver.ts';

describe('driver capabilities', () => {
  it('default to SSH and no boot user data', () => {
    expect(offersSSH({})).toBe(true);
    expect(acceptsBootUserData({}, {})).toBe(false);
  });

  it('read the declared values', () => {
    expect(offersSSH({ capabilities: { ssh: false } })).toBe(false);
    expect(acceptsBootUserData({ capabilities: { userData: true } }, {})).toBe(true);
  });

  it('decide boot user data per machine when given a function', () => {
    const descriptor = { capabilities: { userData: (config: { adopt: boolean }) => !config.adopt } };
    expect(acceptsBootUserData(descriptor, { adopt: false })).toBe(true);
    expect(acceptsBootUserData(descriptor, { adopt: true })).toBe(false);
  });
});
