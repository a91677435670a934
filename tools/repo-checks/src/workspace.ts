import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root. */
export const repositoryRoot = resolve(import.meta.dirname, '../../..');

/** One workspace package. */
export interface WorkspacePackage {
  /** Folder name, e.g. `driver-core`. */
  readonly folder: string;
  /** Path relative to the root, e.g. `packages/driver-core`. */
  readonly path: string;
  readonly manifest: Record<string, unknown> & { name?: string; private?: boolean };
}

/** Every package under packages/ and tools/ that has a package.json. */
export function workspacePackages(): WorkspacePackage[] {
  return ['packages', 'tools'].flatMap((group) => {
    const dir = join(repositoryRoot, group);
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'package.json')))
      .map((entry) => ({
        folder: entry.name,
        path: `${group}/${entry.name}`,
        manifest: JSON.parse(readFileSync(join(dir, entry.name, 'package.json'), 'utf8')) as WorkspacePackage['manifest'],
      }));
  });
}

/** Reads a file under the root. */
export function readRepositoryFile(path: string): string {
  return readFileSync(join(repositoryRoot, path), 'utf8');
}
