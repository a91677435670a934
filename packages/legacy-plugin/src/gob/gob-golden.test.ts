import { describe, expect, it } from 'vitest';
import { goldenStreams, parseMessage, streamBytes } from '../fixtures/golden-streams.ts';
import { GobDecoder } from './gob-decoder.ts';
import { GobEncoder } from './gob-encoder.ts';
import { GobInterface, type GobValue } from './gob-types.ts';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Plain data for assertions: interfaces as {name, value}, Maps as entry lists, null-prototype structs as objects. */
function plain(value: GobValue): unknown {
  if (value instanceof GobInterface) return { $name: value.name, value: plain(value.value) };
  if (value instanceof Map) return [...value].map(([key, element]) => [plain(key), plain(element)]);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field as GobValue)]));
  return value;
}

describe('golden fixtures from Go 1.19.8', () => {
  it('every message declares its own length (the transcription is exact)', () => {
    const distinct = new Set<string>();
    for (const stream of goldenStreams) {
      for (const message of stream.messages) {
        const parsed = parseMessage(message);
        expect(parsed.payload.length, `${stream.name}: ${message.slice(0, 40)}`).toBe(parsed.declared);
        distinct.add(hex(parsed.bytes));
      }
    }
    // Every distinct message of appendices A and B (A.5's GetState reply is A.2's int reply, and
    // both sides' first GetVersion header are the same bytes).
    expect(distinct.size).toBe(30);
  });

  it.each(goldenStreams.filter((stream) => stream.framing === 'go-framing').map((stream) => [stream.name, stream]))(
    '%s decodes and re-encodes byte for byte',
    (_name, stream) => {
      const bytes = streamBytes(stream);
      const decoded = GobDecoder.decodeAll(bytes);
      const encoder = new GobEncoder();
      const again = decoded.map((value) => encoder.encode(value.type, value.value));
      expect(hex(Buffer.concat(again))).toBe(hex(bytes));
    },
  );

  it.each(goldenStreams.map((stream) => [stream.name, stream]))('%s decodes in chunks of every size to the same values', (_name, stream) => {
    const bytes = streamBytes(stream);
    const whole = GobDecoder.decodeAll(bytes).map((value) => plain(value.value));
    for (const size of [1, 2, 3, 7, 64]) {
      const decoder = new GobDecoder();
      const values = [];
      for (let offset = 0; offset < bytes.length; offset += size) values.push(...decoder.push(bytes.subarray(offset, offset + size)));
      decoder.end();
      expect(values.map((value) => plain(value.value))).toEqual(whole);
    }
  });

  it('A.3 is the four flags Go sent, with their registered names', () => {
    const stream = goldenStreams.find((candidate) => candidate.name.includes('GetCreateFlags'))!;
    const values = GobDecoder.decodeAll(streamBytes(stream)).map((value) => plain(value.value));
    expect(values[2]).toEqual({ ServiceMethod: 'RPCServerDriver.GetCreateFlags', Seq: 2, Error: '' });
    expect(values[3]).toEqual([
      { $name: '*mcnflag.StringFlag', value: { Name: 'hetzner-api-token', Usage: 'Project-specific Hetzner API token', EnvVar: 'HETZNER_API_TOKEN', Value: '' } },
      { $name: '*mcnflag.IntFlag', value: { Name: 'x-port', Usage: '', EnvVar: '', Value: 22 } },
      { $name: '*mcnflag.BoolFlag', value: { Name: 'x-bool', Usage: '', EnvVar: '' } },
      { $name: '*mcnflag.StringSliceFlag', value: { Name: 'x-labels', Usage: '', EnvVar: '', Value: ['a', 'b'] } },
    ]);
  });

  it('A.4 is the *rpcdriver.RPCFlags Go sent, nested []string interface included', () => {
    const stream = goldenStreams.find((candidate) => candidate.name.includes('SetConfigFromFlags'))!;
    const values = GobDecoder.decodeAll(streamBytes(stream)).map((value) => plain(value.value));
    expect(values.at(-1)).toEqual({
      $name: '*rpcdriver.RPCFlags',
      value: {
        Values: [
          ['x-labels', { $name: '[]string', value: ['a', 'b'] }],
          ['hetzner-api-token', { $name: 'string', value: 'tok' }],
          ['x-port', { $name: 'int', value: 22 }],
          ['x-bool', { $name: 'bool', value: true }],
        ],
      },
    });
  });

  it('A.5 values: an error header, SetConfigRaw JSON, a URL and state Running', () => {
    const byName = (part: string) => GobDecoder.decodeAll(streamBytes(goldenStreams.find((stream) => stream.name.includes(part))!)).map((value) => plain(value.value));
    expect(byName('error reply')[0]).toEqual({ ServiceMethod: 'RPCServerDriver.Create', Seq: 5, Error: 'boom' });
    expect(byName('SetConfigRaw')).toEqual(['{"MachineName":"m1"}']);
    expect(byName('GetURL')).toEqual(['tcp://1.2.3.4:2376']);
    expect(byName('GetState')).toEqual([1]);
  });

  it('appendix B (typedefs first) decodes to the values Go decoded, and re-encodes in Go framing that decodes equal', () => {
    for (const stream of goldenStreams.filter((candidate) => candidate.framing === 'typedefs-first')) {
      const decoded = GobDecoder.decodeAll(streamBytes(stream));
      expect(decoded).toHaveLength(1);
      const encoder = new GobEncoder();
      const again = GobDecoder.decodeAll(encoder.encode(decoded[0]!.type, decoded[0]!.value));
      expect(again.map((value) => plain(value.value))).toEqual(decoded.map((value) => plain(value.value)));
    }
    const flags = GobDecoder.decodeAll(streamBytes(goldenStreams.find((stream) => stream.name.startsWith('B []mcnflag'))!));
    expect(plain(flags[0]!.value)).toEqual([
      { $name: '*mcnflag.StringFlag', value: { Name: 'hetzner-api-token', Usage: '', EnvVar: 'HETZNER_API_TOKEN', Value: '' } },
      { $name: '*mcnflag.IntFlag', value: { Name: 'x-port', Usage: '', EnvVar: '', Value: 22 } },
    ]);
  });
});
