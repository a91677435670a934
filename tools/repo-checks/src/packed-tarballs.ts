import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { repositoryRoot, type WorkspacePackage } from './workspace.ts';

/** One package as `pnpm pack` ships it, unpacked. */
export interface PackedPackage {
  readonly pkg: WorkspacePackage;
  /** The unpacked `package/` folder. */
  readonly root: string;
  /** Paths inside the tarball, relative to `package/`, with forward slashes. */
  readonly files: readonly string[];
  /** The packed package.json as text (what the registry would get). */
  readonly manifestText: string;
}

/** A temporary folder holding every public package packed by pnpm, and a way to delete it. */
export interface PackedWorkspace {
  readonly packages: readonly PackedPackage[];
  dispose(): void;
}

/**
 * Packs every given package with `pnpm pack` (the command `pnpm publish` uses, which rewrites
 * `workspace:` ranges) into a temporary folder and unpacks each tarball there.
 */
export function packWithPnpm(packages: readonly WorkspacePackage[]): PackedWorkspace {
  const folder = mkdtempSync(join(tmpdir(), 'repo-checks-pack-'));
  try {
    const packed = packages.map((pkg) => {
      const destination = join(folder, pkg.folder);
      mkdirSync(destination);
      execFileSync('pnpm', ['pack', '--pack-destination', destination], {
        cwd: join(repositoryRoot, pkg.path),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const tarball = readdirSync(destination).find((name) => name.endsWith('.tgz'));
      if (tarball === undefined) throw new Error(`pnpm pack wrote no tarball for ${pkg.path}`);
      execFileSync('tar', ['-xzf', tarball], { cwd: destination });
      const root = join(destination, 'package');
      return { pkg, root, files: listFiles(root).map((file) => relative(root, file).split('\\').join('/')), manifestText: readFileSync(join(root, 'package.json'), 'utf8') };
    });
    return { packages: packed, dispose: () => rmSync(folder, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** The bare module specifiers a built JavaScript file imports (static, re-exports and `import()`). */
export function importedSpecifiers(source: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /^\s*(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) {
      const specifier = match[1];
      if (specifier !== undefined && !specifier.startsWith('.') && !specifier.startsWith('/')) found.add(specifier);
    }
  }
  return [...found];
}

/** The package a bare specifier names: `@scope/name` or `name`. */
export function packageOfSpecifier(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** For each package, the files `npm pack` (not pnpm) would put in its tarball, from one dry run. */
export function npmPackFileLists(packages: readonly WorkspacePackage[]): Map<string, string[]> {
  const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', ...packages.map((pkg) => `./${pkg.path}`)], {
    cwd: repositoryRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reports = JSON.parse(output) as { name: string; files: { path: string }[] }[];
  return new Map(reports.map((report) => [report.name, report.files.map((file) => file.path)]));
}
