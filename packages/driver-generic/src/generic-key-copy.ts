import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResourceKind, ResourceModel } from '@machine/driver-core';
import type { SSHCredentials } from './generic-ssh-credentials.ts';

/** What `make(keyCopyKind, …)` copies: the user's key into the machine's folder. */
export interface KeyCopySpec {
  readonly dir: string;
  readonly fileName: string;
  readonly credentials: Extract<SSHCredentials, { kind: 'key' }>;
}

/**
 * The one resource this driver makes: a copy of the user's key (private 0600, public 0644) in the
 * machine's folder. Its path is known before the copy, so a create killed mid-copy is found by it.
 */
export const keyCopyKind: ResourceKind<undefined, KeyCopySpec> = {
  kind: 'ssh-key-copy',
  label: 'key copy',
  step: 'copy-key',
  describe: (spec) => `copying ${spec.credentials.key.path} to ${join(spec.dir, spec.fileName)}`,
  intent: (spec) => ({ path: join(spec.dir, spec.fileName), source: spec.credentials.key.path }),
  async create(_none, spec) {
    const { key } = spec.credentials;
    await mkdir(spec.dir, { recursive: true, mode: 0o700 });
    const path = join(spec.dir, spec.fileName);
    await writeFile(path, key.privateKey, { mode: 0o600 });
    await chmod(path, 0o600); // the file may have existed with wider permissions
    await writeFile(`${path}.pub`, `${key.publicKey}\n`, { mode: 0o644 });
    return { id: path, meta: { source: key.path } };
  },
  async delete(_none, ref) {
    await rm(ref.id, { force: true });
    await rm(`${ref.id}.pub`, { force: true });
  },
  async find(_none, query) {
    const path = query.meta?.path;
    if (path === undefined) return [];
    const exists = (file: string) =>
      access(file).then(
        () => true,
        () => false,
      );
    return (await exists(path)) || (await exists(`${path}.pub`)) ? [{ id: path }] : [];
  },
};

/** The generic driver's resources: local files only, no client. */
export const genericResources: ResourceModel<undefined> = { kinds: [keyCopyKind], client: async () => undefined };
