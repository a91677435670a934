import type { ProgressEvent } from './driver.ts';
import type { JournalEntry } from './journal.ts';
import type { RemoveSettings } from './resource-removal.ts';
import { removeEntries } from './resource-removal.ts';
import { MemoryJournal } from './journal.ts';
import { bindKind, managedByValue, type ResourceModel } from './resources.ts';
import { throwIfAborted } from './wait.ts';

/** Options of {@link sweepResources}. */
export interface SweepOptions {
  /** The store whose managed-by tag to look for (`machine-<storeId>`); without it, `machine`. */
  readonly storeId?: string;
  /**
   * The journal entries of every machine record in the store: a resource whose id or intent token
   * one of them holds is never swept (a create in progress has journaled its intent already).
   */
  readonly claimed: Iterable<JournalEntry>;
  /** Delete what is found (default false: only list it). */
  readonly delete?: boolean;
  /** Leave resources younger than this (ms), or of unknown age when set. Default 0. */
  readonly minAgeMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
}

/** One managed resource no record claims. */
export interface SweptResource {
  readonly kind: string;
  readonly id: string;
  readonly label: string;
  readonly name?: string;
  readonly region?: string;
  readonly machineName?: string;
  readonly createdAt?: Date;
  /** ms since it was made, when the provider says when. */
  readonly ageMs?: number;
  /** `found` (listed only), `deleted`, or `failed` with `error`. */
  readonly status: 'found' | 'deleted' | 'failed';
  readonly error?: string;
}

/** What sweep found and did, per resource. */
export interface SweepReport {
  readonly resources: readonly SweptResource[];
}

/**
 * Lists every resource at the provider that carries the store's managed-by tag and that no
 * record claims, per kind that has `find`; with `delete`, deletes them with the kinds' own
 * `delete` (in reverse declaration order, honouring `deleteAfter`, waiting until gone).
 */
export async function sweepResources<Client>(model: ResourceModel<Client>, options: SweepOptions): Promise<SweepReport> {
  const managedBy = managedByValue(options.storeId);
  const signal = options.signal ?? new AbortController().signal;
  const claimedIds = new Set<string>();
  const claimedTokens = new Set<string>();
  // A create in progress has journaled its intent, not yet the id: what it names is claimed too.
  const claimedNames = new Set<string>();
  for (const entry of options.claimed) {
    claimedIds.add(`${entry.kind}\n${entry.id}`);
    const token = entry.meta?.token ?? (entry.state === 'intended' ? entry.id : undefined);
    if (token !== undefined) claimedTokens.add(token);
    if (entry.state === 'intended' && entry.meta?.name !== undefined) claimedNames.add(`${entry.kind}\n${entry.meta.name}`);
  }
  const client = await model.client();
  const settings: RemoveSettings = {
    machine: 'sweep',
    operation: 'sweep',
    signal,
    managedBy,
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(model.poll === undefined ? {} : { poll: model.poll }),
  };
  const lazy = () => Promise.resolve(client);
  const byKind = new Map(model.kinds.map((kind) => [kind.kind, bindKind(model, kind, lazy, settings)]));
  const now = Date.now();
  const found: SweptResource[] = [];
  // What each kind's delete needs (FoundResource.meta), for the deletes below.
  const metaOf = new Map<string, Readonly<Record<string, string>>>();
  const minAge = options.minAgeMs ?? 0;
  for (const kind of model.kinds) {
    const find = byKind.get(kind.kind)?.find;
    if (find === undefined) continue;
    throwIfAborted(signal);
    for (const resource of await find({ managedBy }, { machineName: '', signal, token: '', managedBy })) {
      if (claimedIds.has(`${kind.kind}\n${resource.id}`)) continue;
      if (resource.token !== undefined && claimedTokens.has(resource.token)) continue;
      if (resource.name !== undefined && claimedNames.has(`${kind.kind}\n${resource.name}`)) continue;
      const ageMs = resource.createdAt === undefined ? undefined : now - resource.createdAt.getTime();
      if (minAge > 0 && (ageMs === undefined || ageMs < minAge)) continue;
      if (resource.meta !== undefined) metaOf.set(`${kind.kind}\n${resource.id}`, resource.meta);
      found.push({
        kind: kind.kind,
        id: resource.id,
        label: kind.label,
        ...(resource.name === undefined ? {} : { name: resource.name }),
        ...(resource.region === undefined ? {} : { region: resource.region }),
        ...(resource.machineName === undefined ? {} : { machineName: resource.machineName }),
        ...(resource.createdAt === undefined ? {} : { createdAt: resource.createdAt }),
        ...(ageMs === undefined ? {} : { ageMs }),
        status: 'found',
      });
    }
  }
  if (options.delete !== true || found.length === 0) return { resources: found };

  // Delete through the removal engine: a scratch journal in kind declaration order, so the
  // engine's newest-first order deletes instances before the keys and groups they use.
  const rank = new Map(model.kinds.map((kind, index) => [kind.kind, index]));
  const byRank = [...found].sort((a, b) => (rank.get(a.kind) ?? 0) - (rank.get(b.kind) ?? 0));
  const journal = new MemoryJournal(
    byRank.map((resource) => ({
      kind: resource.kind,
      id: resource.id,
      preExisting: false,
      recordedAt: new Date(0).toISOString(),
      state: 'made',
      ...(resource.region === undefined ? {} : { region: resource.region }),
      meta: { ...metaOf.get(`${resource.kind}\n${resource.id}`), ...(resource.name === undefined ? {} : { name: resource.name }) },
    })),
  );
  const failures = new Map<string, string>();
  await removeEntries(journal, (kind) => byKind.get(kind), settings).catch((error: unknown) => {
    const left = (error as { left?: readonly { kind: string; id: string; reason: string }[] }).left;
    if (left === undefined) throw error;
    for (const resource of left) failures.set(`${resource.kind}\n${resource.id}`, resource.reason);
  });
  return {
    resources: found.map((resource) => {
      const error = failures.get(`${resource.kind}\n${resource.id}`);
      return error === undefined ? { ...resource, status: 'deleted' } : { ...resource, status: 'failed', error };
    }),
  };
}
