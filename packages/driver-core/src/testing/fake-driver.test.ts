import { runConformanceSuite } from '../conformance/index.ts';
import { createFakeCloud, type FakeCloud } from './fake-cloud.ts';
import { fakeDriverDescriptor } from './fake-driver.ts';
import { findEntry } from '../journal.ts';

let cloud: FakeCloud;

runConformanceSuite('fake (reference driver)', async () => {
  cloud = createFakeCloud({ transitionMs: 15 });
  return {
    descriptor: fakeDriverDescriptor(cloud),
    validFlags: { 'fake-region': 'local-2', 'fake-open-port': ['8080'] },
    invalidFlags: { 'fake-size': 'gigantic', 'fake-wait-timeout': 'soon' },
    leaks: () => cloud.leaks(),
    apiCalls: () => cloud.totalCalls,
    failNextCreate: () => cloud.failOn('instances.run'),
    deleteOutside: async (_driver, context) => {
      const entry = findEntry(context.journal, 'instance');
      if (entry !== undefined) await cloud.terminateInstance(entry.id);
    },
    close: () => cloud.close(),
  };
});
