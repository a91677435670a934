import type { JournalEntry } from '../journal.ts';
import { MachineError, type MachineErrorOptions } from './machine-error.ts';

/** One resource a remove or rollback could not confirm gone. */
export interface LeftResource {
  readonly kind: string;
  /** The provider's id, or the intent token of a create whose reply was lost. */
  readonly id: string;
  /** Its name, when the journal knows it. */
  readonly name?: string;
  /** Why it is left, one line. */
  readonly reason: string;
}

/** Cleanup could not delete some resources (or confirm them gone); they are still listed in the journal. */
export class CleanupError extends MachineError {
  override readonly code = 'CLEANUP';
  /** Resources that are still alive (or not known to be gone). */
  readonly remaining: readonly JournalEntry[];
  /** The errors of the failed deletions, in the order of `remaining`. */
  readonly errors: readonly unknown[];
  /** One line per resource left: kind, id or name, why (what `machine rm` prints). */
  readonly left: readonly LeftResource[];
  constructor(remaining: readonly JournalEntry[], errors: readonly unknown[], options: MachineErrorOptions = {}) {
    const left = remaining.map((entry, index): LeftResource => {
      const error = errors[index];
      const reason = MachineError.isInstance(error) ? error.detail : error instanceof Error ? error.message : error === undefined ? 'not deleted' : String(error);
      const name = entry.meta?.name;
      return { kind: entry.kind, id: entry.id, ...(name === undefined ? {} : { name }), reason };
    });
    const list = left.map((resource) => `${resource.kind} ${resource.id}${resource.name === undefined ? '' : ` (${resource.name})`}: ${resource.reason}`).join('; ');
    super(`could not delete ${list}`, {
      hint: 'run `machine rm` again to retry; the resources stay recorded until they are gone',
      ...options,
    });
    this.remaining = remaining;
    this.errors = errors;
    this.left = left;
  }
}
