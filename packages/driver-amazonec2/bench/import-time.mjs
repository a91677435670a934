// Import cost of the driver: median wall time of fresh Node processes that import it (built dist),
// next to a bare `node -e 0` and to importing @aws-sdk/client-ec2 itself, and a check that importing
// the driver loads neither the SDK nor ssh2. Run `pnpm build` first.
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 15) };
const heavy = modulesLoadedBy('@machine/driver-amazonec2', options).filter((url) => /@aws-sdk|@smithy|ssh2/.test(url));

const bare = medianModuleMs('', options);
const driver = medianModuleMs("const d = (await import('@machine/driver-amazonec2')).default; if (d.name !== 'amazonec2') process.exit(1);", options);
const sdk = medianModuleMs("await import('@aws-sdk/client-ec2');", options);
console.log(`node -e 0:                          ${bare.toFixed(0)} ms`);
console.log(`import @machine/driver-amazonec2:   ${driver.toFixed(0)} ms (+${(driver - bare).toFixed(0)} ms)`);
console.log(`import @aws-sdk/client-ec2:         ${sdk.toFixed(0)} ms (+${(sdk - bare).toFixed(0)} ms, loaded only on the first API call)`);
if (heavy.length > 0) {
  console.error(`importing the driver loaded SDK code: ${heavy.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver loads no AWS SDK module and no ssh2');
