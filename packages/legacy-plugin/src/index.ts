/**
 * @machine/legacy-plugin: docker-machine driver plugins both ways, over Go's gob + net/rpc.
 * Host side (this entry): `openLegacyPlugin(path)` turns a `docker-machine-driver-NAME` binary
 * into a driver-core descriptor. Plugin side: `./serve`. The codec alone: `./gob`.
 */
export { LegacyProtocolError } from './errors/legacy-protocol-error.ts';
export { LegacyRemoteError } from './errors/legacy-remote-error.ts';
export * from './host/index.ts';
export { legacyApiVersion, legacyServiceNames, type McnFlag } from './protocol/driver-rpc-types.ts';
export { RpcClient, type RpcDialOptions, RpcServer, type RpcMethod, type RpcReply, type RpcService } from './rpc/index.ts';
