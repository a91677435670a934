import { assertValidMachineName } from '@machine/driver-core';
import { CliError, ExitCode, errorLine } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { type OutputStream, writeLine } from '../io.ts';
import { createCommand } from './create.ts';

/** Whether `create`'s arguments ask for several machines (`--count N`). */
export function wantsMany(tokens: readonly string[]): boolean {
  return tokens.some((token) => token === '--count' || token.startsWith('--count='));
}

/**
 * `machine create -d DRIVER [flags] --count N [--parallel P] NAME`: N machines named from NAME —
 * `web-{n}` gives web-1 … web-N, a NAME without `{n}` gives NAME-1 … NAME-N — created at most P at
 * a time (default 5), each a whole `create` of its own (a failure of one leaves the others), their
 * output lines prefixed with the machine's name. Exit 1 when any failed.
 */
export async function createManyCommand(ctx: CommandContext, tokens: readonly string[]): Promise<number> {
  const rest: string[] = [];
  let count: number | undefined;
  let parallel = 5;
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    const [flag, inline] = token.startsWith('--') && token.includes('=') ? [token.slice(0, token.indexOf('=')), token.slice(token.indexOf('=') + 1)] : [token, undefined];
    if (flag === '--count' || flag === '--parallel') {
      const text = inline ?? tokens[++index] ?? '';
      const value = Number(text);
      if (!/^\d+$/.test(text) || value < 1 || value > 1000) throw new CliError(`${flag}: "${text}" is not a number from 1 to 1000`);
      if (flag === '--count') count = value;
      else parallel = value;
    } else rest.push(token);
  }
  const pattern = rest.at(-1);
  if (count === undefined || pattern === undefined || pattern.startsWith('-')) throw new CliError('--count needs a name pattern last: `machine create -d DRIVER --count 3 web-{n}`');
  const names = Array.from({ length: count }, (_, index) => (pattern.includes('{n}') ? pattern.replaceAll('{n}', String(index + 1)) : `${pattern}-${index + 1}`));
  for (const name of names) assertValidMachineName(name);
  const flags = rest.slice(0, -1);
  const failed: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      const stdout = prefixed(ctx.io.stdout, name);
      const stderr = prefixed(ctx.io.stderr, name);
      const io = { ...ctx.io, stdout: stdout.stream, stderr: stderr.stream };
      let code: number;
      try {
        code = await createCommand({ ...ctx, io }, [...flags, name]);
      } catch (error) {
        const line = errorLine(error);
        if (line !== '') writeLine(stderr.stream, line);
        code = error instanceof CliError ? error.exitCode : ExitCode.error;
      }
      stdout.flush();
      stderr.flush();
      if (code !== ExitCode.ok) failed.push(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, names.length) }, worker));
  const made = names.filter((name) => !failed.includes(name));
  writeLine(ctx.io.stdout, `Created ${made.length} of ${names.length} machines${made.length > 0 ? `: ${made.join(', ')}` : ''}.`);
  if (failed.length > 0) writeLine(ctx.io.stderr, `Failed: ${failed.join(', ')} (each says why above).`);
  return failed.length === 0 ? ExitCode.ok : ExitCode.error;
}

/** A stream that writes whole lines to `target`, each prefixed with `NAME: `. */
function prefixed(target: OutputStream, name: string): { stream: OutputStream; flush(): void } {
  let partial = '';
  const stream: OutputStream = {
    isTTY: false,
    write: (chunk: string | Uint8Array) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) target.write(`${name}: ${line}\n`);
      return true;
    },
  };
  return {
    stream,
    flush: () => {
      if (partial !== '') target.write(`${name}: ${partial}\n`);
      partial = '';
    },
  };
}
