#!/usr/bin/env node
// Kept minimal for a fast start: `--version` answers without loading anything else, and every
// command's code is imported only when that command runs.
import { lstatSync, mkdirSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';

/**
 * V8 keeps the code it compiled for each module on disk: the cloud SDKs are megabytes of JavaScript
 * that every run compiles again otherwise. The folder is the user's own (created 0700; used only
 * when the user owns it and nobody else may write it), in the temp folder so every HOME of the same
 * user shares it. NODE_COMPILE_CACHE moves it, NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
function compileCacheFolder(): string | undefined {
  const uid = process.getuid?.();
  const folder = uid === undefined ? join(homedir(), '.cache', 'machine-compile-cache') : join(tmpdir(), `machine-compile-cache-${uid}`);
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const stats = lstatSync(folder);
    return stats.isDirectory() && (uid === undefined || stats.uid === uid) && (stats.mode & 0o022) === 0 ? folder : undefined;
  } catch {
    return undefined;
  }
}
// A command allocates much and briefly (records, SDK answers): a larger young generation spares it
// most of its scavenges (`ls` of 1,000 machines: ~150 ms less garbage collection). The heap grows
// into it only as needed.
setFlagsFromString('--max-semi-space-size=64');

if (process.env.NODE_COMPILE_CACHE !== undefined) enableCompileCache();
else {
  const folder = compileCacheFolder();
  if (folder !== undefined) enableCompileCache(folder);
}
const argv = process.argv.slice(2);
// A reader that stops early (`machine ls | head`) closes the pipe: stop quietly, like other CLIs.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version')) {
  const { versionLine } = await import('./version.ts');
  process.stdout.write(`${versionLine()}\n`);
} else {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nInterrupted: cleaning up (Ctrl-C again to quit at once)\n');
    controller.abort();
  });
  const { main } = await import('./main.ts');
  const code = await main(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: controller.signal,
    inheritStdio: true,
  });
  process.exitCode = code;
  // Detached work (SSH sockets that linger) must not keep a finished command alive.
  setTimeout(() => process.exit(code), 50).unref();
}
