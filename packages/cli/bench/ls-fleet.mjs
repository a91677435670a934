// `machine ls` over a fleet of 1,000 machines spread over the four clouds of the simulator, with
// 100 ms added to every API call: wall time of `ls` and `ls -q`, API calls per provider (from the
// simulator's request log), peak RSS of `ls`, and the readiness lag of `create` per driver.
// It prints figures; it is not a test.
//
// Usage: pnpm bench (builds first through turbo), or
//   node --conditions=@machine/source bench/ls-fleet.mjs [--machines 1000] [--runs 5] [--lag-runs 3] [--latency 100] [--no-create] [--node-options=--cpu-prof] [--no-compile-cache] [--timeline]
// The simulator runs in this process (from its sources); `machine` runs built (dist/bin.js) in child processes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSim } from '@machine/cloud-sim';

const { values } = parseArgs({
  options: {
    machines: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '5' },
    'lag-runs': { type: 'string', default: '3' },
    latency: { type: 'string', default: '100' },
    'no-create': { type: 'boolean', default: false },
    // e.g. --node-options=--cpu-prof: passed to the `machine` processes (NODE_OPTIONS) to see where ls spends its time.
    'node-options': { type: 'string' },
    // NODE_DISABLE_COMPILE_CACHE=1 for the `machine` processes: what ls costs without the code cache bin.js keeps.
    'no-compile-cache': { type: 'boolean', default: false },
    // When each API call of a run reached the simulator, after the process started.
    timeline: { type: 'boolean', default: false },
  },
});
const machineCount = Number(values.machines);
const runs = Number(values.runs);
const lagRuns = Number(values['lag-runs']);
const latencyMs = Number(values.latency);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

// Provider-regions of the fleet: DigitalOcean (one account), EC2 in two regions, Compute Engine in one zone, Azure in one subscription.
const AZURE_SUBSCRIPTION = '00000000-0000-4000-8000-00000000a2e0';
const GOOGLE_PROJECT = 'cloud-sim-project';
const GOOGLE_ZONE = 'us-central1-a';
const EC2_REGIONS = ['us-east-1', 'eu-west-1'];
const EC2_KEY = 'AKIDCLOUDSIMULATOR01';

// Setup needs more than the default quotas; the Azure knob object is read on every call, so the
// setup-only relaxations (registration, role propagation, write bucket) are put back before measuring.
const azureKnobs = { regionalCores: 100_000, unregisteredNamespaces: [], roleAssignmentLagMs: 0, subscriptionBuckets: { writes: { size: 100_000, refillPerSecond: 100_000 } } };
const sim = await startSim({
  providerOptions: { amazonec2: { instanceLimit: 10_000 }, google: { instanceLimit: 10_000 }, azure: azureKnobs, digitalocean: {} },
  digitalocean: { dropletLimit: 10_000 },
});
const simEnv = sim.env();

function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
const ms = (value) => `${Math.round(value)} ms`;

