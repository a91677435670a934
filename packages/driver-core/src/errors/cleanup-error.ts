import type { JournalEntry } from '../journal.ts';
import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** Cleanup could not delete some resources; they are still listed in the journal. */
export class CleanupError extends MachineError {
  override readonly code = 'CLEANUP';
  /** Resources that are still alive. */
  readonly remaining: readonly JournalEntry[];
  /** The errors of the failed deletions, in order. */
  readonly errors: readonly unknown[];
  constructor(remaining: readonly JournalEntry[], errors: readonly unknown[], options: MachineErrorOptions = {}) {
    const list = remaining.map((entry) => `${entry.kind} ${entry.id}`).join(', ');
    const first = errors[0] instanceof Error ? `: ${errors[0].message}` : '';
    super(`could not delete ${list}${first}`, {
      hint: 'run `machine rm` again to retry; the resources stay recorded until they are gone',
      ...options,
    });
    this.remaining = remaining;
    this.errors = errors;
  }
}
