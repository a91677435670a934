// Import cost of the built package (median of fresh Node processes), a check that importing it
// does not load @google-cloud/compute, and what the first operation pays to load the five client
// modules the driver uses (versus the package root). Build first (`pnpm turbo run bench` does).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env.BENCH_RUNS ?? 11);
const node = (args) => execFileSync(process.execPath, args, { cwd: packageDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

const median = (args) => {
  const times = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    node(args);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};

const loaded = JSON.parse(
  node([
    '--input-type=module',
    '-e',
    `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
await import('@machine/driver-google');
process.stdout.write(JSON.stringify(seen));`,
  ]),
).filter((url) => /@google-cloud|google-gax|google-auth-library|grpc/.test(url));

const clients = `const { createComputeClients } = await import('@machine/driver-google');
const { OAuth2Client } = await import('google-auth-library');
await createComputeClients({ authClient: new OAuth2Client(), endpoint: { apiEndpoint: '127.0.0.1', port: 9, protocol: 'http' } });`;

const baseline = median(['-e', '0']);
const driver = median(['--input-type=module', '-e', "await import('@machine/driver-google')"]);
const firstOperation = median(['--input-type=module', '-e', clients]);
const root = median(['--input-type=module', '-e', "const { InstancesClient } = await import('@google-cloud/compute'); new InstancesClient({ fallback: true, authClient: {} });"]);
const line = (label, ms) => console.log(`${label.padEnd(58)} ${ms.toFixed(0).padStart(5)} ms (+${(ms - baseline).toFixed(0)} ms)`);
console.log(`median of ${runs} fresh processes`);
line('node -e 0', baseline);
line('import @machine/driver-google', driver);
line('import + build the 5 Compute clients (first operation)', firstOperation);
line('for scale: @google-cloud/compute root + one client', root);
if (loaded.length > 0) {
  console.error(`importing the driver loaded the client library: ${loaded.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver does not load @google-cloud/compute, google-gax or google-auth-library');
