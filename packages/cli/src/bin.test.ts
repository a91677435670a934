import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBrokenDriver, writeFixtureDriver } from './test-support/fixture-driver.ts';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
let work: string;
let env: NodeJS.ProcessEnv;

/** Runs the built binary as a child process. */
function machine(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}, nodeOptions: readonly string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeOptions, bin, ...args], { env: { ...env, ...extraEnv }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-bin-'));
  const drivers = join(work, 'drivers');
  await writeFixtureDriver(drivers, 'memo');
  await writeBrokenDriver(drivers, 'bad');
  env = {
    PATH: process.env.PATH,
    HOME: work,
    MACHINE_STORAGE_PATH: join(work, 'store'),
    MACHINE_DRIVER_PATH: drivers,
    FIXTURE_CLOUD_DIR: join(work, 'cloud'),
  };
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the built machine binary', () => {
  it('prints its version', async () => {
    const result = await machine(['--version']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^machine version \d+\.\d+\.\d+, node \d+/);
  });

  it('loads no command code for --version, and no cloud SDK for ls, drivers or a driver\'s --help', async () => {
    const hook = join(work, 'log-loads.mjs');
    await writeFile(
      hook,
      "import { registerHooks } from 'node:module';\nimport { appendFileSync } from 'node:fs';\n" +
        'registerHooks({ load(url, context, next) { appendFileSync(process.env.LOAD_LOG, url + "\\n"); return next(url, context); } });\n',
    );
    const storage = join(work, 'lazy-store');
    const loaded = async (args: string[]): Promise<string> => {
      const log = join(work, `loads-${args.join('-').replace(/[^a-z-]/g, '')}.txt`);
      const result = await machine(args, { LOAD_LOG: log, MACHINE_STORAGE_PATH: storage }, ['--import', pathToFileURL(hook).href]);
      expect(result.code, result.stderr).toBe(0);
      return readFile(log, 'utf8');
    };
    const version = await loaded(['--version']);
    expect(version).toContain('/dist/bin.js');
    expect(version).not.toContain('commander');
    expect(version).not.toContain('/dist/main.js');
    expect((await machine(['create', '-d', 'memo', 'lazy'], { MACHINE_STORAGE_PATH: storage })).code).toBe(0);
    for (const args of [['ls'], ['drivers'], ['create', '-d', 'digitalocean', '--help']]) {
      const log = await loaded(args);
      expect(log, args.join(' ')).toContain('/dist/main.js');
      expect(log, args.join(' ')).not.toContain('@digitalocean/dots');
      if (args[0] !== 'create') {
        expect(log, args.join(' ')).not.toContain('ssh2');
        expect(log, args.join(' ')).not.toContain('driver-digitalocean');
      } else expect(log).toContain('driver-digitalocean');
    }
    expect((await machine(['rm', '-y', 'lazy'], { MACHINE_STORAGE_PATH: storage })).code).toBe(0);
  });

  it('runs a machine through its whole lifecycle with a driver found in MACHINE_DRIVER_PATH', async () => {
    expect((await machine(['create', '-d', 'memo', '--memo-color', 'red', 'e2e'])).code).toBe(0);
    expect((await machine(['ls', '--format', '{{.Name}} {{.State}}'])).stdout).toBe('e2e Running\n');
    for (const [action, state] of [['stop', 'Stopped'], ['start', 'Running'], ['restart', 'Running'], ['kill', 'Stopped']] as const) {
      const result = await machine([action, 'e2e']);
      expect(result.code, `${action}: ${result.stderr}`).toBe(0);
      expect((await machine(['status', 'e2e'])).stdout).toBe(`${state}\n`);
    }
    expect((await machine(['inspect', '-f', '{{.Driver.color}}', 'e2e'])).stdout).toBe('red\n');
    expect((await machine(['rm', '-y', 'e2e'])).code).toBe(0);
    expect(await readdir(join(work, 'cloud'))).toEqual([]);
  });

  it('Ctrl-C aborts create through its signal: the driver deletes what it made, exit 130', async () => {
    const child = spawn(process.execPath, [bin, 'create', '-d', 'memo', '--memo-hang', 'hung'], { env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Wait until the journal on disk lists the instance: the create is in flight.
    const config = join(work, 'store', 'machines', 'hung', 'config.json');
    for (let waited = 0; waited < 10_000; waited += 50) {
      if (existsSync(config) && (await readFile(config, 'utf8')).includes('i-hung')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(JSON.parse(await readFile(config, 'utf8'))).toMatchObject({ status: 'creating', journal: [{ kind: 'instance', id: 'i-hung' }] });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('create of "hung" was interrupted; nothing is left behind');
    expect(existsSync(join(work, 'cloud', 'i-hung'))).toBe(false);
    expect(existsSync(join(work, 'store', 'machines', 'hung'))).toBe(false);
    expect(existsSync(join(work, 'store', 'locks', 'hung.lock'))).toBe(false);
  });

  it('gives one clear line and exit code 1 for bad input', async () => {
    const cases: [string[], RegExp][] = [
      [['create', '-d', 'nosuch', 'x1'], /^Driver "nosuch" not found/],
      [['create', '-d', 'memo', '--memo-nope', 'x', 'x1'], /^--memo-nope: unknown flag; known flags: --memo-cloud-dir, --memo-color, --memo-hang\n$/],
      [['create', '-d', 'memo', 'Not_Valid'], /^machine name: "Not_Valid"/],
      [['create', '-d', 'bad', 'x1'], /^machine-driver-bad does not export a valid machine driver/],
      [['status', 'ghost'], /^Docker machine "ghost" does not exist\./],
    ];
    for (const [args, pattern] of cases) {
      const result = await machine(args);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr, args.join(' ')).toMatch(pattern);
    }
    const missing = await machine(['create', '-d', 'memo', 'x1'], { FIXTURE_CLOUD_DIR: '' });
    expect(missing).toMatchObject({ code: 1, stderr: '--memo-cloud-dir: is required: pass --memo-cloud-dir or set FIXTURE_CLOUD_DIR\n' });
    const noToken = await machine(['create', '-d', 'digitalocean', 'web1']);
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toMatch(/^Error with pre-create check: "no DigitalOcean access token.*DIGITALOCEAN_ACCESS_TOKEN.*"\n$/);
    expect(existsSync(join(work, 'store', 'machines', 'web1'))).toBe(false);
    expect((await machine(['create', '-d', 'memo', 'dup'])).code).toBe(0);
    expect(await machine(['create', '-d', 'memo', 'dup'])).toMatchObject({ code: 1, stderr: 'Docker machine "dup" already exists\n' });
    expect((await machine(['rm', '-f', 'dup'])).code).toBe(0);
  });

  it('lists the other machines when one config.json is corrupt', async () => {
    expect((await machine(['create', '-d', 'memo', 'fine'])).code).toBe(0);
    await mkdir(join(work, 'store', 'machines', 'mangled'), { recursive: true });
    await writeFile(join(work, 'store', 'machines', 'mangled', 'config.json'), 'not json');
    const result = await machine(['ls']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/fine\s+-\s+memo\s+Running/);
    expect(result.stdout).toMatch(/mangled\s+-\s+not found\s+Error\s+Unknown\s+config\.json of machine "mangled" is corrupt/);
    await machine(['rm', '-f', 'fine', 'mangled']);
    expect((await machine(['ls', '-q'])).stdout).toBe('');
  });
});

describe('a closed output pipe', () => {
  it('ends quietly with no stack trace when the reader stops early (machine … | head -1)', async () => {
    const child = spawn(process.execPath, [bin, 'create', '-d', 'memo', '--help'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.destroy(); // the reader is gone before the first line is written
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });
});