/** Retries a setup call a few times (the realistic simulator answers some 5xx and 429 on purpose). */
async function call(what, url, init = {}) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(url, init);
    const text = await response.text();
    if (response.ok) return text === '' ? {} : text.startsWith('<') ? text : JSON.parse(text);
    if (attempt >= 8 || (response.status < 500 && response.status !== 429 && response.status !== 409)) throw new Error(`${what}: HTTP ${response.status} ${text.slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
  }
}

async function inBatches(items, size, work) {
  const results = [];
  for (let start = 0; start < items.length; start += size) results.push(...(await Promise.all(items.slice(start, start + size).map(work))));
  return results;
}

// ---------- the fleet, made directly through each simulated API ----------

async function makeDroplets(names) {
  const headers = { authorization: `Bearer ${simEnv.DIGITALOCEAN_ACCESS_TOKEN}`, 'content-type': 'application/json' };
  const chunks = [];
  for (let start = 0; start < names.length; start += 10) chunks.push(names.slice(start, start + 10));
  const made = await inBatches(chunks, 10, async (chunk) => {
    const body = { names: chunk, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: ['machine'] };
    const answer = await call('droplets.create', `${simEnv.DIGITALOCEAN_API_URL}/v2/droplets`, { method: 'POST', headers, body: JSON.stringify(body) });
    return (answer.droplets ?? [answer.droplet]).map((droplet) => ({ name: droplet.name, id: String(droplet.id) }));
  });
  return made.flat().map(({ name, id }) => ({
    name,
    driver: 'digitalocean',
    config: { apiUrl: simEnv.DIGITALOCEAN_API_URL },
    journal: [{ kind: 'droplet', id, meta: {}, state: 'made', preExisting: false, recordedAt: new Date().toISOString() }],
    data: { dropletId: Number(id) },
  }));
}

async function makeEc2Instances(region, names) {
  const made = [];
  const chunks = [];
  for (let start = 0; start < names.length; start += 50) chunks.push(names.slice(start, start + 50));
  for (const chunk of chunks) {
    const query = new URLSearchParams({ Action: 'RunInstances', Version: '2016-11-15', ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: String(chunk.length), MaxCount: String(chunk.length) });
    const headers = { authorization: `AWS4-HMAC-SHA256 Credential=${EC2_KEY}/20260101/${region}/ec2/aws4_request, SignedHeaders=host, Signature=0`, 'content-type': 'application/x-www-form-urlencoded' };
    const xml = await call('RunInstances', simEnv.AWS_ENDPOINT, { method: 'POST', headers, body: query.toString() });
    const ids = [...xml.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)].map((match) => match[1]);
    if (ids.length !== chunk.length) throw new Error(`RunInstances made ${ids.length} instances, not ${chunk.length}`);
    for (const [index, name] of chunk.entries()) made.push({ name, id: ids[index] });
  }
  return made.map(({ name, id }) => ({
    name,
    driver: 'amazonec2',
    config: { region, endpoint: simEnv.AWS_ENDPOINT, sshUser: 'ubuntu' },
    journal: [{ kind: 'instance', id, region, meta: {}, state: 'made', preExisting: false, recordedAt: new Date().toISOString() }],
    data: { instanceId: id, region },
  }));
}

async function makeGoogleInstances(names) {
  const base = `${simEnv.GOOGLE_COMPUTE_ENDPOINT}/compute/v1/projects/${GOOGLE_PROJECT}/zones/${GOOGLE_ZONE}`;
  const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
  await inBatches(names, 25, (name) =>
    call('instances.insert', `${base}/instances`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name,
        machineType: `zones/${GOOGLE_ZONE}/machineTypes/e2-small`,
        disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64', diskSizeGb: '10' } }],
        networkInterfaces: [{ network: 'global/networks/default', accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }] }],
      }),
    }),
  );
  return names.map((name) => ({
    name,
    driver: 'google',
    config: { project: GOOGLE_PROJECT, zone: GOOGLE_ZONE, endpoint: simEnv.GOOGLE_COMPUTE_ENDPOINT },
    journal: [{ kind: 'instance', id: name, region: GOOGLE_ZONE, meta: {}, state: 'made', preExisting: false, recordedAt: new Date().toISOString() }],
    data: {},
  }));
}

async function makeAzureVms(names) {
  const endpoint = simEnv.AZURE_RESOURCE_MANAGER_ENDPOINT;
  const group = `/subscriptions/${AZURE_SUBSCRIPTION}/resourceGroups/docker-machine`;
  const net = `${group}/providers/Microsoft.Network`;
  const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
  const put = (what, path, apiVersion, body) => call(what, `${endpoint}${path}?api-version=${apiVersion}`, { method: 'PUT', headers, body: JSON.stringify(body) });
  const until = async (what, path, apiVersion, ready) => {
    for (;;) {
      const body = await call(what, `${endpoint}${path}?api-version=${apiVersion}`, { headers });
      if (ready(body)) return body;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const succeeded = (body) => body.properties?.provisioningState === 'Succeeded';
  await put('resourceGroups.createOrUpdate', group, '2021-04-01', { location: 'westus2' });
  await put('virtualNetworks.createOrUpdate', `${net}/virtualNetworks/docker-machine-vnet`, '2024-05-01', { location: 'westus2', properties: { addressSpace: { addressPrefixes: ['192.168.0.0/16'] } } });
  await until('virtualNetworks.get', `${net}/virtualNetworks/docker-machine-vnet`, '2024-05-01', succeeded);
  const subnet = `${net}/virtualNetworks/docker-machine-vnet/subnets/docker-machine`;
  await put('subnets.createOrUpdate', subnet, '2024-05-01', { properties: { addressPrefix: '192.168.0.0/16' } });
  await until('subnets.get', subnet, '2024-05-01', succeeded);
  const records = await inBatches(names, 25, async (name) => {
    const ip = `${net}/publicIPAddresses/${name}-ip`;
    const nic = `${net}/networkInterfaces/${name}-nic`;
    const vm = `${group}/providers/Microsoft.Compute/virtualMachines/${name}`;
    await put('publicIPAddresses.createOrUpdate', ip, '2024-05-01', { location: 'westus2', sku: { name: 'Standard' }, properties: { publicIPAllocationMethod: 'Static' } });
    await until('publicIPAddresses.get', ip, '2024-05-01', succeeded);
    await put('networkInterfaces.createOrUpdate', nic, '2024-05-01', {
      location: 'westus2',
      properties: { ipConfigurations: [{ name: 'ipconfig1', properties: { subnet: { id: subnet }, publicIPAddress: { id: ip }, privateIPAllocationMethod: 'Dynamic' } }] },
    });
    await until('networkInterfaces.get', nic, '2024-05-01', succeeded);
    await put('virtualMachines.createOrUpdate', vm, '2024-07-01', {
      location: 'westus2',
      properties: {
        hardwareProfile: { vmSize: 'Standard_B2s' },
        osProfile: { computerName: name, adminUsername: 'docker-user', linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: '/home/docker-user/.ssh/authorized_keys', keyData: benchKey }] } } },
        storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' }, osDisk: { createOption: 'FromImage', deleteOption: 'Delete' } },
        networkProfile: { networkInterfaces: [{ id: nic, properties: { primary: true } }] },
      },
    });
    const entry = (kind, id) => ({ kind, id, meta: {}, state: 'made', preExisting: false, recordedAt: new Date().toISOString() });
    return {
      name,
      driver: 'azure',
      config: { subscriptionId: AZURE_SUBSCRIPTION, endpoint, location: 'westus2', resourceGroup: 'docker-machine' },
      journal: [entry('public-ip', ip), entry('network-interface', nic), entry('virtual-machine', vm)],
      data: {},
    };
  });
  return records;
}

const benchKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBFzIaPRi78DnMUX3qnQPCi088OUTRTLfW8v087uApqE bench';

/** Waits until the simulator runs every instance it was asked for. */
async function untilRunning(expected) {
  for (;;) {
    const running = ['digitalocean', 'amazonec2', 'google', 'azure'].flatMap((provider) => sim.store.listInstances(provider)).filter((instance) => instance.state === 'running').length;
    if (running >= expected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function writeRecords(storage, records) {
  await mkdir(join(storage, 'machines'), { recursive: true });
  await writeFile(join(storage, 'store-id'), 'benchfleet01\n');
  await inBatches(records, 100, async (record) => {
    const dir = join(storage, 'machines', record.name);
    await mkdir(dir, { recursive: true });
    const full = {
      version: 1,
      status: 'ready',
      createdAt: new Date().toISOString(),
      storeId: 'benchfleet01',
      ...record,
      sim: false,
      provision: {
        engine: { installUrl: 'https://get.docker.com', port: 2376, opts: [], env: [], insecureRegistries: [], registryMirrors: [], labels: [], tlsSans: [], noProvision: true },
        serverCertSans: [],
        dockerPort: 2376,
        state: 'skipped',
      },
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify(full, null, 4));
  });
}

// ---------- measuring ----------

/** Runs the built `machine` with args; wall time, exit code, stdout and peak RSS (KiB, from /usr/bin/time). */
function machine(args, env) {
  return new Promise((resolve) => {
    const command = timeBin === undefined ? process.execPath : timeBin;
    const argv = timeBin === undefined ? [bin, ...args] : ['-f', '%M', process.execPath, bin, ...args];
    const started = performance.now();
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const lines = stderr.trimEnd().split('\n');
      const rssKiB = timeBin === undefined ? Number.NaN : Number(lines.at(-1));
      resolve({ code, wallMs, stdout, stderr: timeBin === undefined ? stderr : lines.slice(0, -1).join('\n'), rssKiB });
    });
  });
}

function callsByProvider() {
  const counts = {};
  for (const entry of sim.requestLog.entries()) {
    counts[entry.provider] ??= {};
    counts[entry.provider][entry.operation] = (counts[entry.provider][entry.operation] ?? 0) + 1;
  }
  return counts;
}

async function measureLs(label, args, env, expectedRows) {
  const times = [];
  const rss = [];
  let calls;
  let sample;
  await machine(args, env); // warm the file cache
  for (let run = 0; run < runs; run++) {
    sim.requestLog.clear();
    const spawnedAt = Date.now();
    const result = await machine(args, env);
    if (values.timeline) {
      const line = sim.requestLog.entries().map((entry) => `${entry.provider}.${entry.operation} +${entry.time.getTime() - spawnedAt}ms (${Math.round(entry.durationMs)} ms)`);
      console.log(`  timeline (request log time after spawn): ${line.join(', ')}; exit +${Math.round(result.wallMs)} ms`);
    }
    if (result.code !== 0) throw new Error(`machine ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    times.push(result.wallMs);
    rss.push(result.rssKiB);
    calls = callsByProvider();
    sample = result.stdout;
  }
  const rows = sample.trimEnd().split('\n').slice(args.includes('-q') ? 0 : 1);
  const states = {};
  for (const row of rows) {
    const state = args.includes('-q') ? 'listed' : (row.split(/\s+/)[3] ?? '?');
    states[state] = (states[state] ?? 0) + 1;
  }
  const total = Object.values(calls).reduce((sum, byOperation) => sum + Object.values(byOperation).reduce((a, b) => a + b, 0), 0);
  console.log(`\n${label}: median ${ms(median(times))} (min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))}) over ${runs} runs; peak RSS ${(Math.max(...rss) / 1024).toFixed(0)} MiB`);
  console.log(`  rows: ${rows.length}/${expectedRows} ${JSON.stringify(states)}`);
  console.log(`  API calls per run: ${total} ${JSON.stringify(calls)}`);
  if (rows.length !== expectedRows) console.log(`  sample output: ${sample.slice(0, 400)}`);
  const errors = rows.filter((row) => / Error /.test(row));
  if (errors.length > 0) console.log(`  first error rows:\n    ${errors.slice(0, 3).join('\n    ')}`);
  return { median: median(times), min: Math.min(...times), max: Math.max(...times), total, calls, rssKiB: Math.max(...rss) };
}

