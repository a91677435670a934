import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';
import { LegacyRemoteError } from '../errors/legacy-remote-error.ts';
import { goldenStreams, streamBytes } from '../fixtures/golden-streams.ts';
import { gob } from '../gob/gob-types.ts';
import { RpcClient } from './rpc-client.ts';
import { type RpcService, RpcServer } from './rpc-server.ts';
import { emptyStructType } from './rpc-types.ts';

const servers: RpcServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(services: Record<string, RpcService>): Promise<string> {
  const server = new RpcServer(new Map(Object.entries(services)));
  servers.push(server);
  return server.listen();
}

/** Sends raw bytes and collects what comes back until `until` bytes arrived or the socket closes. */
function raw(address: string, bytes: Uint8Array | string, until: number): Promise<Buffer> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) });
    const chunks: Buffer[] = [];
    let length = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= until) {
        socket.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

const version: RpcService = { GetVersion: () => ({ type: gob.int, value: 1 }) };

describe('net/rpc over gob', () => {
  it('answers the captured Go client (A.2) with the bytes the Go server sent, byte for byte', async () => {
    const address = await serve({ RPCServerDriver: version });
    const client = goldenStreams.find((stream) => stream.name === 'A.2 host GetVersion calls')!;
    const expected = streamBytes(goldenStreams.find((stream) => stream.name === 'A.2 plugin GetVersion reply')!);
    const handshake = 'HTTP/1.0 200 Connected to Go RPC\n\n';
    // Only the first call (four messages) so the reply is exactly the captured one.
    const firstCall = streamBytes({ ...client, messages: client.messages.slice(0, 4) });
    const answer = await raw(address, Buffer.concat([Buffer.from('CONNECT /_goRPC_ HTTP/1.0\n\n'), firstCall]), handshake.length + expected.length);
    expect(answer.subarray(0, handshake.length).toString()).toBe(handshake);
    expect(answer.subarray(handshake.length).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  });

  it('refuses anything but CONNECT /_goRPC_ like Go does', async () => {
    const address = await serve({ RPCServerDriver: version });
    expect((await raw(address, 'GET /_goRPC_ HTTP/1.0\r\n\r\n', 1 << 20)).toString()).toMatch(/^HTTP\/1\.0 405 Method Not Allowed\r\n[\s\S]*405 must CONNECT\n$/);
    expect((await raw(address, 'CONNECT /other HTTP/1.0\n\n', 1 << 20)).toString()).toMatch(/^HTTP\/1\.0 404/);
  });

  it('matches replies by Seq: a slow call does not hold up a fast one', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const address = await serve({
      RPCServerDriver: {
        Create: async () => {
          await released;
          return { type: emptyStructType, value: {} };
        },
        GetURL: () => ({ type: gob.string, value: 'tcp://1.2.3.4:2376' }),
      },
    });
    const client = await RpcClient.dial(address);
    const order: string[] = [];
    const create = client.call('RPCServerDriver.Create', emptyStructType, {}).then(() => order.push('create'));
    const url = await client.call('RPCServerDriver.GetURL', emptyStructType, {});
    order.push('url');
    expect(url.value).toBe('tcp://1.2.3.4:2376');
    release();
    await create;
    expect(order).toEqual(['url', 'create']);
    client.close();
  });

  it('turns a failing method into a non-empty error text, and names unknown methods and services like Go', async () => {
    const address = await serve({
      RPCServerDriver: {
        Create: () => {
          throw new Error('boom');
        },
        Remove: () => {
          throw new Error('');
        },
      },
    });
    const client = await RpcClient.dial(address);
    const failure = (method: string) => client.call(method, emptyStructType, {}).then(
      () => undefined,
      (error: unknown) => error as LegacyRemoteError,
    );
    const create = await failure('RPCServerDriver.Create');
    expect(create).toBeInstanceOf(LegacyRemoteError);
    expect(create?.remoteMessage).toBe('boom');
    expect((await failure('RPCServerDriver.Remove'))?.remoteMessage).toBe('rpc: the method failed without a message');
    expect((await failure('RPCServerDriver.GetIPv6'))?.remoteMessage).toBe("rpc: can't find method RPCServerDriver.GetIPv6");
    expect((await failure('Nope.GetIPv6'))?.remoteMessage).toBe("rpc: can't find service Nope.GetIPv6");
    // The connection survives errors.
    expect((await failure('RPCServerDriver.Create'))?.remoteMessage).toBe('boom');
    client.close();
  });

  it('a server that is not net/rpc, or goes away, is a LegacyProtocolError for every pending call', async () => {
    const address = await serve({ RPCServerDriver: { Hang: () => new Promise(() => {}) } });
    const client = await RpcClient.dial(address);
    const pending = client.call('RPCServerDriver.Hang', emptyStructType, {});
    await Promise.all(servers.splice(0).map((server) => server.close()));
    await expect(pending).rejects.toBeInstanceOf(LegacyProtocolError);
    await expect(client.call('RPCServerDriver.Hang', emptyStructType, {})).rejects.toBeInstanceOf(LegacyProtocolError);
    await expect(RpcClient.dial('127.0.0.1:1', { timeout: 2000 })).rejects.toBeInstanceOf(LegacyProtocolError);
  });
});
