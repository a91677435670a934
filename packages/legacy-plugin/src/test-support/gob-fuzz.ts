import { isDeepStrictEqual } from 'node:util';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { type GobDecoded, GobDecoder } from '../gob/gob-decoder.ts';
import { GobEncoder } from '../gob/gob-encoder.ts';
import { type GobField, GobInterface, type GobStructType, type GobType, type GobValue, gob } from '../gob/gob-types.ts';

/** A seeded PRNG (mulberry32): the same seed gives the same cases. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

/** A seed from LEGACY_FUZZ_SEED or a fresh one (always printed by the caller, so a failure can be replayed). */
export function fuzzSeed(): number {
  const fromEnv = process.env.LEGACY_FUZZ_SEED;
  return fromEnv !== undefined && fromEnv !== '' ? Number.parseInt(fromEnv, 10) : Math.floor(Math.random() * 2 ** 31);
}

const basics = [gob.bool, gob.int, gob.uint, gob.float, gob.bytes, gob.string, gob.interface] as const;
const names = ['*mcnflag.StringFlag', '*mcnflag.IntFlag', '*mcnflag.BoolFlag', '*mcnflag.StringSliceFlag', '*rpcdriver.RPCFlags', 'string', 'int', 'bool', '[]string', '*x.Y'];

/** A random type: the flag and RPCFlags shapes, and any mix of structs, slices, maps and interfaces. */
export function randomType(random: Random, depth = 0): GobType {
  const roll = random.int(depth >= 3 ? 6 : 11);
  if (roll < 6) return basics[roll === 5 && depth >= 3 ? 5 : random.int(basics.length)]!;
  switch (roll) {
    case 6:
    case 7: {
      const fields: [string, GobType][] = [];
      const count = random.int(5);
      for (let i = 0; i < count; i++) fields.push([`F${i}${random.pick(['', 'Name', 'Value', 'ü'])}`, randomType(random, depth + 1)]);
      const type = gob.struct(random.pick(['', 'StringFlag', 'RPCFlags', 'T']), fields);
      if (random.chance(0.15)) type.fields = [...type.fields, { name: 'Next', type } satisfies GobField]; // recursive
      return type;
    }
    case 8:
      return gob.slice(randomType(random, depth + 1), random.pick(['', '[]string']));
    case 9:
      return gob.map(random.pick([gob.string, gob.int]), randomType(random, depth + 1), random.pick(['', 'map[string]interface {}']));
    default:
      return gob.array(randomType(random, depth + 1), random.int(3) + 1);
  }
}

function randomString(random: Random): string {
  const length = random.int(12);
  let text = '';
  for (let i = 0; i < length; i++) {
    const kind = random.int(4);
    const code = kind === 0 ? 0x20 + random.int(95) : kind === 1 ? 0xa0 + random.int(0x700) : kind === 2 ? 0xe000 + random.int(0x1000) : 0x1f300 + random.int(0x200);
    text += String.fromCodePoint(code);
  }
  return text;
}

function randomInt(random: Random, unsigned: boolean): number | bigint {
  switch (random.int(4)) {
    case 0:
      return random.int(128);
    case 1:
      return unsigned ? random.int(2 ** 31) * 4 + random.int(4) : random.int(2 ** 20) - 2 ** 19 || 1;
    case 2: {
      const big = unsigned ? 2n ** 53n + BigInt(random.int(2 ** 31)) * 2n ** 32n : -(2n ** 62n) + BigInt(random.int(2 ** 31));
      return big;
    }
    default:
      return unsigned ? 0xffff_ffff_ffff_ffffn : 2n ** 63n - 1n;
  }
}

