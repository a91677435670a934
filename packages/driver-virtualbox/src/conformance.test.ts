import { findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { createVirtualBoxDescriptor } from './index.ts';
import { startFakeVirtualBox } from './test-support/fake-virtualbox.ts';
import { fakeHost } from './test-support/fake-host.ts';

// The conformance suite through the real execFile runner against the fake VBoxManage, with each
// running VM's NAT SSH forward served by a real ssh2 server that only takes the seed ISO's key:
// once as the driver runs by default, once with a static host-only address and no DHCP server.
// The first run also checks a kill point: the fake carries createvm out, then its VBoxManage hangs
// (`hold`) or dies (`drop`) unanswered. One point keeps CI time down (each costs two full creates
// through execFile); virtualbox-kill-points.test.ts kills create at every mutating call in-process.
const variants: [string, Record<string, unknown>, string[]][] = [
  ['virtualbox (fake VBoxManage)', {}, ['createvm']],
  ['virtualbox --virtualbox-hostonly-no-dhcp (fake VBoxManage)', { 'virtualbox-hostonly-no-dhcp': true }, []],
];
for (const [name, flags, killPoints] of variants) {
  runConformanceSuite(name, async () => {
    const fake = await startFakeVirtualBox();
    const host = await fakeHost(`${fake.dir}/host`);
    return {
      descriptor: createVirtualBoxDescriptor(host.descriptorOptions),
      validFlags: {
        'virtualbox-vboxmanage-path': fake.vboxManagePath,
        'virtualbox-image-path': host.imagePath,
        'virtualbox-boot-timeout': 20,
        'virtualbox-stop-timeout': 5,
        ...flags,
      },
      invalidFlags: { 'virtualbox-memory': 10, 'virtualbox-hostonly-cidr': '192.168.59.0/24', 'virtualbox-ui-type': 'vnc' },
      leaks: () => fake.leaks(),
      apiCalls: async () => (await fake.calls()).length,
      // startvm is the last VBoxManage call of create: by then the disk, seed ISO, VM and host-only interface exist.
      failNextCreate: () =>
        fake.fail({
          command: 'startvm',
          times: 1,
          stderr: 'VBoxManage: error: The virtual machine has terminated unexpectedly during startup with exit code 1 (0x1)\nVBoxManage: error: Details: code NS_ERROR_FAILURE (0x80004005), component MachineWrap, interface IMachine',
        }),
      deleteOutside: async (_driver, context) => {
        const entry = findEntry(context.journal, 'vm');
        if (entry === undefined) throw new Error('no vm recorded');
        await fake.run(['controlvm', entry.id, 'poweroff']);
        const result = await fake.run(['unregistervm', entry.id, '--delete']);
        if (result.code !== 0) throw new Error(result.stderr);
      },
      loseNextReply: (operation, how) => fake.loseReply(operation, how),
      callCount: (operation) => fake.carriedOut(operation),
      close: () => fake.close(),
    };
  }, { killPoints });
}
