import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { basicExec, type RunningSSHServer, startSSHServer } from '@machine/driver-core/testing';
import { type VBoxManageRunner, VBoxManageError } from '../vboxmanage.ts';
import { runFakeVBoxManage } from './fake-vboxmanage.mjs';

/** The fake's JSON state (see fake-vboxmanage.mjs). */
export interface FakeVm {
  name: string;
  uuid: string;
  basefolder: string;
  state: string;
  pending?: { state: string; at: number };
  /** The guest's host-only address: a DHCP lease, or the static one its seed's network-config gives. */
  guestIp?: string;
  /** The prefix of a static guestIp (DHCP leases are /24 in the fake). */
  guestPrefix?: number;
  resets?: number;
  settings: Record<string, string | number>;
  nics: Record<string, { type: string; adapter?: string; network?: string; mac?: string; nictype?: string }>;
  natpf: Record<string, { name: string; proto: string; hostip: string; hostport: number; guestip: string; guestport: number }[]>;
  storage: Record<string, Record<string, string>>;
  sharedfolders?: { name: string; hostpath: string }[];
}

export interface FakeFault {
  /** The command line prefix that fails, e.g. `startvm` or `list hostonlyifs`. */
  command: string;
  times?: number;
  stderr?: string;
  stdout?: string;
  exitCode?: number;
}

/** A command whose reply is lost: carried out, then its VBoxManage hangs (`hold`) or dies (`drop`) before answering. */
export interface LostReply {
  /** The command line prefix, e.g. `createvm` or `hostonlyif create`. */
  command: string;
  how: 'hold' | 'drop';
  /** Calls of `command` that answer before the one whose reply is lost. */
  skip?: number;
  times?: number;
}

export interface FakeBehaviour {
  /** VMState after startvm (default running). */
  startState?: string;
  /** Lines written to VBox.log when startState is `aborted`. */
  startLog?: string;
  ignoreAcpi?: boolean;
  acpiDelayMs?: number;
  /** Only host-only addresses with this prefix are accepted (VirtualBox ≥ 6.1.28's networks.conf). */
  allowedHostOnly?: string;
  /** The harness serves no SSH (a guest that never boots far enough). */
  sshDisabled?: boolean;
  /** `hostonlyif create` also makes a default DHCP server, as some VirtualBox versions do. */
  defaultDhcp?: boolean;
  /** After `controlvm poweroff` the VM keeps its session this long: `unregistervm` meanwhile says it is locked. */
  unlockDelayMs?: number;
}

export interface FakeState {
  version?: string;
  vms: Record<string, FakeVm>;
  media: Record<string, { type: string; uuid: string; sizeMB?: number; description?: string }>;
  hostonlyifs: Record<string, { guid: string; ip?: string; netmask?: string; createdByFake?: boolean }>;
  dhcpservers: Record<string, { ip: string; netmask: string; lower: string; upper: string; enabled: boolean; createdByFake?: boolean }>;
  faults: FakeFault[];
  behaviour: FakeBehaviour;
  createdFiles: string[];
  extradata?: Record<string, Record<string, string>>;
  hostonlynets?: Record<string, { guid: string; netmask: string; lower: string; upper: string; enabled: boolean; createdByFake?: boolean }>;
  lostReplies?: LostReply[];
}

