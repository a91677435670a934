import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { type AmazonEC2Realism, type Sim, startSim } from '@machine/cloud-sim';
import { AuthError, configureRateBudget, MemoryRateBucketStore, NotFoundError, parseFlags, type RateBudgetEvent, SharedRateBudget, State, createMemoryContext } from '@machine/driver-core';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeInstancesLight, fleetListEndpoint } from './amazonec2-fleet-list.ts';
import { amazonEC2Flags, createAmazonEC2Descriptor } from './index.ts';

const region = 'eu-west-3';
const credentials = { accessKeyId: 'AKIDFLEETLIST0000001', secretAccessKey: 'fleet-list-secret' };
/** Realism knobs, read on every call (afterEach resets them); `instanceLimit` is read once, at start. */
const knobs: AmazonEC2Realism & { instanceLimit?: number } = { instanceLimit: 1_000 };
let sim: Sim;
let ec2: EC2Client;
let root: string;

beforeAll(async () => {
  sim = await startSim({ providers: ['amazonec2'], providerOptions: { amazonec2: knobs } });
  ec2 = new EC2Client({ region, endpoint: sim.endpoints.amazonec2, credentials, maxAttempts: 1 });
  root = await mkdtemp(join(tmpdir(), 'amazonec2-fleet-list-'));
});

afterAll(async () => {
  ec2.destroy();
  await sim.close();
  await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  configureRateBudget(undefined);
  for (const key of Object.keys(knobs)) delete knobs[key as keyof AmazonEC2Realism];
  const live = sim.store.listInstances('amazonec2').filter((instance) => instance.state !== 'terminated');
  if (live.length > 0) await ec2.send(new TerminateInstancesCommand({ InstanceIds: live.map((instance) => instance.id) }));
});

function simEndpoint(): URL {
  const endpoint = sim.endpoints.amazonec2;
  if (endpoint === undefined) throw new Error('the simulator serves no EC2');
  return new URL(endpoint);
}

function config(extra: Record<string, unknown> = {}) {
  return parseFlags(
    amazonEC2Flags,
    { 'amazonec2-endpoint': sim.endpoints.amazonec2, 'amazonec2-access-key': credentials.accessKeyId, 'amazonec2-secret-key': credentials.secretAccessKey, 'amazonec2-region': region, ...extra },
    { env: {} },
  );
}

async function launch(count: number): Promise<string[]> {
  const { Instances = [] } = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-0a1b2c3d4e5f60718', InstanceType: 't3.micro', MinCount: count, MaxCount: count }));
  const ids = Instances.map((instance) => instance.InstanceId ?? '');
  while (!ids.every((id) => sim.store.getInstance('amazonec2', id)?.state === 'running')) await new Promise((resolve) => setTimeout(resolve, 10));
  return ids;
}

