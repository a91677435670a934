import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repositoryRoot, workspacePackages } from './workspace.ts';

const published = workspacePackages().filter((pkg) => pkg.manifest.private !== true);
const drivers = published.filter((pkg) => pkg.folder.startsWith('driver-') && pkg.folder !== 'driver-core');

describe('package conventions', () => {
  it.each(published.map((pkg) => [pkg.path, pkg]))('%s is an ESM package for Node >= 22.12 with typed exports', (_path, pkg) => {
    const manifest = pkg.manifest as Record<string, unknown> & { exports?: Record<string, Record<string, string>>; engines?: { node?: string } };
    expect(manifest.type).toBe('module');
    expect(manifest.license).toBe('Apache-2.0');
    expect(manifest.engines?.node).toBe('>=22.12');
    // dist, the licence and the changelog; a package may ship more data (the CLI ships its SQL migrations), never src/.
    expect(manifest.files).toEqual(expect.arrayContaining(['dist', 'LICENSE', 'CHANGELOG.md']));
    expect((manifest.files as string[]).filter((entry) => entry.startsWith('src'))).toEqual([]);
    for (const [subpath, conditions] of Object.entries(manifest.exports ?? {})) {
      const keys = Object.keys(conditions);
      expect(keys.indexOf('types'), `${subpath}: "types" must come before "default"`).toBeLessThan(keys.indexOf('default'));
    }
    expect(existsSync(join(repositoryRoot, pkg.path, 'README.md')), 'README.md').toBe(true);
  });

  it.each(drivers.map((pkg) => [pkg.path, pkg]))('driver %s runs the conformance suite and has its own CI workflow', (_path, pkg) => {
    const sources = listFiles(join(repositoryRoot, pkg.path, 'src')).filter((file) => file.endsWith('.test.ts'));
    expect(sources.some((file) => readFileSync(file, 'utf8').includes('runConformanceSuite('))).toBe(true);
    const workflow = join(repositoryRoot, '.github/workflows', `${pkg.folder}.yml`);
    expect(existsSync(workflow), `.github/workflows/${pkg.folder}.yml`).toBe(true);
    const text = readFileSync(workflow, 'utf8');
    expect(text).toContain(`${pkg.path}/**`);
    expect(text).toContain('packages/driver-core/**');
  });
});

describe('licences', () => {
  it('no installed dependency is GPL-licensed (the spec forbids GPL third-party libraries)', () => {
    const store = join(repositoryRoot, 'node_modules/.pnpm');
    const offenders: string[] = [];
    for (const entry of readdirSync(store)) {
      const modules = join(store, entry, 'node_modules');
      if (!existsSync(modules)) continue;
      for (const manifestPath of packageManifests(modules)) {
        const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name?: string; license?: unknown };
        const license = typeof manifest.license === 'string' ? manifest.license : JSON.stringify(manifest.license ?? '');
        if (/\bA?GPL\b/i.test(license) && !/\bOR\b/.test(license)) offenders.push(`${manifest.name}: ${license}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

function packageManifests(modules: string): string[] {
  return readdirSync(modules, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name.startsWith('@') && entry.isDirectory()) {
      return readdirSync(join(modules, entry.name)).map((name) => join(modules, entry.name, name, 'package.json'));
    }
    return [join(modules, entry.name, 'package.json')];
  }).filter((path) => existsSync(path));
}