/** A fake VirtualBox: the VBoxManage executable path, its state, and SSH for the VMs it "runs". */
export interface FakeVirtualBox {
  /** The executable to pass as --virtualbox-vboxmanage-path. */
  readonly vboxManagePath: string;
  /**
   * The same fake run in this process (no Node start per call): a VBoxManage runner to inject as
   * the driver's client. Tests that exercise execFile and the lookup use the executable instead.
   */
  readonly runner: VBoxManageRunner;
  readonly dir: string;
  read(): Promise<FakeState>;
  update(change: (state: FakeState) => void): Promise<void>;
  fail(fault: FakeFault): Promise<void>;
  behave(behaviour: FakeBehaviour): Promise<void>;
  /** Loses the reply of the next `command` (see {@link LostReply}). */
  loseReply(command: string, how: 'hold' | 'drop', options?: { skip?: number; times?: number }): Promise<void>;
  /** How many `command` calls were carried out so far (answered or not). */
  carriedOut(command: string): Promise<number>;
  /** Every VBoxManage invocation so far (argument arrays). */
  calls(): Promise<string[][]>;
  /** What is left: VMs, registered media, host-only interfaces and DHCP servers the fake made, files it made that still exist. */
  leaks(): Promise<string[]>;
  /** Runs the fake directly (the "outside the tool" hand). */
  run(args: string[]): Promise<{ stdout: string; stderr: string; code: number }>;
  /** SSH servers currently serving VM forwards, by VM uuid. */
  servers(): ReadonlyMap<string, RunningSSHServer>;
  /** Host key fingerprint a VM presents. */
  hostKeyFingerprint(uuid: string): string | undefined;
  /** The host key a VM presents (the harness keeps one per VM, or the one given). */
  setHostKey(uuid: string, privateKey: string): void;
  /** Seed ISO user-data of a VM (read with isoinfo). */
  userData(uuid: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const fixture = fileURLToPath(new URL('./fake-vboxmanage.mjs', import.meta.url));

function exec(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', ...(env === undefined ? {} : { env }) }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as NodeJS.ErrnoException).code === 'number' ? Number((error as NodeJS.ErrnoException).code) : 1;
      resolve({ stdout, stderr, code });
    });
  });
}

/** Reads one file from an ISO's Joliet tree with isoinfo (genisoimage), independent of our writer. */
export async function isoinfoExtract(iso: string, file: string): Promise<string> {
  const result = await exec('isoinfo', ['-J', '-i', iso, '-x', `/${file}`]);
  if (result.code !== 0) throw new Error(`isoinfo failed: ${result.stderr}`);
  return result.stdout;
}

/** The OpenSSH private key block of a cloud-config `ssh_keys: { ed25519_private: | … }`, de-indented. */
export function hostKeyFromUserData(userData: string): string | undefined {
  const match = /^([ \t]*)-----BEGIN OPENSSH PRIVATE KEY-----[\s\S]*?-----END OPENSSH PRIVATE KEY-----/m.exec(userData);
  if (match === null || !/ssh_keys:/.test(userData)) return undefined;
  const indent = match[1] ?? '';
  return `${match[0]
    .split('\n')
    .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
    .join('\n')}\n`;
}

function effectiveState(vm: FakeVm): string {
  return vm.pending !== undefined && Date.now() >= vm.pending.at ? vm.pending.state : vm.state;
}

/**
 * Starts a fake VirtualBox in a temp folder: a per-instance VBoxManage executable (a Node script
 * that points the fixture at this instance's state file) and a controller that serves SSH with a
 * real ssh2 server on each running VM's NAT forward (127.0.0.1:port), accepting the public key
 * found in the VM's seed ISO. Nothing runs outside this process except the short-lived fake calls.
 */
