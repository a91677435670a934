import { MachineError, type MachineErrorOptions } from '@machine/driver-core';

/** A call the plugin answered with an error (net/rpc's non-empty `Response.Error`). */
export class LegacyRemoteError extends MachineError {
  override readonly code = 'LEGACY_REMOTE';
  /** `RPCServerDriver.Create`. */
  readonly serviceMethod: string;
  /** The plugin's error text, as sent. */
  readonly remoteMessage: string;
  constructor(serviceMethod: string, remoteMessage: string, options: MachineErrorOptions = {}) {
    super(remoteMessage, options);
    this.serviceMethod = serviceMethod;
    this.remoteMessage = remoteMessage;
  }
}
