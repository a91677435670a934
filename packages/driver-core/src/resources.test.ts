import { describe, expect, it } from 'vitest';
import { cleanupJournal } from './cleanup.ts';
import { createMemoryContext } from './context.ts';
import type { DriverContext } from './driver.ts';
import { CleanupError } from './errors/cleanup-error.ts';
import { NotFoundError } from './errors/not-found-error.ts';
import { ProviderError } from './errors/provider-error.ts';
import { QuotaError } from './errors/quota-error.ts';
import { findEntry, type JournalEntry, MemoryJournal } from './journal.ts';
import { sweepResources } from './resource-sweep.ts';
import { createResources, managedByValue, removeResources, type ResourceKind, type ResourceModel } from './resources.ts';

/** A tiny cloud: named resources with a managed-by tag and the intent token in their name. */
class TestCloud {
  readonly alive = new Map<string, { kind: string; name: string; managedBy: string; token: string; createdAt: Date; lingers: number; users: string[] }>();
  next = 1;
  /** Per kind: what the next create call does after (or instead of) committing. */
  createFault: Record<string, 'hang' | 'lose-reply' | 'quota' | 'server-before-commit' | undefined> = {};
  /** Per kind: how many more deletes are refused as in use. */
  inUse: Record<string, number> = {};
  /** Per kind: polls a deleted resource stays visible (asynchronous delete); Infinity never goes. */
  lingers: Record<string, number> = {};
  deleteFails: Record<string, Error | undefined> = {};
  calls: string[] = [];

  async create(kind: string, call: { machineName: string; token: string; managedBy: string }): Promise<string> {
    this.calls.push(`${kind}.create`);
    const fault = this.createFault[kind];
    if (fault === 'quota') throw new QuotaError('limit reached');
    if (fault === 'server-before-commit') throw new ProviderError('503', { statusCode: 503 });
    const id = `${kind}-${this.next++}`;
    this.alive.set(id, { kind, name: `${call.machineName}.${call.token}`, managedBy: call.managedBy, token: call.token, createdAt: new Date(), lingers: 0, users: [] });
    if (fault === 'hang') return new Promise<string>(() => {});
    if (fault === 'lose-reply') throw new TypeError('fetch failed: socket hang up');
    return id;
  }

  async delete(kind: string, id: string): Promise<void> {
    this.calls.push(`${kind}.delete`);
    const failure = this.deleteFails[kind];
    if (failure !== undefined) throw failure;
    const resource = this.alive.get(id);
    if (resource === undefined || resource.lingers < 0) throw new NotFoundError(`${id} not found`);
    if ((this.inUse[kind] ?? 0) > 0) {
      this.inUse[kind] = (this.inUse[kind] ?? 0) - 1;
      throw new ProviderError(`${id} is in use`, { statusCode: 409, providerCode: 'InUse' });
    }
    resource.lingers = this.lingers[kind] ?? 0;
    if (resource.lingers === 0) this.alive.delete(id);
  }

  isGone(id: string): boolean {
    this.calls.push('get');
    const resource = this.alive.get(id);
    if (resource === undefined) return true;
    if (resource.lingers > 0 && Number.isFinite(resource.lingers)) {
      resource.lingers--;
      if (resource.lingers === 0) this.alive.delete(id);
    }
    return false;
  }

  list(kind: string, filter: { managedBy: string; machineName?: string; token?: string }) {
    this.calls.push(`${kind}.list`);
    return [...this.alive.entries()]
      .filter(([, r]) => r.kind === kind && r.managedBy === filter.managedBy)
      .filter(([, r]) => filter.token === undefined || r.token === filter.token)
      .map(([id, r]) => ({ id, name: r.name, token: r.token, createdAt: r.createdAt }));
  }
}

function kindOf(name: string, extra: Partial<ResourceKind<TestCloud, void>> = {}): ResourceKind<TestCloud, void> {
  return {
    kind: name,
    label: name,
    create: async (cloud, _spec, call) => ({ id: await cloud.create(name, call) }),
    delete: (cloud, ref) => cloud.delete(name, ref.id),
    isGone: async (cloud, ref) => cloud.isGone(ref.id),
    find: async (cloud, query) => cloud.list(name, query),
    usedBy: async (cloud, ref) => cloud.alive.get(ref.id)?.users ?? [],
    errors: { inUse: (error) => error instanceof ProviderError && error.providerCode === 'InUse' },
    ...extra,
  };
}

const key = kindOf('key');
const instance = kindOf('instance');
const group = kindOf('group', { deleteAfter: ['instance'] });

function model(cloud: TestCloud, kinds = [key, group, instance]): ResourceModel<TestCloud> {
  return { kinds, client: async () => cloud, poll: { interval: 1, maxInterval: 2 } };
}

