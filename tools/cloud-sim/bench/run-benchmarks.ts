/**
 * `pnpm bench`: start-up time and 200 concurrent instances through the real @digitalocean/dots
 * client, with SSH into every one. Prints figures; it is not a test and asserts nothing beyond
 * "everything came up and nothing leaked".
 *
 * Run: node --conditions=@machine/source bench/run-benchmarks.ts [--instances N]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { FetchRequestAdapter } from '@microsoft/kiota-http-fetchlibrary';
import { startSim } from '../src/index.ts';

interface DotsModule {
  createDigitalOceanClient(adapter: FetchRequestAdapter): DotsClient;
  DigitalOceanApiKeyAuthenticationProvider: new (token: string) => ConstructorParameters<typeof FetchRequestAdapter>[0];
}
interface DotsDroplet {
  id?: number;
  status?: string;
  networks?: { v4?: { ipAddress?: string; type?: string }[] };
}
/** The few dots calls the benchmark makes, typed here (dots ships sources, not declarations). */
interface DotsClient {
  v2: {
    account: { keys: { post(body: { name: string; publicKey: string }): Promise<{ sshKey?: { id?: number } }> } };
    droplets: {
      post(body: Record<string, unknown>): Promise<{ droplet?: DotsDroplet }>;
      get(config: { queryParameters: { tagName: string; perPage: number } }): Promise<{ droplets?: DotsDroplet[] }>;
      byDroplet_id(id: number): { delete(): Promise<void> };
    };
  };
}

const { values } = parseArgs({ options: { instances: { type: 'string', default: '200' } } });
const instanceCount = Number(values.instances);
const dotsSpecifier: string = '@digitalocean/dots';
const dots = (await import(dotsSpecifier)) as DotsModule;

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}
const ms = (value: number): string => `${value.toFixed(0)} ms`;
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

async function measureStart(): Promise<{ inProcess: number[]; cliProcess: number }> {
  const inProcess: number[] = [];
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    const sim = await startSim();
    inProcess.push(performance.now() - started);
    await sim.close();
  }
  const directory = await mkdtemp(join(tmpdir(), 'cloud-sim-bench-'));
  const stateFile = join(directory, 'state.json');
  const started = performance.now();
  const child = spawn(process.execPath, ['--conditions=@machine/source', fileURLToPath(new URL('../src/cli.ts', import.meta.url)), '--state-file', stateFile], { stdio: 'ignore' });
  for (;;) {
    const ready = await readFile(stateFile, 'utf8').then(
      () => true,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const cliProcess = performance.now() - started;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  await rm(directory, { recursive: true, force: true });
  return { inProcess, cliProcess };
}

async function measureInstances(count: number): Promise<void> {
  // The kind profile: this measures the simulator, not DigitalOcean's burst limit (250 a scaled
  // minute) or the window in which a deleted droplet is still readable.
  const sim = await startSim({ providers: ['digitalocean'], profile: 'kind' });
  const adapter = new FetchRequestAdapter(new dots.DigitalOceanApiKeyAuthenticationProvider('bench-token'));
  adapter.baseUrl = sim.endpoints.digitalocean!;
  const client = dots.createDigitalOceanClient(adapter);
  const key = generateSSHKeyPair({ comment: 'bench' });
  const keyId = (await client.v2.account.keys.post({ name: 'bench', publicKey: key.publicKey })).sshKey!.id!;
  const rssBefore = process.memoryUsage().rss;

  let started = performance.now();
  const created = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      client.v2.droplets.post({ name: `bench-${index}`, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [String(keyId)], tags: ['bench'] }),
    ),
  );
  const createMs = performance.now() - started;

  let droplets: DotsDroplet[] = [];
  for (;;) {
    droplets = (await client.v2.droplets.get({ queryParameters: { tagName: 'bench', perPage: 200 } })).droplets ?? [];
    if (droplets.length === count && droplets.every((droplet) => droplet.status === 'active')) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const activeMs = performance.now() - started;
  const listening = sim.ssh.openCount;

  started = performance.now();
  const sshLatencies: number[] = [];
  const outputs = await Promise.all(
    droplets.map(async (droplet) => {
      const host = droplet.networks?.v4?.find((network) => network.type === 'public')?.ipAddress ?? '';
      const begin = performance.now();
      const result = await runSSH({ host, port: sim.sshPort, username: 'root', privateKey: key.privateKey, readyTimeout: 60_000 }, 'uname -n && df -h | head -n 2');
      sshLatencies.push(performance.now() - begin);
      return result;
    }),
  );
  const sshMs = performance.now() - started;
  const sshFailures = outputs.filter((output) => output.code !== 0).length;
  const rssPeak = process.memoryUsage().rss;

  started = performance.now();
  await Promise.all(created.map((response) => client.v2.droplets.byDroplet_id(response.droplet!.id!).delete()));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const deleteMs = performance.now() - started;
  const leaks = sim.leaks().filter((leak) => leak.kind === 'droplet');

  console.log(`\n${count} concurrent droplets (DigitalOcean front end, real @digitalocean/dots client, ${cpus().length} CPUs)`);
  console.log(`  create (${count} parallel POST /v2/droplets)   ${ms(createMs)}`);
  console.log(`  all active (incl. create, 50 ms boot delay)   ${ms(activeMs)}`);
  console.log(`  SSH servers listening                          ${listening}`);
  console.log(`  SSH: ${count} parallel logins + command         ${ms(sshMs)} total; per login p50 ${ms(percentile(sshLatencies, 0.5))}, p95 ${ms(percentile(sshLatencies, 0.95))}; failures ${sshFailures}`);
  console.log(`  delete all                                     ${ms(deleteMs)}`);
  console.log(`  RSS: before ${mb(rssBefore)}, with ${count} running ${mb(rssPeak)} (~${((rssPeak - rssBefore) / count / 1024).toFixed(0)} KB per instance)`);
  console.log(`  API calls: ${JSON.stringify(sim.requestLog.counts())}`);
  console.log(`  droplets leaked after delete: ${leaks.length}`);
  await sim.close();
  if (sshFailures > 0 || leaks.length > 0) process.exitCode = 1;
}

const start = await measureStart();
console.log('start-up');
console.log(`  startSim() with every provider, in-process: median ${ms(percentile(start.inProcess, 0.5))} (runs: ${start.inProcess.map((value) => value.toFixed(0)).join(', ')} ms)`);
console.log(`  CLI process until the state file is written:  ${ms(start.cliProcess)}`);
await measureInstances(instanceCount);
