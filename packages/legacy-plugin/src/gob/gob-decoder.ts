import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { ByteReader } from './gob-bytes.ts';
import { builtinTypeIds, containsInterface, firstUserTypeId, GobInterface, type GobStructType, type GobStructValue, type GobType, type GobValue, gob } from './gob-types.ts';
import { readWireType, type WireType } from './gob-wire-type.ts';

/** Bounds that keep a hostile stream from taking unbounded memory, stack or time. */
export interface GobDecoderLimits {
  /** Largest message accepted, bytes (default 16 MiB; Go's own limit is 1 GiB). */
  readonly maxMessageBytes?: number;
  /** Deepest nesting of structs, slices, maps and interfaces in one value (default 64). */
  readonly maxDepth?: number;
  /** Most type definitions one stream may send (default 4096). */
  readonly maxTypes?: number;
  /** Most elements in one slice or map whose elements may hold interfaces (default 1,000,000). */
  readonly maxElements?: number;
}

/** One decoded top-level value with the type the stream gave it. */
export interface GobDecoded {
  /** The stream's type id of the value (a builtin id or one the stream defined). */
  readonly typeId: number;
  readonly type: GobType;
  readonly value: GobValue;
}

type Step<T> = Generator<void, T, void>;

const builtinById = new Map<number, GobType>([
  [builtinTypeIds.bool, gob.bool],
  [builtinTypeIds.int, gob.int],
  [builtinTypeIds.uint, gob.uint],
  [builtinTypeIds.float, gob.float],
  [builtinTypeIds.bytes, gob.bytes],
  [builtinTypeIds.string, gob.string],
  [builtinTypeIds.interface, gob.interface],
]);

const maxArrayLength = 4096;

/**
 * Decodes one gob stream pushed in chunks of any size. Values are decoded by the stream's own
 * type definitions into plain JS values (see {@link GobValue}); an interface value keeps its
 * registered name and concrete type. Mirrors Go's `decodeTypeSequence`: type definitions may
 * arrive between values and in the middle of one (inside an interface), where the value
 * continues in the next message. Every malformed input is a {@link LegacyProtocolError}; after
 * one, the decoder refuses further input.
 */
export class GobDecoder {
  readonly #maxMessageBytes: number;
  readonly #maxDepth: number;
  readonly #maxTypes: number;
  readonly #maxElements: number;
  readonly #wire = new Map<number, WireType>();
  readonly #types = new Map<number, GobType>();
  readonly #messages: ByteReader[] = [];
  #chunks: Uint8Array[] = [];
  #chunkBytes = 0;
  /** Bytes the next message needs before it is worth joining the chunks (0: unknown). */
  #needed = 0;
  #buffer = new ByteReader(new Uint8Array(0));
  #task: Step<GobDecoded> | undefined;
  #taskReadMessage = false;
  #failure: LegacyProtocolError | undefined;

  constructor(limits: GobDecoderLimits = {}) {
    this.#maxMessageBytes = limits.maxMessageBytes ?? 16 * 1024 * 1024;
    this.#maxDepth = limits.maxDepth ?? 64;
    this.#maxTypes = limits.maxTypes ?? 4096;
    this.#maxElements = limits.maxElements ?? 1_000_000;
  }

  /** Decodes a whole stream at once (it must end between values). */
  static decodeAll(bytes: Uint8Array, limits?: GobDecoderLimits): GobDecoded[] {
    const decoder = new GobDecoder(limits);
    const values = decoder.push(bytes);
    decoder.end();
    return values;
  }

