/** One API call the simulator answered. */
export interface RequestLogEntry {
  readonly provider: string;
  /** Stable operation name, e.g. `droplets.create`; `unknown` when no route matched. */
  readonly operation: string;
  readonly method: string;
  /** Path and query string. */
  readonly path: string;
  readonly status: number;
  /** Wall time spent answering, injected latency included. */
  readonly durationMs: number;
  /** Retry attempt number the client announced (`Retry-Attempt` header), 0 for a first try. */
  readonly retryAttempt: number;
  readonly time: Date;
}

/**
 * Every API call the simulator answered, with per-operation counts, so tests and benchmarks can
 * assert how many calls an operation made (retries included).
 */
export class RequestLog {
  readonly #entries: RequestLogEntry[] = [];

  /** Appends one entry (called by the HTTP layer). */
  record(entry: RequestLogEntry): void {
    this.#entries.push(entry);
  }

  /** Entries so far, oldest first, optionally only one provider's. */
  entries(provider?: string): readonly RequestLogEntry[] {
    return provider === undefined ? [...this.#entries] : this.#entries.filter((entry) => entry.provider === provider);
  }

  /** Calls of `operation` so far (`provider` narrows when several providers share a name). */
  count(operation: string, provider?: string): number {
    let total = 0;
    for (const entry of this.#entries) {
      if (entry.operation === operation && (provider === undefined || entry.provider === provider)) total++;
    }
    return total;
  }

  /** Calls per operation name, e.g. `{ 'droplets.create': 1, 'droplets.get': 4 }`. */
  counts(provider?: string): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const entry of this.#entries) {
      if (provider !== undefined && entry.provider !== provider) continue;
      counts[entry.operation] = (counts[entry.operation] ?? 0) + 1;
    }
    return counts;
  }

  /** Total calls (optionally one provider's). */
  get total(): number {
    return this.#entries.length;
  }

  /** Forgets every entry (e.g. between phases of a benchmark). */
  clear(): void {
    this.#entries.length = 0;
  }
}
