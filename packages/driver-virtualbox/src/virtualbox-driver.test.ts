import { createServer, type Server } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMemoryContext,
  type Driver,
  findEntry,
  InvalidConfigError,
  MachineError,
  NotFoundError,
  NotSupportedError,
  ProviderError,
  parseFlags,
  SSHError,
  State,
  TimeoutError,
} from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createVirtualBoxDescriptor } from './index.ts';
import { fakeHost } from './test-support/fake-host.ts';
import { type FakeVirtualBox, startFakeVirtualBox, strayFiles } from './test-support/fake-virtualbox.ts';
import { type VBoxManageRunner, VBoxManageError } from './vboxmanage.ts';
import { virtualBoxFlags } from './virtualbox-flags.ts';

let fake: FakeVirtualBox;
let host: Awaited<ReturnType<typeof fakeHost>>;
let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vbox-driver-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));
beforeEach(async () => {
  fake = await startFakeVirtualBox();
  host = await fakeHost(join(fake.dir, 'host'));
});
afterEach(() => fake.close());

/**
 * A driver on the fake. By default it gets the fake as an in-process runner (fast); `executable`
 * runs the fake VBoxManage executable through execFile and the real lookup instead.
 */
function machine(
  flags: Record<string, unknown> = {},
  hostOverrides: Record<string, unknown> = {},
  { executable = false, client }: { executable?: boolean; client?: VBoxManageRunner } = {},
) {
  counter += 1;
  const name = `vb-${counter}`;
  const machineDir = join(root, 'machines', name);
  const context = createMemoryContext(name, machineDir);
  const config = parseFlags(
    virtualBoxFlags,
    {
      'virtualbox-vboxmanage-path': fake.vboxManagePath,
      'virtualbox-image-path': host.imagePath,
      'virtualbox-boot-timeout': 10,
      'virtualbox-stop-timeout': 2,
      ...flags,
    },
    { env: {} },
  );
  const options = host.descriptorOptions;
  const descriptor = createVirtualBoxDescriptor({ ...options, host: { ...options.host, ...hostOverrides } });
  const driver: Driver = descriptor.createDriver({ config, context, ...(executable ? {} : { client: client ?? fake.runner }) });
  return { driver, context, machineDir, name };
}

async function rejection(promise: Promise<unknown>): Promise<MachineError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(MachineError.isInstance(error), `expected a MachineError, got ${String(error)}`).toBe(true);
  return error as MachineError;
}

async function expectNothingLeft(context: ReturnType<typeof machine>['context'], machineDir: string) {
  expect(await fake.leaks()).toEqual([]);
  expect(context.journal.entries()).toEqual([]);
  expect(await strayFiles(machineDir)).toEqual([]);
}

/**
 * Runs `body` while a server that speaks no SSH holds 127.0.0.1:`port` (the harness frees a stopped
 * VM's SSH port within a tick or two, so binding is retried for a while).
 */
