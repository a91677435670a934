import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { ByteWriter } from './gob-bytes.ts';
import { builtinTypeIds, describeGobType, firstUserTypeId, GobInterface, type GobStructType, type GobType, type GobValue, isBasicType } from './gob-types.ts';
import { type WireType, writeWireType } from './gob-wire-type.ts';

const utf8Encoder = new TextEncoder();

/**
 * Encodes values as one gob stream, byte for byte the way Go's `gob.Encoder` frames them: type
 * definitions sent once, ids allocated in first-use order from 65, and an interface's concrete
 * type defined in the middle of the value that holds it (Go's writer stack), so captured Go
 * streams re-encode to identical bytes. One encoder per stream direction.
 */
export class GobEncoder {
  #ids = new Map<GobType, number>();
  #nextId = firstUserTypeId;
  #sent = new Set<GobType>();
  #writers: ByteWriter[] = [];

  /** The bytes of one top-level value (one or more messages). Throws LegacyProtocolError on a value that does not fit its type. */
  encode(type: GobType, value: GobValue): Uint8Array {
    const ids = new Map(this.#ids);
    const nextId = this.#nextId;
    const sent = new Set(this.#sent);
    try {
      const out = new ByteWriter();
      this.#writers = [out];
      const buffer = new ByteWriter();
      this.#sendTypeDescriptor(out, buffer, type);
      buffer.writeInt(this.#idOf(type));
      this.#encodeConcrete(buffer, type, value, 'value');
      this.#writeMessage(out, buffer);
      return out.bytes().slice();
    } catch (error) {
      // Nothing was written: forget the ids and definitions of this attempt.
      this.#ids = ids;
      this.#nextId = nextId;
      this.#sent = sent;
      throw error;
    }
  }

  #writer(): ByteWriter {
    return this.#writers[this.#writers.length - 1]!;
  }

  #writeMessage(target: ByteWriter, message: ByteWriter): void {
    target.writeUint(message.length);
    target.write(message.bytes());
    message.reset();
  }

  /** Go's type id allocation: the type itself, then the types it refers to, depth first. */
  #idOf(type: GobType): number {
    if (isBasicType(type)) return builtinTypeIds[type.kind];
    const known = this.#ids.get(type);
    if (known !== undefined) return known;
    this.#ids.set(type, this.#nextId++);
    switch (type.kind) {
      case 'struct':
        for (const field of type.fields) this.#idOf(field.type);
        break;
      case 'slice':
      case 'array':
        this.#idOf(type.elem);
        break;
      case 'map':
        this.#idOf(type.key);
        this.#idOf(type.elem);
        break;
      case 'opaque':
        break;
    }
    return this.#ids.get(type)!;
  }