/** A random value of `type`. */
export function randomValue(random: Random, type: GobType, depth = 0): GobValue {
  switch (type.kind) {
    case 'bool':
      return random.chance(0.5);
    case 'int':
      return randomInt(random, false);
    case 'uint':
      return randomInt(random, true);
    case 'float':
      return random.pick([1.5, -2.25, 1e300, 5e-324, Number.POSITIVE_INFINITY, random.next() * 1000 + 1]);
    case 'string':
      return randomString(random);
    case 'bytes':
    case 'opaque':
      return Uint8Array.from({ length: random.int(10) }, () => random.int(256));
    case 'interface': {
      if (depth > 4 || random.chance(0.15)) return null;
      let concrete = randomType(random, 2);
      while (concrete.kind === 'interface') concrete = randomType(random, 2);
      return new GobInterface(random.pick(names), concrete, randomValue(random, concrete, depth + 1));
    }
    case 'struct': {
      const value: Record<string, GobValue> = {};
      for (const field of type.fields) {
        if (field.type === type) value[field.name] = depth < 3 && random.chance(0.5) ? randomValue(random, type, depth + 1) : null;
        // A Go struct always has its array fields (and Go always sends them); others may be zero.
        else if (field.type.kind === 'array' || random.chance(0.8)) value[field.name] = randomValue(random, field.type, depth + 1);
      }
      return value;
    }
    case 'slice':
      return Array.from({ length: depth > 3 ? 0 : random.int(4) }, () => randomElement(random, type.elem, depth + 1));
    case 'array':
      return Array.from({ length: type.length }, () => randomElement(random, type.elem, depth + 1));
    case 'map': {
      const map = new Map<GobValue, GobValue>();
      const count = depth > 3 ? 0 : random.int(4);
      for (let i = 0; i < count; i++) map.set(type.key.kind === 'string' ? `k${i}${randomString(random)}` : i * 7 - 3, randomValue(random, type.elem, depth + 1));
      return map;
    }
  }
}

function randomElement(random: Random, type: GobType, depth: number): GobValue {
  // gob cannot send a nil struct pointer inside a slice.
  if (type.kind === 'struct') return randomValue(random, type, depth) ?? {};
  return randomValue(random, type, depth);
}

/** The value Go's decoder would give back: zero fields filled, nil struct pointers kept as null. */
export function expectedAfterDecode(type: GobType, value: GobValue | undefined): unknown {
  if (type.kind === 'interface') {
    if (!(value instanceof GobInterface)) return null;
    return { $name: value.name, value: expectedAfterDecode(value.type, value.value) };
  }
  if (value === undefined || value === null) return zero(type);
  switch (type.kind) {
    case 'struct': {
      const struct = value as Record<string, GobValue>;
      return Object.fromEntries(type.fields.map((field) => [field.name, expectedAfterDecode(field.type, struct[field.name])]));
    }
    case 'slice':
    case 'array':
      return (value as GobValue[]).map((element) => expectedAfterDecode(type.elem, element));
    case 'map':
      return [...(value as Map<GobValue, GobValue>)].map(([key, element]) => [key, expectedAfterDecode(type.elem, element)]);
    case 'bytes':
    case 'opaque':
      return [...(value as Uint8Array)];
    default:
      return value;
  }
}

function zero(type: GobType): unknown {
  switch (type.kind) {
    case 'bool':
      return false;
    case 'int':
    case 'uint':
    case 'float':
      return 0;
    case 'string':
      return '';
    case 'bytes':
    case 'opaque':
      return [];
    case 'slice':
      return [];
    case 'array':
      return Array.from({ length: type.length }, () => zero(type.elem));
    default:
      return null;
  }
}

/** A decoded value as plain data comparable with {@link expectedAfterDecode}. */
export function plainDecoded(value: GobValue): unknown {
  if (value instanceof GobInterface) return { $name: value.name, value: plainDecoded(value.value) };
  if (value instanceof Map) return [...value].map(([key, element]) => [key, plainDecoded(element)]);
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plainDecoded);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plainDecoded(field as GobValue)]));
  return value;
}

/** What one fuzz run did. */
export interface FuzzReport {
  readonly seed: number;
  readonly iterations: number;
  readonly values: number;
  readonly bytes: number;
}

/**
 * Round trips: streams of 1-4 random values through one encoder and one decoder (fed in random
 * chunk sizes); each must decode to what Go would give back, and re-encoding the decoded values
 * with a fresh encoder must give the same bytes. Throws on the first difference, naming the seed.
 */
