import { connect, type Socket } from 'node:net';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { LegacyRemoteError } from '../errors/legacy-remote-error.ts';
import { type GobDecoded, GobDecoder, type GobDecoderLimits } from '../gob/gob-decoder.ts';
import { GobEncoder } from '../gob/gob-encoder.ts';
import type { GobStructValue, GobType, GobValue } from '../gob/gob-types.ts';
import { HttpHeadReader } from './http-head.ts';
import { rpcConnectedStatus, rpcPath, rpcRequestType } from './rpc-types.ts';

/** Options of {@link RpcClient.dial}. */
export interface RpcDialOptions {
  /** How long the TCP connect and the CONNECT answer may take, ms (default 10000). */
  readonly timeout?: number;
  readonly limits?: GobDecoderLimits;
}

interface PendingCall {
  readonly serviceMethod: string;
  resolve(reply: GobDecoded): void;
  reject(error: Error): void;
}

/**
 * A Go net/rpc client over gob (`rpc.DialHTTP`): the CONNECT handshake, then calls matched to
 * replies by sequence number (a Go server answers out of order). Errors are typed: the server's
 * error text is a {@link LegacyRemoteError}, anything on the wire a {@link LegacyProtocolError}.
 */
export class RpcClient {
  readonly #socket: Socket;
  readonly #encoder = new GobEncoder();
  readonly #decoder: GobDecoder;
  readonly #pending = new Map<number, PendingCall>();
  #nextSeq = 0;
  #header: GobStructValue | undefined;
  #failure: Error | undefined;

  private constructor(socket: Socket, limits: GobDecoderLimits | undefined) {
    this.#socket = socket;
    this.#decoder = new GobDecoder(limits);
  }

  /** Connects to `host:port` and does the CONNECT handshake. */
  static dial(address: string, options: RpcDialOptions = {}): Promise<RpcClient> {
    const match = /^(.*):(\d+)$/.exec(address.trim());
    if (match === null) return Promise.reject(new LegacyProtocolError(`net/rpc: "${address}" is not a host:port address`));
    const host = match[1]!.replace(/^\[(.*)\]$/, '$1');
    const port = Number.parseInt(match[2]!, 10);
    const timeout = options.timeout ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const head = new HttpHeadReader();
      const timer = setTimeout(() => fail(new LegacyProtocolError(`net/rpc: no answer from ${address} within ${timeout} ms`)), timeout);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(LegacyProtocolError.isInstance(error) ? error : new LegacyProtocolError(`net/rpc: cannot connect to ${address}: ${error.message}`, { cause: error }));
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new LegacyProtocolError(`net/rpc: ${address} closed the connection during the handshake`)));
      socket.once('connect', () => socket.write(`CONNECT ${rpcPath} HTTP/1.0\n\n`));
      const onData = (chunk: Buffer) => {
        let parsed: ReturnType<HttpHeadReader['push']>;
        try {
          parsed = head.push(chunk);
        } catch (error) {
          fail(error as Error);
          return;
        }
        if (parsed === undefined) return;
        const status = /^HTTP\/1\.[01] (.*)$/.exec(parsed.lines[0] ?? '')?.[1];
        if (status !== rpcConnectedStatus) {
          fail(new LegacyProtocolError(`net/rpc: ${address} answered CONNECT with "${parsed.lines[0] ?? ''}", not "${rpcConnectedStatus}"`));
          return;
        }
        clearTimeout(timer);
        socket.off('data', onData);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        const client = new RpcClient(socket, options.limits);
        client.#attach(parsed.rest);
        resolve(client);
      };
      socket.on('data', onData);
    });
  }

  #attach(rest: Buffer): void {
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    this.#socket.on('error', (error) => this.#fail(new LegacyProtocolError(`net/rpc: connection failed: ${error.message}`, { cause: error })));
    this.#socket.on('close', () => this.#fail(new LegacyProtocolError('net/rpc: the server closed the connection')));
    if (rest.length > 0) this.#receive(rest);
  }

  #receive(chunk: Uint8Array): void {
    let values: GobDecoded[];
    try {
      values = this.#decoder.push(chunk);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    for (const value of values) {
      if (this.#header === undefined) {
        const header = value.value;
        if (typeof header !== 'object' || header === null || Array.isArray(header) || header instanceof Map || header instanceof Uint8Array || !('Seq' in header)) {
          this.#fail(new LegacyProtocolError('net/rpc: the server sent something that is not a response header'));
          return;
        }
        this.#header = header as GobStructValue;
        continue;
      }
      const header = this.#header;
      this.#header = undefined;
      const seq = Number(header.Seq);
      const call = this.#pending.get(seq);
      if (call === undefined) continue; // Go discards a body nobody waits for
      this.#pending.delete(seq);
      const error = typeof header.Error === 'string' ? header.Error : '';
      if (error !== '') call.reject(new LegacyRemoteError(call.serviceMethod, error));
      else call.resolve(value);
    }
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#socket.destroy();
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
  }

  /** True until the connection fails or is closed. */
  get open(): boolean {
    return this.#failure === undefined;
  }

  /** Calls `Service.Method` with `args` of `argsType`; resolves with the decoded reply. */
  call(serviceMethod: string, argsType: GobType, args: GobValue): Promise<GobDecoded> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const seq = this.#nextSeq++;
    let bytes: Buffer;
    try {
      bytes = Buffer.concat([this.#encoder.encode(rpcRequestType, { ServiceMethod: serviceMethod, Seq: seq }), this.#encoder.encode(argsType, args)]);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { serviceMethod, resolve, reject });
      this.#socket.write(bytes);
    });
  }

  /** Closes the connection; pending calls reject. */
  close(): void {
    this.#fail(new LegacyProtocolError('net/rpc: the client closed the connection'));
  }
}
