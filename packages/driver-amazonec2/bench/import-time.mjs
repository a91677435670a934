// Import cost of the driver: median wall time of fresh Node processes that import it (built dist),
// next to a bare `node -e 0` and to importing @aws-sdk/client-ec2 itself. Run `pnpm build` first.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env.BENCH_RUNS ?? 15);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function time(code, args = []) {
  const samples = [];
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint();
    execFileSync(process.execPath, [...args, '--input-type=module', '-e', code], { cwd: packageDir, stdio: 'inherit' });
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return median(samples);
}

const bare = time('0');
const driver = time("const d = (await import('@machine/driver-amazonec2')).default; if (d.name !== 'amazonec2') process.exit(1);");
const sdk = time("await import('@aws-sdk/client-ec2');");
console.log(`node -e 0:                          ${bare.toFixed(0)} ms`);
console.log(`import @machine/driver-amazonec2:   ${driver.toFixed(0)} ms (+${(driver - bare).toFixed(0)} ms)`);
console.log(`import @aws-sdk/client-ec2:         ${sdk.toFixed(0)} ms (+${(sdk - bare).toFixed(0)} ms, loaded only on the first API call)`);