  /** Feeds bytes; returns every value completed by them, in order. */
  push(chunk: Uint8Array): GobDecoded[] {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      this.#frame(chunk);
      return this.#run();
    } catch (error) {
      this.#failure = LegacyProtocolError.isInstance(error) ? (error as LegacyProtocolError) : new LegacyProtocolError(`gob: ${(error as Error).message}`, { cause: error });
      throw this.#failure;
    }
  }

  /** The stream ended: a typed error when it ended inside a message or a value. */
  end(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#chunkBytes > 0 || (this.#task !== undefined && this.#taskReadMessage) || this.#messages.length > 0) {
      this.#failure = new LegacyProtocolError('gob: the stream ended in the middle of a value');
      throw this.#failure;
    }
  }

  /** Splits the input into messages (uint length + payload); a length above the limit is refused before any allocation. */
  #frame(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#chunkBytes += chunk.length;
    // A large message arriving in many chunks is joined once, when it is complete.
    if (this.#chunkBytes < this.#needed) return;
    const data = this.#chunks.length === 1 ? this.#chunks[0]! : concatenate(this.#chunks, this.#chunkBytes);
    let offset = 0;
    this.#needed = 0;
    for (;;) {
      const header = readLength(data, offset);
      if (header === undefined) break;
      if (header.length > this.#maxMessageBytes) throw new LegacyProtocolError(`gob: message of ${header.length} bytes exceeds the ${this.#maxMessageBytes}-byte limit`);
      const start = offset + header.size;
      if (data.length - start < header.length) {
        this.#needed = header.size + header.length;
        break;
      }
      this.#messages.push(new ByteReader(data.subarray(start, start + header.length)));
      offset = start + header.length;
    }
    const rest = data.slice(offset);
    this.#chunks = rest.length === 0 ? [] : [rest];
    this.#chunkBytes = rest.length;
  }

  #run(): GobDecoded[] {
    const values: GobDecoded[] = [];
    while (this.#task !== undefined || this.#messages.length > 0) {
      if (this.#task === undefined) {
        this.#task = this.#decodeTop();
        this.#taskReadMessage = false;
      }
      const step = this.#task.next();
      if (step.done !== true) return values; // waiting for the next message
      values.push(step.value);
      this.#task = undefined;
    }
    return values;
  }

  *#nextMessage(): Step<void> {
    while (this.#messages.length === 0) yield;
    this.#buffer = this.#messages.shift()!;
    this.#taskReadMessage = true;
  }

  *#decodeTop(): Step<GobDecoded> {
    this.#buffer = new ByteReader(new Uint8Array(0)); // Go drops what is left of the last message
    const typeId = yield* this.#typeSequence(false);
    const type = this.#resolve(typeId);
    const value = yield* this.#decodeConcrete(type, 0);
    return { typeId, type, value };
  }

  /** Go's decodeTypeSequence: type definitions until a type id; inside an interface, skips the count after each. */
  *#typeSequence(isInterface: boolean): Step<number> {
    for (;;) {
      if (this.#buffer.remaining === 0) yield* this.#nextMessage();
      const id = this.#buffer.readTypeId();
      if (id >= 0) return id;
      this.#receiveType(-id);
      if (this.#buffer.remaining > 0) {
        if (!isInterface) throw new LegacyProtocolError('gob: extra data after a type definition');
        this.#buffer.readUint();
      }
    }
  }

  #receiveType(id: number): void {
    if (id < firstUserTypeId) throw new LegacyProtocolError(`gob: a stream cannot define type id ${id} (user types start at ${firstUserTypeId})`);
    if (this.#wire.has(id)) throw new LegacyProtocolError(`gob: type id ${id} was defined twice`);
    if (this.#wire.size >= this.#maxTypes) throw new LegacyProtocolError(`gob: more than ${this.#maxTypes} type definitions in one stream`);
    this.#wire.set(id, readWireType(this.#buffer));
  }

  /** The type of a stream id, built from the definitions on first use (forward references are legal). */
  #resolve(id: number, depth = 0): GobType {
    const builtin = builtinById.get(id);
    if (builtin !== undefined) return builtin;
    const known = this.#types.get(id);
    if (known !== undefined) return known;
    if (depth > this.#maxDepth) throw new LegacyProtocolError(`gob: type definitions nest deeper than ${this.#maxDepth}`);
    const wire = this.#wire.get(id);
    if (wire === undefined) throw new LegacyProtocolError(`gob: type id ${id} is used but was never defined`);
    switch (wire.kind) {
      case 'struct': {
        const type: GobStructType = { kind: 'struct', name: wire.name, fields: [] };
        this.#types.set(id, type);
        type.fields = wire.fields.map((field) => ({ name: field.name, type: this.#resolve(field.id, depth + 1) }));
        return type;
      }
      case 'slice': {
        const type: GobType = { kind: 'slice', name: wire.name, elem: gob.bool };
        this.#types.set(id, type);
        type.elem = this.#resolve(wire.elem, depth + 1);
        return type;
      }
      case 'array': {
        if (wire.length > maxArrayLength) throw new LegacyProtocolError(`gob: array type of ${wire.length} elements is longer than ${maxArrayLength}`);
        const type: GobType = { kind: 'array', name: wire.name, elem: gob.bool, length: wire.length };
        this.#types.set(id, type);
        type.elem = this.#resolve(wire.elem, depth + 1);
        return type;
      }
      case 'map': {
        const type: GobType = { kind: 'map', name: wire.name, key: gob.bool, elem: gob.bool };
        this.#types.set(id, type);
        type.key = this.#resolve(wire.key, depth + 1);
        type.elem = this.#resolve(wire.elem, depth + 1);
        return type;
      }
      case 'opaque': {
        const type: GobType = { kind: 'opaque', name: wire.name, encoding: wire.encoding };
        this.#types.set(id, type);
        return type;
      }
    }
  }

  *#decodeConcrete(type: GobType, depth: number): Step<GobValue> {
    if (type.kind === 'struct') return yield* this.#decodeStruct(type, depth);
    const delta = this.#buffer.readUint();
    if (delta !== 0) throw new LegacyProtocolError('gob: corrupted data: non-zero delta for a value that is not a struct');
    return yield* this.#decodeValue(type, depth);
  }

  *#decodeStruct(type: GobStructType, depth: number): Step<GobValue> {
    if (depth > this.#maxDepth) throw new LegacyProtocolError(`gob: value nests deeper than ${this.#maxDepth}`);
    const value: GobStructValue = Object.create(null) as GobStructValue;
    for (const field of type.fields) value[field.name] = zeroValue(field.type);
    let fieldNumber = -1;
    while (this.#buffer.remaining > 0) {
      const delta = this.#buffer.readCount('field delta');
      if (delta === 0) break;
      if (fieldNumber + delta >= type.fields.length) throw new LegacyProtocolError(`gob: field number ${fieldNumber + delta} is out of range for ${type.name || 'a struct'} of ${type.fields.length} fields`);
      fieldNumber += delta;
      const field = type.fields[fieldNumber]!;
      value[field.name] = yield* this.#decodeValue(field.type, depth + 1);
    }
    return value;
  }

  #count(type: GobType, what: string, perElement: number): number {
    const count = this.#buffer.readCount(`${what} length`);
    // Elements without interfaces are all in this message, each at least `perElement` bytes.
    if (!containsInterface(type) && count * perElement > this.#buffer.remaining) {
      throw new LegacyProtocolError(`gob: ${what} of ${count} elements cannot fit in the ${this.#buffer.remaining} bytes left`);
    }
    if (count > this.#maxElements) throw new LegacyProtocolError(`gob: ${what} of ${count} elements exceeds the limit of ${this.#maxElements}`);
    return count;
  }

  *#decodeValue(type: GobType, depth: number): Step<GobValue> {
    switch (type.kind) {
      case 'bool':
        return this.#buffer.readUint() !== 0;
      case 'int':
        return this.#buffer.readInt();
      case 'uint':
        return this.#buffer.readUint();
      case 'float':
        return this.#buffer.readFloat();
      case 'string':
        return this.#buffer.readString('string');
      case 'bytes':
      case 'opaque':
        return this.#buffer.readBytes('byte slice');
      case 'interface':
        return yield* this.#decodeInterface(depth);
      case 'struct':
        return yield* this.#decodeStruct(type, depth);
      case 'slice':
      case 'array': {
        if (depth > this.#maxDepth) throw new LegacyProtocolError(`gob: value nests deeper than ${this.#maxDepth}`);
        const count = this.#count(type, type.kind, 1);
        if (type.kind === 'array' && count !== type.length) throw new LegacyProtocolError(`gob: array of ${count} elements for a type of ${type.length}`);
        const elements: GobValue[] = [];
        for (let i = 0; i < count; i++) elements.push(yield* this.#decodeValue(type.elem, depth + 1));
        return elements;
      }
      case 'map': {
        if (depth > this.#maxDepth) throw new LegacyProtocolError(`gob: value nests deeper than ${this.#maxDepth}`);
        const count = this.#count(type, 'map', 2);
        const map = new Map<GobValue, GobValue>();
        for (let i = 0; i < count; i++) {
          const key = yield* this.#decodeValue(type.key, depth + 1);
          map.set(key, yield* this.#decodeValue(type.elem, depth + 1));
        }
        return map;
      }
    }
  }

  /** Go's decodeInterface: name, type sequence (possibly crossing messages), an ignored byte count, the value. */
  *#decodeInterface(depth: number): Step<GobValue> {
    if (depth > this.#maxDepth) throw new LegacyProtocolError(`gob: value nests deeper than ${this.#maxDepth}`);
    const name = this.#buffer.readString('interface type name');
    if (name === '') return null;
    const typeId = yield* this.#typeSequence(true);
    const type = this.#resolve(typeId);
    this.#buffer.readUint(); // the value's byte count: Go does not use it, neither do we
    const value = yield* this.#decodeConcrete(type, depth + 1);
    return new GobInterface(name, type, value);
  }
}

/** Go's zero value of a struct field that was not sent (a nil pointer, map or interface is `null`). */
function zeroValue(type: GobType): GobValue {
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
      return new Uint8Array(0);
    case 'slice':
      return [];
    case 'array':
      return Array.from({ length: type.length }, () => zeroValue(type.elem));
    default:
      return null;
  }
}

function concatenate(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const data = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}

/** A message length prefix at `offset`, or undefined when its bytes have not all arrived. */
function readLength(data: Uint8Array, offset: number): { length: number; size: number } | undefined {
  if (offset >= data.length) return undefined;
  const first = data[offset]!;
  if (first < 0x80) return { length: first, size: 1 };
  const count = 256 - first;
  if (count > 8) throw new LegacyProtocolError(`gob: bad message length prefix 0x${first.toString(16)}`);
  if (data.length - offset - 1 < count) return undefined;
  let length = 0;
  for (let i = 1; i <= count; i++) length = length * 256 + data[offset + i]!;
  return { length, size: 1 + count };
}
