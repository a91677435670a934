import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { CliError, ExitCode } from '../cli-error.ts';
import type { CommandContext } from '../context.ts';
import { writeLine } from '../io.ts';
import { isPostgresUrl, PostgresStore } from '../postgres-store.ts';
import { MachineStore, type Store } from '../store.ts';

/**
 * `machine store migrate --to postgres://…|PATH`: copies every machine (record, journal, data and
 * files) and the CA/client certificate from the current store to another one, then reads each back
 * and compares. The source is never changed. A machine the target has already is left alone when
 * it is identical, and stops the migration (before anything is copied) when it differs.
 */
export async function storeMigrateCommand(ctx: CommandContext, options: { to: string }): Promise<number> {
  const source = ctx.store;
  const target: Store = isPostgresUrl(options.to) ? new PostgresStore(options.to, source.root, ctx.io.env) : new MachineStore(options.to);
  try {
    const names = await source.list();
    const already = new Set(await target.list());
    const conflicts: string[] = [];
    for (const name of names) {
      if (!already.has(name)) continue;
      if (!isDeepStrictEqual(await target.read(name), await source.read(name))) conflicts.push(name);
    }
    if (conflicts.length > 0) throw new CliError(`the target already has other machines named ${conflicts.join(', ')}; nothing was copied (remove them there, or migrate to an empty store)`);
    let copied = 0;
    let files = 0;
    for (const name of names) {
      if (already.has(name)) continue;
      const record = await source.open(name);
      await target.create(record);
      files += await copyFiles(source.machineDir(name), target.machineDir(name));
      await target.write(record);
      copied++;
    }
    const certFiles = await source.withCerts((from) => target.withCerts((to) => copyFiles(from, to)));
    // Read everything back through the target and compare.
    for (const name of names) {
      const expected = await source.open(name);
      const actual = await target.open(name);
      if (!isDeepStrictEqual(actual, expected)) throw new CliError(`verification failed: the record of "${name}" reads back differently from the target`);
      const mismatch = await differingFile(source.machineDir(name), target.machineDir(name));
      if (mismatch !== undefined) throw new CliError(`verification failed: ${mismatch} of "${name}" reads back differently from the target`);
    }
    const certMismatch = await differingFile(await source.certsDir(), await target.certsDir());
    if (certMismatch !== undefined) throw new CliError(`verification failed: the certificate file ${certMismatch} reads back differently from the target`);
    const where = target instanceof PostgresStore ? target.displayUrl : options.to;
    writeLine(
      ctx.io.stdout,
      `Copied ${copied} machine(s) (${files} file(s)) and the CA and client certificate (${certFiles} file(s)) to ${where}; ${names.length - copied} were there already. Every record and file reads back the same. The source store is unchanged.`,
    );
    return ExitCode.ok;
  } finally {
    await target.close();
  }
}

/** Copies the files of a machine folder (not its config.json, which the store writes), returns how many. */
async function copyFiles(from: string, to: string): Promise<number> {
  let count = 0;
  await mkdir(to, { recursive: true, mode: 0o700 });
  for (const entry of await readdir(from, { withFileTypes: true }).catch(() => [])) {
    if (entry.name === 'config.json' || entry.name.includes('.tmp-')) continue;
    if (entry.isDirectory()) count += await copyFiles(join(from, entry.name), join(to, entry.name));
    else if (entry.isFile()) {
      await copyFile(join(from, entry.name), join(to, entry.name));
      count++;
    }
  }
  return count;
}

/** The first file of `from` (config.json aside) whose bytes differ in `to`, or undefined. */
async function differingFile(from: string, to: string): Promise<string | undefined> {
  for (const entry of await readdir(from, { withFileTypes: true }).catch(() => [])) {
    if (entry.name === 'config.json' || entry.name.includes('.tmp-')) continue;
    if (entry.isDirectory()) {
      const inner = await differingFile(join(from, entry.name), join(to, entry.name));
      if (inner !== undefined) return `${entry.name}/${inner}`;
    } else if (entry.isFile()) {
      const [a, b] = await Promise.all([readFile(join(from, entry.name)), readFile(join(to, entry.name)).catch(() => undefined)]);
      if (b === undefined || !a.equals(b)) return entry.name;
    }
  }
  return undefined;
}
