import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../../sim.ts';
import { type DotsClient, dotsClient, dotsFailure, eventually, ipOf } from './dots-client.test-helpers.ts';

let sim: Sim;
let client: DotsClient;
const userKey = generateSSHKeyPair({ comment: 'driver' });
const dropletRequest = { name: 'fault-1', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64' };

beforeEach(async () => {
  sim = await startSim({ providers: ['digitalocean'], profile: 'kind', delays: { pendingMs: 20, stoppingMs: 10 } });
  client = dotsClient(sim.endpoints.digitalocean!);
});
afterEach(async () => {
  await sim.close();
});

async function launch(name: string) {
  const existing = (await client.v2.account.keys.get())?.sshKeys?.[0];
  const key = existing ?? (await client.v2.account.keys.post({ name, publicKey: userKey.publicKey }))!.sshKey!;
  const created = await client.v2.droplets.post({ ...dropletRequest, name, sshKeys: [String(key.id)] });
  return { keyId: key.id!, dropletId: created!.droplet!.id!, actionId: (created as { links?: { actions?: { id?: number }[] } }).links!.actions![0]!.id! };
}

describe('DigitalOcean fault injection through @digitalocean/dots', () => {
  it('answers 401 for tokens configured invalid, and for an injected auth fault', async () => {
    const rejected = await dotsFailure(dotsClient(sim.endpoints.digitalocean!, 'invalid-token').v2.account.get());
    expect(rejected).toMatchObject({ responseStatusCode: 401, messageEscaped: 'Unable to authenticate you' });
    sim.faults.add({ provider: 'digitalocean', operation: 'account.get', error: 'auth' });
    expect((await dotsFailure(client.v2.account.get())).responseStatusCode).toBe(401);
    expect((await client.v2.account.get())?.account?.status).toBe('active');
  });

  it('fails the Nth call with the droplet-limit 422 and leaves nothing behind', async () => {
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.create', nth: 2, error: 'quota' });
    await client.v2.droplets.post({ ...dropletRequest, name: 'first' });
    const second = await dotsFailure(client.v2.droplets.post({ ...dropletRequest, name: 'second' }));
    expect(second).toMatchObject({ responseStatusCode: 422, messageEscaped: 'creating this/these droplet(s) will exceed your droplet limit' });
    expect(sim.leaks().map((leak) => leak.name)).toEqual(['first']);
    expect(sim.requestLog.count('droplets.create')).toBe(2);
  });

  it('reply drop: the droplet is made, the dots client gets a dropped connection instead of the answer', async () => {
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.create', reply: 'drop' });
    const failure = await client.v2.droplets.post({ ...dropletRequest, name: 'lost-drop' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    expect(sim.leaks().map((leak) => leak.name)).toEqual(['lost-drop']);
    expect(sim.requestLog.count('droplets.create')).toBe(1);
    // The next call is answered as usual.
    expect((await client.v2.droplets.get({ queryParameters: { name: 'lost-drop' } }))?.droplets).toHaveLength(1);
  });

  it('reply hold: the droplet is made and the answer never comes (the client gives up)', async () => {
    sim.faults.add({ provider: 'digitalocean', operation: 'droplets.create', reply: 'hold' });
    const failure = await fetch(`${sim.endpoints.digitalocean}/v2/droplets`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' },
      body: JSON.stringify({ ...dropletRequest, name: 'lost-hold' }),
      signal: AbortSignal.timeout(300),
    }).then(
      (response) => `answered ${response.status}`,
      (error: unknown) => (error as Error).name,
    );
    expect(failure).toBe('TimeoutError');
    expect(sim.leaks().map((leak) => leak.name)).toEqual(['lost-hold']);
  });

  it('enforces the configured droplet limit with the same message', async () => {
    await sim.close();
    sim = await startSim({ providers: ['digitalocean'], profile: 'kind', digitalocean: { dropletLimit: 1 } });
    client = dotsClient(sim.endpoints.digitalocean!);
    await client.v2.droplets.post({ ...dropletRequest, name: 'only' });
    const over = await dotsFailure(client.v2.droplets.post({ ...dropletRequest, name: 'over' }));
    expect(over.messageEscaped).toBe('creating this/these droplet(s) will exceed your droplet limit');
    expect((await client.v2.account.get())?.account?.dropletLimit).toBe(1);
  });

  it('injects not found and server errors', async () => {
    const { dropletId } = await launch('errors-1');
    sim.faults.add({ operation: 'droplets.get', error: 'not_found' });
    expect((await dotsFailure(client.v2.droplets.byDroplet_id(dropletId).get())).responseStatusCode).toBe(404);
    sim.faults.add({ operation: 'droplets.get', error: 'server' });
    const server = await dotsFailure(client.v2.droplets.byDroplet_id(dropletId).get());
    expect(server).toMatchObject({ responseStatusCode: 500, messageEscaped: 'Server was unable to give you a response.' });
    expect((await client.v2.droplets.byDroplet_id(dropletId).get())?.droplet?.id).toBe(dropletId);
  });

  it('503 is retried by the SDK and counted in the request log', async () => {
    sim.faults.add({ operation: 'regions.list', error: 'unavailable', times: 2, retryAfterSeconds: 0 });
    const regions = await client.v2.regions.get();
    expect(regions?.regions?.length).toBeGreaterThan(0);
    expect(sim.requestLog.count('regions.list')).toBe(3);
    expect(sim.requestLog.entries().map((entry) => entry.status)).toEqual([503, 503, 200]);
  });

  it('throttles with the 429 rate-limit answer; the SDK honours retry-after', async () => {
    sim.faults.add({ operation: '*', throttle: { times: 2, retryAfterSeconds: 0, resetSeconds: 30 } });
    const account = await client.v2.account.get();
    expect(account?.account?.status).toBe('active');
    const entries = sim.requestLog.entries();
    expect(entries.map((entry) => [entry.status, entry.retryAttempt])).toEqual([
      [429, 0],
      [429, 1],
      [200, 2],
    ]);
    sim.faults.add({ operation: 'sizes.list', throttle: { times: 1, retryAfterSeconds: 7, resetSeconds: 30 } });
    const raw = await fetch(`${sim.endpoints.digitalocean}/v2/sizes`, { headers: { authorization: 'Bearer t' } });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toBe('7');
    expect(raw.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(raw.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 29);
    expect(await raw.json()).toMatchObject({ id: 'too_many_requests', message: 'API Rate limit exceeded.' });
  });

  it('adds latency', async () => {
    sim.faults.add({ operation: 'account.get', latencyMs: 150 });
    const started = performance.now();
    await client.v2.account.get();
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    expect(sim.requestLog.entries()[0]!.durationMs).toBeGreaterThanOrEqual(145);
  });

  it('an instance that never runs stays new and its create action in progress', async () => {
    sim.faults.instanceNeverRuns({ provider: 'digitalocean', name: 'stuck-1' });
    const { dropletId, actionId } = await launch('stuck-1');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await client.v2.droplets.byDroplet_id(dropletId).get())?.droplet?.status).toBe('new');
    expect((await client.v2.droplets.byDroplet_id(dropletId).get())?.droplet?.networks?.v4).toEqual([]);
    expect((await client.v2.actions.byAction_id(actionId).get())?.action?.status).toBe('in-progress');
    await client.v2.droplets.byDroplet_id(dropletId).delete();
    expect(sim.leaks().map((leak) => leak.kind)).toEqual(['ssh_key']);
  });

  it('an SSH port that never opens refuses connections while the droplet is active', async () => {
    sim.faults.sshNeverOpens({ name: 'closed-1' });
    const { dropletId } = await launch('closed-1');
    const droplet = await eventually(async () => {
      const response = await client.v2.droplets.byDroplet_id(dropletId).get();
      return response?.droplet?.status === 'active' ? response.droplet : undefined;
    });
    const ip = ipOf(droplet)!;
    await expect(runSSH({ host: ip, port: sim.sshPort, username: 'root', privateKey: userKey.privateKey }, 'true')).rejects.toMatchObject({ failure: 'refused' });
  });

  it('an SSH server that rejects the uploaded key', async () => {
    sim.faults.sshRejectsKey({ times: 1 });
    const rejecting = await launch('reject-1');
    const accepting = await launch('accept-1');
    const addressOf = async (id: number): Promise<string> => {
      const droplet = await eventually(async () => {
        const response = await client.v2.droplets.byDroplet_id(id).get();
        return response?.droplet?.status === 'active' ? response.droplet : undefined;
      });
      return ipOf(droplet)!;
    };
    const target = { port: sim.sshPort, username: 'root', privateKey: userKey.privateKey };
    await expect(runSSH({ ...target, host: await addressOf(rejecting.dropletId) }, 'true')).rejects.toMatchObject({ failure: 'auth' });
    expect((await runSSH({ ...target, host: await addressOf(accepting.dropletId) }, 'true')).code).toBe(0);
  });
});
