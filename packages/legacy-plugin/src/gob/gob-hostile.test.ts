import { describe, expect, it } from 'vitest';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { goldenStreams, streamBytes } from '../fixtures/golden-streams.ts';
import { GobDecoder } from './gob-decoder.ts';
import { GobEncoder } from './gob-encoder.ts';
import { GobInterface, type GobType, type GobValue, gob } from './gob-types.ts';

function hostile(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

function rejection(bytes: Uint8Array, limits?: Parameters<typeof GobDecoder.decodeAll>[1]): LegacyProtocolError {
  try {
    GobDecoder.decodeAll(bytes, limits);
  } catch (error) {
    expect(LegacyProtocolError.isInstance(error), String(error)).toBe(true);
    return error as LegacyProtocolError;
  }
  throw new Error('the stream was accepted');
}

describe('malformed and hostile gob streams are typed errors', () => {
  it('a message length above the limit is refused before its bytes arrive or are allocated', () => {
    const decoder = new GobDecoder({ maxMessageBytes: 1024 });
    expect(() => decoder.push(hostile(0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(/message of \d+ bytes exceeds the 1024-byte limit/);
    // The decoder stays failed.
    expect(() => decoder.push(hostile(0x03, 0x04, 0x00, 0x02))).toThrow(LegacyProtocolError);
    expect(rejection(hostile(0xfc, 0x00, 0x00, 0x04, 0x01), { maxMessageBytes: 1024 }).message).toMatch(/message of 1025 bytes exceeds/);
  });

  it('string, byte-slice and slice lengths beyond the message are refused', () => {
    // string value claiming 2^31 bytes
    expect(rejection(hostile(0x08, 0x0c, 0x00, 0xfc, 0x80, 0x00, 0x00, 0x00, 0x61)).message).toMatch(/string of 2147483648 bytes runs past the end/);
    // []byte claiming 2^60 bytes
    expect(rejection(hostile(0x0b, 0x0a, 0x00, 0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0)).message).toMatch(/byte slice length \d+ is too large/);
    // a []string of a billion elements in 3 bytes
    const huge = hostile(0x0c, 0xff, 0x81, 0x02, 0x01, 0x02, 0xff, 0x82, 0x00, 0x01, 0x0c, 0x00, 0x00, 0x0a, 0xff, 0x82, 0x00, 0xfc, 0x3b, 0x9a, 0xca, 0x00, 0x01, 0x61);
    expect(rejection(huge).message).toMatch(/slice of 1000000000 elements cannot fit/);
    // a slice of interfaces can span messages, so it is bounded by the element limit instead
    const interfaces = hostile(0x0c, 0xff, 0x81, 0x02, 0x01, 0x02, 0xff, 0x82, 0x00, 0x01, 0x10, 0x00, 0x00, 0x08, 0xff, 0x82, 0x00, 0xfc, 0x3b, 0x9a, 0xca, 0x00, 0x00, 0x00);
    expect(rejection(interfaces).message).toMatch(/exceeds the limit of 1000000/);
  });

  it('bad type ids: undefined, builtin or duplicate definitions, out of range', () => {
    expect(rejection(hostile(0x03, 0xff, 0xc6, 0x00)).message).toMatch(/type id 99 is used but was never defined/);
    // defining id 3 (uint)
    expect(rejection(hostile(0x0a, 0x05, 0x03, 0x01, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00)).message).toMatch(/cannot define type id 3/);
    const structDefinition = [0x0a, 0xff, 0x81, 0x03, 0x01, 0x02, 0xff, 0x82, 0x00, 0x00, 0x00];
    expect(rejection(hostile(...structDefinition, ...structDefinition, 0x03, 0xff, 0x82, 0x00)).message).toMatch(/defined twice/);
    expect(rejection(hostile(0x06, 0xfb, 0x01, 0x00, 0x00, 0x00, 0x00)).message).toMatch(/type id .* is out of range/);
    // a type definition that defines no type, and a uint with 9 bytes
    expect(rejection(hostile(0x04, 0xff, 0x81, 0x00, 0x00)).message).toMatch(/defines 0 types/);
    expect(rejection(hostile(0x03, 0x04, 0x00, 0xf7)).message).toMatch(/bad uint prefix/);
    // a field number beyond the struct
    expect(rejection(hostile(...structDefinition, 0x04, 0xff, 0x82, 0x05, 0x01)).message).toMatch(/field number 4 is out of range/);
    // extra data after a top-level type definition
    expect(rejection(hostile(0x0b, 0xff, 0x81, 0x03, 0x01, 0x02, 0xff, 0x82, 0x00, 0x00, 0x00, 0x07)).message).toMatch(/extra data/);
  });

  it('a stream cut anywhere is an error or fewer values, never a hang', () => {
    const bytes = streamBytes(goldenStreams.find((stream) => stream.name.includes('GetCreateFlags'))!);
    const complete = GobDecoder.decodeAll(bytes).length;
    let rejected = 0;
    for (let cut = 1; cut < bytes.length; cut++) {
      try {
        expect(GobDecoder.decodeAll(bytes.subarray(0, cut)).length).toBeLessThan(complete);
      } catch (error) {
        expect(LegacyProtocolError.isInstance(error)).toBe(true);
        rejected += 1;
      }
    }
    expect(rejected).toBeGreaterThan(bytes.length - 20);
  });

  it('deep recursion, through interfaces or recursive types, stops at the depth limit', () => {
    // 200 interfaces, each holding the next
    let nested: GobValue = 'bottom';
    let type: GobType = gob.string;
    for (let i = 0; i < 200; i++) {
      nested = new GobInterface('iface', type, nested);
      type = gob.interface;
    }
    const bytes = new GobEncoder().encode(gob.interface, nested);
    expect(rejection(bytes).message).toMatch(/nests deeper than 64/);
    expect(GobDecoder.decodeAll(bytes, { maxDepth: 500 })).toHaveLength(1);

    // type T struct { Next *T }, 1000 deep
    const node = gob.struct('T', []);
    node.fields = [{ name: 'Next', type: node }];
    let chain: GobValue = { Next: null };
    for (let i = 0; i < 1000; i++) chain = { Next: chain };
    expect(rejection(new GobEncoder().encode(node, chain)).message).toMatch(/nests deeper than 64/);

    // type T []T, defined by hand (a slice whose element is itself), nested 1000 deep
    const self = [0x0d, 0xff, 0x81, 0x02, 0x01, 0x02, 0xff, 0x82, 0x00, 0x01, 0xff, 0x82, 0x00, 0x00];
    const value = [0xff, 0x82, 0x00, ...Array.from({ length: 1000 }, () => 0x01), 0x00];
    expect(rejection(hostile(...self, 0xfe, value.length >> 8, value.length & 0xff, ...value)).message).toMatch(/nests deeper than 64/);
  });

  it('a flood of type definitions stops at the type limit', () => {
    const definitions: number[] = [];
    for (let id = 65; id < 65 + 50; id++) {
      const encodedId = [0xff, (id * 2 - 1) & 0xff];
      const common = [0xff, (id * 2) & 0xff];
      const body = [...encodedId, 0x03, 0x01, 0x02, ...common, 0x00, 0x00, 0x00];
      definitions.push(body.length, ...body);
    }
    expect(rejection(hostile(...definitions), { maxTypes: 20 }).message).toMatch(/more than 20 type definitions/);
  });
});
