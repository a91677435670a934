import { readFileSync } from 'node:fs';

/** The CLI's version, read from its package.json (no other import, for a fast `--version`). */
export function cliVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

/** The `machine --version` line. */
export function versionLine(): string {
  return `machine version ${cliVersion()}, node ${process.versions.node}`;
}