  #wireType(type: Exclude<GobType, { kind: 'bool' | 'int' | 'uint' | 'float' | 'bytes' | 'string' | 'interface' }>): WireType {
    const id = this.#idOf(type);
    switch (type.kind) {
      case 'struct':
        return { kind: 'struct', name: type.name, id, fields: type.fields.map((field) => ({ name: field.name, id: this.#idOf(field.type) })) };
      case 'slice':
        return { kind: 'slice', name: type.name, id, elem: this.#idOf(type.elem) };
      case 'array':
        return { kind: 'array', name: type.name, id, elem: this.#idOf(type.elem), length: type.length };
      case 'map':
        return { kind: 'map', name: type.name, id, key: this.#idOf(type.key), elem: this.#idOf(type.elem) };
      case 'opaque':
        return { kind: 'opaque', name: type.name, id, encoding: type.encoding };
    }
  }

  /** Go's sendTypeDescriptor/sendActualType: the definition goes into `buffer`, which is flushed to `writer`. */
  #sendTypeDescriptor(writer: ByteWriter, buffer: ByteWriter, type: GobType): void {
    if (isBasicType(type) || this.#sent.has(type)) return;
    buffer.writeInt(-this.#idOf(type));
    writeWireType(buffer, this.#wireType(type));
    this.#writeMessage(writer, buffer);
    this.#sent.add(type);
    switch (type.kind) {
      case 'struct':
        for (const field of type.fields) this.#sendTypeDescriptor(writer, buffer, field.type);
        break;
      case 'slice':
      case 'array':
        this.#sendTypeDescriptor(writer, buffer, type.elem);
        break;
      case 'map':
        this.#sendTypeDescriptor(writer, buffer, type.key);
        this.#sendTypeDescriptor(writer, buffer, type.elem);
        break;
      case 'opaque':
        break;
    }
  }

  /** A top-level or interface-held value: a struct's fields, or a singleton (delta 0, then the value). */
  #encodeConcrete(buffer: ByteWriter, type: GobType, value: GobValue, path: string): void {
    if (type.kind === 'struct') {
      this.#encodeStruct(buffer, type, value, path);
      return;
    }
    buffer.writeUint(0);
    this.#encodeValue(buffer, type, value, path);
  }

  #encodeStruct(buffer: ByteWriter, type: GobStructType, value: GobValue, path: string): void {
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array || value instanceof Map || value instanceof GobInterface || Array.isArray(value)) {
      throw mismatch(path, type, value);
    }
    let fieldNumber = -1;
    type.fields.forEach((field, index) => {
      const fieldValue = Object.hasOwn(value, field.name) ? value[field.name] : undefined;
      if (isOmitted(field.type, fieldValue)) return;
      buffer.writeUint(index - fieldNumber);
      fieldNumber = index;
      this.#encodeValue(buffer, field.type, fieldValue as GobValue, `${path}.${field.name}`);
    });
    buffer.writeUint(0);
  }

  #encodeValue(buffer: ByteWriter, type: GobType, value: GobValue, path: string): void {
    switch (type.kind) {
      case 'bool':
        if (typeof value !== 'boolean') throw mismatch(path, type, value);
        buffer.writeUint(value ? 1 : 0);
        return;
      case 'int':
        if (typeof value !== 'number' && typeof value !== 'bigint') throw mismatch(path, type, value);
        buffer.writeInt(value);
        return;
      case 'uint':
        if (typeof value !== 'number' && typeof value !== 'bigint') throw mismatch(path, type, value);
        buffer.writeUint(value);
        return;
      case 'float':
        if (typeof value !== 'number') throw mismatch(path, type, value);
        buffer.writeFloat(value);
        return;
      case 'string':
        if (typeof value !== 'string') throw mismatch(path, type, value);
        buffer.writeString(value);
        return;
      case 'bytes':
      case 'opaque':
        if (!(value instanceof Uint8Array)) throw mismatch(path, type, value);
        buffer.writeBytes(value);
        return;
      case 'interface':
        this.#encodeInterface(buffer, value, path);
        return;
      case 'struct':
        this.#encodeStruct(buffer, type, value, path);
        return;
      case 'slice':
      case 'array': {
        if (!Array.isArray(value)) throw mismatch(path, type, value);
        if (type.kind === 'array' && value.length !== type.length) throw new LegacyProtocolError(`gob: ${path} has ${value.length} elements, its array type ${type.length}`);
        buffer.writeUint(value.length);
        value.forEach((element, index) => {
          if (type.elem.kind === 'struct' && element === null) throw new LegacyProtocolError(`gob: ${path}[${index}] is a nil struct pointer, which gob cannot send in a slice`);
          this.#encodeValue(buffer, type.elem, element, `${path}[${index}]`);
        });
        return;
      }
      case 'map': {
        if (!(value instanceof Map)) throw mismatch(path, type, value);
        buffer.writeUint(value.size);
        for (const [key, element] of value) {
          this.#encodeValue(buffer, type.key, key, `${path} key`);
          this.#encodeValue(buffer, type.elem, element, `${path}[${String(key)}]`);
        }
        return;
      }
    }
  }

  /** Go's encodeInterface: name, the concrete type's definition (flushing the value so far), id, then the delimited value. */
  #encodeInterface(buffer: ByteWriter, value: GobValue, path: string): void {
    if (value === null) {
      buffer.writeUint(0);
      return;
    }
    if (!(value instanceof GobInterface)) throw new LegacyProtocolError(`gob: ${path} is an interface and needs a GobInterface value (a registered name and a concrete type)`);
    if (value.name === '') throw new LegacyProtocolError(`gob: ${path} holds a value with no registered type name`);
    const name = utf8Encoder.encode(value.name);
    buffer.writeUint(name.length);
    buffer.write(name);
    this.#sendTypeDescriptor(this.#writer(), buffer, value.type);
    buffer.writeInt(this.#idOf(value.type));
    this.#writers.push(buffer);
    const data = new ByteWriter();
    this.#encodeConcrete(data, value.type, value.value, `${path}(${value.name})`);
    this.#writers.pop();
    this.#writeMessage(buffer, data);
  }
}

/** Go omits a struct field whose value is zero (but always sends a non-nil struct and a non-nil map). */
function isOmitted(type: GobType, value: GobValue | undefined): boolean {
  if (value === undefined || value === null) return true;
  switch (type.kind) {
    case 'bool':
      return value === false;
    case 'int':
    case 'uint':
    case 'float':
      return value === 0 || value === 0n;
    case 'string':
      return value === '';
    case 'bytes':
    case 'opaque':
      return value instanceof Uint8Array && value.length === 0;
    case 'slice':
    case 'array':
      return Array.isArray(value) && value.length === 0;
    default:
      return false;
  }
}

function mismatch(path: string, type: GobType, value: GobValue | undefined): LegacyProtocolError {
  const got = value === null ? 'null' : value instanceof Uint8Array ? 'bytes' : value instanceof Map ? 'a Map' : Array.isArray(value) ? 'an array' : value instanceof GobInterface ? `an interface value (${value.name})` : typeof value;
  return new LegacyProtocolError(`gob: ${path} must be a ${describeGobType(type)}, got ${got}`);
}
