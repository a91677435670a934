// Import cost of the built package (median of fresh Node processes), a check that importing it
// does not load @google-cloud/compute, and what the first operation pays to load the five client
// modules the driver uses (versus the package root). Build first (`pnpm turbo run bench` does).
import { fileURLToPath } from 'node:url';
import { medianModuleMs, modulesLoadedBy } from '@machine/driver-core/testing';

const options = { cwd: fileURLToPath(new URL('..', import.meta.url)), runs: Number(process.env.BENCH_RUNS ?? 11) };
const loaded = modulesLoadedBy('@machine/driver-google', options).filter((url) => /@google-cloud|google-gax|google-auth-library|grpc/.test(url));

const clients = `const { createComputeClients } = await import('@machine/driver-google');
const { OAuth2Client } = await import('google-auth-library');
await createComputeClients({ authClient: new OAuth2Client(), endpoint: { apiEndpoint: '127.0.0.1', port: 9, protocol: 'http' } });`;

const baseline = medianModuleMs('', options);
const driver = medianModuleMs("await import('@machine/driver-google')", options);
const firstOperation = medianModuleMs(clients, options);
const root = medianModuleMs("const { InstancesClient } = await import('@google-cloud/compute'); new InstancesClient({ fallback: true, authClient: {} });", options);
const line = (label, ms) => console.log(`${label.padEnd(58)} ${ms.toFixed(0).padStart(5)} ms (+${(ms - baseline).toFixed(0)} ms)`);
console.log(`median of ${options.runs} fresh processes`);
line('node -e 0', baseline);
line('import @machine/driver-google', driver);
line('import + build the 5 Compute clients (first operation)', firstOperation);
line('for scale: @google-cloud/compute root + one client', root);
if (loaded.length > 0) {
  console.error(`importing the driver loaded the client library: ${loaded.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver does not load @google-cloud/compute, google-gax or google-auth-library');
