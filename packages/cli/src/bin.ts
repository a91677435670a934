#!/usr/bin/env node
// Kept minimal for a fast start: `--version` answers without loading anything else, and every
// command's code is imported only when that command runs.
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
