import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import type { ByteReader, ByteWriter } from './gob-bytes.ts';

/**
 * A type definition as sent on the wire (Go's `wireType`), with type ids of the stream that
 * sent it. Field numbers: ArrayT 1, SliceT 2, StructT 3, MapT 4, GobEncoderT 5,
 * BinaryMarshalerT 6, TextMarshalerT 7.
 */
export type WireType =
  | { readonly kind: 'array'; readonly name: string; readonly id: number; readonly elem: number; readonly length: number }
  | { readonly kind: 'slice'; readonly name: string; readonly id: number; readonly elem: number }
  | { readonly kind: 'struct'; readonly name: string; readonly id: number; readonly fields: readonly { readonly name: string; readonly id: number }[] }
  | { readonly kind: 'map'; readonly name: string; readonly id: number; readonly key: number; readonly elem: number }
  | { readonly kind: 'opaque'; readonly name: string; readonly id: number; readonly encoding: 'gob' | 'binary' | 'text' };

const wireFieldOf = { array: 1, slice: 2, struct: 3, map: 4 } as const;
const opaqueFieldOf = { gob: 5, binary: 6, text: 7 } as const;

function writeCommon(out: ByteWriter, name: string, id: number): void {
  if (name !== '') {
    out.writeUint(1);
    out.writeString(name);
    out.writeUint(1);
  } else out.writeUint(2);
  out.writeInt(id);
  out.writeUint(0);
}

/** Writes a wireType value exactly as Go's encoder does (zero fields omitted). */
export function writeWireType(out: ByteWriter, wire: WireType): void {
  out.writeUint(wire.kind === 'opaque' ? opaqueFieldOf[wire.encoding] : wireFieldOf[wire.kind]);
  out.writeUint(1); // CommonType
  writeCommon(out, wire.name, wire.id);
  switch (wire.kind) {
    case 'array':
      out.writeUint(1);
      out.writeInt(wire.elem);
      if (wire.length !== 0) {
        out.writeUint(1);
        out.writeInt(wire.length);
      }
      break;
    case 'slice':
      out.writeUint(1);
      out.writeInt(wire.elem);
      break;
    case 'struct':
      if (wire.fields.length > 0) {
        out.writeUint(1);
        out.writeUint(wire.fields.length);
        for (const field of wire.fields) {
          let delta = 1;
          if (field.name !== '') {
            out.writeUint(1);
            out.writeString(field.name);
          } else delta = 2;
          if (field.id !== 0) {
            out.writeUint(delta);
            out.writeInt(field.id);
          }
          out.writeUint(0);
        }
      }
      break;
    case 'map':
      out.writeUint(1);
      out.writeInt(wire.key);
      out.writeUint(1);
      out.writeInt(wire.elem);
      break;
    case 'opaque':
      break;
  }
  out.writeUint(0); // end of the inner type
  out.writeUint(0); // end of wireType
}

/**
 * Reads a struct's fields the way Go does: (delta, value)* until a zero delta or the end of the
 * message; `readField` reads the value of field number `n` (0-based) or throws.
 */
function readStruct(input: ByteReader, what: string, fieldCount: number, readField: (field: number) => void): void {
  let field = -1;
  while (input.remaining > 0) {
    const delta = input.readCount(`${what} field delta`);
    if (delta === 0) return;
    if (field + delta >= fieldCount) throw new LegacyProtocolError(`gob: bad type definition: ${what} has no field ${field + delta}`);
    field += delta;
    readField(field);
  }
}

function readCommon(input: ByteReader): { name: string; id: number } {
  const common = { name: '', id: 0 };
  readStruct(input, 'CommonType', 2, (field) => {
    if (field === 0) common.name = input.readString('type name');
    else common.id = input.readTypeId();
  });
  return common;
}

/** Reads one wireType value; a definition with no type or two types is an error. */
export function readWireType(input: ByteReader): WireType {
  const found: WireType[] = [];
  readStruct(input, 'wireType', 7, (field) => {
    switch (field) {
      case 0: {
        let common = { name: '', id: 0 };
        let elem = 0;
        let length = 0;
        readStruct(input, 'arrayType', 3, (inner) => {
          if (inner === 0) common = readCommon(input);
          else if (inner === 1) elem = input.readTypeId();
          else {
            const value = input.readInt();
            if (typeof value !== 'number' || value < 0) throw new LegacyProtocolError(`gob: bad array length ${value}`);
            length = value;
          }
        });
        found.push({ kind: 'array', ...common, elem, length });
        return;
      }
      case 1: {
        let common = { name: '', id: 0 };
        let elem = 0;
        readStruct(input, 'sliceType', 2, (inner) => {
          if (inner === 0) common = readCommon(input);
          else elem = input.readTypeId();
        });
        found.push({ kind: 'slice', ...common, elem });
        return;
      }
      case 2: {
        let common = { name: '', id: 0 };
        const fields: { name: string; id: number }[] = [];
        readStruct(input, 'structType', 2, (inner) => {
          if (inner === 0) {
            common = readCommon(input);
            return;
          }
          const count = input.readCount('field count');
          // Each field takes at least one byte (its terminator): a larger count is a lie.
          if (count > input.remaining) throw new LegacyProtocolError(`gob: bad type definition: ${count} fields in ${input.remaining} bytes`);
          for (let i = 0; i < count; i++) {
            const fieldType = { name: '', id: 0 };
            readStruct(input, 'fieldType', 2, (part) => {
              if (part === 0) fieldType.name = input.readString('field name');
              else fieldType.id = input.readTypeId();
            });
            fields.push(fieldType);
          }
        });
        found.push({ kind: 'struct', ...common, fields });
        return;
      }
      case 3: {
        let common = { name: '', id: 0 };
        let key = 0;
        let elem = 0;
        readStruct(input, 'mapType', 3, (inner) => {
          if (inner === 0) common = readCommon(input);
          else if (inner === 1) key = input.readTypeId();
          else elem = input.readTypeId();
        });
        found.push({ kind: 'map', ...common, key, elem });
        return;
      }
      default: {
        let common = { name: '', id: 0 };
        readStruct(input, 'gobEncoderType', 1, () => {
          common = readCommon(input);
        });
        const encoding = field === 4 ? 'gob' : field === 5 ? 'binary' : 'text';
        found.push({ kind: 'opaque', ...common, encoding });
      }
    }
  });
  if (found.length !== 1) throw new LegacyProtocolError(`gob: bad type definition: it defines ${found.length} types, not one`);
  return found[0]!;
}