/**
 * Readiness lag of `machine create --no-provision` per driver: from the moment the simulator runs
 * the instance (its SSH server opens with it) to the moment the CLI prints the step after the wait.
 */
async function readinessLag(driver, env, storage, run) {
  const name = `lag-${driver}-${run}`;
  const child = spawn(process.execPath, [bin, 'create', '-d', driver, '--no-provision', name], { env: { ...env, MACHINE_STORAGE_PATH: storage }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let buffered = '';
  let runningAt;
  const provider = driver;
  const watch = setInterval(() => {
    if (runningAt !== undefined) return;
    const instance = sim.store.listInstances(provider).find((candidate) => candidate.name === name || candidate.attributes?.tags?.Name === name || candidate.attributes?.computerName === name);
    if (instance?.state === 'running') runningAt = instance.stateChangedAt.getTime();
  }, 2);
  child.stdout.on('data', (chunk) => {
    const now = Date.now();
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) lines.push({ at: now, line });
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGTERM'), 120_000);
  const code = await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  clearInterval(watch);
  if (code !== 0 || runningAt === undefined) {
    return `${driver}: create failed (${code}${runningAt === undefined ? ', the instance never ran' : ''}): ${(stderr.trim() || lines.at(-1)?.line || '').split('\n').at(-1)}`;
  }
  const sshWait = lines.findIndex(({ line }) => /waiting for SSH/i.test(line));
  const noticed = sshWait >= 0 ? lines[sshWait] : undefined;
  const after = sshWait >= 0 ? lines[sshWait + 1] : undefined;
  const ready = lines.find(({ line }) => /is ready/.test(line));
  return {
    running: noticed === undefined ? Number.NaN : noticed.at - runningAt,
    ssh: noticed === undefined || after === undefined ? Number.NaN : after.at - Math.max(noticed.at, runningAt),
    ready: ready === undefined ? Number.NaN : ready.at - runningAt,
  };
}

const work = await mkdtemp(join(tmpdir(), 'machine-ls-fleet-'));
try {
  const perDriver = Math.floor(machineCount / 4);
  const names = (prefix, count) => Array.from({ length: count }, (_, index) => `${prefix}-${String(index + 1).padStart(4, '0')}`);
  const ec2Half = Math.floor(perDriver / 2);
  let started = performance.now();
  const records = (
    await Promise.all([
      makeDroplets(names('do', machineCount - 3 * perDriver)),
      makeEc2Instances(EC2_REGIONS[0], names('ec2a', ec2Half)),
      makeEc2Instances(EC2_REGIONS[1], names('ec2b', perDriver - ec2Half)),
      makeGoogleInstances(names('gce', perDriver)),
      makeAzureVms(names('az', perDriver)),
    ])
  ).flat();
  await untilRunning(records.length);
  console.log(`fleet: ${records.length} machines (${['digitalocean', 'amazonec2', 'google', 'azure'].map((driver) => `${driver} ${records.filter((record) => record.driver === driver).length}`).join(', ')}; 5 provider-regions), made in ${ms(performance.now() - started)}; ${cpus().length} CPUs`);
  // Measure with the real Azure windows again.
  azureKnobs.roleAssignmentLagMs = undefined;
  azureKnobs.subscriptionBuckets = undefined;

  const storage = join(work, 'store');
  started = performance.now();
  await writeRecords(storage, records);
  console.log(`records written in ${ms(performance.now() - started)}`);
  sim.faults.add({ operation: '*', latencyMs });
  const sshPorts = Object.fromEntries(['DIGITALOCEAN_SSH_PORT', 'AWS_SSH_PORT', 'GOOGLE_SSH_PORT', 'AZURE_SSH_PORT'].map((name) => [name, String(sim.sshPort)]));
  const env = { PATH: process.env.PATH, HOME: work, MACHINE_STORAGE_PATH: storage, ...simEnv, ...sshPorts, ...(values['node-options'] === undefined ? {} : { NODE_OPTIONS: values['node-options'] }), ...(values['no-compile-cache'] ? { NODE_DISABLE_COMPILE_CACHE: '1' } : { NODE_COMPILE_CACHE: join(work, 'compile-cache') }) };
  console.log(`every API call answers ${latencyMs} ms late`);

  const ls = await measureLs(`machine ls (${records.length})`, ['ls'], env, records.length);
  const quiet = await measureLs(`machine ls -q (${records.length})`, ['ls', '-q'], env, records.length);
  // One provider at a time: what each driver's list path costs on top of `ls -q` (loading its SDK, one call, its rows).
  for (const driver of ['digitalocean', 'amazonec2', 'google', 'azure']) await measureLs(`machine ls --filter driver=${driver}`, ['ls', '--filter', `driver=${driver}`], env, perDriver);

  const lags = [];
  if (!values['no-create']) {
    console.log(`\nreadiness lag of create --no-provision (${lagRuns} machines per driver, one after the other; every call ${latencyMs} ms late):`);
    console.log('  running: from the simulator running the instance (its SSH server opens with it) to the CLI printing "waiting for SSH" (negative: SSH was tried before);');
    console.log('  SSH: from then (or from running, if later) to the next line; ready: from running to "is ready" (create done)');
    for (const driver of ['digitalocean', 'amazonec2', 'google', 'azure']) {
      const samples = [];
      for (let run = 1; run <= lagRuns; run++) samples.push(await readinessLag(driver, env, join(work, 'create-store'), run));
      const failed = samples.filter((sample) => typeof sample === 'string');
      const done = samples.filter((sample) => typeof sample !== 'string');
      const running = median(done.map((sample) => sample.running));
      const ssh = median(done.map((sample) => sample.ssh));
      const ready = median(done.map((sample) => sample.ready));
      lags.push({ driver, running, ssh, ready });
      console.log(
        `  ${driver.padEnd(13)} running: median ${ms(running)} (${done.map((sample) => Math.round(sample.running)).join(', ')}); SSH: median ${ms(ssh)}; ready: median ${ms(ready)}${failed.length > 0 ? `; ${failed.join('; ')}` : ''}`,
      );
    }
  }
  const rss = (value) => `${(value / 1024).toFixed(0)} MiB`;
  // Nothing per machine: no operation more often than its provider has regions (Azure's VM list and address list are two operations),
  // pagination aside (DigitalOcean lists 200 droplets a page).
  const regions = { digitalocean: Math.ceil(records.filter((record) => record.driver === 'digitalocean').length / 200), amazonec2: EC2_REGIONS.length, google: 1, azure: 1 };
  const perRegion = Object.entries(ls.calls).every(([provider, operations]) => Object.values(operations).every((count) => count <= (regions[provider] ?? 1)));
  console.log(`\nsummary (${records.length} machines, ${latencyMs} ms per API call, ${cpus().length} CPUs):`);
  console.log(`  ls     median ${ms(ls.median)} (min ${ms(ls.min)}, max ${ms(ls.max)}), ${ls.total} API calls, peak RSS ${rss(ls.rssKiB)}`);
  console.log(`  ls -q  median ${ms(quiet.median)} (min ${ms(quiet.min)}, max ${ms(quiet.max)}), ${quiet.total} API calls, peak RSS ${rss(quiet.rssKiB)}`);
  for (const { driver, running, ssh, ready } of lags) console.log(`  create ${driver.padEnd(13)} running noticed ${ms(running).padStart(7)}, SSH ${ms(ssh).padStart(7)}, ready ${ms(ready).padStart(7)} after the instance ran`);
  console.log(
    `  goals: ls < 1000 ms median ${ls.median < 1000 ? 'met' : 'NOT met'}; each operation once per provider-region (pagination aside) ${perRegion ? 'met' : 'NOT met'} (${ls.total} calls, 5 provider-regions); ls -q zero calls ${quiet.total === 0 ? 'met' : 'NOT met'}; RSS < 300 MiB ${ls.rssKiB < 300 * 1024 ? 'met' : 'NOT met'}`,
  );
} finally {
  await sim.close();
  await rm(work, { recursive: true, force: true });
}
