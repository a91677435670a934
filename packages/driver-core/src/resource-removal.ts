import type { ProgressEvent } from './driver.ts';
import { CleanupError } from './errors/cleanup-error.ts';
import { MachineError } from './errors/machine-error.ts';
import { TimeoutError } from './errors/timeout-error.ts';
import type { JournalEntry, ResourceJournal } from './journal.ts';
import type { FoundResource, ResourceCall, ResourceQuery, ResourceRef } from './resources.ts';
import { sleep, throwIfAborted, waitFor } from './wait.ts';

/** One kind's operations with the client bound: what the removal engine runs. */
export interface KindOperations {
  readonly kind: string;
  readonly label: string;
  readonly deleteAfter?: readonly string[];
  /** ms for in-use retries and for the gone check each (default 300 000). */
  readonly deleteTimeout?: number;
  gone(error: unknown): boolean;
  inUse(error: unknown): boolean;
  delete(ref: ResourceRef, call: ResourceCall): Promise<void>;
  isGone?(ref: ResourceRef, call: ResourceCall): Promise<boolean>;
  find?(query: ResourceQuery, call: ResourceCall): Promise<readonly FoundResource[]>;
  usedBy?(ref: ResourceRef, call: ResourceCall): Promise<readonly string[]>;
}

/** How a removal runs. */
export interface RemoveSettings {
  readonly machine: string;
  readonly operation: string;
  readonly signal: AbortSignal;
  readonly managedBy: string;
  readonly onProgress?: (event: ProgressEvent) => void;
  readonly poll?: { readonly interval?: number; readonly maxInterval?: number };
  /** Called for each resource deleted (or found gone). */
  readonly onRemoved?: (entry: JournalEntry) => void;
}

const defaultDeleteTimeoutMs = 300_000;
const clockSkewMs = 5 * 60_000;

/**
 * Removes every journal entry: resolves intents through `find`, orders deletes (`deleteAfter`,
 * else newest first), deletes, waits until gone, and forgets each as it goes. Throws one
 * CleanupError listing every entry left, with why; the journal keeps them for the next try.
 */
export async function removeEntries(journal: ResourceJournal, kindOf: (kind: string) => KindOperations | undefined, settings: RemoveSettings): Promise<void> {
  const left: { entry: JournalEntry; error: unknown }[] = [];
  const ordered: JournalEntry[] = [];
  for (const entry of journal.entries()) {
    if (entry.state !== 'intended' || entry.preExisting) {
      ordered.push(entry);
      continue;
    }
    const operations = kindOf(entry.kind);
    try {
      ordered.push(...(await resolveIntent(journal, entry, operations, settings)));
    } catch (error) {
      left.push({ entry, error });
    }
  }
  for (const entry of deleteOrder(ordered.reverse(), kindOf)) {
    throwIfAborted(settings.signal, settings);
    if (entry.preExisting) {
      await journal.forget(entry.kind, entry.id);
      continue;
    }
    const operations = kindOf(entry.kind);
    if (operations === undefined) {
      left.push({ entry, error: new Error(`no deleter for resource kind "${entry.kind}"`) });
      continue;
    }
    try {
      await removeOne(entry, operations, settings);
      await journal.forget(entry.kind, entry.id);
      settings.onRemoved?.(entry);
    } catch (error) {
      if (isCancelled(error) && settings.signal.aborted) throw error;
      left.push({ entry, error });
    }
  }
  if (left.length > 0) {
    const inJournal = journal.entries();
    const order = (entry: JournalEntry) => inJournal.findIndex((candidate) => candidate.kind === entry.kind && candidate.id === entry.id);
    left.sort((a, b) => order(a.entry) - order(b.entry));
    throw new CleanupError(
      left.map(({ entry }) => entry),
      left.map(({ error }) => error),
      { machine: settings.machine, operation: settings.operation },
    );
  }
}

