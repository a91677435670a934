import { MachineError, type MachineErrorOptions } from '@machine/driver-core';

/**
 * A docker-machine plugin spoke something this package cannot accept: a malformed or hostile gob
 * stream, a failed net/rpc handshake, a plugin binary that did not start or answered out of
 * protocol. Codec and RPC errors are all of this class, never a hang or an untyped throw.
 */
export class LegacyProtocolError extends MachineError {
  override readonly code = 'LEGACY_PROTOCOL';
  constructor(detail: string, options: MachineErrorOptions = {}) {
    super(detail, options);
  }
}
