import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../../sim.ts';
import type { GoogleOptions } from './google-backend.ts';

// The driver's tests drive the real @google-cloud/compute client at this front end; these check
// the wire format itself with plain HTTP.

let sim: Sim;
const key = generateSSHKeyPair({ comment: 'docker-user' });
const base = () => `${sim.endpoints.google}/compute/v1/projects/p1`;

async function call(method: string, path: string, body?: unknown, token = 'sim-token') {
  const response = await fetch(`${base()}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: wire JSON read by path in assertions; a wrong path fails the assertion
  return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

const instance = (name: string) => ({
  name,
  machineType: 'zones/us-central1-a/machineTypes/e2-small',
  disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64', diskSizeGb: '10' } }],
  networkInterfaces: [{ network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
  tags: { items: ['docker-machine'] },
  metadata: { items: [{ key: 'ssh-keys', value: `docker-user:${key.publicKey}` }] },
});

async function waitDone(scope: string, name: string) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { body } = await call('POST', `/${scope}/operations/${name}/wait`);
    if (body?.status === 'DONE') return body;
  }
  throw new Error(`operation ${name} never finished`);
}

beforeEach(async () => {
  sim = await startSim({ providers: ['google'], delays: { pendingMs: 20, stoppingMs: 10 }, providerOptions: { google: { instanceLimit: 1 } } });
});
afterEach(async () => {
  await sim.close();
});

describe('Compute Engine v1 front end', () => {
  it('inserts through an operation, replays a repeated requestId, and serves SSH with the ssh-keys key', async () => {
    const first = await call('POST', '/zones/us-central1-a/instances?requestId=r-1', instance('web1'));
    const again = await call('POST', '/zones/us-central1-a/instances?requestId=r-1', instance('web1'));
    expect(first.status).toBe(200);
    expect(first.body?.kind).toBe('compute#operation');
    expect(again.body?.name).toBe(first.body?.name);
    const done = await waitDone('zones/us-central1-a', first.body?.name);
    expect(done.error).toBeUndefined();
    const { body } = await call('GET', '/zones/us-central1-a/instances/web1');
    expect(body?.status).toBe('RUNNING');
    expect(body?.metadata.fingerprint).toMatch(/\S+/);
    const ip = body?.networkInterfaces[0].accessConfigs[0].natIP as string;
    const ssh = await runSSH({ host: ip, port: sim.sshPort, username: 'docker-user', privateKey: key.privateKey }, 'exit 0');
    expect(ssh.code).toBe(0);
    const aggregated = await call('GET', '/aggregated/instances');
    expect(Object.keys(aggregated.body?.items ?? {})).toEqual(['zones/us-central1-a']);
  });

  it('a second instance over the limit finishes its operation DONE with QUOTA_EXCEEDED (HTTP 200)', async () => {
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('web1'))).body?.name);
    const second = await call('POST', '/zones/us-central1-a/instances', instance('web2'));
    expect(second.status).toBe(200);
    const done = await waitDone('zones/us-central1-a', second.body?.name);
    expect(done.error.errors[0].code).toBe('QUOTA_EXCEEDED');
    expect(done.httpErrorStatusCode).toBe(403);
  });

  it('answers with Compute Engine error bodies: 404, 409, 400, 401, 412', async () => {
    const missing = await call('GET', '/zones/us-central1-a/instances/nope');
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 404, errors: [{ reason: 'notFound' }] } } });
    expect(missing.body?.error.message).toBe("The resource 'projects/p1/zones/us-central1-a/instances/nope' was not found");
    const bad = await call('POST', '/zones/us-central1-a/instances', { ...instance('1web') });
    expect(bad.status).toBe(400);
    const badType = await call('POST', '/zones/us-central1-a/instances', { ...instance('web1'), machineType: 'zones/us-central1-a/machineTypes/huge' });
    expect(badType.status).toBe(400);
    expect((await call('GET', '/global/firewalls/x', undefined, 'invalid-token')).status).toBe(401);
    const rule = { name: 'docker-machines', network: 'global/networks/default', allowed: [{ IPProtocol: 'tcp', ports: ['22'] }], sourceRanges: ['0.0.0.0/0'] };
    expect((await call('POST', '/global/firewalls', rule)).status).toBe(200);
    expect((await call('POST', '/global/firewalls', rule)).body?.error.errors[0].reason).toBe('alreadyExists');
    expect((await call('POST', '/global/firewalls', { ...rule, name: 'mixed', sourceRanges: ['0.0.0.0/0', '::/0'] })).status).toBe(400);
    expect(sim.leaks().map((leak) => `${leak.kind} ${leak.name}`)).toEqual(['firewall docker-machines']);
    await call('DELETE', '/global/firewalls/docker-machines');
    const op = await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('web1'))).body?.name);
    expect(op.error).toBeUndefined();
    const stale = await call('POST', '/zones/us-central1-a/instances/web1/setMetadata', { fingerprint: 'stale', items: [] });
    expect(stale.status).toBe(412);
  });

  it('renders injected faults and throttling the way Compute Engine does', async () => {
    sim.faults.add({ provider: 'google', operation: 'firewalls.get', error: 'quota' });
    sim.faults.add({ provider: 'google', operation: 'firewalls.list', throttle: { retryAfterSeconds: 2 } });
    const quota = await call('GET', '/global/firewalls/x');
    expect(quota).toMatchObject({ status: 403, body: { error: { errors: [{ reason: 'quotaExceeded', domain: 'usageLimits' }] } } });
    const throttled = await fetch(`${base()}/global/firewalls`, { headers: { authorization: 'Bearer t' } });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('2');
    expect(((await throttled.json()) as { error: { status: string } }).error.status).toBe('RESOURCE_EXHAUSTED');
  });

  it('stop (with noGracefulShutdown), start and reset move the instance through the lifecycle; delete releases it', async () => {
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('web1'))).body?.name);
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/stop?noGracefulShutdown=true')).body?.name);
    const stopped = await call('GET', '/zones/us-central1-a/instances/web1');
    expect(stopped.body?.status).toBe('TERMINATED');
    expect(stopped.body?.networkInterfaces[0].accessConfigs[0].natIP).toBeUndefined();
    const reset = await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/reset')).body?.name);
    expect(reset.error.errors[0].code).toBe('UNSUPPORTED_OPERATION');
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/start')).body?.name);
    expect((await call('GET', '/zones/us-central1-a/instances/web1')).body?.status).toBe('RUNNING');
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/reset')).body?.name);
    await waitDone('zones/us-central1-a', (await call('DELETE', '/zones/us-central1-a/instances/web1')).body?.name);
    expect((await call('GET', '/zones/us-central1-a/instances/web1')).status).toBe(404);
    expect(sim.leaks()).toEqual([]);
    expect(sim.requestLog.count('instances.insert', 'google')).toBe(1);
  });
});

describe('Compute Engine front end: real-cloud behaviours (realistic profile, the default)', () => {
  const knobs: GoogleOptions = {};
  beforeEach(async () => {
    await sim.close();
    for (const key of Object.keys(knobs)) delete knobs[key as keyof GoogleOptions];
    sim = await startSim({ providers: ['google'], delays: { pendingMs: 40, stoppingMs: 10 }, providerOptions: { google: knobs } });
  });

  it('the first wait returns at once while the operation runs; a mutation meanwhile is 400 resourceNotReady; a delete during insert ends the insert in CONFLICT', async () => {
    const insert = await call('POST', '/zones/us-central1-a/instances', instance('web1'));
    const early = await call('POST', `/zones/us-central1-a/operations/${insert.body?.name}/wait`);
    expect(early.body?.status).toBe('RUNNING');
    const busy = await call('POST', '/zones/us-central1-a/instances/web1/stop');
    expect(busy).toMatchObject({ status: 400, body: { error: { errors: [{ reason: 'resourceNotReady' }] } } });
    expect(busy.body?.error.message).toBe("The resource 'projects/p1/zones/us-central1-a/instances/web1' is not ready");
    const deleted = await call('DELETE', '/zones/us-central1-a/instances/web1');
    expect(deleted.status).toBe(200);
    const done = await waitDone('zones/us-central1-a', insert.body?.name);
    expect(done.error.errors[0].code).toBe('CONFLICT');
    expect(done.httpErrorStatusCode).toBe(409);
    await waitDone('zones/us-central1-a', deleted.body?.name);
    expect(sim.leaks()).toEqual([]);
  });

  it('an ephemeral external IP changes on stop/start, a reserved natIP does not; a leftover disk blocks the name with 409', async () => {
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('web1'))).body?.name);
    const first = (await call('GET', '/zones/us-central1-a/instances/web1')).body?.networkInterfaces[0].accessConfigs[0].natIP;
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/stop')).body?.name);
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/start')).body?.name);
    const second = (await call('GET', '/zones/us-central1-a/instances/web1')).body?.networkInterfaces[0].accessConfigs[0].natIP;
    expect(second).not.toBe(first);
    const keep = instance('web2');
    keep.disks[0]!.autoDelete = false;
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', keep)).body?.name);
    await waitDone('zones/us-central1-a', (await call('DELETE', '/zones/us-central1-a/instances/web2')).body?.name);
    const again = await call('POST', '/zones/us-central1-a/instances', instance('web2'));
    expect(again).toMatchObject({ status: 409, body: { error: { errors: [{ reason: 'alreadyExists' }] } } });
    expect(again.body?.error.message).toBe("The resource 'projects/p1/zones/us-central1-a/disks/web2' already exists");
  });

  it('knobs: a stockout fails insert at DONE (no instance) and start (stays TERMINATED); per-minute quotas on operation polling; rare statuses', async () => {
    knobs.stockout = { name: /^full-/, operations: ['insert', 'start'] };
    const failed = await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('full-1'))).body?.name);
    expect(failed.error.errors[0]).toMatchObject({ code: 'ZONE_RESOURCE_POOL_EXHAUSTED' });
    expect(failed.error.errors[0].message).toContain('Try a different zone, or try again later.');
    expect((await call('GET', '/zones/us-central1-a/instances/full-1')).status).toBe(404);
    knobs.rareStatus = { name: 'odd', status: 'REPAIRING' };
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances', instance('odd'))).body?.name);
    expect((await call('GET', '/zones/us-central1-a/instances/odd')).body?.status).toBe('REPAIRING');
    knobs.rateQuotas = { limit: 1, groups: ['operationRead'] };
    const op = (await call('POST', '/zones/us-central1-a/instances/odd/setTags', { fingerprint: 'x' })).body;
    expect(op?.error?.code).toBe(412); // writes are not in the operationRead group
    const firstPoll = await call('GET', '/zones/us-central1-a/operations/none');
    const secondPoll = await call('GET', '/zones/us-central1-a/operations/none');
    expect(firstPoll.status).toBe(404);
    expect(secondPoll).toMatchObject({ status: 403, body: { error: { errors: [{ reason: 'rateLimitExceeded', domain: 'usageLimits' }] } } });
  });
});

describe('Compute Engine front end: kind profile', () => {
  it('wait blocks until DONE and the IP stays across stop/start', async () => {
    await sim.close();
    sim = await startSim({ providers: ['google'], profile: 'kind', delays: { pendingMs: 20, stoppingMs: 10 } });
    const insert = await call('POST', '/zones/us-central1-a/instances', instance('web1'));
    expect((await call('POST', `/zones/us-central1-a/operations/${insert.body?.name}/wait`)).body?.status).toBe('DONE');
    const first = (await call('GET', '/zones/us-central1-a/instances/web1')).body?.networkInterfaces[0].accessConfigs[0].natIP;
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/stop')).body?.name);
    await waitDone('zones/us-central1-a', (await call('POST', '/zones/us-central1-a/instances/web1/start')).body?.name);
    expect((await call('GET', '/zones/us-central1-a/instances/web1')).body?.networkInterfaces[0].accessConfigs[0].natIP).toBe(first);
  });
});
