import { MachineError } from './errors/machine-error.ts';
import { NotFoundError } from './errors/not-found-error.ts';
import type { JournalEntry, ResourceJournal } from './journal.ts';
import { type KindOperations, removeEntries } from './resource-removal.ts';

/** Deletes one resource of a kind; may throw NotFoundError when it is already gone (that counts as done). */
export type ResourceDeleter = (entry: JournalEntry, signal?: AbortSignal) => Promise<void>;

/** Options for {@link cleanupJournal}. */
export interface CleanupOptions {
  /** One deleter per resource kind the driver records. */
  deleters: Readonly<Record<string, ResourceDeleter>>;
  signal?: AbortSignal;
  machine?: string;
  operation?: string;
  /** Called for each resource deleted. */
  onDeleted?: (entry: JournalEntry) => void;
}

/**
 * Deletes every journaled resource that create made, newest first, forgetting each as it goes.
 * Pre-existing resources are only forgotten, never deleted. A resource already gone counts as
 * deleted. Keeps going past failures and throws one CleanupError listing what is left.
 *
 * The deleter-table form of {@link removeResources} (same engine), for drivers not yet on
 * resource kinds: an intent in the journal is reported as left, since a deleter cannot look it up.
 */
export async function cleanupJournal(journal: ResourceJournal, options: CleanupOptions): Promise<void> {
  const operations = new Map<string, KindOperations>(
    Object.entries(options.deleters).map(([kind, deleter]) => [
      kind,
      {
        kind,
        label: kind,
        gone: (error) => error instanceof NotFoundError || (MachineError.isInstance(error) && error.code === 'NOT_FOUND'),
        inUse: () => false,
        delete: (ref) => deleter(ref as JournalEntry, options.signal),
      },
    ]),
  );
  await removeEntries(journal, (kind) => operations.get(kind), {
    machine: options.machine ?? '',
    operation: options.operation ?? 'remove',
    signal: options.signal ?? new AbortController().signal,
    managedBy: 'machine',
    ...(options.onDeleted === undefined ? {} : { onRemoved: options.onDeleted }),
  });
}

/**
 * Runs a create body; if it throws (or is aborted), removes what the journal lists, newest first,
 * then rethrows the original error. Cleanup runs without the caller's signal so an abort still
 * cleans up. A cleanup failure is attached to the original error as `cleanupError`.
 */
export async function createWithCleanup(
  journal: ResourceJournal,
  body: () => Promise<void>,
  cleanup: Omit<CleanupOptions, 'signal'>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    try {
      await cleanupJournal(journal, cleanup);
    } catch (cleanupError) {
      if (error instanceof Error) Object.assign(error, { cleanupError });
    }
    throw error;
  }
}
