// API calls and wall time of one create and one remove with the production timings, against
// cloud-sim's DigitalOcean front end (default lifecycle delays). Run:
//   node --conditions=@machine/source bench/sim-api-calls.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSim } from '@machine/cloud-sim';
import { createMemoryContext, parseFlags } from '@machine/driver-core';
import digitalOcean from '@machine/driver-digitalocean';

const sim = await startSim({ providers: ['digitalocean'] });
const root = await mkdtemp(join(tmpdir(), 'do-bench-'));
try {
  const context = createMemoryContext('bench-1', join(root, 'bench-1'));
  const config = parseFlags(
    digitalOcean.flags,
    { 'digitalocean-ssh-port': sim.sshPort, 'digitalocean-firewall': true },
    { env: sim.env() },
  );
  const driver = digitalOcean.createDriver({ config, context });
  for (const [phase, run] of [
    ['preCreateCheck', () => driver.preCreateCheck()],
    ['create', () => driver.create()],
    ['getState', () => driver.getState()],
    ['stop', () => driver.stop()],
    ['start', () => driver.start()],
    ['remove', () => driver.remove()],
  ] as const) {
    sim.requestLog.clear();
    const started = performance.now();
    await run();
    const counts = sim.requestLog.counts('digitalocean');
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(`${phase.padEnd(15)} ${String(total).padStart(2)} calls ${(performance.now() - started).toFixed(0).padStart(5)} ms  ${JSON.stringify(counts)}`);
  }
  console.log(`leaks after remove: ${JSON.stringify(sim.leaks())}`);
} finally {
  await sim.close();
  await rm(root, { recursive: true, force: true });
}
