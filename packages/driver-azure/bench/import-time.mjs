// Import time of the built package (median of fresh Node processes), and a check that importing it
// loads no Azure SDK module (nor ssh2). Build first (`pnpm turbo run bench` does).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env.BENCH_RUNS ?? 15);
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

const loadedModules = node([
  '--input-type=module',
  '-e',
  `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
await import('@machine/driver-azure');
process.stdout.write(JSON.stringify(seen));`,
]);
const heavy = JSON.parse(loadedModules).filter((url) => /@azure|@typespec|msal|ssh2/.test(url));

const baseline = median(['-e', '0']);
const driver = median(['--input-type=module', '-e', "await import('@machine/driver-azure')"]);
const sdk = median([
  '--input-type=module',
  '-e',
  "await Promise.all([import('@azure/arm-compute'), import('@azure/arm-network'), import('@azure/arm-resources'), import('@azure/identity')])",
]);
console.log(`node -e 0                                   ${baseline.toFixed(0)} ms (median of ${runs} processes)`);
console.log(`import @machine/driver-azure                ${driver.toFixed(0)} ms (+${(driver - baseline).toFixed(0)} ms)`);
console.log(`import the four Azure SDK packages, for scale ${sdk.toFixed(0)} ms (+${(sdk - baseline).toFixed(0)} ms)`);
if (heavy.length > 0) {
  console.error(`importing the driver loaded SDK code: ${heavy.slice(0, 3).join(', ')}`);
  process.exit(1);
}
console.log('importing the driver loads no Azure SDK module and no ssh2');
