import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importedSpecifiers, npmPackFileLists, type PackedPackage, type PackedWorkspace, packageOfSpecifier, packWithPnpm } from './packed-tarballs.ts';
import { readRepositoryFile, repositoryRoot, workspacePackages } from './workspace.ts';

const published = workspacePackages().filter((pkg) => pkg.manifest.private !== true);
const repositoryUrl = 'git+https://github.com/machine-dev/machine.git';
const rootLicense = readRepositoryFile('LICENSE');

describe('publish metadata', () => {
  it('publishes the simulator and keeps the repository checks private', () => {
    const names = published.map((pkg) => pkg.manifest.name);
    expect(names).toContain('@machine/cloud-sim');
    expect(names).not.toContain('@machine/repo-checks');
    const sim = published.find((pkg) => pkg.manifest.name === '@machine/cloud-sim');
    expect(sim?.manifest.bin).toEqual({ 'cloud-sim': './dist/cli.js' });
  });

  it.each(published.map((pkg) => [pkg.path, pkg]))('%s has repository (with directory), homepage, bugs and a public publishConfig', (_path, pkg) => {
    const manifest = pkg.manifest as Record<string, unknown>;
    expect(manifest.repository).toEqual({ type: 'git', url: repositoryUrl, directory: pkg.path });
    expect(manifest.homepage).toBe(`https://github.com/machine-dev/machine/tree/main/${pkg.path}#readme`);
    expect(manifest.bugs).toEqual({ url: 'https://github.com/machine-dev/machine/issues' });
    // A scoped package's first publish is restricted unless access says public; provenance needs repository.
    expect(manifest.publishConfig).toEqual({ access: 'public', provenance: true });
    expect(manifest.license).toBe('Apache-2.0');
  });

  it.each(published.map((pkg) => [pkg.path, pkg]))('%s ships a LICENSE identical to the root one, and a CHANGELOG', (_path, pkg) => {
    const files = pkg.manifest.files as string[];
    expect(files).toContain('LICENSE');
    expect(files).toContain('CHANGELOG.md');
    const license = join(repositoryRoot, pkg.path, 'LICENSE');
    expect(existsSync(license), `copy the root LICENSE to ${pkg.path}/LICENSE`).toBe(true);
    expect(readFileSync(license, 'utf8') === rootLicense, `${pkg.path}/LICENSE differs from the root LICENSE`).toBe(true);
    const changelog = join(repositoryRoot, pkg.path, 'CHANGELOG.md');
    expect(existsSync(changelog), `${pkg.path}/CHANGELOG.md`).toBe(true);
    // changesets inserts each release below the first line, which must name the package.
    expect(readFileSync(changelog, 'utf8').split('\n')[0]).toBe(`# ${pkg.manifest.name}`);
  });

  it.each(published.map((pkg) => [pkg.path, pkg]))('%s builds source maps that carry their sources, or none', (_path, pkg) => {
    const options = effectiveCompilerOptions(join(repositoryRoot, pkg.path, 'tsconfig.build.json'));
    const mapsNeedSrc = options.sourceMap === true && options.inlineSources !== true;
    expect(mapsNeedSrc, 'src/ is not published: set "inlineSources": true (or no source maps) in tsconfig.build.json').toBe(false);
    expect(options.declarationMap === true, 'declaration maps would point at the unpublished src/').toBe(false);
  });
});

describe('tarballs made by npm pack', () => {
  // Releases go through pnpm, but a hand-made `npm pack` must not drop the licence either (npm does
  // not copy the workspace root's LICENSE the way pnpm does).
  let lists: Map<string, string[]>;
  beforeAll(() => {
    lists = npmPackFileLists(published);
  }, 120_000);

  it.each(published.map((pkg) => [pkg.path, pkg]))('%s: npm pack ships LICENSE', (_path, pkg) => {
    expect(lists.get(String(pkg.manifest.name))).toContain('LICENSE');
  });
});

