import { chaosFaultRule, type Sim } from '@machine/cloud-sim';
import { type DriverDescriptor, findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { afterEach } from 'vitest';
import type { AzureClients } from './azure-clients.ts';
import type { AzureConfig } from './azure-flags.ts';
import { createAzureDescriptor } from './index.ts';
import { parseResourceId } from './azure-resource-id.ts';
import { azureLeaks, clearAzureAccount, fastTimings, type SimProcess, simClients, simFlags, simProcesses, startAzureSim } from './testing/sim-harness.ts';

const azure = createAzureDescriptor({ timings: fastTimings });

let sim: Sim;
let client: AzureClients;

/**
 * The descriptor the suite drives: every driver it opens is a process of its own (its own clients).
 * The suite opens a second driver for a machine only when a kill-point test has "killed" the first
 * (it reopens the machine from its record): that first process dies then, and never calls Azure
 * again, as a killed process would not.
 */
function asProcesses(open: () => SimProcess): DriverDescriptor<AzureConfig, AzureClients> {
  const alive = new Map<string, SimProcess>();
  return {
    ...azure,
    createDriver: (options) => {
      alive.get(options.context.machineName)?.kill();
      const opened = open();
      alive.set(options.context.machineName, opened);
      return azure.createDriver({ ...options, client: opened.clients });
    },
  };
}

// Each case starts from a clean account: one that leaves resources fails, and they are deleted so
// the cases after it are judged on their own.
afterEach(async () => {
  if (sim === undefined || azureLeaks(sim).length === 0) return;
  const left = await clearAzureAccount(sim, client);
  throw new Error(`the test left ${left.join(', ')} (deleted now, with their resource groups)`);
});

// Read by the simulator on every call: the chaos run switches behaviours per cycle.
const knobs: Record<string, unknown> = {};

runConformanceSuite('azure (real SDK against cloud-sim)', async () => {
  sim = await startAzureSim({ providerOptions: { azure: knobs } });
  client = await simClients(sim);
  return {
    descriptor: asProcesses(await simProcesses(sim)),
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
        sim.faults.add(chaosFaultRule('azure', fault));
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