describe('the light DescribeInstances of a fleet listing', () => {
  it('answers what the SDK client answers: states and both addresses, stopped and terminated instances too', async () => {
    knobs.publicIpLagMs = 0;
    const ids = await launch(4);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [ids[1] ?? ''] }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [ids[2] ?? ''] }));
    // Both calls must see the same moment: wait until EC2 (with its lags) shows the transitions done.
    const asked = [...ids, 'i-0000000000000dead'];
    let light = await describeInstancesLight(config(), simEndpoint(), asked);
    while (light.get(ids[1] ?? '')?.state !== 'stopped' || light.get(ids[2] ?? '')?.state !== 'terminated') {
      await new Promise((resolve) => setTimeout(resolve, 20));
      light = await describeInstancesLight(config(), simEndpoint(), asked);
    }
    const { Reservations = [] } = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: asked }] }));
    const bySdk = new Map(Reservations.flatMap((reservation) => reservation.Instances ?? []).map((instance) => [instance.InstanceId, instance]));
    expect(light.size).toBe(bySdk.size);
    for (const [id, instance] of bySdk) {
      expect(light.get(id ?? '')).toEqual({ id, state: instance.State?.Name, publicIp: instance.PublicIpAddress, privateIp: instance.PrivateIpAddress });
    }
    expect(light.get(ids[0] ?? '')?.publicIp).toMatch(/^127\./);
    expect(light.get(ids[1] ?? '')?.state).toBe('stopped');
    expect(light.get(ids[2] ?? '')?.state).toBe('terminated');
  });

  it('asks 200 ids per filter: 250 machines are two calls, every one found', async () => {
    const ids = await launch(250);
    sim.requestLog.clear();
    const light = await describeInstancesLight(config(), simEndpoint(), ids);
    expect(sim.requestLog.counts('amazonec2')).toEqual({ DescribeInstances: 2 });
    expect(ids.every((id) => light.get(id)?.state === 'running')).toBe(true);
  });

  it('getStates of the plain descriptor goes this way, and a refused key is an AuthError per machine', async () => {
    knobs.publicIpLagMs = 0;
    const [id = ''] = await launch(1);
    const descriptor = createAmazonEC2Descriptor();
    const context = createMemoryContext('light-1', join(root, 'light-1'));
    await context.journal.record({ kind: 'instance', id, region });
    const gone = createMemoryContext('light-2', join(root, 'light-2'));
    await gone.journal.record({ kind: 'instance', id: 'i-0000000000000beef', region });
    sim.requestLog.clear();
    const states = await descriptor.getStates!([
      { config: config(), context },
      { config: config(), context: gone },
    ]);
    expect(sim.requestLog.counts('amazonec2')).toEqual({ DescribeInstances: 1 });
    expect(states.get('light-1')).toEqual({ state: State.Running, ip: expect.stringMatching(/^127\./) });
    expect(states.get('light-2')).toBeInstanceOf(NotFoundError);
    const refused = await descriptor.getStates!([{ config: config({ 'amazonec2-access-key': 'invalidAKID000000009' }), context }]);
    expect(refused.get('light-1')).toBeInstanceOf(AuthError);
    expect(String(refused.get('light-1'))).toContain('AuthFailure');
  });

  it('without key flags, signs with the SDK\'s default credential chain (here the environment)', async () => {
    const ids = await launch(1);
    const noKeys = parseFlags(amazonEC2Flags, { 'amazonec2-endpoint': sim.endpoints.amazonec2, 'amazonec2-region': region, 'amazonec2-retries': 0 }, { env: {} });
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    try {
      process.env.AWS_ACCESS_KEY_ID = 'invalidAKIDFROMENV01';
      process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
      await expect(describeInstancesLight(noKeys, simEndpoint(), ids)).rejects.toMatchObject({ name: 'AuthFailure' });
    } finally {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('takes a slot of the shared budget per attempt, feeds a throttle back, and retries it like the SDK', async () => {
    const ids = await launch(1);
    const events: RateBudgetEvent[] = [];
    configureRateBudget(new SharedRateBudget(new MemoryRateBucketStore(), { timeScale: 0.01, onEvent: (event) => events.push(event) }));
    // One token, refilled every half second: the second call at once is throttled, then answered on a retry.
    knobs.requestBuckets = { size: 1, refillPerSecond: 2, actions: ['DescribeInstances'] };
    await describeInstancesLight(config(), simEndpoint(), ids);
    sim.requestLog.clear();
    const light = await describeInstancesLight(config(), simEndpoint(), ids);
    expect(light.get(ids[0] ?? '')?.state).toBe('running');
    const statuses = sim.requestLog.entries('amazonec2').map((entry) => entry.status);
    expect(statuses).toContain(503);
    expect(statuses.at(-1)).toBe(200);
    const signals = events.filter((event) => event.kind === 'signal');
    expect(signals.length).toBeGreaterThan(0);
    expect(signals[0]?.signal?.throttled).toBe(true);
    expect(signals[0]?.bucket.key).toMatch(/^amazonec2:[0-9a-f]{16}:eu-west-3:non-mutating$/);
    expect(signals[0]?.bucket.key).not.toContain(credentials.accessKeyId);
  });

  it('signs what it sends: a loopback EC2 recomputes the SigV4 signature of the request it received (host with port, body, headers)', async () => {
    const received: { headers: IncomingMessage['headers']; body: string; url: string }[] = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        received.push({ headers: request.headers, body, url: request.url ?? '' });
        response.writeHead(200, { 'content-type': 'text/xml' });
        response.end('<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId><reservationSet/></DescribeInstancesResponse>');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await describeInstancesLight(config({ 'amazonec2-endpoint': endpoint }), new URL(endpoint), ['i-1'])).size).toBe(0);
    } finally {
      server.close();
    }
    const request = received[0];
    if (request === undefined) throw new Error('nothing reached the loopback EC2');
    expect(request.body).toContain('Action=DescribeInstances');
    expect(request.body).toContain('Filter.1.Value.1=i-1');
    const amzDate = String(request.headers['x-amz-date']);
    const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(String(request.headers.authorization))?.[1]?.split(';') ?? [];
    expect(signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'content-type']));
    const headers = Object.fromEntries(signedHeaders.map((name) => [name, String(request.headers[name])]));
    const verifier = new SignatureV4({ credentials, region, service: 'ec2', sha256: await nodeSha256() });
    const expected = await verifier.sign(
      { method: 'POST', protocol: 'http:', hostname: '127.0.0.1', path: request.url, query: {}, headers, body: request.body },
      { signingDate },
    );
    expect(request.headers.authorization).toBe(expected.headers.authorization);
  });
});

