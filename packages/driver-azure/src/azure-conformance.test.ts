import type { Sim } from '@machine/cloud-sim';
import { findEntry } from '@machine/driver-core';
import { type ChaosFault, runConformanceSuite } from '@machine/driver-core/conformance';
import { createAzureDescriptor } from './index.ts';
import { parseResourceId } from './azure-resource-id.ts';
import { azureLeaks, fastTimings, simClients, simFlags, startAzureSim } from './testing/sim-harness.ts';

const azure = createAzureDescriptor({ timings: fastTimings });

let sim: Sim;

/** A chaos fault as a cloud-sim fault rule of the Azure front end. */
function faultRule(fault: ChaosFault) {
  const at = { provider: 'azure', operation: fault.operation ?? '*', nth: fault.nth };
  switch (fault.kind) {
    case 'throttle':
      return { ...at, throttle: { times: 1, retryAfterSeconds: 0, resetSeconds: 1 } };
    case 'server-error':
      return { ...at, error: 'server' as const };
    case 'lost-reply':
      return { ...at, reply: 'drop' as const };
    default:
      return { ...at, times: 1, latencyMs: fault.durationMs };
  }
}

// Read by the simulator on every call: the chaos run switches behaviours per cycle.
const knobs: Record<string, unknown> = {};

runConformanceSuite('azure (real SDK against cloud-sim)', async () => {
  sim = await startAzureSim({ providerOptions: { azure: knobs } });
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
    chaos: {
      faults: ['throttle', 'server-error', 'lost-reply', 'latency'],
      operations: [
        'networkSecurityGroups.createOrUpdate',
        'publicIPAddresses.createOrUpdate',
        'networkInterfaces.createOrUpdate',
        'virtualMachines.createOrUpdate',
        'virtualMachines.powerOff',
        'virtualMachines.deallocate',
        'virtualMachines.start',
        'virtualMachines.restart',
        'virtualMachines.delete',
        'networkInterfaces.delete',
      ],
      inject: (fault) => {
        sim.faults.add(faultRule(fault));
      },
      clearFaults: () => sim.faults.clear(),
      // Beyond the realistic defaults (on in every cycle): longer windows.
      behaviours: {
        slowNetworkOperations: (on) => {
          if (on) knobs.networkOperationMs = 10_000; // 100 ms scaled
          else delete knobs.networkOperationMs;
        },
        latePowerState: (on) => {
          if (on) knobs.powerStateLagMs = 20_000;
          else delete knobs.powerStateLagMs;
        },
        lateDynamicIp: (on) => {
          if (on) knobs.dynamicIpLagMs = 20_000;
          else delete knobs.dynamicIpLagMs;
        },
      },
    },
    close: () => sim.close(),
  };
}, {
  chaosCycles: 20,
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
