/**
 * The gob types this package encodes and decodes (the subset docker-machine's RPCs use, plus
 * floats, arrays and opaque GobEncoder values so any stream a driver may send still decodes).
 * Types are plain objects; a struct's `fields` may refer back to the struct (recursive types).
 */
export type GobType = GobBasicType | GobStructType | GobSliceType | GobArrayType | GobMapType | GobOpaqueType;

/** A built-in type: encoded without a type definition. */
export interface GobBasicType {
  readonly kind: 'bool' | 'int' | 'uint' | 'float' | 'bytes' | 'string' | 'interface';
}

/** One struct field; its position is its gob field number. */
export interface GobField {
  readonly name: string;
  readonly type: GobType;
}

/** A struct. `name` is informational on the wire (Go sends `rt.Name()`, empty for `struct{}`). */
export interface GobStructType {
  readonly kind: 'struct';
  readonly name: string;
  fields: readonly GobField[];
}

/** A slice (not `[]byte`, which is the basic `bytes`). */
export interface GobSliceType {
  readonly kind: 'slice';
  readonly name: string;
  elem: GobType;
}

/** A fixed-length array. */
export interface GobArrayType {
  readonly kind: 'array';
  readonly name: string;
  elem: GobType;
  readonly length: number;
}

/** A map. */
export interface GobMapType {
  readonly kind: 'map';
  readonly name: string;
  key: GobType;
  elem: GobType;
}

/** A type with its own GobEncoder / BinaryMarshaler / TextMarshaler: its value is opaque bytes. */
export interface GobOpaqueType {
  readonly kind: 'opaque';
  readonly name: string;
  readonly encoding: 'gob' | 'binary' | 'text';
}

/**
 * A non-nil interface value: the concrete type's registered name (`*mcnflag.StringFlag`,
 * `string`, `[]string`), the concrete type and its value. A nil interface is `null`.
 */
export class GobInterface {
  readonly name: string;
  readonly type: GobType;
  readonly value: GobValue;
  constructor(name: string, type: GobType, value: GobValue) {
    this.name = name;
    this.type = type;
    this.value = value;
  }
}

/** A struct value: field name to value. A missing field is its zero value; `null` is a nil pointer. */
export interface GobStructValue {
  [field: string]: GobValue | undefined;
}

/**
 * A decoded (or to-be-encoded) value. Ints and uints are numbers, or bigints beyond 2^53;
 * `[]byte` is a Uint8Array; slices and arrays are arrays; maps are `Map`s; `null` is a nil
 * interface, a nil map or a nil struct pointer.
 */
export type GobValue = boolean | number | bigint | string | Uint8Array | GobValue[] | Map<GobValue, GobValue> | GobStructValue | GobInterface | null;

/** Go's predefined type ids (encoding/gob type.go). User types start at {@link firstUserTypeId}. */
export const builtinTypeIds = { bool: 1, int: 2, uint: 3, float: 4, bytes: 5, string: 6, complex: 7, interface: 8 } as const;

/** The first id a stream allocates for its own types. */
export const firstUserTypeId = 65;

const basic = (kind: GobBasicType['kind']): GobBasicType => Object.freeze({ kind });

/** Builders for gob types. */
export const gob = {
  bool: basic('bool'),
  int: basic('int'),
  uint: basic('uint'),
  float: basic('float'),
  bytes: basic('bytes'),
  string: basic('string'),
  interface: basic('interface'),
  /** A struct with fields in gob field order. */
  struct(name: string, fields: readonly (readonly [string, GobType])[]): GobStructType {
    return { kind: 'struct', name, fields: fields.map(([fieldName, type]) => ({ name: fieldName, type })) };
  },
  /** A slice; `name` is what Go sends (empty at top level, `[]string` as a struct field). */
  slice(elem: GobType, name = ''): GobSliceType {
    return { kind: 'slice', name, elem };
  },
  array(elem: GobType, length: number, name = ''): GobArrayType {
    return { kind: 'array', name, elem, length };
  },
  map(key: GobType, elem: GobType, name = ''): GobMapType {
    return { kind: 'map', name, key, elem };
  },
} as const;

/** True for types sent without a type definition. */
export function isBasicType(type: GobType): type is GobBasicType {
  return type.kind !== 'struct' && type.kind !== 'slice' && type.kind !== 'array' && type.kind !== 'map' && type.kind !== 'opaque';
}

/** True when a value of `type` may hold an interface value (its data may then span messages). */
export function containsInterface(type: GobType, visiting = new Set<GobType>()): boolean {
  if (type.kind === 'interface') return true;
  if (visiting.has(type)) return false;
  visiting.add(type);
  switch (type.kind) {
    case 'struct':
      return type.fields.some((field) => containsInterface(field.type, visiting));
    case 'slice':
    case 'array':
      return containsInterface(type.elem, visiting);
    case 'map':
      return containsInterface(type.key, visiting) || containsInterface(type.elem, visiting);
    default:
      return false;
  }
}

/** A short description of a type for error messages. */
export function describeGobType(type: GobType): string {
  switch (type.kind) {
    case 'struct':
      return type.name === '' ? 'struct' : `struct ${type.name}`;
    case 'slice':
    case 'array':
    case 'map':
    case 'opaque':
      return type.name === '' ? type.kind : type.name;
    default:
      return type.kind;
  }
}
