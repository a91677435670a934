/**
 * @machine/legacy-plugin: docker-machine driver plugins both ways, over Go's gob + net/rpc.
 * The codec is also at `./gob`; serving a driver as a plugin binary is at `./serve`.
 */
export { LegacyProtocolError } from './errors/legacy-protocol-error.ts';
export * from './gob/index.ts';
