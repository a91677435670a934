/** One cloud resource a driver made or adopted for a machine. */
export interface JournalEntry {
  /** Driver-defined kind, e.g. `droplet`, `ssh-key`, `security-group`, `spot-request`. */
  readonly kind: string;
  /** The provider's id of the resource. */
  readonly id: string;
  /** Region or zone, when the id is not global. */
  readonly region?: string;
  /** True when the user supplied it or it existed before: cleanup never deletes it. */
  readonly preExisting: boolean;
  /** ISO time it was recorded. */
  readonly recordedAt: string;
  /** Extra data cleanup needs (e.g. the name of a key pair). */
  readonly meta?: Readonly<Record<string, string>>;
  /**
   * `intended`: written before the create call, so a lost reply (a killed process, a dropped
   * connection) still leaves a trace; `id` is then the intent's token and `meta` holds what finds
   * the resource again without its id. `made` (or absent, for older records): `id` is the provider's.
   */
  readonly state?: 'intended' | 'made';
  /** Another machine may use it too (adopted as shared): remove deletes it only when nothing else uses it. */
  readonly shared?: boolean;
}

/** What a driver passes to {@link ResourceJournal.record}. */
export type NewJournalEntry = Omit<JournalEntry, 'recordedAt' | 'preExisting'> & { preExisting?: boolean };

/**
 * The record of every resource a machine's driver made, kept by the host and persisted at once,
 * so that a create killed mid-way can be finished off by `remove`.
 */
export interface ResourceJournal {
  /** Records a resource; resolves once the record is durable. Recording the same kind+id again replaces it. */
  record(entry: NewJournalEntry): Promise<void>;
  /** Drops a resource that is gone; resolves once durable. Unknown entries are ignored. */
  forget(kind: string, id: string): Promise<void>;
  /** The resources still alive, in the order they were recorded. */
  entries(): readonly JournalEntry[];
}

/** Finds the newest entry of a kind that has a provider id (intents not yet resolved are skipped). */
export function findEntry(journal: ResourceJournal, kind: string): JournalEntry | undefined {
  return journal.entries().findLast((entry) => entry.kind === kind && entry.state !== 'intended');
}

/**
 * A journal kept in memory that calls `persist` with the whole list after each change.
 * Hosts pass a `persist` that writes to disk; tests and library users may leave it out.
 */
export class MemoryJournal implements ResourceJournal {
  #entries: JournalEntry[];
  readonly #persist: (entries: readonly JournalEntry[]) => Promise<void>;

  constructor(initial: readonly JournalEntry[] = [], persist: (entries: readonly JournalEntry[]) => Promise<void> = async () => {}) {
    this.#entries = [...initial];
    this.#persist = persist;
  }

  async record(entry: NewJournalEntry): Promise<void> {
    const full: JournalEntry = { ...entry, preExisting: entry.preExisting ?? false, recordedAt: new Date().toISOString() };
    this.#entries = [...this.#entries.filter((e) => !(e.kind === entry.kind && e.id === entry.id)), full];
    await this.#persist(this.#entries);
  }

  async forget(kind: string, id: string): Promise<void> {
    const next = this.#entries.filter((e) => !(e.kind === kind && e.id === id));
    if (next.length === this.#entries.length) return;
    this.#entries = next;
    await this.#persist(this.#entries);
  }

  entries(): readonly JournalEntry[] {
    return this.#entries;
  }
}
