import { CleanupError } from './errors/cleanup-error.ts';
import { MachineError } from './errors/machine-error.ts';
import { NotFoundError } from './errors/not-found-error.ts';
import type { JournalEntry, ResourceJournal } from './journal.ts';

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
 */
export async function cleanupJournal(journal: ResourceJournal, options: CleanupOptions): Promise<void> {
  const remaining: JournalEntry[] = [];
  const errors: unknown[] = [];
  for (const entry of [...journal.entries()].reverse()) {
    if (entry.preExisting) {
      await journal.forget(entry.kind, entry.id);
      continue;
    }
    const deleter = options.deleters[entry.kind];
    if (deleter === undefined) {
      remaining.push(entry);
      errors.push(new Error(`no deleter for resource kind "${entry.kind}"`));
      continue;
    }
    try {
      await deleter(entry, options.signal);
    } catch (error) {
      if (!(error instanceof NotFoundError || (MachineError.isInstance(error) && error.code === 'NOT_FOUND'))) {
        remaining.push(entry);
        errors.push(error);
        continue;
      }
    }
    await journal.forget(entry.kind, entry.id);
    options.onDeleted?.(entry);
  }
  if (remaining.length > 0) {
    throw new CleanupError(remaining.reverse(), errors, {
      ...(options.machine === undefined ? {} : { machine: options.machine }),
      ...(options.operation === undefined ? {} : { operation: options.operation }),
    });
  }
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
