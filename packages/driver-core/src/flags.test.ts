import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from './errors/invalid-config-error.ts';
import { defineFlags, parseFlags, secretValues, withoutSecrets } from './flags.ts';

const flags = defineFlags([
  { name: 'demo-region', key: 'region', type: 'string', default: 'nyc3', envVar: 'DEMO_REGION', description: 'Region' },
  { name: 'demo-token', key: 'token', type: 'string', required: true, secret: true, envVar: 'DEMO_TOKEN', description: 'Token' },
  { name: 'demo-size', key: 'size', type: 'string', choices: ['s', 'm'], default: 's', description: 'Size' },
  { name: 'demo-disk', key: 'disk', type: 'int', default: 20, min: 10, max: 100, description: 'Disk GB' },
  { name: 'demo-ipv6', key: 'ipv6', type: 'bool', description: 'IPv6' },
  { name: 'demo-tags', key: 'tags', type: 'string[]', description: 'Tags' },
  {
    name: 'demo-user',
    key: 'user',
    type: 'string',
    description: 'User',
    validate: (value: string) => (value.includes(' ') ? 'must not contain spaces' : undefined),
  },
] as const);

describe('parseFlags', () => {
  it('takes explicit values over env vars over defaults', () => {
    const env = { DEMO_REGION: 'ams3', DEMO_TOKEN: 'from-env' };
    expect(parseFlags(flags, {}, { env })).toEqual({
      region: 'ams3',
      token: 'from-env',
      size: 's',
      disk: 20,
      ipv6: false,
      tags: [],
      user: undefined,
    });
    const config = parseFlags(flags, { 'demo-region': 'sfo3', 'demo-token': 'explicit' }, { env });
    expect(config.region).toBe('sfo3');
    expect(config.token).toBe('explicit');
  });

  it('converts strings from the command line and env to the declared types', () => {
    const config = parseFlags(
      flags,
      { 'demo-token': 't', 'demo-disk': '50', 'demo-ipv6': 'true', 'demo-tags': ['a,b', 'c'] },
      { env: {} },
    );
    expect(config.disk).toBe(50);
    expect(config.ipv6).toBe(true);
    expect(config.tags).toEqual(['a', 'b', 'c']);
  });

  it('reports every bad flag at once, one issue per flag, naming the flag and the fix', () => {
    let caught: unknown;
    try {
      parseFlags(flags, { 'demo-size': 'xl', 'demo-disk': '5', 'demo-ipv6': 'maybe', 'demo-user': 'a b', 'demo-colour': 'red' }, { env: {} });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    const issues = (caught as InvalidConfigError).issues.map((issue) => issue.flag).sort();
    expect(issues).toEqual(['demo-colour', 'demo-disk', 'demo-ipv6', 'demo-size', 'demo-token', 'demo-user']);
    const message = (caught as Error).message;
    expect(message).toContain('--demo-token: is required: pass --demo-token or set DEMO_TOKEN');
    expect(message).toContain('--demo-size: "xl" is not one of s, m');
    expect(message).toContain('--demo-disk: must be at least 10, got 5');
    expect(message).toContain('--demo-ipv6: expects true or false, got "maybe"');
    expect(message).toContain('--demo-user: must not contain spaces');
    expect(message).toContain('--demo-colour: unknown flag');
  });

  it('rejects a non-integer for an int flag', () => {
    expect(() => parseFlags(flags, { 'demo-token': 't', 'demo-disk': '12.5' }, { env: {} })).toThrow(/expects a whole number/);
  });

  it('treats an empty env var as unset', () => {
    expect(() => parseFlags(flags, {}, { env: { DEMO_TOKEN: '' } })).toThrow(/is required/);
  });

  it('keeps secrets out of stored config and lists them for redaction', () => {
    const config = parseFlags(flags, { 'demo-token': 'sekrit-token' }, { env: {} });
    expect(secretValues(flags, config)).toEqual(['sekrit-token']);
    expect(withoutSecrets(flags, config)).not.toHaveProperty('token');
    expect(withoutSecrets(flags, config)).toHaveProperty('region', 'nyc3');
  });
});
