import { gob } from '../gob/gob-types.ts';

/** net/rpc's request header: `struct { ServiceMethod string; Seq uint64 }`. */
export const rpcRequestType = gob.struct('Request', [
  ['ServiceMethod', gob.string],
  ['Seq', gob.uint],
]);

/** net/rpc's response header: `struct { ServiceMethod string; Seq uint64; Error string }`; an empty Error means success. */
export const rpcResponseType = gob.struct('Response', [
  ['ServiceMethod', gob.string],
  ['Seq', gob.uint],
  ['Error', gob.string],
]);

/** `struct{}`: the args of most driver RPCs and the reply body of every failed call. */
export const emptyStructType = gob.struct('', []);

/** The path net/rpc serves on (`rpc.DefaultRPCPath`). */
export const rpcPath = '/_goRPC_';

/** The status line a Go net/rpc server answers CONNECT with; the client checks it exactly. */
export const rpcConnectedStatus = '200 Connected to Go RPC';
