import { LegacyProtocolError } from '../errors/legacy-protocol-error.ts';

const maxHeadBytes = 8192;

/**
 * Collects an HTTP/1.0 head (up to the blank line, `\n\n` or `\r\n\r\n`) from socket chunks.
 * Returns the head's lines and the bytes after it once complete, undefined until then.
 */
export class HttpHeadReader {
  #buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): { lines: string[]; rest: Buffer } | undefined {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const text = this.#buffer.toString('latin1');
    const match = /\r?\n\r?\n/.exec(text);
    if (match === null) {
      if (this.#buffer.length > maxHeadBytes) throw new LegacyProtocolError(`net/rpc: the HTTP head is longer than ${maxHeadBytes} bytes`);
      return undefined;
    }
    const lines = text.slice(0, match.index).split(/\r?\n/);
    return { lines, rest: this.#buffer.subarray(match.index + match[0].length) };
  }
}