async function whileSquatting(port: number, body: () => Promise<void>): Promise<void> {
  const squatter: Server = createServer((socket) => socket.destroy());
  for (let attempt = 0; ; attempt++) {
    const bound = await new Promise<boolean>((resolve) => {
      squatter.once('error', () => resolve(false));
      squatter.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) break;
    if (attempt > 100) throw new Error(`port ${port} stayed busy`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  try {
    await body();
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
}

const commands = async () => (await fake.calls()).map((args) => args.slice(0, 2).join(' '));

describe('create', () => {
  it('makes the host-only network, disk, seed ISO and VM, boots it and reads its host-only IP; remove deletes them all', async () => {
    const { driver, context, machineDir, name } = machine();
    await driver.create();
    const vm = findEntry(context.journal, 'vm');
    expect(vm).toBeDefined();
    const state = await fake.read();
    const record = state.vms[vm?.id ?? ''];
    expect(record).toMatchObject({ name, state: 'running', basefolder: machineDir });
    expect(record?.settings).toMatchObject({ cpus: 2, memory: 2048, firmware: 'bios' });
    expect(record?.nics['1']).toMatchObject({ type: 'nat', nictype: '82540EM' });
    expect(record?.nics['2']).toMatchObject({ type: 'hostonly', adapter: 'vboxnet0', promisc: 'deny' });
    const forward = record?.natpf['1']?.[0];
    expect(forward).toMatchObject({ name: 'ssh', proto: 'tcp', hostip: '127.0.0.1', guestport: 22 });
    expect(await driver.getSSHPort()).toBe(forward?.hostport);
    expect(await driver.getSSHHostname()).toBe('127.0.0.1');
    expect(record?.storage.SATA).toEqual({ '0-0': join(machineDir, 'disk.vdi'), '1-0': join(machineDir, 'seed.iso') });
    expect(state.hostonlyifs.vboxnet0).toMatchObject({ ip: '192.168.59.1', netmask: '255.255.255.0' });
    expect(state.dhcpservers['HostInterfaceNetworking-vboxnet0']).toMatchObject({ ip: '192.168.59.2', lower: '192.168.59.100', upper: '192.168.59.254', enabled: true });
    expect(state.media[join(machineDir, 'disk.vdi')]?.sizeMB).toBe(20000);
    expect(state.media[host.imagePath]).toBeUndefined(); // the source image is released again
    expect(await driver.getIP()).toBe('192.168.59.100');
    expect(await driver.getURL()).toBe('tcp://192.168.59.100:2376');
    expect(context.data.read()).toMatchObject({ ip: '192.168.59.100', hostOnlyInterface: 'vboxnet0', hostKeyFingerprint: fake.hostKeyFingerprint(vm?.id ?? '') });
    expect(driver.getSSHUsername()).toBe('docker');

    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect(Object.keys((await fake.read()).hostonlyifs)).toEqual([]);
  });

  it('runs VBoxManage only with argument arrays and a fixed number of calls per create and remove', async () => {
    const { driver } = machine({}, {}, { executable: true });
    const before = (await fake.calls()).length;
    await driver.create();
    const created = (await fake.calls()).slice(before);
    await driver.remove();
    const removed = (await fake.calls()).slice(before + created.length);
    expect(created.map((args) => args.slice(0, 2).join(' '))).toEqual([
      '--version',
      'list hostonlyifs',
      'clonemedium disk',
      'closemedium disk',
      'modifymedium disk',
      'createvm --name',
      // The managed-by tag `machine sweep` looks for, in the VM's extra data.
      expect.stringMatching(/^setextradata /),
      'list hostonlyifs',
      'hostonlyif create',
      'setextradata global',
      'hostonlyif ipconfig',
      'dhcpserver add',
      expect.stringMatching(/^modifyvm /),
      expect.stringMatching(/^storagectl /),
      expect.stringMatching(/^storageattach /),
      expect.stringMatching(/^storageattach /),
      expect.stringMatching(/^sharedfolder add/),
      expect.stringMatching(/^startvm /),
      expect.stringMatching(/^showvminfo /),
    ]);
    expect(removed.map((args) => args.slice(0, 2).join(' '))).toEqual([
      expect.stringMatching(/^showvminfo /),
      expect.stringMatching(/^controlvm /),
      expect.stringMatching(/^unregistervm /),
      // The rest only after the VM (deleteAfter), newest first: the seed ISO is written last.
      'closemedium dvd',
      'list vms',
      'dhcpserver remove',
      'hostonlyif remove',
      'setextradata global',
      'closemedium disk',
    ]);
    // The report's numbers (calls are printed so the closing note can quote them).
    console.log(`VBoxManage calls: create ${created.length}, remove ${removed.length}`);
  });

  it('needs fewer calls when the host-only interface exists, and a handful per stop and start', async () => {
    const first = machine({}, {}, { executable: true });
    const second = machine({}, {}, { executable: true });
    await first.driver.create();
    const count = async (run: () => Promise<void>) => {
      const before = (await fake.calls()).length;
      await run();
      return (await fake.calls()).slice(before).map((args) => args[0] === 'list' || args[0] === 'setextradata' || args[0] === 'getextradata' ? args.slice(0, 2).join(' ') : args[0]);
    };
    const create = await count(() => second.driver.create());
    expect(create).toEqual([
      '--version',
      'list hostonlyifs',
      'clonemedium',
      'closemedium',
      'modifymedium',
      'createvm',
      expect.stringMatching(/^setextradata /),
      'list hostonlyifs',
      'getextradata global',
      // An interface machine made may lack a DHCP server (its maker's guest had a static address).
      'list dhcpservers',
      'modifyvm',
      'storagectl',
      'storageattach',
      'storageattach',
      'sharedfolder',
      'startvm',
      'showvminfo',
    ]);
    const stop = await count(() => second.driver.stop());
    expect(stop.slice(0, 3)).toEqual(['showvminfo', 'controlvm', 'showvminfo']);
    const start = await count(() => second.driver.start());
    // (--version was already checked by this driver object; a fresh CLI process adds that one call.)
    expect(start).toEqual(['showvminfo', 'list hostonlyifs', 'startvm', 'showvminfo']);
    const remove = await count(() => second.driver.remove());
    // The interface is the first machine's and still in use: the in-use check lists the VMs and reads the other one.
    expect(remove).toEqual(['showvminfo', 'controlvm', 'unregistervm', 'closemedium', 'list vms', 'showvminfo', 'closemedium']);
    console.log(`VBoxManage calls: create reusing the interface ${create.length}, stop ${stop.length}, start ${start.length}, remove keeping the interface ${remove.length}`);
    await first.driver.remove();
    expect(await fake.leaks()).toEqual([]);
  });

  it('puts the host boot user data, the key and the user file into the seed ISO (read back with isoinfo)', async () => {
    const extra = join(root, 'extra-user-data.sh');
    await writeFile(extra, '#!/bin/sh\necho from-the-user\n');
    const { driver, context, machineDir, name } = machine({ 'virtualbox-userdata': extra, 'virtualbox-ssh-user': 'ubuntu' });
    await driver.create({ boot: { userData: '#cloud-config\nwrite_files:\n  - path: /etc/from-host\n' } });
    const userData = (await fake.userData(findEntry(context.journal, 'vm')?.id ?? '')) ?? '';
    const publicKey = (await readFile(join(machineDir, 'id_ed25519.pub'), 'utf8')).trim();
    expect(userData).toMatch(/^Content-Type: multipart\/mixed/);
    expect(userData).toContain('path: /etc/from-host');
    expect(userData).toContain(`      - ${JSON.stringify(publicKey)}`);
    expect(userData).toContain('  - name: "ubuntu"');
    expect(userData).toContain('echo from-the-user');
    const { execFileSync } = await import('node:child_process');
    const metaData = execFileSync('isoinfo', ['-J', '-i', join(machineDir, 'seed.iso'), '-x', '/meta-data'], { encoding: 'utf8' });
    expect(metaData).toMatch(new RegExp(`^instance-id: "${name}-[0-9a-f-]{36}"\\nlocal-hostname: "${name}"\\n$`));
    expect(driver.getSSHUsername()).toBe('ubuntu');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
  });

  it('pins boot.hostKeyFingerprint: the host key from the boot user data is accepted and stored, any other fails create and cleans up', async () => {
    const hostKey = generateSSHKeyPair({ comment: 'guest' });
    const indented = hostKey.privateKey.trim().split('\n').map((line) => `    ${line}`).join('\n');
    const bootUserData = `#cloud-config\nssh_keys:\n  ed25519_private: |\n${indented}\n  ed25519_public: ${hostKey.publicKey}\n`;
    const first = machine();
    await first.driver.create({ boot: { userData: bootUserData, hostKeyFingerprint: hostKey.sha256Fingerprint } });
    expect(first.context.data.read().hostKeyFingerprint).toBe(hostKey.sha256Fingerprint);
    expect(fake.hostKeyFingerprint(findEntry(first.context.journal, 'vm')?.id ?? '')).toBe(hostKey.sha256Fingerprint);
    await first.driver.remove();
    // Without that user data the guest has another key: refused, and create cleans up.
    const second = machine();
    const error = await rejection(second.driver.create({ boot: { hostKeyFingerprint: hostKey.sha256Fingerprint } }));
    expect(error).toBeInstanceOf(SSHError);
    expect((error as SSHError).failure).toBe('host-key');
    await expectNothingLeft(second.context, second.machineDir);
  });
});

describe('checks before anything is made', () => {
  const writes = async () => (await commands()).filter((command) => !/^(--version|list |showvminfo)/.test(command));

  it('rejects a missing VBoxManage with the one-line list of places it looked', async () => {
    const { driver } = machine({ 'virtualbox-vboxmanage-path': undefined }, { env: { PATH: '/nonexistent' } }, { executable: true });
    const error = await rejection(driver.preCreateCheck());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toMatch(/^machine "vb-\d+": preCreateCheck: --virtualbox-vboxmanage-path: VBoxManage not found; looked in --virtualbox-vboxmanage-path\/VBOX_MANAGE_PATH \(unset\), VBOX_MSI_INSTALL_PATH \(unset\)/);
    const create = machine({ 'virtualbox-vboxmanage-path': undefined }, { env: { PATH: '/nonexistent' } }, { executable: true });
    const failed = await rejection(create.driver.create());
    expect(failed).toBeInstanceOf(InvalidConfigError);
    expect(failed.operation).toBe('create');
    await expectNothingLeft(create.context, create.machineDir);
  });

  it('finds VBoxManage through VBOX_MSI_INSTALL_PATH', async () => {
    const { driver } = machine({ 'virtualbox-vboxmanage-path': undefined }, { env: { VBOX_MSI_INSTALL_PATH: fake.dir, PATH: '' } }, { executable: true });
    await driver.preCreateCheck();
    expect(await commands()).toContain('--version');
  });

  it('refuses VirtualBox older than 6.1', async () => {
    await fake.update((state) => {
      state.version = '6.0.24r139119';
    });
    const { driver, context, machineDir } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(NotSupportedError);
    expect(error.message).toContain('VirtualBox 6.0.24r139119 is too old: machine needs VirtualBox 6.1 or newer');
    expect(await writes()).toEqual([]);
    await expectNothingLeft(context, machineDir);
  });

  it('refuses a CPU without VT-x/AMD-v unless --virtualbox-no-vtx-check', async () => {
    await writeFile(host.cpuInfoPath, 'processor\t: 0\nflags\t\t: fpu sse sse2 hypervisor\n');
    const { driver } = machine();
    const error = await rejection(driver.preCreateCheck());
    expect(error).toBeInstanceOf(NotSupportedError);
    expect(error.message).toMatch(/does not offer VT-x\/AMD-v .*--virtualbox-no-vtx-check skips this check/);
    await machine({ 'virtualbox-no-vtx-check': true }).driver.preCreateCheck();
  });

  it('refuses a host-only CIDR that collides with a host route, before any write', async () => {
    const { driver, context, machineDir } = machine({ 'virtualbox-hostonly-cidr': '172.17.8.1/24' });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain('--virtualbox-hostonly-cidr: 172.17.8.0/24 collides with the host route 172.17.0.0/16 on docker0');
    expect(await writes()).toEqual([]);
    await expectNothingLeft(context, machineDir);
  });

  it('reports every missing input file at once, before running VBoxManage', async () => {
    const { driver } = machine({
      'virtualbox-image-path': '/nonexistent/image.vmdk',
      'virtualbox-userdata': '/nonexistent/user-data',
      'virtualbox-share-folder': '/nonexistent/dir:share',
    });
    const error = await rejection(driver.preCreateCheck());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toBe(
      `machine "${driver.machineName}": preCreateCheck: --virtualbox-image-path: /nonexistent/image.vmdk does not exist; --virtualbox-userdata: /nonexistent/user-data does not exist; --virtualbox-share-folder: /nonexistent/dir does not exist`,
    );
    expect(await commands()).toEqual([]);
  });

  it('refuses a CIDR inside the network of an existing host-only interface with another address', async () => {
    await fake.update((state) => {
      state.hostonlyifs.vboxnet0 = { guid: 'g', ip: '192.168.59.7', netmask: '255.255.255.0' };
    });
    const error = await rejection(machine().driver.preCreateCheck());
    expect(error.message).toMatch(/host-only interface vboxnet0 already uses 192\.168\.59\.7\/255\.255\.255\.0.*pass its address \(192\.168\.59\.7\/24\)/);
  });

  it('maps VirtualBox refusing the range (6.1.28+ networks.conf) to the CIDR flag, and removes the interface it made', async () => {
    await fake.behave({ allowedHostOnly: '192.168.56.' });
    const { driver, context, machineDir } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toMatch(/--virtualbox-hostonly-cidr: VirtualBox refused the host-only range/);
    await expectNothingLeft(context, machineDir);
  });
});

describe('failure at each create step leaves nothing behind', () => {
  const steps = [
    'list hostonlyifs',
    'hostonlyif create',
    'setextradata',
    'hostonlyif ipconfig',
    'dhcpserver add',
    'clonemedium',
    'modifymedium',
    'createvm',
    'modifyvm',
    'storagectl',
    'storageattach',
    'sharedfolder',
    'startvm',
  ];
  it.each(steps)('%s fails', async (step) => {
    await fake.fail({ command: step, times: 1, stderr: `VBoxManage: error: injected failure of ${step}\nVBoxManage: error: Details: code E_FAIL (0x80004005)` });
    const { driver, context, machineDir } = machine();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toContain(`injected failure of ${step}`);
    expect((error as ProviderError).providerCode).toBe('E_FAIL');
    expect((error as { cleanupError?: unknown }).cleanupError).toBeUndefined();
    await expectNothingLeft(context, machineDir);
  });

  it('a full host disk while cloning is a QuotaError, and the partial disk is removed', async () => {
    await fake.fail({ command: 'clonemedium', times: 1, stderr: 'VBoxManage: error: Failed to clone medium\nVBoxManage: error: Could not write to the file (VERR_DISK_FULL)' });
    const { driver, context, machineDir } = machine();
    const error = await rejection(driver.create());
    expect(error.code).toBe('QUOTA');
    await expectNothingLeft(context, machineDir);
  });

  it('a cloud image smaller than the disk flag allows is a flag error', async () => {
    await fake.fail({ command: 'modifymedium', times: 1, stderr: 'VBoxManage: error: Resize medium operation for this format is not implemented yet!\nVBoxManage: error: Shrinking is not yet supported' });
    const { driver, context, machineDir } = machine();
    expect((await rejection(driver.create())).message).toMatch(/--virtualbox-disk-size: is smaller than the image's own disk/);
    await expectNothingLeft(context, machineDir);
  });

  it.each(['clonemedium', 'createvm', 'startvm'])('an abort right after %s cleans up and rejects with CancelledError', async (step) => {
    const controller = new AbortController();
    const { driver, context, machineDir } = machine({}, {}, {
      client: {
        run: async (args) => {
          const result = await fake.runner.run(args);
          if (args[0] === step) controller.abort();
          return result;
        },
      },
    });
    expect((await rejection(driver.create({ signal: controller.signal }))).code).toBe('CANCELLED');
    expect((await fake.calls()).some((args) => args[0] === step)).toBe(true);
    await expectNothingLeft(context, machineDir);
  });
});

describe('boot failures', () => {
  it('a VM that never reaches running times out and is removed', async () => {
    await fake.behave({ startState: 'starting' });
    const { driver, context, machineDir } = machine({ 'virtualbox-boot-timeout': 1 });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toMatch(/gave up waiting for VM vb-\d+ to be running after 1 s/);
    await expectNothingLeft(context, machineDir);
  });

  it('a VM that aborts at start because VT-x is unavailable reports it from VBox.log', async () => {
    await fake.behave({ startState: 'aborted', startLog: '00:00:00.100000 VMSetError: VT-x is not available (VERR_VMX_NO_VMX)' });
    const { driver, context, machineDir } = machine({ 'virtualbox-no-vtx-check': true });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(NotSupportedError);
    expect(error.message).toContain('VERR_VMX_NO_VMX');
    await expectNothingLeft(context, machineDir);
  });

  it('a VM that hits a guru meditation while starting fails create at once (no boot-timeout wait) and is removed', async () => {
    await fake.behave({ startState: 'gurumeditation' });
    const { driver, context, machineDir } = machine({ 'virtualbox-boot-timeout': 30 });
    const started = Date.now();
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toMatch(/guru meditation \(VMState gurumeditation\) while starting/);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The stuck VM holds its session: remove powers it off before unregistervm.
    const calls = await fake.calls();
    const poweroff = calls.findIndex((args) => args[0] === 'controlvm' && args[2] === 'poweroff');
    expect(poweroff).toBeGreaterThan(-1);
    expect(calls.findIndex((args) => args[0] === 'unregistervm')).toBeGreaterThan(poweroff);
    await expectNothingLeft(context, machineDir);
  });

  it('SSH that never answers times out and the VM is removed', async () => {
    await fake.behave({ sshDisabled: true });
    const { driver, context, machineDir } = machine({ 'virtualbox-boot-timeout': 2 });
    const error = await rejection(driver.create());
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toMatch(/SSH on 127\.0\.0\.1:\d+/);
    await expectNothingLeft(context, machineDir);
  });
});

describe('operations', () => {
  it('retries a locked session, then reports it as a retryable ProviderError', async () => {
    const { driver } = machine();
    await driver.create();
    const locked = "VBoxManage: error: The machine 'x' is already locked by a session (or being locked or unlocked)\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine";
    await fake.fail({ command: 'showvminfo', times: 2, stderr: locked });
    expect(await driver.getState()).toBe(State.Running);
    await fake.fail({ command: 'showvminfo', times: 3, stderr: locked });
    const error = await rejection(driver.getState());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.isRetryable).toBe(true);
    expect((error as ProviderError).providerCode).toBe('VBOX_E_INVALID_OBJECT_STATE');
    await driver.remove();
  });

  it('a VBoxManage that hangs (VBoxSVC stuck) is killed after its time limit and reported as a TimeoutError', async () => {
    const hung = join(fake.dir, 'hung-VBoxManage');
    await writeFile(hung, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const context = createMemoryContext('hung', join(root, 'machines', 'hung'));
    await context.journal.record({ kind: 'vm', id: '0fbbb6a4-7a4d-4f3f-8a5b-1d7a3e4b9c21' });
    const config = parseFlags(virtualBoxFlags, { 'virtualbox-vboxmanage-path': hung }, { env: {} });
    const options = host.descriptorOptions;
    const descriptor = createVirtualBoxDescriptor({ ...options, timings: { ...options.timings, vboxManage: { media: 300, other: 300 } } });
    const started = Date.now();
    const error = await rejection(descriptor.createDriver({ config, context }).getState());
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toBe(
      'machine "hung": getState: VBoxManage showvminfo did not finish within 0.3 s and was stopped (VirtualBox (VBoxSVC) may be hung: if `VBoxManage list vms` hangs too, restart VirtualBox)',
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('remove retries unregistervm while the VM it just powered off still holds its session', async () => {
    const { driver, context, machineDir } = machine();
    await driver.create();
    await fake.behave({ unlockDelayMs: 15 });
    await driver.remove();
    const unregisters = (await fake.calls()).filter((args) => args[0] === 'unregistervm');
    expect(unregisters.length).toBeGreaterThan(1);
    await expectNothingLeft(context, machineDir);
  });

  it('stop powers off a guest that ignores the ACPI button after --virtualbox-stop-timeout', async () => {
    const { driver } = machine({ 'virtualbox-stop-timeout': 1 });
    await driver.create();
    await fake.behave({ ignoreAcpi: true });
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    expect((await commands()).slice(-4)).toEqual([expect.stringMatching(/^showvminfo/), expect.stringMatching(/^controlvm/), expect.stringMatching(/^showvminfo/), expect.stringMatching(/^showvminfo/)]);
    const calls = await fake.calls();
    expect(calls.filter((args) => args[0] === 'controlvm').map((args) => args[2])).toEqual(['acpipowerbutton', 'poweroff']);
    await driver.remove();
  });

  it('restart resets a hung guest instead of waiting forever', async () => {
    const { driver, context } = machine({ 'virtualbox-stop-timeout': 1 });
    await driver.create();
    await fake.behave({ ignoreAcpi: true });
    await driver.restart();
    expect(await driver.getState()).toBe(State.Running);
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    expect((await fake.read()).vms[uuid]?.resets).toBe(1);
    await driver.remove();
  });

  it('start moves the SSH forward when its port was taken while the VM was off, and pins the host key', async () => {
    const { driver, context } = machine();
    await driver.create();
    await driver.stop();
    const oldPort = await driver.getSSHPort();
    await whileSquatting(oldPort, () => driver.start());
    const newPort = await driver.getSSHPort();
    expect(newPort).not.toBe(oldPort);
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    expect((await fake.read()).vms[uuid]?.natpf['1']).toEqual([{ name: 'ssh', proto: 'tcp', hostip: '127.0.0.1', hostport: newPort, guestip: '', guestport: 22 }]);
    expect(await driver.getState()).toBe(State.Running);
    // Another host key on the same forward is refused.
    fake.setHostKey(uuid, generateSSHKeyPair().privateKey);
    await driver.kill();
    const error = await rejection(driver.start());
    expect(error).toBeInstanceOf(SSHError);
    expect((error as SSHError).failure).toBe('host-key');
    await driver.remove();
  });

  it('reports a guru meditation as Error, and remove powers the stuck VM off before unregistering it', async () => {
    const { driver, context, machineDir } = machine();
    await driver.create();
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    await fake.update((state) => {
      const vm = state.vms[uuid];
      if (vm !== undefined) vm.state = 'gurumeditation';
    });
    expect(await driver.getState()).toBe(State.Error);
    await driver.remove();
    await expectNothingLeft(context, machineDir);
  });

  it('create moves the SSH forward when its port is taken between choosing it and startvm', async () => {
    // VirtualBox 6.1+ starts a VM whose forward it cannot bind (it only logs it): SSH would reach the squatter.
    const squatter: Server = createServer((socket) => socket.destroy());
    let taken: number | undefined;
    const { driver, context, machineDir } = machine({ 'virtualbox-boot-timeout': 3 }, {}, {
      client: {
        run: async (args) => {
          if (args[0] === 'storagectl' && taken === undefined) {
            const forward = (await fake.read()).vms[args[1] ?? '']?.natpf['1']?.[0];
            taken = forward?.hostport;
            await new Promise<void>((resolve, reject) => {
              squatter.once('error', reject);
              squatter.listen(taken, '127.0.0.1', () => resolve());
            });
          }
          return fake.runner.run(args);
        },
      },
    });
    try {
      await driver.create();
      expect(taken).toBeTypeOf('number');
      const port = await driver.getSSHPort();
      expect(port).not.toBe(taken);
      const uuid = findEntry(context.journal, 'vm')?.id ?? '';
      expect((await fake.read()).vms[uuid]?.natpf['1']).toEqual([{ name: 'ssh', proto: 'tcp', hostip: '127.0.0.1', hostport: port, guestip: '', guestport: 22 }]);
      await driver.remove();
      await expectNothingLeft(context, machineDir);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('start of a saved VM moves the SSH forward when its port was taken while it was saved', async () => {
    const { driver, context } = machine();
    await driver.create();
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    const oldPort = await driver.getSSHPort();
    await fake.update((state) => {
      const vm = state.vms[uuid];
      if (vm !== undefined) vm.state = 'saved';
    });
    await whileSquatting(oldPort, () => driver.start());
    const newPort = await driver.getSSHPort();
    expect(newPort).not.toBe(oldPort);
    expect((await fake.read()).vms[uuid]?.natpf['1']?.[0]?.hostport).toBe(newPort);
    expect(await driver.getState()).toBe(State.Running);
    await driver.remove();
  });

  it('kill discards the saved state of a saved VM', async () => {
    const { driver, context } = machine();
    await driver.create();
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    await fake.update((state) => {
      const vm = state.vms[uuid];
      if (vm !== undefined) vm.state = 'saved';
    });
    expect(await driver.getState()).toBe(State.Saved);
    await driver.kill();
    expect(await driver.getState()).toBe(State.Stopped);
    expect((await fake.calls()).some((args) => args[0] === 'discardstate' && args[1] === uuid)).toBe(true);
    await driver.remove();
  });

  it('a paused VM is resumed by start and stop', async () => {
    const { driver, context } = machine();
    await driver.create();
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    await fake.run(['controlvm', uuid, 'pause']);
    expect(await driver.getState()).toBe(State.Paused);
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    await fake.run(['controlvm', uuid, 'pause']);
    await driver.stop();
    expect(await driver.getState()).toBe(State.Stopped);
    await driver.remove();
  });
});

describe('host-only interfaces that are not ours, or still in use', () => {
  it('reuses a matching interface the user has, adds a DHCP server it lacks, and removes only that server', async () => {
    await fake.update((state) => {
      state.hostonlyifs.vboxnet3 = { guid: 'g', ip: '192.168.59.1', netmask: '255.255.255.0' };
    });
    const { driver, context, machineDir } = machine();
    await driver.create();
    expect(context.data.read().hostOnlyInterface).toBe('vboxnet3');
    expect(findEntry(context.journal, 'hostonly-if')).toMatchObject({ id: 'vboxnet3', preExisting: true });
    await driver.remove();
    const state = await fake.read();
    expect(state.hostonlyifs.vboxnet3).toBeDefined();
    expect(state.dhcpservers).toEqual({});
    await expectNothingLeft(context, machineDir);
  });

  it('configures the default DHCP server some VirtualBox versions add to a new interface', async () => {
    await fake.behave({ defaultDhcp: true });
    const { driver, context, machineDir } = machine();
    await driver.create();
    expect((await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0']).toMatchObject({ ip: '192.168.59.2', lower: '192.168.59.100', upper: '192.168.59.254', enabled: true });
    expect(await commands()).toContain('dhcpserver modify');
    expect(await driver.getIP()).toBe('192.168.59.100');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
  });

  it('two machines created at the same time share one new interface', async () => {
    const machines = [machine(), machine(), machine()];
    await Promise.all(machines.map(({ driver }) => driver.create()));
    const state = await fake.read();
    expect(Object.keys(state.hostonlyifs)).toEqual(['vboxnet0']);
    expect(Object.values(state.vms).map((vm) => vm.nics['2']?.adapter)).toEqual(['vboxnet0', 'vboxnet0', 'vboxnet0']);
    expect(new Set(machines.map(({ context }) => context.data.read().ip)).size).toBe(3);
    await Promise.all(machines.map(({ driver }) => driver.remove()));
    for (const { context, machineDir } of machines) await expectNothingLeft(context, machineDir);
    expect(await strayFiles(host.cacheDir)).toEqual([]);
  });

  it('a slow holder keeps the host-only lock past the stale limit: concurrent creates still share one interface', async () => {
    // hostonlyif create can take a minute on Windows; the lock must not look abandoned meanwhile.
    const slow: VBoxManageRunner = {
      run: async (args) => {
        if (args[0] === 'hostonlyif' && args[1] === 'create') await new Promise((resolve) => setTimeout(resolve, 800));
        return fake.runner.run(args);
      },
    };
    const quickStale = { ...host.descriptorOptions, timings: { ...host.descriptorOptions.timings, lockStaleAfter: 200 } };
    const machines = [0, 1].map((index) => {
      const name = `slow-lock-${counter}-${index}`;
      const context = createMemoryContext(name, join(root, 'machines', name));
      const config = parseFlags(virtualBoxFlags, { 'virtualbox-image-path': host.imagePath, 'virtualbox-boot-timeout': 10 }, { env: {} });
      return { context, machineDir: join(root, 'machines', name), driver: createVirtualBoxDescriptor(quickStale).createDriver({ config, context, client: slow }) };
    });
    await Promise.all(machines.map(({ driver }) => driver.create()));
    const state = await fake.read();
    expect(Object.keys(state.hostonlyifs)).toEqual(['vboxnet0']);
    await Promise.all(machines.map(({ driver }) => driver.remove()));
    for (const { context, machineDir } of machines) await expectNothingLeft(context, machineDir);
    expect(await strayFiles(host.cacheDir)).toEqual([]);
  });

  it('a create racing the remove of the last VM on the interface still gets a working interface', async () => {
    const first = machine();
    const second = machine();
    await first.driver.create();
    await Promise.all([first.driver.remove(), second.driver.create()]);
    const state = await fake.read();
    const vm = Object.values(state.vms)[0];
    expect(Object.keys(state.vms)).toHaveLength(1);
    expect(state.hostonlyifs[vm?.nics['2']?.adapter ?? '']).toMatchObject({ ip: '192.168.59.1' });
    expect(await second.driver.getState()).toBe(State.Running);
    await second.driver.remove();
    await expectNothingLeft(second.context, second.machineDir);
    await expectNothingLeft(first.context, first.machineDir);
  });

  it('keeps an interface it made while another VM still uses it', async () => {
    const first = machine();
    const second = machine();
    await first.driver.create();
    await second.driver.create();
    expect(second.context.data.read().hostOnlyInterface).toBe('vboxnet0');
    // Tagged as made by machine (global extra data), so the second machine may delete it too.
    expect(findEntry(second.context.journal, 'hostonly-if')?.preExisting).toBe(false);
    expect((await fake.read()).extradata?.global).toEqual({ 'machine/hostonly-if/vboxnet0': first.name });
    await first.driver.remove();
    expect((await fake.read()).hostonlyifs.vboxnet0).toBeDefined();
    await second.driver.remove();
    await expectNothingLeft(second.context, second.machineDir);
    expect((await fake.read()).hostonlyifs).toEqual({});
  });

  it('a remove whose VM delete fails keeps the host-only interface in the journal, so the next remove deletes it', async () => {
    const { driver, context, machineDir } = machine();
    await driver.create();
    await fake.fail({ command: 'unregistervm', times: 1, stderr: 'VBoxManage: error: injected failure of unregistervm\nVBoxManage: error: Details: code E_FAIL (0x80004005)' });
    const error = await rejection(driver.remove());
    expect(error.code).toBe('CLEANUP');
    expect(context.journal.entries().map((entry) => entry.kind).sort()).toEqual(['disk', 'hostonly-if', 'seed-iso', 'vm']);
    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect((await fake.read()).hostonlyifs).toEqual({});
  });

  it('a VM deleted outside the tool reports NotFoundError everywhere and remove still finishes', async () => {
    const { driver, context, machineDir } = machine();
    await driver.create();
    const uuid = findEntry(context.journal, 'vm')?.id ?? '';
    await fake.run(['controlvm', uuid, 'poweroff']);
    await fake.run(['unregistervm', uuid, '--delete']);
    for (const operation of [() => driver.getState(), () => driver.getIP(), () => driver.start(), () => driver.stop(), () => driver.kill(), () => driver.restart()]) {
      expect(await rejection(operation())).toBeInstanceOf(NotFoundError);
    }
    await driver.remove();
    await expectNothingLeft(context, machineDir);
  });
});

describe('VirtualBox 7 on macOS: host-only networks', () => {
  const mac = { platform: 'darwin' as const, routes: { read: async () => [{ iface: 'en0', network: '192.168.1.0', prefix: 24 }] } };

  it('adds a host-only network, attaches the VM with --host-only-net2, and removes the network with the last VM', async () => {
    const { driver, context, machineDir } = machine({}, mac);
    await driver.create();
    const state = await fake.read();
    expect(state.hostonlyifs).toEqual({});
    expect(state.hostonlynets?.['machine-192.168.59.0-24']).toMatchObject({ netmask: '255.255.255.0', lower: '192.168.59.100', upper: '192.168.59.254', enabled: true });
    const vm = state.vms[findEntry(context.journal, 'vm')?.id ?? ''];
    expect(vm?.nics['2']).toMatchObject({ type: 'hostonlynet', network: 'machine-192.168.59.0-24' });
    // What VBoxManage 7 prints for such an adapter.
    const info = (await fake.run(['showvminfo', vm?.uuid ?? '', '--machinereadable'])).stdout;
    expect(info).toContain('nic2="hostonlynetwork"\n');
    expect(info).toContain('hostonly-network2="machine-192.168.59.0-24"\n');
    expect(await driver.getIP()).toBe('192.168.59.100');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect((await fake.read()).hostonlynets).toEqual({});
  });

  it('reuses a matching network the user made and never deletes it; VirtualBox 6.1 on macOS still uses interfaces', async () => {
    await fake.update((state) => {
      state.hostonlynets = { HostNetwork: { guid: 'g', netmask: '255.255.255.0', lower: '192.168.59.2', upper: '192.168.59.199', enabled: true } };
    });
    const { driver, context } = machine({}, mac);
    await driver.create();
    expect(findEntry(context.journal, 'hostonly-net')).toMatchObject({ id: 'HostNetwork', preExisting: true });
    await driver.remove();
    expect(Object.keys((await fake.read()).hostonlynets ?? {})).toEqual(['HostNetwork']);
    await fake.update((state) => {
      state.version = '6.1.50r161033';
    });
    const old = machine({}, mac);
    await old.driver.create();
    expect(old.context.data.read().hostOnlyInterface).toBe('vboxnet0');
    await old.driver.remove();
    expect(await fake.leaks()).toEqual([]);
  });

  it('refuses a range another host-only network serves with another mask, and host routes that collide', async () => {
    await fake.update((state) => {
      state.hostonlynets = { Other: { guid: 'g', netmask: '255.255.0.0', lower: '192.168.59.2', upper: '192.168.255.254', enabled: true } };
    });
    expect((await rejection(machine({}, mac).driver.preCreateCheck())).message).toMatch(/host-only network Other already serves 192\.168\.59\.2-192\.168\.255\.254/);
    expect((await rejection(machine({ 'virtualbox-hostonly-cidr': '192.168.1.10/24' }, mac).driver.preCreateCheck())).message).toMatch(/collides with the host route 192\.168\.1\.0\/24 on en0/);
  });
});

describe('start repairs what went missing while the VM was off', () => {
  it('re-creates a host-only interface deleted outside the tool, and remove deletes the new one', async () => {
    const { driver, context, machineDir } = machine();
    await driver.create();
    await driver.stop();
    await fake.run(['dhcpserver', 'remove', '--interface', 'vboxnet0']);
    await fake.run(['hostonlyif', 'remove', 'vboxnet0']);
    await fake.update((state) => {
      // Someone else now has vboxnet0 for another range: the driver must not pick it.
      state.hostonlyifs.vboxnet0 = { guid: 'g', ip: '192.168.56.1', netmask: '255.255.255.0' };
    });
    await driver.start();
    expect(await driver.getState()).toBe(State.Running);
    const state = await fake.read();
    const vm = state.vms[findEntry(context.journal, 'vm')?.id ?? ''];
    expect(vm?.nics['2']?.adapter).toBe('vboxnet1');
    expect(state.hostonlyifs.vboxnet1).toMatchObject({ ip: '192.168.59.1' });
    expect(context.data.read().hostOnlyInterface).toBe('vboxnet1');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect(Object.keys((await fake.read()).hostonlyifs)).toEqual(['vboxnet0']);
  });

  it('adds the last lines of VBox.log to a failed startvm', async () => {
    const { driver, context, machineDir, name } = machine();
    await driver.create();
    await driver.kill();
    await writeFile(join(machineDir, name, 'Logs', 'VBox.log'), '00:00:01.000 a line\n00:00:02.000 VMSetError: Failed to open /dev/vboxnetctl: No such file or directory\n');
    await fake.fail({ command: 'startvm', times: 1, stderr: 'VBoxManage: error: The virtual machine has terminated unexpectedly during startup\nVBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005)' });
    const error = await rejection(driver.start());
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toContain('terminated unexpectedly during startup; VBox.log ends: 00:00:01.000 a line | 00:00:02.000 VMSetError: Failed to open /dev/vboxnetctl');
    expect((error as ProviderError).providerCode).toBe('NS_ERROR_FAILURE');
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
  });
});

describe('--virtualbox-hostonly-no-dhcp: a static host-only address instead of DHCP', () => {
  const noDhcp = { 'virtualbox-hostonly-no-dhcp': true };
  const uuidOf = (context: ReturnType<typeof machine>['context']) => findEntry(context.journal, 'vm')?.id ?? '';
  const dhcpCalls = async () => (await fake.calls()).filter((args) => args[0] === 'dhcpserver');
  async function seedNetworkConfig(machineDir: string): Promise<string> {
    const { execFileSync } = await import('node:child_process');
    return execFileSync('isoinfo', ['-J', '-i', join(machineDir, 'seed.iso'), '-x', '/network-config'], { encoding: 'utf8' });
  }

  it('is accepted from the flag and from VIRTUALBOX_HOSTONLY_NO_DHCP, and is off by default', () => {
    expect(parseFlags(virtualBoxFlags, { 'virtualbox-hostonly-no-dhcp': true }, { env: {} }).hostOnlyNoDhcp).toBe(true);
    expect(parseFlags(virtualBoxFlags, {}, { env: { VIRTUALBOX_HOSTONLY_NO_DHCP: 'true' } }).hostOnlyNoDhcp).toBe(true);
    expect(parseFlags(virtualBoxFlags, {}, { env: {} }).hostOnlyNoDhcp).toBe(false);
  });

  it('makes no DHCP server, puts the static address into the seed network-config, records it, and getIP answers it; remove leaves nothing', async () => {
    const { driver, context, machineDir } = machine(noDhcp);
    await driver.create();
    const state = await fake.read();
    const uuid = uuidOf(context);
    const created = await fake.calls();
    expect(created.map((args) => (args[0] === 'setextradata' ? args.slice(0, 3).join(' ') : args.slice(0, 2).join(' ')))).toEqual([
      '--version',
      'list hostonlyifs',
      'clonemedium disk',
      'closemedium disk',
      'modifymedium disk',
      'createvm --name',
      `setextradata ${uuid} machine/managed-by`,
      'list hostonlyifs',
      'hostonlyif create',
      'setextradata global machine/hostonly-if/vboxnet0',
      'hostonlyif ipconfig',
      // Under the host-only lock: the other VMs' recorded addresses (none here), the network's DHCP servers.
      'list vms',
      'list dhcpservers',
      `setextradata ${uuid} machine/hostonly-ip`,
      `modifyvm ${uuid}`,
      `storagectl ${uuid}`,
      `storageattach ${uuid}`,
      `storageattach ${uuid}`,
      'sharedfolder add',
      `startvm ${uuid}`,
      `showvminfo ${uuid}`,
    ]);
    console.log(`VBoxManage calls: create with --virtualbox-hostonly-no-dhcp ${created.length}`);
    expect(state.hostonlyifs.vboxnet0).toMatchObject({ ip: '192.168.59.1', netmask: '255.255.255.0' });
    expect(state.dhcpservers).toEqual({});
    expect(await dhcpCalls()).toEqual([]);
    // The first free address: not .0 (network), .1 (host), .2 (where a DHCP server would sit).
    expect(state.extradata?.[uuid]).toEqual({ 'machine/hostonly-ip': '192.168.59.3', 'machine/managed-by': expect.stringMatching(/^machine \d{4}-\d\d-\d\dT/) });
    const { natMac, hostOnlyMac } = context.data.read();
    const colon = (mac: unknown) => (String(mac).toLowerCase().match(/../g) ?? []).join(':');
    expect(await seedNetworkConfig(machineDir)).toBe(
      [
        'version: 2',
        'ethernets:',
        '  nat:',
        '    match:',
        `      macaddress: "${colon(natMac)}"`,
        '    dhcp4: true',
        '  hostonly:',
        '    match:',
        `      macaddress: "${colon(hostOnlyMac)}"`,
        '    dhcp4: false',
        '    addresses:',
        '      - "192.168.59.3/24"',
        '',
      ].join('\n'),
    );
    expect(await driver.getIP()).toBe('192.168.59.3');
    expect(await driver.getURL()).toBe('tcp://192.168.59.3:2376');
    expect(await driver.getSSHHostname()).toBe('127.0.0.1');
    expect(context.data.read()).toMatchObject({ ip: '192.168.59.3', hostOnlyStaticIp: '192.168.59.3' });
    // The guest took the address from its seed (the fake's guest reads network-config), not from a lease.
    expect(state.vms[uuid]).toMatchObject({ guestIp: '192.168.59.3', guestPrefix: 24 });
    await driver.stop();
    expect(await driver.getIP()).toBe('192.168.59.3');
    await driver.start();
    expect(await driver.getIP()).toBe('192.168.59.3');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect((await fake.read()).hostonlyifs).toEqual({});
    expect((await fake.read()).extradata?.[uuid]).toBeUndefined();
  });

  it('machines created at once get different addresses (chosen under the host-only lock); a freed address is taken again', async () => {
    const machines = [machine(noDhcp), machine(noDhcp), machine(noDhcp)];
    await Promise.all(machines.map(({ driver }) => driver.create()));
    const ips = await Promise.all(machines.map(({ driver }) => driver.getIP()));
    expect([...ips].sort()).toEqual(['192.168.59.3', '192.168.59.4', '192.168.59.5']);
    const state = await fake.read();
    expect(Object.keys(state.hostonlyifs)).toEqual(['vboxnet0']);
    expect(state.dhcpservers).toEqual({});
    // Each guest has the address its machine recorded.
    for (const [index, { context }] of machines.entries()) expect(state.vms[uuidOf(context)]?.guestIp).toBe(ips[index]);
    const holder = machines[ips.indexOf('192.168.59.4')];
    await holder?.driver.remove();
    const next = machine(noDhcp);
    const before = (await fake.calls()).length;
    await next.driver.create();
    expect(await next.driver.getIP()).toBe('192.168.59.4');
    // The create read the recorded address of each other VM.
    const others = machines.filter((entry) => entry !== holder).map(({ context }) => uuidOf(context));
    const read = (await fake.calls()).slice(before).filter((args) => args[0] === 'getextradata' && args[2] === 'machine/hostonly-ip');
    expect(read.map((args) => args[1]).sort()).toEqual([...others].sort());
    await Promise.all([...machines.filter((entry) => entry !== holder), next].map(({ driver }) => driver.remove()));
    for (const { context, machineDir } of [...machines, next]) await expectNothingLeft(context, machineDir);
    // Only the interface's removal asked for a DHCP server, and "Failed to find DHCP server" counted as done.
    const calls = await dhcpCalls();
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((args) => args[1] === 'remove')).toBe(true);
  });

  it('joins an interface another machine made with a DHCP server, leaves that server alone and stays out of its leases', async () => {
    const first = machine();
    await first.driver.create();
    expect(await first.driver.getIP()).toBe('192.168.59.100');
    const server = (await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0'];
    expect(server).toMatchObject({ enabled: true });
    const before = (await dhcpCalls()).length;
    const second = machine(noDhcp);
    await second.driver.create();
    expect(await second.driver.getIP()).toBe('192.168.59.3');
    expect(second.context.data.read().hostOnlyInterface).toBe('vboxnet0');
    await second.driver.remove();
    expect(await dhcpCalls()).toHaveLength(before);
    expect((await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0']).toEqual(server);
    expect(await first.driver.getState()).toBe(State.Running);
    await first.driver.remove();
    await expectNothingLeft(second.context, second.machineDir);
    await expectNothingLeft(first.context, first.machineDir);
  });

  it("skips the range of the user's own DHCP server on the network and the addresses other VMs record", async () => {
    await fake.update((state) => {
      state.hostonlyifs.vboxnet2 = { guid: 'g', ip: '192.168.59.1', netmask: '255.255.255.0' };
      state.dhcpservers['HostInterfaceNetworking-vboxnet2'] = { ip: '192.168.59.3', netmask: '255.255.255.0', lower: '192.168.59.4', upper: '192.168.59.20', enabled: true };
    });
    // VMs made outside this test's machines: one records an address in the CIDR, one outside it.
    for (const [name, address] of [['inside', '192.168.59.21'], ['outside', '192.168.60.22']]) {
      expect((await fake.run(['createvm', '--name', name ?? '', '--basefolder', fake.dir, '--register'])).code).toBe(0);
      expect((await fake.run(['setextradata', name ?? '', 'machine/hostonly-ip', address ?? ''])).code).toBe(0);
    }
    const other = machine(noDhcp);
    await other.driver.create();
    expect(await other.driver.getIP()).toBe('192.168.59.22');
    for (const name of ['inside', 'outside']) expect((await fake.run(['unregistervm', name, '--delete'])).code).toBe(0);
    const state = await fake.read();
    expect(state.dhcpservers['HostInterfaceNetworking-vboxnet2']).toMatchObject({ ip: '192.168.59.3', lower: '192.168.59.4', upper: '192.168.59.20', enabled: true });
    await other.driver.remove();
    expect(Object.keys((await fake.read()).hostonlyifs)).toEqual(['vboxnet2']);
    expect(Object.keys((await fake.read()).dhcpservers)).toEqual(['HostInterfaceNetworking-vboxnet2']);
    await expectNothingLeft(other.context, other.machineDir);
  });

  it('a machine with DHCP joining an interface a static machine made adds the server it needs; the last remove deletes both', async () => {
    const first = machine(noDhcp);
    await first.driver.create();
    const second = machine();
    await second.driver.create();
    expect(await second.driver.getIP()).toBe('192.168.59.100');
    expect((await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0']).toMatchObject({ ip: '192.168.59.2', lower: '192.168.59.100', enabled: true });
    expect(findEntry(second.context.journal, 'dhcp-server')).toMatchObject({ id: 'vboxnet0' });
    await first.driver.remove();
    expect(Object.keys((await fake.read()).dhcpservers)).toEqual(['HostInterfaceNetworking-vboxnet0']);
    await second.driver.remove();
    await expectNothingLeft(first.context, first.machineDir);
    await expectNothingLeft(second.context, second.machineDir);
    expect((await fake.read()).hostonlyifs).toEqual({});
    // Removed at once, in whichever order the lock allows: the server may go with the interface first.
    const third = machine(noDhcp);
    const fourth = machine();
    await third.driver.create();
    await fourth.driver.create();
    await Promise.all([third.driver.remove(), fourth.driver.remove()]);
    await expectNothingLeft(third.context, third.machineDir);
    await expectNothingLeft(fourth.context, fourth.machineDir);
  });

  it("leaves the disabled default DHCP server VirtualBox gives a new interface disabled; a DHCP machine later enables it", async () => {
    await fake.behave({ defaultDhcp: true });
    const first = machine(noDhcp);
    await first.driver.create();
    expect((await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0']).toMatchObject({ ip: '192.168.56.100', enabled: false });
    expect(await dhcpCalls()).toEqual([]);
    expect(await first.driver.getIP()).toBe('192.168.59.3');
    const second = machine();
    await second.driver.create();
    expect((await fake.read()).dhcpservers['HostInterfaceNetworking-vboxnet0']).toMatchObject({ ip: '192.168.59.2', lower: '192.168.59.100', enabled: true });
    expect(await second.driver.getIP()).toBe('192.168.59.100');
    await Promise.all([first.driver.remove(), second.driver.remove()]);
    await expectNothingLeft(first.context, first.machineDir);
    await expectNothingLeft(second.context, second.machineDir);
  });

  it('refuses a create when no static address is left in the CIDR, and leaves nothing behind', async () => {
    // A /29 holds the host (.1), the DHCP server's place (.2), the lease range (.4-.6) and one static guest (.3).
    const cidr = { ...noDhcp, 'virtualbox-hostonly-cidr': '10.0.0.1/29' };
    const first = machine(cidr);
    await first.driver.create();
    expect(await first.driver.getIP()).toBe('10.0.0.3');
    const second = machine(cidr);
    const error = await rejection(second.driver.create());
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error.message).toContain('--virtualbox-hostonly-cidr: no free static address left in 10.0.0.0/29 (other VMs have 1, the rest is the host\'s or DHCP\'s)');
    expect(second.context.journal.entries()).toEqual([]);
    expect(await strayFiles(second.machineDir)).toEqual([]);
    expect(Object.keys((await fake.read()).vms)).toEqual([uuidOf(first.context)]);
    await first.driver.remove();
    await expectNothingLeft(first.context, first.machineDir);
    await expectNothingLeft(second.context, second.machineDir);
  });

  const staticSteps: [string, (args: readonly string[]) => boolean][] = [
    ['list vms', (args) => args[0] === 'list' && args[1] === 'vms'],
    ['list dhcpservers', (args) => args[0] === 'list' && args[1] === 'dhcpservers'],
    ['setextradata on the VM', (args) => args[0] === 'setextradata' && args[1] !== 'global'],
    ['modifyvm', (args) => args[0] === 'modifyvm'],
    ['storageattach of the seed', (args) => args[0] === 'storageattach' && args.includes('dvddrive')],
    ['startvm', (args) => args[0] === 'startvm'],
  ];
  it.each(staticSteps)('a failure of %s leaves nothing behind', async (step, matches) => {
    let failed = false;
    const { driver, context, machineDir } = machine(noDhcp, {}, {
      client: {
        run: async (args) => {
          if (!failed && matches(args)) {
            failed = true;
            throw new VBoxManageError(args, { stdout: '', stderr: `VBoxManage: error: injected failure of ${step}\nVBoxManage: error: Details: code E_FAIL (0x80004005)\n`, exitCode: 1 });
          }
          return fake.runner.run(args);
        },
      },
    });
    const error = await rejection(driver.create());
    expect(failed).toBe(true);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toContain(`injected failure of ${step}`);
    expect((error as { cleanupError?: unknown }).cleanupError).toBeUndefined();
    await expectNothingLeft(context, machineDir);
  });

  it('start re-creates a deleted interface without a DHCP server; the guest keeps its address', async () => {
    const { driver, context, machineDir } = machine(noDhcp);
    await driver.create();
    await driver.stop();
    await fake.run(['hostonlyif', 'remove', 'vboxnet0']);
    await driver.start();
    const state = await fake.read();
    expect(state.hostonlyifs.vboxnet0).toMatchObject({ ip: '192.168.59.1' });
    expect(state.dhcpservers).toEqual({});
    expect(await driver.getIP()).toBe('192.168.59.3');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
  });

  it('VirtualBox 7 on macOS: the address lies below the host-only network’s built-in DHCP range', async () => {
    const mac = { platform: 'darwin' as const, routes: { read: async () => [] } };
    await fake.update((state) => {
      state.hostonlynets = { HostNetwork: { guid: 'g', netmask: '255.255.255.0', lower: '192.168.59.2', upper: '192.168.59.60', enabled: true } };
    });
    const { driver, context, machineDir } = machine(noDhcp, mac);
    await driver.create();
    expect(context.data.read().hostOnlyInterface).toBe('HostNetwork');
    expect(await driver.getIP()).toBe('192.168.59.61');
    await driver.remove();
    await expectNothingLeft(context, machineDir);
    expect(Object.keys((await fake.read()).hostonlynets ?? {})).toEqual(['HostNetwork']);
  });
});
