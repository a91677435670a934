import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Vitest global setup of this project: the child-process tests run `dist/bin.js`, so build this
 * package once before any test file starts (and the packages it loads from their dist when they
 * have not been built yet; `pnpm test` builds everything through turbo first).
 */
export default function buildDist(): void {
  const packageDir = fileURLToPath(new URL('../..', import.meta.url));
  const repoDir = join(packageDir, '..', '..');
  const tsc = join(repoDir, 'node_modules', '.bin', 'tsc');
  for (const name of ['driver-core', 'provision', 'driver-digitalocean', 'driver-amazonec2']) {
    const dir = join(repoDir, 'packages', name);
    if (!existsSync(join(dir, 'dist', 'index.js'))) execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  }
  execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: packageDir, stdio: 'inherit' });
}
