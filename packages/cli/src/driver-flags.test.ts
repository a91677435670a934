import { fakeDriverFlags } from '@machine/driver-core/testing';
import { describe, expect, it } from 'vitest';
import { driverFlagHelp, parseDriverArguments, valuesByFlagName } from './driver-flags.ts';

describe('driver flags from the schema', () => {
  it('parses --name value, --name=value, repeatable lists and positionals', () => {
    const parsed = parseDriverArguments(fakeDriverFlags, ['--fake-region', 'r2', '--fake-size=large', '--fake-open-port', '80', '--fake-open-port=443', 'web1']);
    expect(parsed).toEqual({ values: { 'fake-region': 'r2', 'fake-size': 'large', 'fake-open-port': ['80', '443'] }, positionals: ['web1'], missingValues: [] });
    expect(parseDriverArguments(fakeDriverFlags, ['web1', '--fake-region']).missingValues).toEqual(['fake-region']);
  });

  it('treats bool flags as switches, with an optional =value', () => {
    const flags = [{ name: 'x-private', key: 'private', type: 'bool', description: 'private networking' }] as const;
    expect(parseDriverArguments(flags, ['--x-private', 'n1'])).toEqual({ values: { 'x-private': true }, positionals: ['n1'], missingValues: [] });
    expect(parseDriverArguments(flags, ['--x-private=false', 'n1']).values).toEqual({ 'x-private': 'false' });
  });

  it('keeps unknown flags by name so they are reported, and stops at --', () => {
    expect(parseDriverArguments(fakeDriverFlags, ['--nope', 'v', 'n1']).values).toEqual({ nope: 'v' });
    expect(parseDriverArguments(fakeDriverFlags, ['--nope', 'n1'])).toEqual({ values: { nope: true }, positionals: ['n1'], missingValues: [] });
    expect(parseDriverArguments(fakeDriverFlags, ['--', '--weird']).positionals).toEqual(['--weird']);
  });

  it('maps a stored config back to flag names', () => {
    expect(valuesByFlagName(fakeDriverFlags, { region: 'r1', openPorts: ['80'], token: undefined })).toEqual({ 'fake-region': 'r1', 'fake-open-port': ['80'] });
  });

  it('generates help with env vars, defaults and choices', () => {
    const help = driverFlagHelp(fakeDriverFlags).join('\n');
    expect(help).toContain('--fake-wait-timeout <number>');
    expect(help).toMatch(/--fake-open-port <value>…\s+Extra ports to open \(8080, 53\/udp\) \[repeatable\]/);
    expect(help).toContain('[secret: never stored; $FAKE_TOKEN]');
  });
});