export async function startFakeVirtualBox(initial: Partial<FakeState> = {}): Promise<FakeVirtualBox> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-vbox-'));
  const statePath = join(dir, 'state.json');
  const state: FakeState = { vms: {}, media: {}, hostonlyifs: {}, dhcpservers: {}, faults: [], behaviour: {}, createdFiles: [], ...initial };
  await writeFile(statePath, JSON.stringify(state, null, 2));
  await writeFile(`${statePath}.log`, '');
  const vboxManagePath = join(dir, 'VBoxManage');
  await writeFile(
    vboxManagePath,
    `#!/usr/bin/env node\nprocess.env.FAKE_VBOX_STATE = ${JSON.stringify(statePath)};\nconst { main } = await import(${JSON.stringify(pathToFileURL(fixture).href)});\nmain();\n`,
  );
  await chmod(vboxManagePath, 0o755);

  const read = async (): Promise<FakeState> => JSON.parse(await readFile(statePath, 'utf8')) as FakeState;
  const write = async (next: FakeState) => {
    const temporary = `${statePath}.harness.tmp`;
    await writeFile(temporary, JSON.stringify(next, null, 2));
    const { rename } = await import('node:fs/promises');
    await rename(temporary, statePath);
  };

  const servers = new Map<string, RunningSSHServer>();
  const serverPorts = new Map<string, number>();
  const hostKeys = new Map<string, string>();
  const fingerprints = new Map<string, string>();
  const starting = new Set<string>();
  const userDataCache = new Map<string, string>();
  let closed = false;

  const seedOf = (vm: FakeVm): string | undefined => {
    for (const ports of Object.values(vm.storage)) for (const medium of Object.values(ports)) if (medium.endsWith('.iso')) return medium;
    return undefined;
  };
  const userData = async (vm: FakeVm): Promise<string | undefined> => {
    const seed = seedOf(vm);
    if (seed === undefined || !existsSync(seed)) return undefined;
    const cached = userDataCache.get(seed);
    if (cached !== undefined) return cached;
    const text = await isoinfoExtract(seed, 'user-data');
    userDataCache.set(seed, text);
    return text;
  };

  const reconcile = async () => {
    let current: FakeState;
    try {
      current = await read();
    } catch {
      return; // mid-rename
    }
    const wanted = new Map<string, { vm: FakeVm; port: number }>();
    if (current.behaviour.sshDisabled !== true) {
      for (const vm of Object.values(current.vms)) {
        const forward = vm.natpf['1']?.find((rule) => rule.guestport === 22);
        if (effectiveState(vm) === 'running' && forward !== undefined) wanted.set(vm.uuid, { vm, port: forward.hostport });
      }
    }
    for (const [uuid, server] of servers) {
      if (wanted.get(uuid)?.port !== serverPorts.get(uuid)) {
        servers.delete(uuid);
        serverPorts.delete(uuid);
        await server.close();
      }
    }
    for (const [uuid, { vm, port }] of wanted) {
      if (servers.has(uuid) || starting.has(uuid) || closed) continue;
      starting.add(uuid);
      try {
        const text = await userData(vm);
        const keys = [...(text ?? '').matchAll(/"(ssh-(?:ed25519|rsa) [A-Za-z0-9+/=]+[^"]*)"/g)].map((match) => match[1] ?? '');
        // Like cloud-init's ssh_keys: a host key in the user data (the provisioner's) is the one the guest presents.
        let hostKey = hostKeys.get(uuid) ?? hostKeyFromUserData(text ?? '');
        if (hostKey === undefined) hostKey = generateSSHKeyPair({ comment: 'host' }).privateKey;
        hostKeys.set(uuid, hostKey);
        const guestIp = vm.guestIp;
        const guestPrefix = vm.guestPrefix ?? 24;
        const server = await startSSHServer({
          host: '127.0.0.1',
          port,
          hostKey,
          authorizedKeys: keys,
          onExec: (command, io) => {
            if (command.trim() === 'ip -o -4 addr show') {
              io.stdout('1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n');
              io.stdout('2: enp0s3    inet 10.0.2.15/24 metric 100 brd 10.0.2.255 scope global dynamic enp0s3\\       valid_lft 86313sec preferred_lft 86313sec\n');
              if (guestIp !== undefined) {
                const lease = vm.guestPrefix === undefined ? ' metric 100' : '';
                const lifetime = vm.guestPrefix === undefined ? 'dynamic enp0s8\\       valid_lft 513sec preferred_lft 513sec' : 'enp0s8\\       valid_lft forever preferred_lft forever';
                io.stdout(`3: enp0s8    inet ${guestIp}/${guestPrefix}${lease} brd 192.168.59.255 scope global ${lifetime}\n`);
              }
              return 0;
            }
            return basicExec(command, io);
          },
        });
        if (closed) {
          await server.close();
        } else {
          servers.set(uuid, server);
          serverPorts.set(uuid, port);
          fingerprints.set(uuid, server.hostKeyFingerprint);
        }
      } catch {
        // Port busy or ISO unreadable: the driver's SSH wait will report it; retried next tick.
      } finally {
        starting.delete(uuid);
      }
    }
  };

  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    reconcile().finally(() => {
      ticking = false;
    });
  }, 20);

  const runner: VBoxManageRunner = {
    run: async (args) => {
      // Yield first, like a real child process would, so aborts and timers get their turn.
      await new Promise((resolve) => setImmediate(resolve));
      const result = runFakeVBoxManage(args, statePath);
      // Never answered (the caller is as good as killed), or killed by a signal before printing.
      if (result.lost === 'hold') return new Promise<never>(() => {});
      if (result.lost === 'drop') throw new VBoxManageError(args, { stdout: '', stderr: '' });
      if (result.code !== 0) throw new VBoxManageError(args, { stdout: result.stdout, stderr: result.stderr, exitCode: result.code });
      return { stdout: result.stdout, stderr: result.stderr };
    },
  };

  const fake: FakeVirtualBox = {
    vboxManagePath,
    runner,
    dir,
    read,
    update: async (change) => {
      const current = await read();
      change(current);
      await write(current);
    },
    fail: (fault) => fake.update((current) => current.faults.push(fault)),
    loseReply: (command, how, options = {}) =>
      fake.update((current) => {
        current.lostReplies = [...(current.lostReplies ?? []), { command, how, ...options }];
      }),
    carriedOut: async (command) =>
      (await readFile(`${statePath}.done`, 'utf8').catch(() => ''))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as string[]).join(' '))
        .filter((joined) => joined === command || joined.startsWith(`${command} `)).length,
    behave: (behaviour) =>
      fake.update((current) => {
        current.behaviour = { ...current.behaviour, ...behaviour };
      }),
    calls: async () =>
      (await readFile(`${statePath}.log`, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as string[]),
    leaks: async () => {
      const current = await read();
      const leaks: string[] = [];
      for (const vm of Object.values(current.vms)) leaks.push(`vm ${vm.name} {${vm.uuid}}`);
      for (const path of Object.keys(current.media)) if (!initial.media?.[path]) leaks.push(`medium ${path}`);
      for (const [name, ifc] of Object.entries(current.hostonlyifs)) if (ifc.createdByFake) leaks.push(`hostonlyif ${name}`);
      for (const [name, server] of Object.entries(current.dhcpservers)) if (server.createdByFake) leaks.push(`dhcpserver ${name}`);
      for (const [name, net] of Object.entries(current.hostonlynets ?? {})) if (net.createdByFake) leaks.push(`hostonlynet ${name}`);
      for (const path of current.createdFiles) if (existsSync(path)) leaks.push(`file ${path}`);
      for (const [key, value] of Object.entries(current.extradata?.global ?? {})) leaks.push(`global extradata ${key}=${value}`);
      for (const vm of Object.values(current.vms)) {
        const seed = seedOf(vm);
        if (seed !== undefined && existsSync(seed)) leaks.push(`file ${seed}`);
      }
      return [...new Set(leaks)];
    },
    run: (args) => exec(vboxManagePath, args),
    servers: () => servers,
    hostKeyFingerprint: (uuid) => fingerprints.get(uuid),
    setHostKey: (uuid, privateKey) => {
      hostKeys.set(uuid, privateKey);
    },
    userData: async (uuid) => {
      const vm = (await read()).vms[uuid];
      return vm === undefined ? undefined : userData(vm);
    },
    close: async () => {
      closed = true;
      clearInterval(timer);
      while (ticking || starting.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await Promise.all([...servers.values()].map((server) => server.close()));
      servers.clear();
      // VBoxManage processes left holding a reply (LostReply `hold`) see their state go and exit.
      const held = (await readFile(`${statePath}.held`, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
      await rm(dir, { recursive: true, force: true });
      for (const pid of held) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  return fake;
}

/** Files left in a machine folder besides the ones a machine keeps for good (key pair, console log). */
export async function strayFiles(machineDir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const keep = new Set(['id_ed25519', 'id_ed25519.pub', 'console.log']);
  const entries = await readdir(machineDir).catch(() => [] as string[]);
  const stray: string[] = [];
  for (const entry of entries) {
    if (keep.has(entry)) continue;
    const info = await stat(join(machineDir, entry)).catch(() => undefined);
    if (info !== undefined) stray.push(entry);
  }
  return stray;
}
