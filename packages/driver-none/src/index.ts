import { defineDriver, guardDriver } from '@machine/driver-core';
import { NoneDriver } from './none-driver.ts';
import { type NoneDriverConfig, noneFlags } from './none-flags.ts';

export { NoneDriver, type NoneDriverOptions, stateAfterProbeFailure } from './none-driver.ts';
export { type NoneDriverConfig, noneFlags, urlProblem } from './none-flags.ts';

/** The none driver: a host machine does not manage, known only by its Docker URL. */
const noneDriver = defineDriver<NoneDriverConfig>({
  name: 'none',
  specificationVersion: 'v1',
  description: 'A host machine does not manage: records only its Docker URL (--url)',
  flags: noneFlags,
  // Nothing to log in to: machine knows only the Docker URL.
  capabilities: { ssh: false },
  createDriver: ({ config, context }) => guardDriver(new NoneDriver(config, context)),
});

export default noneDriver;
