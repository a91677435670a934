export { LegacyRemoteError } from '../errors/legacy-remote-error.ts';
export { RpcClient, type RpcDialOptions } from './rpc-client.ts';
export { type RpcMethod, type RpcReply, RpcServer, type RpcService } from './rpc-server.ts';
export { emptyStructType, rpcConnectedStatus, rpcPath, rpcRequestType, rpcResponseType } from './rpc-types.ts';
