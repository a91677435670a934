import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');
const twoTo53 = 2 ** 53;

/** A growable byte buffer with gob's primitive encodings. */
export class ByteWriter {
  #bytes = new Uint8Array(64);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  reset(): void {
    this.#length = 0;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  writeByte(byte: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = byte;
  }

  write(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** An unsigned int: one byte below 128, else the negated byte count then big-endian bytes. */
  writeUint(value: number | bigint): void {
    if (typeof value === 'number') {
      if (!Number.isInteger(value) || value < 0) throw new LegacyProtocolError(`gob: ${value} is not an unsigned integer`);
      if (value < 0x80) {
        this.writeByte(value);
        return;
      }
      if (value < twoTo53) {
        const digits: number[] = [];
        let rest = value;
        while (rest > 0) {
          digits.unshift(rest % 256);
          rest = Math.floor(rest / 256);
        }
        this.writeByte(256 - digits.length);
        for (const digit of digits) this.writeByte(digit);
        return;
      }
      value = BigInt(value);
    }
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new LegacyProtocolError(`gob: ${value} does not fit in a uint64`);
    if (value < 0x80n) {
      this.writeByte(Number(value));
      return;
    }
    const digits: number[] = [];
    let rest = value;
    while (rest > 0n) {
      digits.unshift(Number(rest & 0xffn));
      rest >>= 8n;
    }
    this.writeByte(256 - digits.length);
    for (const digit of digits) this.writeByte(digit);
  }

  /** A signed int, zig-zag encoded: `i<0 ? (^i<<1)|1 : i<<1`. */
  writeInt(value: number | bigint): void {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) throw new LegacyProtocolError(`gob: ${value} is not an integer`);
      if (Math.abs(value) < 2 ** 52) {
        this.writeUint(value < 0 ? -2 * value - 1 : 2 * value);
        return;
      }
      value = BigInt(value);
    }
    if (value < -(2n ** 63n) || value >= 2n ** 63n) throw new LegacyProtocolError(`gob: ${value} does not fit in an int64`);
    this.writeUint(value < 0n ? ((-value - 1n) << 1n) | 1n : value << 1n);
  }

  /** A float64: its IEEE bits byte-reversed, as a uint. */
  writeFloat(value: number): void {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value, true); // little-endian bits = the byte-reversed big-endian bits
    this.writeUint(view.getBigUint64(0, false));
  }

  writeString(value: string): void {
    const bytes = utf8Encoder.encode(value);
    this.writeUint(bytes.length);
    this.write(bytes);
  }

  writeBytes(value: Uint8Array): void {
    this.writeUint(value.length);
    this.write(value);
  }
}

/** Reads gob primitives from one message; reading past its end is a typed error. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #position = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get remaining(): number {
    return this.#bytes.length - this.#position;
  }

  #byte(): number {
    if (this.#position >= this.#bytes.length) throw new LegacyProtocolError('gob: value runs past the end of its message');
    return this.#bytes[this.#position++]!;
  }

  /** A uint as a number, or a bigint at 2^53 and above. */
  readUint(): number | bigint {
    const first = this.#byte();
    if (first < 0x80) return first;
    const count = 256 - first;
    if (count > 8) throw new LegacyProtocolError(`gob: bad uint prefix 0x${first.toString(16)} (at most 8 bytes may follow)`);
    if (count > this.remaining) throw new LegacyProtocolError(`gob: uint of ${count} bytes runs past the end of its message`);
    if (count <= 6) {
      let value = 0;
      for (let i = 0; i < count; i++) value = value * 256 + this.#byte();
      return value;
    }
    let value = 0n;
    for (let i = 0; i < count; i++) value = (value << 8n) | BigInt(this.#byte());
    return value < BigInt(twoTo53) ? Number(value) : value;
  }

  /** A uint that must be a count, length or field delta: a safe number. */
  readCount(what: string): number {
    const value = this.readUint();
    if (typeof value !== 'number') throw new LegacyProtocolError(`gob: ${what} ${value} is too large`);
    return value;
  }

  readInt(): number | bigint {
    const value = this.readUint();
    if (typeof value === 'number') return value % 2 === 1 ? -(value - 1) / 2 - 1 : value / 2;
    const half = value >> 1n;
    const result = (value & 1n) === 1n ? -half - 1n : half;
    return result >= -(2n ** 53n) && result < 2n ** 53n ? Number(result) : result;
  }

  /** A type id (an int32 on the wire). */
  readTypeId(): number {
    const value = this.readInt();
    if (typeof value !== 'number' || value > 0x7fff_ffff || value < -0x7fff_ffff) throw new LegacyProtocolError(`gob: type id ${value} is out of range`);
    return value;
  }

  readFloat(): number {
    const bits = this.readUint();
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, BigInt(bits), true);
    return view.getFloat64(0, false);
  }

  readBytes(what: string): Uint8Array {
    const length = this.readCount(`${what} length`);
    if (length > this.remaining) throw new LegacyProtocolError(`gob: ${what} of ${length} bytes runs past the end of its message (${this.remaining} left)`);
    const bytes = this.#bytes.slice(this.#position, this.#position + length);
    this.#position += length;
    return bytes;
  }

  readString(what: string): string {
    return utf8Decoder.decode(this.readBytes(what));
  }
}
