import { randomBytes, randomUUID } from 'node:crypto';

/**
 * Identifier factory for one simulator: per-key numeric sequences (DigitalOcean droplet and key
 * ids), UUIDs (firewalls) and hex ids (EC2 `i-0123…`), plus request ids for error bodies.
 */
export class IdGenerator {
  readonly #sequences = new Map<string, number>();

  /** Next number of the sequence `key`, starting at `start` (default 1). */
  next(key: string, start = 1): number {
    const value = this.#sequences.get(key) ?? start;
    this.#sequences.set(key, value + 1);
    return value;
  }

  /** A random RFC 4122 v4 UUID. */
  uuid(): string {
    return randomUUID();
  }

  /** `length` random lowercase hex characters. */
  hex(length: number): string {
    return randomBytes(Math.ceil(length / 2))
      .toString('hex')
      .slice(0, length);
  }

  /** A request id, as providers echo in error bodies and headers. */
  requestId(): string {
    return randomUUID();
  }
}