/** The resources an intent's create made, journaled in its place (the intent is then forgotten). */
async function resolveIntent(journal: ResourceJournal, entry: JournalEntry, operations: KindOperations | undefined, settings: RemoveSettings): Promise<JournalEntry[]> {
  if (operations?.find === undefined) {
    throw new Error(`a ${entry.kind} create was started but its reply was lost, and this driver cannot look it up; check the provider for it`);
  }
  const query = intentQuery(entry, settings.machine, settings.managedBy);
  const token = query.token ?? entry.id;
  const found = await operations.find(query, { machineName: settings.machine, signal: settings.signal, token, managedBy: settings.managedBy });
  const known = journal.entries();
  const resolved: JournalEntry[] = [];
  for (const resource of found) {
    if (known.some((candidate) => candidate.kind === entry.kind && candidate.id === resource.id)) continue; // already recorded by its reply
    const made = {
      kind: entry.kind,
      id: resource.id,
      ...(resource.region === undefined ? {} : { region: resource.region }),
      meta: { ...resource.meta, token },
      state: 'made' as const,
    };
    await journal.record(made);
    resolved.push({ ...made, preExisting: false, recordedAt: new Date().toISOString() });
    settings.onProgress?.({ step: `find-${entry.kind}`, phase: 'info', message: `found ${operations.label} ${resource.id}, made by a create whose reply was lost` });
  }
  await journal.forget(entry.kind, entry.id);
  return resolved;
}

/** The query that finds what an intent entry's create made. */
export function intentQuery(entry: JournalEntry, machineName: string, managedBy: string): ResourceQuery {
  const at = Date.parse(entry.meta?.at ?? '');
  return {
    managedBy,
    machineName,
    token: entry.meta?.token ?? entry.id,
    ...(Number.isFinite(at) ? { since: new Date(at - clockSkewMs) } : {}),
    ...(entry.meta === undefined ? {} : { meta: entry.meta }),
  };
}

/** Newest first, except that a kind waits for the kinds in its `deleteAfter` that are still to go. */
function deleteOrder(newestFirst: readonly JournalEntry[], kindOf: (kind: string) => KindOperations | undefined): JournalEntry[] {
  const pending = [...newestFirst];
  const result: JournalEntry[] = [];
  while (pending.length > 0) {
    const ready = pending.findIndex((entry) => {
      const after = kindOf(entry.kind)?.deleteAfter ?? [];
      return !pending.some((other) => other !== entry && after.includes(other.kind));
    });
    result.push(...pending.splice(ready === -1 ? 0 : ready, 1));
  }
  return result;
}

async function removeOne(entry: JournalEntry, operations: KindOperations, settings: RemoveSettings): Promise<void> {
  const call: ResourceCall = { machineName: settings.machine, signal: settings.signal, token: entry.meta?.token ?? '', managedBy: settings.managedBy };
  const what = `${operations.label} ${entry.id}`;
  if (entry.shared === true && operations.usedBy !== undefined) {
    const users = await operations.usedBy(entry, call);
    if (users.length > 0) {
      settings.onProgress?.({ step: `delete-${entry.kind}`, phase: 'info', message: `keeping ${what}: ${users.join(', ')} still use it` });
      return;
    }
  }
  const timeout = operations.deleteTimeout ?? defaultDeleteTimeoutMs;
  const interval = settings.poll?.interval ?? 1000;
  const maxInterval = settings.poll?.maxInterval ?? 10_000;
  settings.onProgress?.({ step: `delete-${entry.kind}`, phase: 'start', message: `deleting ${what}` });
  const deadline = Date.now() + timeout;
  for (let delay = interval; ; delay = Math.min(delay * 1.5, maxInterval)) {
    try {
      await operations.delete(entry, call);
      break;
    } catch (error) {
      if (operations.gone(error)) break;
      if (!operations.inUse(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay, settings.signal);
    }
  }
  const isGone = operations.isGone;
  if (isGone !== undefined) {
    await waitFor(async () => ((await isGone(entry, call)) ? { done: true, value: undefined } : { done: false, reason: 'it still exists' }), {
      interval,
      maxInterval,
      timeout,
      signal: settings.signal,
      description: `${what} to be gone after its delete was accepted`,
      machine: settings.machine,
      operation: settings.operation,
    }).catch((error: unknown) => {
      if (error instanceof TimeoutError) throw new TimeoutError(`${what} still exists ${Math.round(timeout / 1000)} s after its delete was accepted`);
      throw error;
    });
  }
  settings.onProgress?.({ step: `delete-${entry.kind}`, phase: 'done', message: `deleted ${what}` });
}

function isCancelled(error: unknown): boolean {
  return MachineError.isInstance(error) && error.code === 'CANCELLED';
}
