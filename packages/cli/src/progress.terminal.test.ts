import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Progress in a real terminal: the built `machine` runs inside tmux (a pseudo-terminal, so stdout
 * is a TTY) and the screen is read with `tmux capture-pane`. A driver written here waits at each
 * step for a gate file the test creates, so the screen is read while a step runs and after it
 * ended — no timing is asserted.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
// Under CI (.ci/run installs tmux) a missing tmux fails the tests instead of skipping them.
const underCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
const tmuxAvailable = hasTmux() || underCI;

let work: string;
let socket: string;
let env: Record<string, string>;

/** A driver without SSH whose create and start wait until `GATE_DIR/<step>-<machine>` exists. */
const gatedDriver = `import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
const gate = async (name) => { for (;;) { try { await access(join(process.env.GATE_DIR, name)); return; } catch { await new Promise((r) => setTimeout(r, 20)); } } };
export default {
  name: 'gated', specificationVersion: 'v1', description: 'waits for gate files',
  flags: [],
  createDriver({ context }) {
    const file = () => join(process.env.GATE_DIR, 'state-' + context.machineName);
    const noSSH = () => { const e = new Error('no SSH'); e[Symbol.for('@machine/driver-core.error')] = true; e.code = 'NOT_SUPPORTED'; e.detail = 'no SSH'; throw e; };
    return {
      driverName: 'gated', machineName: context.machineName,
      async preCreateCheck() {},
      async create() {
        await context.journal.record({ kind: 'instance', id: 'i-' + context.machineName });
        context.onProgress?.({ step: 'boot', phase: 'start', message: 'Booting instance i-' + context.machineName + '...' });
        await gate('create-' + context.machineName);
        context.onProgress?.({ step: 'boot', phase: 'done', message: 'Instance i-' + context.machineName + ' booted' });
        await writeFile(file(), 'Running');
      },
      async remove() { for (const e of [...context.journal.entries()]) await context.journal.forget(e.kind, e.id); },
      async start() {
        await gate('start-' + context.machineName);
        try { await access(join(process.env.GATE_DIR, 'fail-' + context.machineName)); } catch { await writeFile(file(), 'Running'); return; }
        throw new Error('instance i-' + context.machineName + ' is gone');
      },
      async stop() { await writeFile(file(), 'Stopped'); },
      async kill() { await writeFile(file(), 'Stopped'); },
      async restart() {},
      async getState() { return (await readFile(file(), 'utf8')).trim(); },
      async getIP() { return '192.0.2.20'; },
      async getSSHHostname() { noSSH(); }, async getSSHPort() { return 22; },
      getSSHUsername: () => 'root', getSSHKeyPath: () => '',
      async getURL() { return 'tcp://192.0.2.20:2376'; },
    };
  },
};
`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
}

/** Runs `machine ARGS` in a new 100×30 tmux window; the shell prints EXIT=<code> when it ends. */
function runInTerminal(session: string, args: readonly string[]): void {
  const assignments = Object.entries(env).map(([key, value]) => `${key}='${value}'`);
  const command = `env -i ${assignments.join(' ')} '${process.execPath}' '${bin}' ${args.join(' ')}; echo EXIT=$?; sleep 600`;
  tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', command);
}

/** The screen's lines, without trailing blank lines. */
function screen(session: string): string[] {
  const lines = tmux('capture-pane', '-p', '-t', session).split('\n');
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  return lines.map((line) => line.trimEnd());
}

async function openGate(name: string): Promise<void> {
  await writeFile(join(env.GATE_DIR as string, name), '');
}

function machine(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }));
  });
}

const SPINNER = '[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]';

beforeAll(async () => {
  if (!tmuxAvailable) return;
  work = await mkdtemp(join(tmpdir(), 'machine-tty-'));
  socket = join(work, 'tmux.sock');
  const drivers = join(work, 'drivers', 'machine-driver-gated');
  await mkdir(drivers, { recursive: true });
  await writeFile(join(drivers, 'package.json'), JSON.stringify({ name: 'machine-driver-gated', version: '1.0.0', type: 'module', exports: { '.': { import: './index.js' } } }));
  await writeFile(join(drivers, 'index.js'), gatedDriver);
  await mkdir(join(work, 'gates'));
  env = { PATH: process.env.PATH ?? '', HOME: work, TERM: 'xterm-256color', MACHINE_STORAGE_PATH: join(work, 'store'), MACHINE_DRIVER_PATH: join(work, 'drivers'), GATE_DIR: join(work, 'gates') };
});

