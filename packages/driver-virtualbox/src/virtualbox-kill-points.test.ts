import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CleanupError, type DriverContext, type JournalEntry, type JsonValue, MachineError, MemoryDataStore, MemoryJournal, parseFlags } from '@machine/driver-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createVirtualBoxDescriptor } from './index.ts';
import { fakeHost } from './test-support/fake-host.ts';
import { type FakeVirtualBox, startFakeVirtualBox, strayFiles } from './test-support/fake-virtualbox.ts';
import { virtualBoxFlags } from './virtualbox-flags.ts';

// A create killed at each mutating VBoxManage call: the fake carries the call out and never answers
// (as if VBoxManage, or machine itself, were killed right then). The driver object is dropped, a
// fresh one is built from what had been persisted, and its remove() must leave nothing.

let fake: FakeVirtualBox;
let host: Awaited<ReturnType<typeof fakeHost>>;
let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vbox-kill-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));
beforeEach(async () => {
  fake = await startFakeVirtualBox();
  host = await fakeHost(join(fake.dir, 'host'));
});
afterEach(() => fake.close());

/** A machine whose journal and data persist like the CLI's record; `kill()` drops the driver and opens a fresh one from the record. */
function persistedMachine(flags: Record<string, unknown> = {}, hostOverrides: Record<string, unknown> = {}, storeId?: string) {
  counter += 1;
  const machineName = `kp-${counter}`;
  const machineDir = join(root, 'machines', machineName);
  const config = parseFlags(
    virtualBoxFlags,
    { 'virtualbox-image-path': host.imagePath, 'virtualbox-boot-timeout': 10, 'virtualbox-stop-timeout': 2, ...flags },
    { env: {} },
  );
  const descriptor = createVirtualBoxDescriptor({ ...host.descriptorOptions, host: { ...host.descriptorOptions.host, ...hostOverrides } });
  let generation = 0;
  let journalRecord: readonly JournalEntry[] = [];
  let dataRecord: Readonly<Record<string, JsonValue>> = {};
  const open = () => {
    const mine = generation;
    const context: DriverContext = {
      machineName,
      machineDir,
      journal: new MemoryJournal(journalRecord, async (entries) => {
        if (mine === generation) journalRecord = entries;
      }),
      data: new MemoryDataStore(dataRecord, async (data) => {
        if (mine === generation) dataRecord = data;
      }),
      ...(storeId === undefined ? {} : { storeId }),
    };
    return { driver: descriptor.createDriver({ config, context, client: fake.runner }), context };
  };
  return {
    ...open(),
    machineDir,
    config,
    descriptor,
    record: () => journalRecord,
    kill: async () => {
      generation += 1;
      // The killed process's host-only lock is stale to the next one (after a minute; here at once).
      await rm(join(host.cacheDir, 'hostonly.lock'), { force: true });
      return open();
    },
  };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The VBoxManage calls that change something (the kill points), as [command, nth] in call order. */
function mutatingCalls(calls: readonly string[][]): [string, number][] {
  const seen = new Map<string, number>();
  const points: [string, number][] = [];
  for (const args of calls) {
    const command = args[0] ?? '';
    if (['--version', 'list', 'showvminfo', 'getextradata'].includes(command)) continue;
    const nth = (seen.get(command) ?? 0) + 1;
    seen.set(command, nth);
    points.push([command, nth]);
  }
  return points;
}

/** Kills a create at each mutating call of a plain create with `flags`; returns [tried, clean, points]. */
async function killAtEach(flags: Record<string, unknown>, hostOverrides: Record<string, unknown> = {}, only?: (command: string) => boolean) {
  const reference = persistedMachine(flags, hostOverrides);
  const start = (await fake.calls()).length;
  await reference.driver.create();
  const points = mutatingCalls((await fake.calls()).slice(start)).filter(([command]) => only?.(command) ?? true);
  await reference.driver.remove();
  expect(await fake.leaks()).toEqual([]);
  let clean = 0;
  for (const [command, nth] of points) {
    const machine = persistedMachine(flags, hostOverrides);
    const before = await fake.carriedOut(command);
    await fake.loseReply(command, 'hold', { skip: nth - 1 });
    void machine.driver.create().catch(() => undefined); // killed: its answer never comes
    await until(async () => (await fake.carriedOut(command)) >= before + nth, `${command} #${nth}`);
    const fresh = await machine.kill();
    await fresh.driver.remove();
    const left = await fake.leaks();
    expect(left, `killed at ${command} #${nth}`).toEqual([]);
    expect(fresh.context.journal.entries(), `journal after a kill at ${command} #${nth}`).toEqual([]);
    expect(await strayFiles(machine.machineDir), `machine folder after a kill at ${command} #${nth}`).toEqual([]);
    if (left.length === 0) clean += 1;
  }
  return { tried: points.length, clean, points: points.map(([command, nth]) => (nth > 1 ? `${command}#${nth}` : command)) };
}

describe('virtualbox: nothing leaks, whatever kills create', () => {
  it('a create killed at each mutating VBoxManage call (carried out, never answered): a fresh driver from the record removes everything', async () => {
    const { tried, clean, points } = await killAtEach({});
    console.info(`virtualbox kill points: ${tried} tried, ${clean} clean (${points.join(', ')})`);
    expect(points).toEqual([
      'clonemedium',
      'closemedium',
      'modifymedium',
      'createvm',
      'setextradata',
      'hostonlyif',
      'setextradata#2',
      'hostonlyif#2',
      'dhcpserver',
      'modifyvm',
      'storagectl',
      'storageattach',
      'storageattach#2',
      'sharedfolder',
      'startvm',
    ]);
    expect(clean).toBe(tried);
  });

  it('--virtualbox-hostonly-no-dhcp: killed at the static address it records on the VM', async () => {
    const { tried, clean, points } = await killAtEach({ 'virtualbox-hostonly-no-dhcp': true }, {}, (command) => command === 'setextradata');
    console.info(`virtualbox kill points (no DHCP): ${tried} tried, ${clean} clean (${points.join(', ')})`);
    expect(points).toEqual(['setextradata', 'setextradata#2', 'setextradata#3']);
    expect(clean).toBe(tried);
  });

  it('killed at the DHCP server it adds to an interface a static machine made, and at a host-only network (VirtualBox 7 on macOS)', async () => {
    const staticMachine = persistedMachine({ 'virtualbox-hostonly-no-dhcp': true });
    await staticMachine.driver.create();
    const dhcp = persistedMachine();
    await fake.loseReply('dhcpserver add', 'hold');
    void dhcp.driver.create().catch(() => undefined);
    await until(async () => (await fake.carriedOut('dhcpserver add')) === 1, 'dhcpserver add');
    expect(dhcp.record().find((entry) => entry.kind === 'dhcp-server')?.state).toBe('intended');
    const fresh = await dhcp.kill();
    await fresh.driver.remove();
    expect(fresh.context.journal.entries()).toEqual([]);
    // The static machine's VM still uses the interface: its last remove deletes it with that server.
    expect(Object.keys((await fake.read()).dhcpservers)).toEqual(['HostInterfaceNetworking-vboxnet0']);
    await staticMachine.driver.remove();
    expect(await fake.leaks()).toEqual([]);

    const mac = { platform: 'darwin' as const, routes: { read: async () => [] } };
    const { tried, clean } = await killAtEach({}, mac, (command) => command === 'hostonlynet');
    expect([tried, clean]).toEqual([1, 1]);
  });

  // What a resource kind makes is looked for and create carries on; any other lost reply fails create, which then removes everything.
  it.each([
    ['clonemedium', true],
    ['createvm', true],
    ['hostonlyif create', true],
    ['dhcpserver add', false],
    ['startvm', false],
  ] as const)('a reply to %s lost with the process alive (VBoxManage killed): no twin, and nothing left after (carries on: %s)', async (command, carriesOn) => {
    const machine = persistedMachine();
    await fake.loseReply(command, 'drop');
    const outcome = await machine.driver.create().then(
      () => 'created',
      (error: unknown) => error,
    );
    if (carriesOn) {
      expect(outcome).toBe('created');
      const state = await fake.read();
      expect(Object.keys(state.vms)).toHaveLength(1);
      expect(Object.keys(state.hostonlyifs)).toEqual(['vboxnet0']);
      expect(Object.keys(state.dhcpservers)).toEqual(['HostInterfaceNetworking-vboxnet0']);
      expect(machine.context.journal.entries().filter((entry) => entry.state === 'intended')).toEqual([]);
    } else {
      expect(MachineError.isInstance(outcome), String(outcome)).toBe(true);
      expect(await fake.leaks()).toEqual([]);
    }
    await machine.driver.remove();
      expect(await fake.leaks()).toEqual([]);
    expect(machine.context.journal.entries()).toEqual([]);
  });

  it.each(['clonemedium', 'createvm', 'hostonlyif create'])('a reply to %s lost, then create fails: rollback deletes what the call made', async (command) => {
    const machine = persistedMachine();
    await fake.loseReply(command, 'drop');
    await fake.fail({ command: 'startvm', times: 1, stderr: 'VBoxManage: error: injected failure of startvm\nVBoxManage: error: Details: code E_FAIL (0x80004005)' });
    const error = await machine.driver.create().catch((caught: unknown) => caught);
    expect(MachineError.isInstance(error) && error.message).toContain('injected failure of startvm');
    expect((error as { cleanupError?: unknown }).cleanupError).toBeUndefined();
    expect(machine.context.journal.entries()).toEqual([]);
    expect(await fake.leaks()).toEqual([]);
    expect(await strayFiles(machine.machineDir)).toEqual([]);
  });

  it('killed while writing the seed ISO (a local file; its intent journaled first): remove finds the partial file and deletes it', async () => {
    const machine = persistedMachine();
    const path = join(machine.machineDir, 'seed.iso');
    await mkdir(machine.machineDir, { recursive: true });
    await machine.context.journal.record({ kind: 'seed-iso', id: '0badf00d', state: 'intended', meta: { path, token: '0badf00d', at: new Date().toISOString() } });
    await writeFile(path, 'CD001 half an ISO');
    await (await machine.kill()).driver.remove();
    expect(existsSync(path)).toBe(false);
    expect(machine.record()).toEqual([]);
  });

  it('killed at hostonlyif create, then someone makes an interface by hand: remove deletes the one the killed call made, not theirs', async () => {
    const machine = persistedMachine();
    await fake.loseReply('hostonlyif create', 'hold');
    void machine.driver.create().catch(() => undefined);
    await until(async () => (await fake.carriedOut('hostonlyif create')) === 1, 'hostonlyif create');
    const fresh = await machine.kill();
    expect((await fake.run(['hostonlyif', 'create'])).stdout).toContain("Interface 'vboxnet1' was successfully created");
    await fresh.driver.remove();
    expect(Object.keys((await fake.read()).hostonlyifs)).toEqual(['vboxnet1']);
    expect((await fake.run(['hostonlyif', 'remove', 'vboxnet1'])).code).toBe(0);
    expect(await fake.leaks()).toEqual([]);
  });

  it('removes a record written before intents (no state, the VM meta without its folder), a VM unregistered outside included', async () => {
    const machine = persistedMachine();
    await machine.driver.create();
    const uuid = machine.record().find((entry) => entry.kind === 'vm')?.id ?? '';
    // Unregistered outside machine without --delete: its folder and disk are left behind.
    await fake.run(['controlvm', uuid, 'poweroff']);
    expect((await fake.run(['unregistervm', uuid])).code).toBe(0);
    const fresh = await machine.kill();
    const record = fresh.context.journal.entries();
    for (const entry of record) await fresh.context.journal.forget(entry.kind, entry.id);
    for (const { state: _state, ...entry } of record) {
      await fresh.context.journal.record(entry.kind === 'vm' ? { ...entry, meta: { name: machine.context.machineName } } : { ...entry, meta: {} });
    }
    await fresh.driver.remove();
    expect(await fake.leaks()).toEqual([]);
    expect(await strayFiles(machine.machineDir)).toEqual([]);
    expect(fresh.context.journal.entries()).toEqual([]);
  });

  it('remove never claims success while the VM refuses deletion: one CleanupError names it, the record keeps it, the next remove finishes', async () => {
    const machine = persistedMachine();
    await machine.driver.create();
    const uuid = machine.record().find((entry) => entry.kind === 'vm')?.id;
    await fake.fail({ command: 'unregistervm', times: 1, stderr: 'VBoxManage: error: injected failure\nVBoxManage: error: Details: code E_FAIL (0x80004005)' });
    const error = await machine.driver.remove().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CleanupError);
    const left = (error as CleanupError).left;
    expect(left.find((resource) => resource.kind === 'vm')).toMatchObject({ id: uuid, reason: expect.stringContaining('injected failure') });
    // What the VM holds stays with it (attached, or used by it), in the record and in the error.
    expect(left.map((resource) => resource.kind).sort()).toEqual(['disk', 'hostonly-if', 'seed-iso', 'vm']);
    expect(machine.record().map((entry) => entry.kind).sort()).toEqual(['disk', 'hostonly-if', 'seed-iso', 'vm']);
    await (await machine.kill()).driver.remove();
    expect(await fake.leaks()).toEqual([]);
  });

  it('sweep finds the VM of a killed create whose record was deleted by hand, and never touches a claimed, another store’s or an untagged VM', async () => {
    const kept = persistedMachine({}, {}, 'store1');
    await kept.driver.create();
    const other = persistedMachine({}, {}, 'store2');
    await other.driver.create();
    const lost = persistedMachine({}, {}, 'store1');
    await fake.loseReply('startvm', 'hold');
    void lost.driver.create().catch(() => undefined);
    await until(async () => (await fake.carriedOut('startvm')) === 3, 'the lost machine’s startvm');
    await lost.kill(); // ... and its record is deleted by hand: nothing claims what it made
    expect((await fake.run(['createvm', '--name', 'not-ours', '--basefolder', fake.dir, '--register'])).code).toBe(0);

    const request = { config: kept.config, storeId: 'store1', claimed: [...kept.record()], client: fake.runner };
    const listed = await kept.descriptor.sweep?.(request);
    expect(listed?.resources.map((resource) => [resource.kind, resource.name, resource.status])).toEqual([['vm', lost.context.machineName, 'found']]);
    expect(listed?.resources[0]?.ageMs).toBeGreaterThanOrEqual(0);
    const swept = await kept.descriptor.sweep?.({ ...request, delete: true });
    expect(swept?.resources.map((resource) => [resource.kind, resource.status])).toEqual([['vm', 'deleted']]);
    const names = Object.values((await fake.read()).vms).map((vm) => vm.name);
    expect(names.sort()).toEqual([kept.context.machineName, other.context.machineName, 'not-ours'].sort());

    await kept.driver.remove();
    await other.driver.remove();
    expect((await fake.run(['unregistervm', 'not-ours', '--delete'])).code).toBe(0);
    // The swept VM went with its disk (attached) and its seed ISO.
    expect(await fake.leaks()).toEqual([]);
  });

  it('sweep finds a disk a killed create left before attaching it (by its description), and the VM', async () => {
    const lost = persistedMachine({}, {}, 'store1');
    await fake.loseReply('setextradata', 'hold'); // the VM's managed-by tag: carried out, never answered
    void lost.driver.create().catch(() => undefined);
    await until(async () => (await fake.carriedOut('setextradata')) === 1, 'the VM tag');
    await lost.kill();
    const request = { config: lost.config, storeId: 'store1', claimed: [], client: fake.runner };
    expect(await persistedMachine().descriptor.sweep?.({ ...request, storeId: 'store2' })).toEqual({ resources: [] });
    const swept = await lost.descriptor.sweep?.({ ...request, delete: true });
    expect(swept?.resources.map((resource) => [resource.kind, resource.status, resource.machineName])).toEqual([
      ['disk', 'deleted', lost.context.machineName],
      ['vm', 'deleted', lost.context.machineName],
    ]);
    expect(swept?.resources.every((resource) => (resource.ageMs ?? -1) >= 0)).toBe(true);
    expect(await fake.leaks()).toEqual([]);
  });

  it('sweep on a host without VirtualBox finds nothing (machine sweep asks every driver); a VBoxManage path that does not exist is an error', async () => {
    const descriptor = createVirtualBoxDescriptor({ ...host.descriptorOptions, host: { ...host.descriptorOptions.host, env: { PATH: '/nonexistent' } } });
    const config = parseFlags(virtualBoxFlags, {}, { env: {} });
    expect(await descriptor.sweep?.({ config, claimed: [] })).toEqual({ resources: [] });
    const named = parseFlags(virtualBoxFlags, { 'virtualbox-vboxmanage-path': '/nonexistent/VBoxManage' }, { env: {} });
    await expect(descriptor.sweep?.({ config: named, claimed: [] })).rejects.toThrow(/--virtualbox-vboxmanage-path: \/nonexistent\/VBoxManage is not an executable file/);
  });

  it('sweep deletes a host-only interface machine tagged that no VM uses and no record claims, and keeps one a VM still uses', async () => {
    const kept = persistedMachine();
    await kept.driver.create();
    const lost = persistedMachine({ 'virtualbox-hostonly-cidr': '192.168.60.1/24' });
    await fake.loseReply('hostonlyif ipconfig', 'hold');
    void lost.driver.create().catch(() => undefined);
    await until(async () => (await fake.carriedOut('hostonlyif ipconfig')) === 2, 'the lost machine’s ipconfig');
    await lost.kill();
    const swept = await kept.descriptor.sweep?.({ config: kept.config, claimed: [...kept.record()], client: fake.runner, delete: true });
    // vboxnet0 is kept's (claimed, in use); the lost create's disk (not attached yet), VM and vboxnet1 go.
    expect(swept?.resources.map((resource) => [resource.kind, resource.kind === 'hostonly-if' ? resource.id : resource.machineName, resource.status])).toEqual([
      ['disk', lost.context.machineName, 'deleted'],
      ['vm', lost.context.machineName, 'deleted'],
      ['hostonly-if', 'vboxnet1', 'deleted'],
    ]);
    expect(Object.keys((await fake.read()).hostonlyifs)).toEqual(['vboxnet0']);
  });
});
