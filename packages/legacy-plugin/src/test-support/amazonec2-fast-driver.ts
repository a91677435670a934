import { createAmazonEC2Descriptor } from '@machine/driver-amazonec2';

/** The amazonec2 driver with short waits, served as a plugin against cloud-sim. */
const amazonEC2FastDriver = createAmazonEC2Descriptor({
  waiterDelays: { minDelay: 0.02, maxDelay: 0.1 },
  sshPoll: { interval: 20, maxInterval: 100 },
  dependencyTimeout: 2000,
  visibilityTimeout: 500,
});

export default amazonEC2FastDriver;