export function fuzzRoundTrips(seed: number, iterations: number): FuzzReport {
  const random = new Random(seed);
  let values = 0;
  let bytes = 0;
  for (let iteration = 0; iteration < iterations; iteration++) {
    const encoder = new GobEncoder();
    const cases = Array.from({ length: 1 + random.int(4) }, () => {
      const type = randomType(random);
      return { type, value: type.kind === 'interface' ? randomValue(random, type) : randomElement(random, type, 0) };
    });
    const stream = Buffer.concat(cases.map((item) => encoder.encode(item.type, item.value)));
    const decoder = new GobDecoder();
    const decoded: GobDecoded[] = [];
    for (let offset = 0; offset < stream.length; ) {
      const size = 1 + random.int(40);
      decoded.push(...decoder.push(stream.subarray(offset, offset + size)));
      offset += size;
    }
    decoder.end();
    const fail = (what: string) => new Error(`gob fuzz (seed ${seed}, iteration ${iteration}): ${what}`);
    if (decoded.length !== cases.length) throw fail(`${cases.length} values encoded, ${decoded.length} decoded`);
    cases.forEach((item, index) => {
      const expected = expectedAfterDecode(item.type, item.value);
      const actual = plainDecoded(decoded[index]!.value);
      if (!isDeepStrictEqual(actual, expected)) throw fail(`value ${index} decoded as ${show(actual)}, expected ${show(expected)}`);
    });
    const again = new GobEncoder();
    const reencoded = Buffer.concat(decoded.map((item) => again.encode(item.type, item.value)));
    if (!reencoded.equals(stream)) throw fail(`re-encoding gave ${reencoded.toString('hex')}, first encoding ${stream.toString('hex')}`);
    values += cases.length;
    bytes += stream.length;
  }
  return { seed, iterations, values, bytes };
}

/**
 * Hostile streams: valid streams with bytes flipped, inserted, removed or cut, fed to a decoder.
 * Each must decode or fail with a LegacyProtocolError; anything else (a RangeError, a stack
 * overflow, another class) throws.
 */
export function fuzzHostile(seed: number, iterations: number): FuzzReport & { rejected: number } {
  const random = new Random(seed);
  let rejected = 0;
  let bytes = 0;
  for (let iteration = 0; iteration < iterations; iteration++) {
    const type = randomType(random);
    const value = type.kind === 'interface' ? randomValue(random, type) : randomElement(random, type, 0);
    const stream = Uint8Array.from(new GobEncoder().encode(type, value));
    const mutated = mutate(random, stream);
    bytes += mutated.length;
    try {
      GobDecoder.decodeAll(mutated, { maxMessageBytes: 1 << 16 });
    } catch (error) {
      if (!LegacyProtocolError.isInstance(error)) {
        throw new Error(`gob hostile fuzz (seed ${seed}, iteration ${iteration}): ${Buffer.from(mutated).toString('hex')} threw ${String(error)}`);
      }
      rejected += 1;
    }
  }
  return { seed, iterations, values: iterations, bytes, rejected };
}

function mutate(random: Random, stream: Uint8Array): Uint8Array {
  const bytes = [...stream];
  const edits = 1 + random.int(4);
  for (let i = 0; i < edits; i++) {
    const at = random.int(bytes.length + 1);
    switch (random.int(5)) {
      case 0:
        if (at < bytes.length) bytes[at] = random.int(256);
        break;
      case 1:
        bytes.splice(at, 0, random.pick([0x00, 0x7f, 0x80, 0xf8, 0xff, random.int(256)]));
        break;
      case 2:
        bytes.splice(at, 1);
        break;
      case 3:
        bytes.length = Math.min(bytes.length, at);
        break;
      default:
        if (at < bytes.length) bytes[at] = bytes[at]! ^ (1 << random.int(8));
    }
  }
  return Uint8Array.from(bytes);
}

function show(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}n` : item));
}

/** Exposed for tests that build a struct type by hand. */
export type { GobStructType };
