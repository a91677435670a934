import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CliHarness, cliHarness, fakeConfig } from './test-support/run-cli.ts';

/**
 * Nothing outside `STORAGE/machines/` is read, written or deleted because of a name: every command
 * that takes a machine name refuses an invalid one with create's one-line error, before it touches
 * the file system, and a symbolic link planted in the store is never followed.
 */

/** Every command that takes a machine name, as argv for the name `name`. */
const commands: readonly (readonly [string, (name: string) => string[]])[] = [
  ['rm -f', (name) => ['rm', '-f', name]],
  ['rm -y', (name) => ['rm', '-y', name]],
  ['start', (name) => ['start', name]],
  ['stop', (name) => ['stop', name]],
  ['kill', (name) => ['kill', name]],
  ['restart', (name) => ['restart', name]],
  ['status', (name) => ['status', name]],
  ['ip', (name) => ['ip', name]],
  ['url', (name) => ['url', name]],
  ['config', (name) => ['config', name]],
  ['inspect', (name) => ['inspect', name]],
  ['env', (name) => ['env', '--shell', 'bash', name]],
  ['ssh', (name) => ['ssh', name, 'true']],
  ['provision', (name) => ['provision', name]],
  ['regenerate-certs', (name) => ['regenerate-certs', '-f', name]],
  ['trust-host-key', (name) => ['trust-host-key', '--yes', name]],
  ['version', (name) => ['version', name]],
  ['create', (name) => ['create', '-d', 'fake', '--no-provision', name]],
];

let cli: CliHarness;
/** A folder outside the store that looks like a machine folder, to tempt a vulnerable command. */
let outside: string;

/** A fake-driver record, as a machine folder outside the store would hold. */
const victimRecord = JSON.stringify({ version: 1, name: 'victim', driver: 'fake', status: 'ready', createdAt: '', config: fakeConfig, journal: [], data: { secret: 'outside-data' } });

async function plantVictim(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), victimRecord);
  await writeFile(join(dir, 'keep.txt'), 'must survive');
}

async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.sort();
}

beforeEach(async () => {
  cli = await cliHarness();
  outside = await mkdtemp(join(tmpdir(), 'machine-outside-'));
  await plantVictim(outside);
  // `../x` and `..` resolve to folders of the storage root itself, outside `machines/`.
  await plantVictim(join(cli.storage, 'x'));
  await plantVictim(join(cli.storage, 'machines', 'sub', 'dir'));
  await cli.storeRecord({ name: 'keeper' });
});
afterEach(async () => {
  await cli.close();
  await rm(outside, { recursive: true, force: true });
});

describe('a machine name never leads out of the store', () => {
  const badNames = () => ['../x', '.', '..', '../..', outside, 'sub/dir', 'a/../keeper', ''];

  it.each(commands)('%s refuses invalid names with create\'s one-line error and touches nothing', async (_label, argv) => {
    const before = { storage: await snapshot(cli.storage), outside: await snapshot(outside) };
    for (const name of badNames()) {
      const run = await cli.run(argv(name));
      expect(run.code, `${argv(name).join(' ')}: ${run.stderr}`).toBe(1);
      const expected = name === '' ? 'machine name: a machine name is required' : `machine name: "${name}" may contain only a-z, 0-9 and "-" (an RFC 1123 label)`;
      expect(run.stderr.trim().split('\n').at(-1), argv(name).join(' ')).toBe(expected);
      expect(run.stdout).not.toContain('Successfully removed');
      expect(run.stdout + run.stderr).not.toContain('outside-data');
    }
    expect(await snapshot(cli.storage)).toEqual(before.storage);
    expect(await snapshot(outside)).toEqual(before.outside);
    expect(await readFile(join(cli.storage, 'x', 'keep.txt'), 'utf8')).toBe('must survive');
  });

  it('rm with one bad name among good ones removes nothing and asks nothing', async () => {
    const run = await cli.run(['rm', '-f', 'keeper', '../x']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(await readdir(join(cli.storage, 'machines'))).toContain('keeper');
  });
});

describe('a link planted in the store is never followed', () => {
  beforeEach(async () => {
    await symlink(outside, join(cli.storage, 'machines', 'evil'));
  });

  it.each(commands.filter(([label]) => label !== 'create'))('%s refuses a machine folder that is a symbolic link', async (_label, argv) => {
    const run = await cli.run(argv('evil'));
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('is a symbolic link; machine "evil" is refused');
    expect(run.stdout + run.stderr).not.toContain('outside-data');
    expect(await snapshot(outside)).toEqual(['config.json', 'keep.txt']);
    expect((await lstat(join(cli.storage, 'machines', 'evil'))).isSymbolicLink()).toBe(true);
  });

  it('create of a name whose folder is a planted link refuses it and writes nothing through it', async () => {
    await rm(join(outside, 'config.json'));
    const run = await cli.run(['create', '-d', 'fake', '--no-provision', 'evil']);
    expect(run.code).toBe(1);
    expect(await snapshot(outside)).toEqual(['keep.txt']);
    expect(cli.cloud.leaks()).toEqual([]);
  });

  it('ls lists neither the link nor a folder with an invalid name', async () => {
    await plantVictim(join(cli.storage, 'machines', 'Upper.Case'));
    const run = await cli.run(['ls', '-q']);
    // `sub` (a real folder with a valid name, planted by beforeEach) is listed; the others are not.
    expect(run).toMatchObject({ code: 0, stdout: 'keeper\nsub\n' });
  });

  it('a config.json planted as a link is not read through', async () => {
    const target = join(cli.storage, 'machines', 'keeper', 'config.json');
    await rm(target);
    await symlink(join(outside, 'config.json'), target);
    const run = await cli.run(['inspect', 'keeper']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('config.json is a symbolic link; machine "keeper" is refused');
    expect(run.stdout).not.toContain('outside-data');
  });
});

describe('the reproductions of the issue', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'machine-home-'));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('HOME=… machine rm -f ../.. leaves HOME alone', async () => {
    await plantVictim(join(home, 'home', 'docs'));
    const run = await cli.run(['rm', '-f', '../..'], { env: { HOME: join(home, 'home'), MACHINE_STORAGE_PATH: undefined } });
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('Successfully removed');
    expect(await readFile(join(home, 'home', 'docs', 'keep.txt'), 'utf8')).toBe('must survive');
  });

  it('rm -f . keeps every machine record', async () => {
    const run = await cli.run(['rm', '-f', '.']);
    expect(run.code).toBe(1);
    expect(await readdir(join(cli.storage, 'machines'))).toContain('keeper');
  });
});