/** node:crypto SHA-256 in the signer's shape, for the verifier (independent of the module under test). */
async function nodeSha256() {
  const { createHash, createHmac } = await import('node:crypto');
  const bytes = (data: string | ArrayBuffer | ArrayBufferView) => (typeof data === 'string' ? Buffer.from(data) : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data));
  return class {
    readonly hash;
    constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
      this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
    }
    update(data: string | ArrayBuffer | ArrayBufferView) {
      this.hash.update(bytes(data));
    }
    async digest() {
      return new Uint8Array(this.hash.digest());
    }
  };
}

describe('fleetListEndpoint', () => {
  const plain = (region: string, endpoint?: string) => parseFlags(amazonEC2Flags, { 'amazonec2-region': region, ...(endpoint === undefined ? {} : { 'amazonec2-endpoint': endpoint }) }, { env: {} });
  const noConfig = { HOME: '/nonexistent-home' };

  it('goes to the regional endpoint of the aws, aws-cn and aws-us-gov partitions, and to --amazonec2-endpoint', () => {
    expect(fleetListEndpoint(plain('eu-west-3'), noConfig)?.href).toBe('https://ec2.eu-west-3.amazonaws.com/');
    expect(fleetListEndpoint(plain('ap-southeast-4'), noConfig)?.href).toBe('https://ec2.ap-southeast-4.amazonaws.com/');
    expect(fleetListEndpoint(plain('cn-north-1'), noConfig)?.href).toBe('https://ec2.cn-north-1.amazonaws.com.cn/');
    expect(fleetListEndpoint(plain('us-gov-west-1'), noConfig)?.href).toBe('https://ec2.us-gov-west-1.amazonaws.com/');
    expect(fleetListEndpoint(plain('eu-west-3', 'http://127.0.0.1:4566'), noConfig)?.href).toBe('http://127.0.0.1:4566/');
  });

  it('leaves every other case to the SDK: other partitions, FIPS, dual-stack, configured endpoint URLs', async () => {
    expect(fleetListEndpoint(plain('us-isob-east-1'), noConfig)).toBeUndefined();
    expect(fleetListEndpoint(plain('eu-west-3'), { ...noConfig, AWS_USE_FIPS_ENDPOINT: 'true' })).toBeUndefined();
    expect(fleetListEndpoint(plain('eu-west-3'), { ...noConfig, AWS_USE_DUALSTACK_ENDPOINT: 'true' })).toBeUndefined();
    expect(fleetListEndpoint(plain('eu-west-3'), { ...noConfig, AWS_ENDPOINT_URL_EC2: 'https://vpce.example' })).toBeUndefined();
    const file = join(root, 'aws-config');
    await writeFile(file, '[profile work]\nregion = eu-west-3\nendpoint_url = https://proxy.example\n');
    expect(fleetListEndpoint(plain('eu-west-3'), { ...noConfig, AWS_CONFIG_FILE: file })).toBeUndefined();
    await writeFile(file, '[default]\nregion = eu-west-3\n');
    expect(fleetListEndpoint(plain('eu-west-3'), { ...noConfig, AWS_CONFIG_FILE: file })?.href).toBe('https://ec2.eu-west-3.amazonaws.com/');
  });
});
