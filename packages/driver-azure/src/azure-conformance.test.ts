import type { Sim } from '@machine/cloud-sim';
import { findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { createAzureDescriptor } from './index.ts';
import { parseResourceId } from './azure-resource-id.ts';
import { azureLeaks, fastTimings, simClients, simFlags, startAzureSim } from './testing/sim-harness.ts';

const azure = createAzureDescriptor({ timings: fastTimings });

let sim: Sim;

runConformanceSuite('azure (real SDK against cloud-sim)', async () => {
  sim = await startAzureSim();
  const client = await simClients(sim);
  return {
    descriptor: azure,
    client,
    validFlags: simFlags(sim, { 'azure-open-port': ['8080', '53/udp'], 'azure-tags': ['team=infra'] }),
    invalidFlags: { 'azure-subscription-id': 'not-a-uuid', 'azure-environment': 'AzureMoonCloud', 'azure-disk-size': 'big' },
    leaks: () => azureLeaks(sim),
    apiCalls: () => sim.requestLog.total,
    loseNextReply: (operation, reply) => {
      sim.faults.add({ provider: 'azure', operation, reply });
    },
    callCount: (operation) => sim.requestLog.count(operation, 'azure'),
    // The VM create fails after the resource group, NSG, network, IP and NIC exist.
    failNextCreate: () => {
      sim.faults.add({ provider: 'azure', operation: 'virtualMachines.createOrUpdate', error: 'quota' });
    },
    deleteOutside: async (_driver, context) => {
      const entry = findEntry(context.journal, 'virtual-machine');
      if (entry === undefined) throw new Error('no VM recorded');
      const { resourceGroup, names } = parseResourceId(entry.id);
      await client.compute.virtualMachines.delete(resourceGroup, names[0] ?? '', { updateIntervalInMs: 5 });
    },
    close: () => sim.close(),
  };
}, {
  // Every PUT create sends; each is committed by the simulator and its answer lost.
  killPoints: [
    'resourceGroups.createOrUpdate',
    'networkSecurityGroups.createOrUpdate',
    'virtualNetworks.createOrUpdate',
    'subnets.createOrUpdate',
    'publicIPAddresses.createOrUpdate',
    'networkInterfaces.createOrUpdate',
    'virtualMachines.createOrUpdate',
  ],
});