describe('changesets and the release', () => {
  const root = JSON.parse(readRepositoryFile('package.json')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };

  it('has a changesets config that publishes publicly from main', () => {
    const config = JSON.parse(readRepositoryFile('.changeset/config.json')) as Record<string, unknown>;
    expect(config.access).toBe('public');
    expect(config.baseBranch).toBe('main');
  });

  it('has @changesets/cli at the root with a changeset script, and releases with pnpm publish -r and provenance', () => {
    expect(root.devDependencies['@changesets/cli']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(root.scripts.changeset).toBe('changeset');
    expect(root.scripts.release).toContain('pnpm publish -r');
    expect(root.scripts.release).toContain('--provenance');
    expect(readRepositoryFile('.github/workflows/release.yml')).toContain('pnpm run release');
  });

  it('documents that publishing goes through pnpm (npm publish would ship workspace: ranges)', () => {
    const contributing = readRepositoryFile('CONTRIBUTING.md');
    expect(contributing).toContain('pnpm publish -r');
    expect(contributing).toContain('workspace:');
  });
});

describe('tarballs made by pnpm pack', () => {
  let workspace: PackedWorkspace;
  beforeAll(() => {
    workspace = packWithPnpm(published);
  }, 120_000);
  afterAll(() => workspace?.dispose());

  const each = (title: string, check: (packed: PackedPackage) => void) =>
    it.each(published.map((pkg) => [pkg.path]))(title, (path) => {
      const packed = workspace.packages.find((candidate) => candidate.pkg.path === path);
      if (packed === undefined) throw new Error(`${path} was not packed`);
      check(packed);
    });

  each('%s: no workspace: range reaches the registry', (packed) => {
    expect(packed.manifestText).not.toContain('workspace:');
  });

  each('%s: ships LICENSE, README.md, CHANGELOG.md and a built dist', (packed) => {
    expect(packed.files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']));
    expect(
      packed.files.some((file) => file.startsWith('dist/') && file.endsWith('.js')),
      `${packed.pkg.path} has no dist/*.js: run pnpm build first`,
    ).toBe(true);
    expect(packed.files.filter((file) => file.startsWith('src/'))).toEqual([]);
  });

  each('%s: every source map carries the sources it names', (packed) => {
    const maps = packed.files.filter((file) => file.endsWith('.map'));
    const missing = maps.filter((file) => {
      const map = JSON.parse(readFileSync(join(packed.root, file), 'utf8')) as { sources?: string[]; sourcesContent?: unknown[] };
      const contents = map.sourcesContent ?? [];
      return (map.sources ?? []).some((_source, index) => typeof contents[index] !== 'string');
    });
    expect(missing).toEqual([]);
  });

  each('%s: every package the built code imports is a declared dependency', (packed) => {
    const manifest = JSON.parse(packed.manifestText) as Record<string, Record<string, string> | string | undefined>;
    const declared = new Set<string>([
      String(manifest.name),
      ...Object.keys((manifest.dependencies as Record<string, string>) ?? {}),
      ...Object.keys((manifest.peerDependencies as Record<string, string>) ?? {}),
      ...Object.keys((manifest.optionalDependencies as Record<string, string>) ?? {}),
    ]);
    const builtins = new Set(builtinModules);
    const undeclared = new Set<string>();
    for (const file of packed.files.filter((candidate) => candidate.endsWith('.js'))) {
      for (const specifier of importedSpecifiers(readFileSync(join(packed.root, file), 'utf8'))) {
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        const name = packageOfSpecifier(specifier);
        if (!declared.has(name)) undeclared.add(`${name} (${file})`);
      }
    }
    expect([...undeclared]).toEqual([]);
  });
});

/** compilerOptions of a tsconfig after following `extends` (line comments allowed, as tsc allows). */
function effectiveCompilerOptions(path: string): Record<string, unknown> {
  const config = JSON.parse(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => !line.trim().startsWith('//'))
      .join('\n'),
  ) as { extends?: string; compilerOptions?: Record<string, unknown> };
  const base = config.extends === undefined ? {} : effectiveCompilerOptions(resolve(dirname(path), config.extends));
  return { ...base, ...config.compilerOptions };
}
