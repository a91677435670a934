import { createDigitalOceanDescriptor } from '@machine/driver-digitalocean';

/** The digitalocean driver with millisecond polls, served as a plugin against cloud-sim. */
const digitalOceanFastDriver = createDigitalOceanDescriptor({
  timings: { pollIntervalMs: 5, maxPollIntervalMs: 20, shutdownTimeoutMs: 300, rebootTimeoutMs: 300, retry: { baseDelayMs: 5, maxDelayMs: 20, maxRetries: 3 } },
});

export default digitalOceanFastDriver;
