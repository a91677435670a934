import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { type GobDecoded, GobDecoder, type GobDecoderLimits } from '../gob/gob-decoder.ts';
import { GobEncoder } from '../gob/gob-encoder.ts';
import type { GobStructValue, GobType, GobValue } from '../gob/gob-types.ts';
import { HttpHeadReader } from './http-head.ts';
import { emptyStructType, rpcConnectedStatus, rpcPath, rpcResponseType } from './rpc-types.ts';

/** A method's reply. `afterReply` runs once the reply is written to the socket (Close exits there). */
export interface RpcReply {
  readonly type: GobType;
  readonly value: GobValue;
  readonly afterReply?: () => void;
}

/** One method: decoded args in, a reply out; a throw becomes the call's error text. */
export type RpcMethod = (args: GobDecoded) => Promise<RpcReply> | RpcReply;

/** Methods by name, as one net/rpc service. */
export type RpcService = Readonly<Record<string, RpcMethod>>;

/**
 * A Go net/rpc server over gob, reached with `rpc.DialHTTP`: answers `CONNECT /_goRPC_` and
 * serves each call as soon as it arrives, replies in completion order (a Heartbeat is answered
 * while a Create runs). A method's error always reaches the client as a non-empty error text.
 */
export class RpcServer {
  readonly #services: ReadonlyMap<string, RpcService>;
  readonly #limits: GobDecoderLimits | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(services: ReadonlyMap<string, RpcService>, limits?: GobDecoderLimits) {
    this.#services = services;
    this.#limits = limits;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Listens on `127.0.0.1:0` (or the given address); resolves with `host:port`. */
  listen(host = '127.0.0.1', port = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        const address = this.#server.address() as AddressInfo;
        resolve(address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`);
      });
    });
  }

  /** Stops listening and drops every connection. */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const head = new HttpHeadReader();
    const onHead = (chunk: Buffer) => {
      let parsed: ReturnType<HttpHeadReader['push']>;
      try {
        parsed = head.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      if (parsed === undefined) return;
      socket.off('data', onHead);
      const [method, path] = (parsed.lines[0] ?? '').split(' ');
      if (method !== 'CONNECT') {
        socket.end('HTTP/1.0 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n405 must CONNECT\n');
        return;
      }
      if (path !== rpcPath) {
        socket.end('HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n404 page not found\n');
        return;
      }
      socket.write(`HTTP/1.0 ${rpcConnectedStatus}\n\n`);
      socket.setNoDelay(true);
      this.#serve(socket, parsed.rest);
    };
    socket.on('data', onHead);
  }

  #serve(socket: Socket, rest: Buffer): void {
    const decoder = new GobDecoder(this.#limits);
    const encoder = new GobEncoder();
    let header: GobStructValue | undefined;
    const reply = (serviceMethod: string, seq: GobValue, error: string, body: RpcReply) => {
      if (socket.destroyed) return;
      let bytes: Buffer;
      try {
        bytes = Buffer.concat([encoder.encode(rpcResponseType, { ServiceMethod: serviceMethod, Seq: seq, Error: error }), encoder.encode(body.type, body.value)]);
      } catch (encodeError) {
        // The reply did not fit its type: send the problem instead, so the client is not left waiting.
        const message = `rpc: ${serviceMethod} reply could not be encoded: ${(encodeError as Error).message}`;
        bytes = Buffer.concat([encoder.encode(rpcResponseType, { ServiceMethod: serviceMethod, Seq: seq, Error: message }), encoder.encode(emptyStructType, {})]);
      }
      socket.write(bytes, () => body.afterReply?.());
    };
    const dispatch = (request: GobStructValue, args: GobDecoded) => {
      const serviceMethod = typeof request.ServiceMethod === 'string' ? request.ServiceMethod : '';
      const seq = request.Seq ?? 0;
      const failure = (message: string) => reply(serviceMethod, seq, message === '' ? 'rpc: the method failed without a message' : message, { type: emptyStructType, value: {} });
      const dot = serviceMethod.lastIndexOf('.');
      if (dot < 0) {
        failure(`rpc: service/method request ill-formed: ${serviceMethod}`);
        return;
      }
      const service = this.#services.get(serviceMethod.slice(0, dot));
      if (service === undefined) {
        failure(`rpc: can't find service ${serviceMethod}`);
        return;
      }
      const method = Object.hasOwn(service, serviceMethod.slice(dot + 1)) ? service[serviceMethod.slice(dot + 1)] : undefined;
      if (method === undefined) {
        failure(`rpc: can't find method ${serviceMethod}`);
        return;
      }
      Promise.resolve()
        .then(() => method(args))
        .then(
          (result) => reply(serviceMethod, seq, '', result),
          (error: unknown) => failure(error instanceof Error ? error.message : String(error)),
        );
    };
    const receive = (chunk: Uint8Array) => {
      let values: GobDecoded[];
      try {
        values = decoder.push(chunk);
      } catch {
        socket.destroy(); // Go's server also drops a connection whose stream it cannot read
        return;
      }
      for (const value of values) {
        if (header === undefined) {
          const candidate = value.value;
          if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate) || candidate instanceof Map || candidate instanceof Uint8Array || !('ServiceMethod' in candidate)) {
            socket.destroy();
            return;
          }
          header = candidate as GobStructValue;
          continue;
        }
        const request = header;
        header = undefined;
        dispatch(request, value);
      }
    };
    socket.on('data', receive);
    socket.on('end', () => socket.end());
    if (rest.length > 0) receive(rest);
  }
}
