/** A Go `encoding/gob` codec for the subset docker-machine's driver RPCs use. */
export { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
export { type GobDecoded, GobDecoder, type GobDecoderLimits } from './gob-decoder.ts';
export { GobEncoder } from './gob-encoder.ts';
export {
  builtinTypeIds,
  containsInterface,
  describeGobType,
  type GobArrayType,
  type GobBasicType,
  type GobField,
  GobInterface,
  type GobMapType,
  type GobOpaqueType,
  type GobSliceType,
  type GobStructType,
  type GobStructValue,
  type GobType,
  type GobValue,
  gob,
  isBasicType,
} from './gob-types.ts';
