import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { type Sim, startSim } from '@machine/cloud-sim';
import { findEntry } from '@machine/driver-core';
import { runConformanceSuite } from '@machine/driver-core/conformance';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import { createAmazonEC2Descriptor } from './index.ts';

let sim: Sim;

/** The conformance suite through the real AWS SDK v3 against the simulator's EC2 front end. */
runConformanceSuite('amazonec2 (cloud-sim, AWS SDK v3)', async () => {
  sim = await startSim({ providers: ['amazonec2'] });
  const endpoint = sim.endpoints.amazonec2 ?? '';
  const credentials = { accessKeyId: 'AKIDCONFORMANCE00001', secretAccessKey: 'conformance-secret' };
  return {
    descriptor: createAmazonEC2Descriptor({
      clientOverrides: { retryStrategy: new ConfiguredRetryStrategy(3, 10) },
      waiterDelays: { minDelay: 0.02, maxDelay: 0.1 },
      sshPoll: { interval: 20, maxInterval: 100 },
      dependencyTimeout: 2000,
      visibilityTimeout: 500,
    }),
    validFlags: {
      'amazonec2-endpoint': endpoint,
      'amazonec2-access-key': credentials.accessKeyId,
      'amazonec2-secret-key': credentials.secretAccessKey,
      'amazonec2-region': 'eu-west-3',
      'amazonec2-ssh-port': sim.sshPort,
      'amazonec2-open-port': ['8080', '53/udp'],
      'amazonec2-wait-timeout': 10,
    },
    invalidFlags: { 'amazonec2-volume-type': 'floppy', 'amazonec2-root-size': 'big', 'amazonec2-zone': 'Zone 1' },
    leaks: () => sim.leaks().map((leak) => `${leak.kind} ${leak.id} ${leak.name}`),
    apiCalls: () => sim.requestLog.total,
    loseNextReply: (operation, reply) => {
      sim.faults.add({ provider: 'amazonec2', operation, reply });
    },
    callCount: (operation) => sim.requestLog.count(operation, 'amazonec2'),
    // A quota error is not retried, and RunInstances comes after the key pair and the group exist.
    failNextCreate: () => void sim.faults.add({ provider: 'amazonec2', operation: 'RunInstances', error: 'quota' }),
    deleteOutside: async (_driver, context) => {
      const entry = findEntry(context.journal, 'instance');
      if (entry === undefined) throw new Error('no instance recorded');
      const ec2 = new EC2Client({ region: 'eu-west-3', endpoint, credentials });
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [entry.id] }));
      ec2.destroy();
    },
    close: () => sim.close(),
  };
}, { killPoints: ['ImportKeyPair', 'CreateSecurityGroup', 'RunInstances'] });
