import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Issue 16 end to end: the built `machine` binary is SIGKILLed at ten moments of a `--sim`
 * DigitalOcean create — three while a create request was carried out by the provider but its
 * answer never came (the simulator's lost-reply fault), seven at spread times of a create whose
 * every call is slowed — then `machine rm -y NAME` must leave the simulated account empty and
 * never claim success while something is alive. `machine sweep` finds what a killed create made
 * when its record is gone, and leaves what is not ours or is claimed.
 */
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const bin = join(packageDir, 'dist', 'bin.js');
let work: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function machine(storage: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '-s', storage, ...args], { env: { PATH: process.env.PATH, HOME: work, ...extraEnv }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** Starts `machine create` in the background; `output()` is what it printed so far. */
function startCreate(storage: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const child = spawn(process.execPath, [bin, '-s', storage, 'create', ...args], { env: { PATH: process.env.PATH, HOME: work, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, output: () => output, exited };
}

interface SimState {
  env: Record<string, string>;
}

async function simState(storage: string): Promise<SimState> {
  return JSON.parse(await readFile(join(storage, 'sim', 'state.json'), 'utf8')) as SimState;
}

async function api(state: SimState, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${state.env.DIGITALOCEAN_API_URL}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${state.env.DIGITALOCEAN_ACCESS_TOKEN}`, 'content-type': 'application/json' },
  });
}

/** Every droplet, key and firewall the simulated account still has (name or id). */
async function leaks(state: SimState): Promise<string[]> {
  const found: string[] = [];
  for (const [path, key] of [['/v2/droplets', 'droplets'], ['/v2/account/keys', 'ssh_keys'], ['/v2/firewalls', 'firewalls']] as const) {
    const body = (await (await api(state, `${path}?per_page=200`)).json()) as Record<string, { id: string | number; name?: string }[]>;
    if (!Array.isArray(body[key])) throw new Error(`${path} does not list ${key}`);
    for (const item of body[key] ?? []) found.push(`${key} ${item.name ?? item.id}`);
  }
  return found;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'machine-kill-e2e-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A kill moment: the faults the simulator starts with, and when to SIGKILL the create. */
interface KillMoment {
  label: string;
  faults: unknown[];
  /** Resolves when the create is to be killed. */
  when: (output: () => string) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Killed 300 ms after the create printed `progress`, while that call's answer is held. */
function heldReply(operation: string, progress: string): KillMoment {
  return {
    label: `answer of ${operation} lost`,
    faults: [{ operation, reply: 'hold' }],
    when: async (output) => {
      await until(`"${progress}"`, () => output().includes(progress));
      await sleep(300);
    },
  };
}

/** Killed `ms` after the driver's create began (the simulator is up), every API call taking 250 ms longer. */
function timed(ms: number): KillMoment {
  return {
    label: `${ms} ms into a slowed create`,
    faults: [{ operation: '*', latencyMs: 250 }],
    when: async (output) => {
      await until('the driver\'s create', () => output().includes('Creating machine "k1"'));
      await sleep(ms);
    },
  };
}

const moments: KillMoment[] = [
  heldReply('keys.create', 'uploading SSH key'),
  heldReply('droplets.create', 'creating droplet'),
  heldReply('firewalls.create', 'creating cloud firewall'),
  ...[0, 300, 600, 900, 1300, 1800, 2500].map(timed),
];

describe('SIGKILL at any moment of a --sim create leaves nothing that rm cannot delete (digitalocean)', { timeout: 600_000 }, () => {
  // Each kill point has its own storage path and simulator, so they run side by side.
  it.concurrent.for(moments.map((moment, index) => ({ ...moment, index: index + 1 })))('kill point $index ($label): rm -y leaves the account empty', async (moment, { expect }) => {
    const storage = await mkdtemp(join(work, 'store-'));
    const env = { CLOUD_SIM_FAULTS: JSON.stringify(moment.faults) };
    try {
      const create = startCreate(storage, ['-d', 'digitalocean', '--sim', '--no-provision', '--digitalocean-firewall', 'k1'], env);
      await moment.when(create.output);
      create.child.kill('SIGKILL');
      await create.exited;
      const state = await simState(storage);
      const removed = await machine(storage, ['rm', '-y', 'k1'], env);
      const alive = await leaks(state);
      // rm never says it removed the machine while something of it is alive.
      if (alive.length > 0) expect(removed.stdout).not.toContain('Successfully removed');
      expect(alive, `after rm: ${removed.stdout}${removed.stderr}\ncreate printed: ${create.output()}`).toEqual([]);
      const recorded = await readFile(join(storage, 'machines', 'k1', 'config.json'), 'utf8').then(() => true, () => false);
      expect(recorded, 'no record is left').toBe(false);
    } finally {
      await machine(storage, ['sim', 'stop']);
    }
  });

  it('rm of a machine whose droplet refuses deletion exits 1, names it, and keeps the record', async () => {
    const storage = await mkdtemp(join(work, 'store-'));
    try {
      const env = { CLOUD_SIM_FAULTS: JSON.stringify([{ operation: 'droplets.delete', error: 'auth', times: 1000 }]) };
      expect((await machine(storage, ['create', '-d', 'digitalocean', '--sim', '--no-provision', 'stuck2'], env)).code).toBe(0);
      const fresh = await simState(storage);
      const removed = await machine(storage, ['rm', '-y', 'stuck2'], env);
      expect(removed.code).toBe(1);
      expect(removed.stdout).not.toContain('Successfully removed');
      expect(removed.stderr).toContain('Error removing machine "stuck2": 1 resource(s) still at the provider:');
      expect(removed.stderr).toMatch(/\n {2}droplet \d+: DigitalOcean refused the access token \(401 /);
      expect(removed.stderr).toContain('The record of "stuck2" is kept: run "machine rm stuck2" again to retry.');
      expect((await machine(storage, ['ls', '-q'], env)).stdout).toContain('stuck2');
      expect((await leaks(fresh)).filter((leak) => leak.startsWith('droplets '))).toEqual(['droplets stuck2']);
    } finally {
      await machine(storage, ['sim', 'stop']);
    }
  });

  it('sweep finds what a killed create made after its record was deleted by hand, deletes it with -y, and never touches an untagged or claimed resource', async () => {
    const storage = await mkdtemp(join(work, 'store-'));
    const env = { CLOUD_SIM_FAULTS: JSON.stringify([{ operation: 'droplets.create', reply: 'hold' }]) };
    try {
      const create = startCreate(storage, ['-d', 'digitalocean', '--sim', '--no-provision', 'lost'], env);
      await heldReply('droplets.create', 'creating droplet').when(create.output);
      create.child.kill('SIGKILL');
      await create.exited;
      await rm(join(storage, 'machines', 'lost'), { recursive: true });
      // A machine the store still has (its resources are claimed), and a droplet that is not ours.
      expect((await machine(storage, ['create', '-d', 'digitalocean', '--sim', '--no-provision', 'kept'], env)).code).toBe(0);
      const state = await simState(storage);
      const foreign = await api(state, '/v2/droplets', { method: 'POST', body: JSON.stringify({ name: 'not-ours', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64' }) });
      expect(foreign.status).toBe(202);

      const young = await machine(storage, ['sweep', '-d', 'digitalocean', '--sim'], env);
      expect(young).toMatchObject({ code: 0, stdout: 'Nothing to sweep: every managed resource is claimed by a machine record.\n' });
      const listed = await machine(storage, ['sweep', '-d', 'digitalocean', '--sim', '--min-age', '0'], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toMatch(/^DRIVER\s+KIND\s+ID\s+NAME\s+MACHINE\s+AGE\s+STATUS\n/);
      expect(listed.stdout).toMatch(/\ndigitalocean\s+droplet\s+\d+\s+lost\s+lost\s+\d+s\s+found\n/);
      expect(listed.stdout).toMatch(/\ndigitalocean\s+ssh-key\s+\d+\s+\S+\s+lost\s+\S+\s+found\n/);
      expect(listed.stdout).not.toContain('not-ours');
      expect(listed.stdout).not.toMatch(/\skept\s/);
      expect(await leaks(state)).toEqual(expect.arrayContaining(['droplets lost', 'droplets kept', 'droplets not-ours']));

      // Sweep's calls draw from the store's shared rate budget: its bucket file is written again.
      await rm(join(storage, 'rate-budgets'), { recursive: true, force: true });
      const swept = await machine(storage, ['sweep', '-d', 'digitalocean', '--sim', '--min-age', '0', '-y'], env);
      expect(swept.code, swept.stderr).toBe(0);
      expect((await readdir(join(storage, 'rate-budgets'))).filter((file) => file.endsWith('.json'))).toHaveLength(1);
      expect(swept.stdout).toMatch(/\ndigitalocean\s+droplet\s+\d+\s+lost\s+lost\s+\d+s\s+deleted\n/);
      const after = await leaks(state);
      expect(after).toContain('droplets not-ours');
      expect(after).toContain('droplets kept');
      expect(after.filter((leak) => leak.includes('lost'))).toEqual([]);
      expect((await machine(storage, ['rm', '-y', 'kept'], env)).code).toBe(0);
      expect((await leaks(state)).filter((leak) => !leak.includes('not-ours'))).toEqual([]);
    } finally {
      await machine(storage, ['sim', 'stop']);
    }
  });
});

/**
 * The other cloud drivers, at the CLI: a create request the provider carried out but whose answer
 * never came (the simulator holds it), the CLI SIGKILLed while it waits, then `rm -y`; the
 * simulator's own leak report (written when it stops) must be empty.
 */
const heldReplies: readonly { driver: string; operation: string }[] = [
  { driver: 'amazonec2', operation: 'ImportKeyPair' },
  { driver: 'amazonec2', operation: 'CreateSecurityGroup' },
  { driver: 'amazonec2', operation: 'RunInstances' },
  { driver: 'google', operation: 'firewalls.insert' },
  { driver: 'google', operation: 'instances.insert' },
  { driver: 'azure', operation: 'networkSecurityGroups.createOrUpdate' },
  { driver: 'azure', operation: 'publicIPAddresses.createOrUpdate' },
  { driver: 'azure', operation: 'networkInterfaces.createOrUpdate' },
  { driver: 'azure', operation: 'virtualMachines.createOrUpdate' },
];

/** Resolves once the record's journal has held a write-ahead intent for `ms` (create is stuck on that call). */
async function stuckOnIntent(storage: string, name: string, ms: number): Promise<void> {
  let since: number | undefined;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const text = await readFile(join(storage, 'machines', name, 'config.json'), 'utf8').catch(() => '');
    const intended = /"state": "intended"/.test(text);
    if (!intended) since = undefined;
    else {
      since ??= Date.now();
      if (Date.now() - since >= ms) return;
    }
    await sleep(50);
  }
  throw new Error('the create never stalled on an intent');
}

describe('SIGKILL while a create request of amazonec2, google or azure is committed but unanswered', { timeout: 600_000 }, () => {
  it.concurrent.for(heldReplies)('$driver, answer of $operation lost: rm -y leaves nothing alive at the simulator', async ({ driver, operation }, { expect }) => {
    const storage = await mkdtemp(join(work, 'store-'));
    const env = { CLOUD_SIM_FAULTS: JSON.stringify([{ operation, reply: 'hold' }]) };
    let stopped = false;
    try {
      const create = startCreate(storage, ['-d', driver, '--sim', '--no-provision', 'k2'], env);
      await stuckOnIntent(storage, 'k2', 800);
      create.child.kill('SIGKILL');
      await create.exited;
      const removed = await machine(storage, ['rm', '-y', 'k2'], env);
      expect(removed.code, `rm: ${removed.stdout}${removed.stderr}\ncreate printed: ${create.output()}`).toBe(0);
      expect(removed.stdout).toContain('Successfully removed k2');
      await machine(storage, ['sim', 'stop']);
      stopped = true;
      const log = await readFile(join(storage, 'sim', 'sim.log'), 'utf8');
      expect(log).toContain('cloud-sim: SIGTERM, stopping');
      expect(log).not.toContain('still alive at exit');
    } finally {
      if (!stopped) await machine(storage, ['sim', 'stop']);
    }
  });
});