afterAll(async () => {
  if (!tmuxAvailable) return;
  try {
    tmux('kill-server');
  } catch {
    // no server left
  }
  await rm(work, { recursive: true, force: true });
});

describe.skipIf(!tmuxAvailable)(`progress in a real terminal (tmux capture-pane)${tmuxAvailable ? '' : ': skipped, tmux is not installed (apt-get install tmux)'}`, () => {
  it('create: a running step is one line with a spinner, a finished one has a tick and its time, and the end collapses to a summary', { timeout: 60_000 }, async () => {
    runInTerminal('create', ['create', '-d', 'gated', 'web1']);
    await expect.poll(() => screen('create').join('\n'), { timeout: 20_000 }).toMatch(new RegExp(`^${SPINNER} Booting instance i-web1\\.\\.\\.$`, 'm'));
    const running = screen('create');
    expect(running.filter((line) => /^✔ Pre-create checks passed \(\d+\.\ds\)$/.test(line)), running.join('\n')).toHaveLength(1);
    // Each step is drawn once, in place: no "…" line followed by a "✔" line for the same step.
    expect(running.filter((line) => /pre-create/i.test(line))).toHaveLength(1);
    expect(running.filter((line) => line.includes('Booting instance'))).toHaveLength(1);
    expect(running.some((line) => line.includes('Running pre-create checks...'))).toBe(false);

    await openGate('create-web1');
    await expect.poll(() => screen('create').join('\n'), { timeout: 20_000 }).toContain('EXIT=0');
    const done = screen('create');
    expect(done).toHaveLength(3);
    expect(done[0]).toMatch(/^✔ Created machine "web1" \(\d+ steps, \d+\.\ds\)$/);
    expect(done[1]).toBe('Machine "web1" is ready: connect with `machine ssh web1`.');
    expect(done[2]).toBe('EXIT=0');
  });

  it('start a b c: one line per machine, redrawn as each starts; a failure is ✖ with its error below', { timeout: 60_000 }, async () => {
    for (const name of ['a', 'b', 'c']) {
      await openGate(`create-${name}`);
      expect((await machine(['create', '-d', 'gated', name])).code).toBe(0);
      expect((await machine(['stop', name])).code).toBe(0);
    }
    await openGate('fail-c'); // c's start fails once its gate opens
    runInTerminal('start', ['start', 'a', 'b', 'c']);
    await expect.poll(() => screen('start').filter((line) => line.includes('Starting')).length, { timeout: 20_000 }).toBe(3);
    const starting = screen('start');
    expect(starting).toHaveLength(3);
    expect(starting.filter((line) => new RegExp(`^${SPINNER} a  Starting "a"\\.\\.\\. \\(\\d+\\.\\ds\\)$`).test(line))).toHaveLength(1);
    expect(starting.filter((line) => new RegExp(`^${SPINNER} b  Starting "b"\\.\\.\\. \\(\\d+\\.\\ds\\)$`).test(line))).toHaveLength(1);

    await openGate('start-a');
    await expect.poll(() => screen('start').join('\n'), { timeout: 20_000 }).toMatch(/^✔ a {2}Started "a"\. \(\d+\.\ds\)$/m);
    expect(screen('start').filter((line) => line.includes('"a"'))).toHaveLength(1);
    await openGate('start-b');
    await openGate('start-c');
    await expect.poll(() => screen('start').join('\n'), { timeout: 20_000 }).toContain('EXIT=1');
    const done = screen('start');
    expect(done.slice(0, 3).map((line) => line.replace(/\(\d+\.\ds\)/, '(T)'))).toEqual(['✔ a  Started "a". (T)', '✔ b  Started "b". (T)', '✖ c  Starting "c"... (T)']);
    expect(done.filter((line) => line.includes('"a"'))).toHaveLength(1);
    expect(done.slice(3)).toEqual(['machine "c": instance i-c is gone', 'Started machines may have new IP addresses. You may need to re-run the `machine env` command.', 'EXIT=1']);
  });
});
