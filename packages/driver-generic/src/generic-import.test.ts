import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** Imports `specifier` in a fresh Node and reports whether ssh2 was resolved on the way. */
async function loadsSsh2(specifier: string): Promise<boolean> {
  const script = `
    import { registerHooks } from 'node:module';
    let ssh2 = false;
    registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); if (result.url.includes('/ssh2/')) ssh2 = true; return result; } });
    await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify({ ssh2 }));
  `;
  const { stdout } = await run(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  return (JSON.parse(stdout.trim()) as { ssh2: boolean }).ssh2;
}

describe('importing the driver', () => {
  it('does not load ssh2 (it is loaded on the first connection)', async () => {
    expect(await loadsSsh2(new URL('./index.ts', import.meta.url).href)).toBe(false);
    expect(await loadsSsh2('@machine/driver-core/ssh')).toBe(true); // the check can see ssh2 being loaded
  });
});
