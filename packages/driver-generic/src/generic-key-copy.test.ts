import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryContext, MemoryJournal, removeResources } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genericResources } from './generic-key-copy.ts';

describe('the generic driver’s key copy as a resource kind', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'generic-key-copy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a create killed during the copy left an intent: remove finds the files by the intended path and deletes them', async () => {
    const path = join(dir, 'id_ed25519');
    await writeFile(path, 'private', { mode: 0o600 });
    await writeFile(`${path}.pub`, 'public');
    const context = {
      ...createMemoryContext('killed', dir),
      journal: new MemoryJournal([
        { kind: 'ssh-key-copy', id: '0badc0de', state: 'intended', preExisting: false, recordedAt: '', meta: { token: '0badc0de', path } },
      ]),
    };
    await removeResources(genericResources, context);
    const exists = (file: string) =>
      access(file).then(
        () => true,
        () => false,
      );
    expect(await exists(path)).toBe(false);
    expect(await exists(`${path}.pub`)).toBe(false);
    expect(context.journal.entries()).toEqual([]);
  });

  it('an intent whose copy never started resolves to nothing and is forgotten', async () => {
    const context = {
      ...createMemoryContext('early', dir),
      journal: new MemoryJournal([
        { kind: 'ssh-key-copy', id: '12345678', state: 'intended', preExisting: false, recordedAt: '', meta: { token: '12345678', path: join(dir, 'never') } },
      ]),
    };
    await removeResources(genericResources, context);
    expect(context.journal.entries()).toEqual([]);
  });
});
