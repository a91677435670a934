import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { readRepositoryFile, workspacePackages } from './workspace.ts';

interface MaintainersFile {
  people: Record<string, { Name: string; Email?: string; GitHub?: string }>;
  packages: Record<string, { path: string; maintainers: string[] }>;
}

const maintainers = parse(readRepositoryFile('MAINTAINERS')) as unknown as MaintainersFile;

describe('MAINTAINERS', () => {
  it.each(workspacePackages().map((pkg) => [pkg.path, pkg]))('has a section with a known maintainer for %s', (_path, pkg) => {
    const section = maintainers.packages[pkg.folder];
    expect(section, `add [packages."${pkg.folder}"] to MAINTAINERS`).toBeDefined();
    expect(section?.path).toBe(pkg.path);
    expect(section?.maintainers.length).toBeGreaterThan(0);
    for (const person of section?.maintainers ?? []) expect(maintainers.people[person], `unknown maintainer ${person}`).toBeDefined();
  });

  it('lists only paths that exist', () => {
    const paths = new Set(workspacePackages().map((pkg) => pkg.path));
    const stale = Object.values(maintainers.packages).filter((section) => !paths.has(section.path) && !section.path.startsWith('packages/driver-'));
    expect(stale).toEqual([]);
  });
});
