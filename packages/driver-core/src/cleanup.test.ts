import { describe, expect, it } from 'vitest';
import { cleanupJournal, createWithCleanup } from './cleanup.ts';
import { CleanupError } from './errors/cleanup-error.ts';
import { NotFoundError } from './errors/not-found-error.ts';
import { ProviderError } from './errors/provider-error.ts';
import { guardDriver } from './guard-driver.ts';
import { type JournalEntry, MemoryJournal } from './journal.ts';
import { createFakeCloud } from './testing/fake-cloud.ts';
import { FakeDriver, fakeDriverFlags } from './testing/fake-driver.ts';
import { createMemoryContext } from './context.ts';
import { parseFlags } from './flags.ts';

describe('resource journal', () => {
  it('persists after every change, in record order, replacing a re-recorded resource', async () => {
    const snapshots: (readonly JournalEntry[])[] = [];
    const journal = new MemoryJournal([], async (entries) => {
      snapshots.push(entries);
    });
    await journal.record({ kind: 'key', id: 'k1' });
    await journal.record({ kind: 'instance', id: 'i1', region: 'nyc3' });
    await journal.record({ kind: 'key', id: 'k1', meta: { name: 'web1-abc' } });
    await journal.forget('instance', 'i1');
    await journal.forget('instance', 'unknown');
    expect(snapshots.map((entries) => entries.map((entry) => entry.id))).toEqual([['k1'], ['k1', 'i1'], ['i1', 'k1'], ['k1']]);
    expect(journal.entries()[0]).toMatchObject({ kind: 'key', id: 'k1', preExisting: false, meta: { name: 'web1-abc' } });
  });
});

describe('cleanupJournal', () => {
  it('deletes newest first, treats already-gone as done, never deletes pre-existing resources', async () => {
    const journal = new MemoryJournal();
    await journal.record({ kind: 'key', id: 'k1' });
    await journal.record({ kind: 'group', id: 'sg-user', preExisting: true });
    await journal.record({ kind: 'instance', id: 'i1' });
    const deleted: string[] = [];
    await cleanupJournal(journal, {
      deleters: {
        key: async (entry) => {
          deleted.push(entry.id);
        },
        group: async (entry) => {
          deleted.push(entry.id);
        },
        instance: async () => {
          throw new NotFoundError('gone already');
        },
      },
    });
    expect(deleted).toEqual(['k1']);
    expect(journal.entries()).toEqual([]);
  });

  it('keeps going past failures and reports what is left in a CleanupError', async () => {
    const journal = new MemoryJournal();
    await journal.record({ kind: 'key', id: 'k1' });
    await journal.record({ kind: 'firewall', id: 'f1' });
    await journal.record({ kind: 'mystery', id: 'm1' });
    const error = await cleanupJournal(journal, {
      machine: 'web1',
      operation: 'remove',
      deleters: {
        key: async () => {},
        firewall: async () => {
          throw new ProviderError('503', { statusCode: 503 });
        },
      },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CleanupError);
    expect((error as CleanupError).remaining.map((entry) => entry.id)).toEqual(['f1', 'm1']);
    expect(journal.entries().map((entry) => entry.id)).toEqual(['f1', 'm1']);
  });

  it('createWithCleanup removes what was made and rethrows the original error', async () => {
    const journal = new MemoryJournal();
    const original = new ProviderError('quota reached');
    const deleted: string[] = [];
    const error = await createWithCleanup(
      journal,
      async () => {
        await journal.record({ kind: 'key', id: 'k1' });
        await journal.record({ kind: 'instance', id: 'i1' });
        throw original;
      },
      {
        deleters: {
          key: async (entry) => {
            deleted.push(entry.id);
          },
          instance: async (entry) => {
            deleted.push(entry.id);
          },
        },
      },
    ).catch((caught: unknown) => caught);
    expect(error).toBe(original);
    expect(deleted).toEqual(['i1', 'k1']);
    expect(journal.entries()).toEqual([]);
  });

  it('a journal left by a killed create is finished off by remove', async () => {
    const cloud = createFakeCloud({ instancesNeverRun: true });
    const context = createMemoryContext('half-made', '/tmp/half-made');
    const config = parseFlags(fakeDriverFlags, { 'fake-wait-timeout': 1 }, { env: {} });
    const driver = new FakeDriver(cloud, config, context);
    // Simulate a process killed mid-create: resources exist and are journaled, nothing cleaned up.
    const keyId = await cloud.importKey(`ssh-ed25519 ${'A'.repeat(68)}`);
    await context.journal.record({ kind: 'key', id: keyId });
    const instance = await cloud.runInstance({ name: 'half-made', keyId });
    await context.journal.record({ kind: 'instance', id: instance.id });
    expect(cloud.leaks()).toHaveLength(2);
    await driver.remove();
    expect(cloud.leaks()).toEqual([]);
    await cloud.close();
  });
});

describe('guardDriver', () => {
  it('turns untyped errors into ProviderError and checks the abort signal first', async () => {
    const cloud = createFakeCloud();
    const context = createMemoryContext('guarded', '/tmp/guarded');
    const config = parseFlags(fakeDriverFlags, {}, { env: {} });
    const driver = guardDriver(new FakeDriver(cloud, config, context));
    await context.journal.record({ kind: 'instance', id: 'i-1' });
    cloud.failOn('instances.describe', new TypeError('socket hang up'));
    const error = await driver.getState().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).cause).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('machine "guarded": getState: socket hang up');
    const callsBefore = cloud.totalCalls;
    await expect(driver.start({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(cloud.totalCalls).toBe(callsBefore);
    expect(driver.machineName).toBe('guarded');
    expect(driver.getSSHUsername()).toBe('root');
  });
});

describe('guardDriver with a failed cleanup', () => {
  it('keeps the cleanupError createWithCleanup attached when it maps the error', async () => {
    const cloud = createFakeCloud();
    const context = createMemoryContext('cleanup-fails', '/tmp/cleanup-fails');
    const config = parseFlags(fakeDriverFlags, {}, { env: {} });
    const driver = guardDriver(new FakeDriver(cloud, config, context));
    cloud.failOn('instances.run', new TypeError('connection reset'));
    cloud.failOn('firewalls.delete', new ProviderError('503', { statusCode: 503 }));
    const error = await driver.create().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as { cleanupError?: unknown }).cleanupError).toBeInstanceOf(CleanupError);
    expect(context.journal.entries().map((entry) => entry.kind)).toEqual(['firewall']);
    await cloud.close();
  });
});