/** A context whose journal persists snapshots, as the CLI's config.json does. */
function persistedContext(name: string, initial: readonly JournalEntry[] = [], storeId?: string) {
  const snapshots: (readonly JournalEntry[])[] = [];
  const base = createMemoryContext(name, `/tmp/${name}`);
  const journal = new MemoryJournal(initial, async (entries) => {
    snapshots.push(entries);
  });
  const context: DriverContext & { journal: MemoryJournal } = { ...base, journal, ...(storeId === undefined ? {} : { storeId }) };
  return { context, snapshots, persisted: () => snapshots.at(-1) ?? initial };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  if (!condition()) throw new Error('condition never became true');
}

describe('createResources: write-ahead intents', () => {
  it('journals an intent (kind, token, time) before the create call and replaces it with the id the reply carries', async () => {
    const cloud = new TestCloud();
    const { context, snapshots } = persistedContext('intent-first');
    let seenAtCall: readonly JournalEntry[] = [];
    const watched: ResourceKind<TestCloud, void> = {
      ...key,
      create: async (c, spec, call) => {
        seenAtCall = context.journal.entries();
        return key.create!(c, spec, call);
      },
    };
    const ref = await createResources(model(cloud, [watched]), context, {}, (run) => run.make(watched, undefined));
    expect(seenAtCall).toEqual([expect.objectContaining({ kind: 'key', state: 'intended', meta: expect.objectContaining({ token: expect.stringMatching(/^[0-9a-f]{8}$/) }) })]);
    expect(snapshots[0]).toEqual(seenAtCall);
    expect(context.journal.entries()).toEqual([expect.objectContaining({ kind: 'key', id: ref.id, state: 'made', meta: { token: seenAtCall[0]?.id } })]);
    expect(findEntry(context.journal, 'key')?.id).toBe(ref.id);
  });

  it.each(['key', 'group', 'instance'])(
    'kill point at %s.create: the provider committed, the process died before the reply; a fresh remove from the persisted journal leaks nothing',
    async (killed) => {
      const cloud = new TestCloud();
      cloud.createFault[killed] = 'hang';
      const { context, persisted } = persistedContext(`kill-${killed}`);
      void createResources(model(cloud), context, {}, async (run) => {
        await run.make(key, undefined);
        await run.make(group, undefined);
        await run.make(instance, undefined);
      });
      await until(() => [...cloud.alive.values()].some((r) => r.kind === killed));
      // The process is gone: only what reached the disk survives.
      const fresh = persistedContext(`kill-${killed}`, persisted());
      expect(fresh.context.journal.entries().at(-1)).toMatchObject({ kind: killed, state: 'intended' });
      await removeResources(model(cloud), fresh.context);
      expect([...cloud.alive.keys()]).toEqual([]);
      expect(fresh.context.journal.entries()).toEqual([]);
    },
  );

  it('a reply lost with the process alive: the create carries on with what the call made, and makes no twin', async () => {
    const cloud = new TestCloud();
    cloud.createFault.instance = 'lose-reply';
    const { context } = persistedContext('lost-reply');
    const events: string[] = [];
    const withProgress = { ...context, onProgress: (event: { message: string }) => events.push(event.message) };
    const ref = await createResources(model(cloud), withProgress, {}, async (run) => {
      await run.make(key, undefined);
      return run.make(instance, undefined);
    });
    expect([...cloud.alive.values()].filter((r) => r.kind === 'instance')).toHaveLength(1);
    expect(cloud.calls.filter((call) => call === 'instance.create')).toHaveLength(1);
    expect(context.journal.entries().map((e) => [e.kind, e.id, e.state])).toEqual([
      ['key', 'key-1', 'made'],
      ['instance', ref.id, 'made'],
    ]);
    expect(events.some((message) => message.includes('but it was made'))).toBe(true);
    await removeResources(model(cloud), context);
    expect(cloud.alive.size).toBe(0);
  });

  it('an answered failure (quota) forgets the intent without looking it up; rollback deletes what was made and rethrows', async () => {
    const cloud = new TestCloud();
    cloud.createFault.instance = 'quota';
    const { context } = persistedContext('quota');
    const error = await createResources(model(cloud), context, {}, async (run) => {
      await run.make(key, undefined);
      await run.make(instance, undefined);
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuotaError);
    expect(cloud.calls).toEqual(['key.create', 'instance.create', 'key.delete', 'get']);
    expect(context.journal.entries()).toEqual([]);
  });

  it('an ambiguous failure that made nothing keeps the intent until rollback has looked again', async () => {
    const cloud = new TestCloud();
    cloud.createFault.instance = 'server-before-commit';
    const { context, snapshots } = persistedContext('ambiguous-nothing');
    await expect(createResources(model(cloud), context, {}, (run) => run.make(instance, undefined))).rejects.toBeInstanceOf(ProviderError);
    expect(cloud.calls).toEqual(['instance.create', 'instance.list', 'instance.list']);
    expect(snapshots.some((entries) => entries.some((e) => e.state === 'intended'))).toBe(true);
    expect(context.journal.entries()).toEqual([]);
  });

  it('an abort during create rolls back, including what an in-flight call made', async () => {
    const cloud = new TestCloud();
    const controller = new AbortController();
    const { context } = persistedContext('aborted');
    const slow: ResourceKind<TestCloud, void> = {
      ...instance,
      create: async (c, spec, call) => {
        await instance.create?.(c, spec, call);
        controller.abort();
        throw new TypeError('aborted while waiting for the reply');
      },
    };
    await expect(
      createResources(model(cloud, [key, slow]), context, { signal: controller.signal }, async (run) => {
        await run.make(key, undefined);
        await run.make(slow, undefined);
        await run.make(key, undefined);
      }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(cloud.alive.size).toBe(0);
    expect(context.journal.entries()).toEqual([]);
  });

  it('tags what it makes with the store: managed-by machine-<storeId>', async () => {
    const cloud = new TestCloud();
    const { context } = persistedContext('tagged', [], 'store1');
    await createResources(model(cloud), context, {}, (run) => run.make(key, undefined));
    expect([...cloud.alive.values()][0]?.managedBy).toBe('machine-store1');
    expect(managedByValue()).toBe('machine');
    expect(() => managedByValue('Store 1')).toThrow(/lowercase/);
  });
});

describe('cleanupJournal on the same engine', () => {
  it('reports an intent it cannot look up as left, and keeps it', async () => {
    const journal = new MemoryJournal([{ kind: 'key', id: 'feedf00d', state: 'intended', preExisting: false, recordedAt: '', meta: { token: 'feedf00d' } }]);
    const error = await cleanupJournal(journal, { deleters: { key: async () => {} } }).catch((caught: unknown) => caught);
    expect((error as CleanupError).left).toEqual([expect.objectContaining({ kind: 'key', id: 'feedf00d', reason: expect.stringContaining('reply was lost') })]);
    expect(journal.entries()).toHaveLength(1);
  });
});

describe('removeResources', () => {
  it('deletes newest first but after the kinds in deleteAfter, forgets pre-existing ones, keeps a shared one still in use', async () => {
    const cloud = new TestCloud();
    const { context } = persistedContext('order');
    await createResources(model(cloud), context, {}, async (run) => {
      await run.make(group, undefined);
      await run.make(key, undefined);
      const shared = await run.make(group, undefined);
      cloud.alive.get(shared.id)!.users.push('other-machine');
      await context.journal.record({ ...context.journal.entries().at(-1)!, shared: true });
      await run.adopt(key, { id: 'users-own-key' });
      await run.make(instance, undefined);
    });
    cloud.calls.length = 0;
    await removeResources(model(cloud), context);
    expect(cloud.calls.filter((call) => call.endsWith('.delete'))).toEqual(['instance.delete', 'key.delete', 'group.delete']);
    expect([...cloud.alive.values()].map((r) => r.users)).toEqual([['other-machine']]);
    expect(context.journal.entries()).toEqual([]);
  });

  it('retries a delete refused as in use, and waits until an asynchronous delete is gone', async () => {
    const cloud = new TestCloud();
    const { context } = persistedContext('async-delete');
    await createResources(model(cloud), context, {}, async (run) => {
      await run.make(group, undefined);
      await run.make(instance, undefined);
    });
    cloud.inUse.group = 2;
    cloud.lingers.instance = 3;
    await removeResources(model(cloud), context);
    expect(cloud.calls.filter((call) => call === 'group.delete')).toHaveLength(3);
    expect(cloud.calls.filter((call) => call === 'get').length).toBeGreaterThanOrEqual(4);
    expect(cloud.alive.size).toBe(0);
  });

  it('never reports success while something is alive: one CleanupError lists each resource left with why, and the journal keeps them', async () => {
    const cloud = new TestCloud();
    const { context } = persistedContext('honest');
    await createResources(model(cloud, [key, group, { ...instance, timeouts: { delete: 20 } }]), context, {}, async (run) => {
      await run.make(key, undefined);
      await run.make(group, undefined);
      await run.make(instance, undefined);
    });
    cloud.lingers.instance = Number.POSITIVE_INFINITY;
    cloud.deleteFails.key = new ProviderError('key service unavailable', { statusCode: 503 });
    const error = await removeResources(model(cloud, [key, group, { ...instance, timeouts: { delete: 20 } }]), context).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CleanupError);
    const left = (error as CleanupError).left;
    expect(left.map((resource) => [resource.kind, resource.id])).toEqual([
      ['key', 'key-1'],
      ['instance', 'instance-3'],
    ]);
    expect(left[0]?.reason).toBe('key service unavailable');
    expect(left[1]?.reason).toMatch(/still exists .* after its delete was accepted/);
    expect((error as Error).message).toContain('could not delete key key-1: key service unavailable; instance instance-3:');
    expect(context.journal.entries().map((entry) => entry.id)).toEqual(['key-1', 'instance-3']);
  });

  it('an intent of a kind that cannot be looked up is reported as left, never forgotten', async () => {
    const { context } = persistedContext('no-find', [{ kind: 'key', id: 'abcd0123', state: 'intended', preExisting: false, recordedAt: '', meta: { token: 'abcd0123' } }]);
    const { find: _find, ...blind } = key;
    const error = await removeResources(model(new TestCloud(), [blind]), context).catch((caught: unknown) => caught);
    expect((error as CleanupError).left[0]?.reason).toMatch(/reply was lost.*cannot look it up/);
    expect(context.journal.entries()).toHaveLength(1);
  });

  it('remove with an empty journal builds no client', async () => {
    const { context } = persistedContext('empty');
    await removeResources({ kinds: [key], client: () => Promise.reject(new Error('no client')) }, context);
  });
});

describe('sweepResources', () => {
  it('lists managed resources of this store that no record claims (by id or intent token), and deletes them', async () => {
    const cloud = new TestCloud();
    const a = persistedContext('machine-a', [], 'store1');
    await createResources(model(cloud), a.context, {}, (run) => run.make(instance, undefined));
    const lost = persistedContext('machine-lost', [], 'store1');
    await createResources(model(cloud), lost.context, {}, async (run) => {
      await run.make(key, undefined);
      await run.make(instance, undefined);
    });
    // A create in progress: its intent is on disk, its reply not yet.
    const pending = persistedContext('machine-pending', [], 'store1');
    cloud.createFault.instance = 'hang';
    void createResources(model(cloud), pending.context, {}, (run) => run.make(instance, undefined));
    await until(() => cloud.alive.size === 4);
    const other = persistedContext('other-store', [], 'store2');
    cloud.createFault.instance = undefined;
    await createResources(model(cloud), other.context, {}, (run) => run.make(instance, undefined));

    // machine-lost's record was deleted by hand: only a's and pending's records remain.
    const claimed = [...a.context.journal.entries(), ...pending.persisted()];
    const listed = await sweepResources(model(cloud), { storeId: 'store1', claimed });
    expect(listed.resources.map((r) => [r.kind, r.id, r.status])).toEqual([
      ['key', 'key-2', 'found'],
      ['instance', 'instance-3', 'found'],
    ]);
    expect(listed.resources[0]?.ageMs).toBeGreaterThanOrEqual(0);
    expect(cloud.alive.size).toBe(5);
    const swept = await sweepResources(model(cloud), { storeId: 'store1', claimed, delete: true });
    expect(swept.resources.map((r) => r.status)).toEqual(['deleted', 'deleted']);
    expect(cloud.calls.filter((call) => call.endsWith('.delete'))).toEqual(['instance.delete', 'key.delete']);
    expect([...cloud.alive.keys()].sort()).toEqual(['instance-1', 'instance-4', 'instance-5']);
  });

  it('keeps a resource without a token that an intent on disk names (a create waiting for its reply)', async () => {
    const cloud = new TestCloud();
    const tokenless: ResourceKind<TestCloud, void> = {
      ...instance,
      intent: (_spec, call) => ({ name: `${call.machineName}.${call.token}` }),
      find: async (c, query) => c.list('instance', query).map(({ token: _token, ...rest }) => rest),
    };
    const pending = persistedContext('waiting', [], 'store1');
    cloud.createFault.instance = 'hang';
    void createResources(model(cloud, [tokenless]), pending.context, {}, (run) => run.make(tokenless, undefined));
    await until(() => cloud.alive.size === 1);
    const swept = await sweepResources(model(cloud, [tokenless]), { storeId: 'store1', claimed: pending.persisted(), delete: true });
    expect(swept.resources).toEqual([]);
    expect(cloud.alive.size).toBe(1);
  });

  it('reports what it could not delete', async () => {
    const cloud = new TestCloud();
    const lost = persistedContext('lost', [], 'store1');
    await createResources(model(cloud), lost.context, {}, (run) => run.make(key, undefined));
    cloud.deleteFails.key = new ProviderError('denied', { statusCode: 403 });
    const swept = await sweepResources(model(cloud), { storeId: 'store1', claimed: [], delete: true });
    expect(swept.resources).toEqual([expect.objectContaining({ kind: 'key', status: 'failed', error: 'denied' })]);
  });
});
