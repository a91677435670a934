import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from './errors/invalid-config-error.ts';
import { assertValidMachineName, machineNameProblem } from './machine-name.ts';

describe('machine names', () => {
  it.each(['web1', 'a', 'my-machine-2', '0day', 'x'.repeat(63)])('accepts %s', (name) => {
    expect(machineNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', /required/],
    ['Web1', /use "web1"/],
    ['-web', /start and end/],
    ['web-', /start and end/],
    ['web_1', /only a-z, 0-9/],
    ['web.example', /only a-z, 0-9/],
    ['x'.repeat(64), /at most 63/],
  ])('rejects %j with a hint', (name, hint) => {
    expect(machineNameProblem(name)).toMatch(hint);
    expect(() => assertValidMachineName(name)).toThrow(InvalidConfigError);
  });

  it('names the input, not a flag, in the message', () => {
    expect(() => assertValidMachineName('Bad_Name')).toThrow(/^machine name: /);
  });
});
