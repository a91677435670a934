import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sim, type SimOptions, startSim } from '../../sim.ts';
import type { DigitalOceanOptions } from './digitalocean-backend.ts';
import { type DotsClient, type DotsItem, dotsClient, dotsFailure, eventually, ipOf } from './dots-client.test-helpers.ts';

// DigitalOcean's real-cloud timing windows (CLOUD-BEHAVIOURS.md section 4), on by default in the
// realistic profile, through the real @digitalocean/dots client. Windows the assertions must see
// "before" are made long (a knob in real ms × timeScale 0.01), so a loaded machine cannot miss them.

let sim: Sim;
let client: DotsClient;
const userKey = generateSSHKeyPair({ comment: 'realism' });
const request = { region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64' };

async function start(digitalocean: DigitalOceanOptions = {}, options: SimOptions = {}): Promise<DigitalOceanOptions> {
  sim = await startSim({ providers: ['digitalocean'], delays: { pendingMs: 20, stoppingMs: 10 }, digitalocean, ...options });
  client = dotsClient(sim.endpoints.digitalocean!);
  return digitalocean;
}

afterEach(async () => {
  await sim?.close();
});

type DotsDroplet = { id?: number; status?: string; locked?: boolean; networks?: { v4?: { ipAddress?: string; type?: string }[] } };

async function droplet(id: number): Promise<DotsDroplet> {
  return (await client.v2.droplets.byDroplet_id(id).get())!.droplet as DotsDroplet;
}

async function createDroplet(name: string): Promise<{ id: number; actionId: number }> {
  const created = (await client.v2.droplets.post({ ...request, name, tags: ['realism'] })) as { droplet: { id: number }; links: { actions: { id: number }[] } };
  return { id: created.droplet.id, actionId: created.links.actions[0]!.id };
}

async function actionDone(actionId: number): Promise<string> {
  return eventually(async () => {
    const status = (await client.v2.actions.byAction_id(actionId).get())?.action?.status as string | undefined;
    return status === 'in-progress' ? undefined : status;
  });
}

async function act(id: number, type: string): Promise<number> {
  return (await client.v2.droplets.byDroplet_id(id).actions.post({ type }))!.action!.id as number;
}

describe('DigitalOcean realism (default profile) through @digitalocean/dots', () => {
  it('read-after-create: a new droplet and a new key read by id at once but are missing from the listings for the listing lag', async () => {
    await start({ listingLagMs: 100_000 }); // 1 s scaled
    const key = (await client.v2.account.keys.post({ name: 'k', publicKey: userKey.publicKey }))!.sshKey!;
    const { id } = await createDroplet('lag-1');
    expect((await droplet(id)).id).toBe(id);
    expect((await client.v2.account.keys.bySsh_key_identifier(key.id).get())?.sshKey?.id).toBe(key.id);
    expect((await client.v2.droplets.get({ queryParameters: { tagName: 'realism' } }))?.droplets).toEqual([]);
    expect((await client.v2.account.keys.get())?.sshKeys).toEqual([]);
    const listed = await eventually(async () => {
      const droplets = (await client.v2.droplets.get({ queryParameters: { tagName: 'realism' } }))?.droplets as DotsItem[];
      return droplets.length > 0 ? droplets : undefined;
    });
    expect(listed.map((item) => item.id)).toEqual([id]);
    expect(((await client.v2.account.keys.get())!.sshKeys as DotsItem[]).map((item) => item.id)).toEqual([key.id]);
  });

  it('active before the public IPv4: networks.v4 is empty while new, then has only the private address, then the public one', async () => {
    await start({ publicIpLagMs: 100_000 }, { delays: { pendingMs: 300, stoppingMs: 10 } });
    const { id, actionId } = await createDroplet('ip-1');
    expect((await droplet(id)).networks?.v4).toEqual([]);
    expect(await actionDone(actionId)).toBe('completed');
    const active = await eventually(async () => {
      const current = await droplet(id);
      return current.status === 'active' ? current : undefined;
    });
    expect(ipOf(active)).toBeUndefined();
    expect(ipOf(active, 'private')).toMatch(/^10\./);
    const withIp = await eventually(async () => {
      const current = await droplet(id);
      return ipOf(current) === undefined ? undefined : current;
    });
    expect(ipOf(withIp)).toMatch(/^127\.1\./);
  });

  it('action/status lag and locked: power_off completes while the droplet still reads active, then off; locked while the action runs', async () => {
    await start({ statusLagMs: 100_000, shutdownIgnoredAfterBootMs: 0 }, { delays: { pendingMs: 300, stoppingMs: 10 } });
    const { id, actionId } = await createDroplet('lag-2');
    expect((await droplet(id)).locked).toBe(true);
    await actionDone(actionId);
    await eventually(async () => ((await droplet(id)).status === 'active' ? true : undefined));
    const powerOff = await act(id, 'power_off');
    expect(await actionDone(powerOff)).toBe('completed');
    const lagging = await droplet(id);
    expect([lagging.status, lagging.locked]).toEqual(['active', false]);
    expect(await eventually(async () => ((await droplet(id)).status === 'off' ? 'off' : undefined), 5_000)).toBe('off');
    // Power-off keeps the public IPv4 (DigitalOcean does not rotate it, unlike EC2/GCE); so does power-on.
    const before = ipOf(await droplet(id));
    expect(before).toMatch(/^127\.1\./);
    await actionDone(await act(id, 'power_on'));
    await eventually(async () => ((await droplet(id)).status === 'active' ? true : undefined));
    expect(ipOf(await droplet(id))).toBe(before);
  });

  it('one action at a time: a second action, or one on a booting droplet, is 422 "Droplet already has a pending event."', async () => {
    await start({}, { delays: { pendingMs: 200, stoppingMs: 200 } });
    const { id, actionId } = await createDroplet('busy-1');
    const booting = await dotsFailure(client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_off' }));
    expect(booting).toMatchObject({ responseStatusCode: 422, messageEscaped: 'Droplet already has a pending event.' });
    await actionDone(actionId);
    await act(id, 'shutdown'); // in progress for the 200 ms stop
    const overlapping = await dotsFailure(client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_off' }));
    expect(overlapping).toMatchObject({ responseStatusCode: 422, messageEscaped: 'Droplet already has a pending event.' });
  });

  it('shutdown is best effort: soon after boot it completes while the droplet stays active; later it powers the droplet off; power_off always works', async () => {
    await start({ shutdownIgnoredAfterBootMs: 100_000, statusLagMs: 0 });
    const { id, actionId } = await createDroplet('shut-1');
    await actionDone(actionId);
    const ignored = await act(id, 'shutdown');
    expect(await actionDone(ignored)).toBe('completed');
    expect((await droplet(id)).status).toBe('active');
    expect(sim.store.getInstance('digitalocean', String(id))?.state).toBe('running');
    await actionDone(await act(id, 'power_off'));
    expect(sim.store.getInstance('digitalocean', String(id))?.state).toBe('stopped');

    // Outside the window (knob 0), shutdown stops the droplet; the knob `shutdownIgnored` ignores it anyway.
    await sim.close();
    const knobs = await start({ shutdownIgnoredAfterBootMs: 0, statusLagMs: 0 });
    const second = await createDroplet('shut-2');
    await actionDone(second.actionId);
    await actionDone(await act(second.id, 'shutdown'));
    expect(sim.store.getInstance('digitalocean', String(second.id))?.state).toBe('stopped');
    await actionDone(await act(second.id, 'power_on'));
    knobs.shutdownIgnored = { name: 'shut-2', times: 1 };
    await actionDone(await act(second.id, 'shutdown'));
    expect(sim.store.getInstance('digitalocean', String(second.id))?.state).toBe('running');
    await actionDone(await act(second.id, 'shutdown'));
    expect(sim.store.getInstance('digitalocean', String(second.id))?.state).toBe('stopped');
  });

  it('burst rate limit: past 250 requests in the (scaled) minute, 429 too_many_requests with Retry-After and ratelimit-* headers', async () => {
    await start({ burstLimit: 3, burstWindowMs: 6_000_000 }); // a 60 s window
    const answers: Response[] = [];
    for (let index = 0; index < 4; index++) {
      answers.push(await fetch(`${sim.endpoints.digitalocean}/v2/account`, { headers: { authorization: 'Bearer t' } }));
    }
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    const throttled = answers[3]!;
    expect(await throttled.json()).toMatchObject({ id: 'too_many_requests', message: 'API Rate limit exceeded.' });
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(throttled.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(throttled.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    expect(Number(answers[0]!.headers.get('ratelimit-limit'))).toBe(5000);
  });

  it('knob enforceHourlyLimit: once ratelimit-remaining is 0, 429 until ratelimit-reset', async () => {
    await start({ rateLimit: 2, enforceHourlyLimit: true, burstLimit: 1000 });
    const statuses: number[] = [];
    for (let index = 0; index < 3; index++) statuses.push((await fetch(`${sim.endpoints.digitalocean}/v2/account`, { headers: { authorization: 'Bearer t' } })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('a deleted droplet stays readable a while (DELETE 204 again meanwhile), then 404 not_found', async () => {
    await start({ deletedVisibleMs: 100_000 });
    const { id, actionId } = await createDroplet('del-1');
    await actionDone(actionId);
    const deleted = await fetch(`${sim.endpoints.digitalocean}/v2/droplets/${id}`, { method: 'DELETE', headers: { authorization: 'Bearer t' } });
    expect(deleted.status).toBe(204);
    expect((await droplet(id)).id).toBe(id);
    const again = await fetch(`${sim.endpoints.digitalocean}/v2/droplets/${id}`, { method: 'DELETE', headers: { authorization: 'Bearer t' } });
    expect(again.status).toBe(204);
    const busy = await dotsFailure(client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_off' }));
    expect(busy.responseStatusCode).toBe(422);
    const gone = await eventually(async () => {
      const failure = await client.v2.droplets.byDroplet_id(id).get().then(
        () => undefined,
        (error: { responseStatusCode?: number; messageEscaped?: string }) => error,
      );
      return failure;
    });
    expect(gone).toMatchObject({ responseStatusCode: 404, messageEscaped: 'The resource you were accessing could not be found.' });
    expect(sim.leaks()).toEqual([]);
  });

  it('knob rareStatus: a running droplet reports a status DigitalOcean may add later (dots reads it as no status at all)', async () => {
    await start({ rareStatus: { name: 'odd-1', status: 'migrating' } });
    const { id, actionId } = await createDroplet('odd-1');
    expect((await droplet(id)).status).toBe('new');
    await actionDone(actionId);
    const raw = async () => {
      const response = await fetch(`${sim.endpoints.digitalocean}/v2/droplets/${id}`, { headers: { authorization: 'Bearer t' } });
      return ((await response.json()) as { droplet: { status: string } }).droplet.status;
    };
    expect(await eventually(async () => ((await raw()) === 'migrating' ? 'migrating' : undefined))).toBe('migrating');
    // The SDK's enum parser drops a value it does not know: a driver sees `status` undefined.
    expect((await droplet(id)).status).toBeUndefined();
  });

  it('leftovers and limits: a key already on the account (any name) is 422 "already in use"; the droplet limit is a 422, not a 5xx', async () => {
    await start({ dropletLimit: 1 });
    await client.v2.account.keys.post({ name: 'first', publicKey: userKey.publicKey });
    const duplicate = await dotsFailure(client.v2.account.keys.post({ name: 'second', publicKey: userKey.publicKey }));
    expect(duplicate).toMatchObject({ responseStatusCode: 422, messageEscaped: 'SSH Key is already in use on your account' });
    await createDroplet('one');
    const over = await dotsFailure(client.v2.droplets.post({ ...request, name: 'two' }));
    expect(over).toMatchObject({ responseStatusCode: 422, messageEscaped: 'creating this/these droplet(s) will exceed your droplet limit' });
  });

  it('the kind profile turns the windows off: listed, addressed and off at once, shutdown always stops', async () => {
    await start({ listingLagMs: 100_000, publicIpLagMs: 100_000, statusLagMs: 100_000, shutdownIgnoredAfterBootMs: 100_000 }, { profile: 'kind' });
    const { id, actionId } = await createDroplet('kind-1');
    expect(((await client.v2.droplets.get())!.droplets as DotsItem[]).map((item) => item.id)).toEqual([id]);
    await actionDone(actionId);
    expect(ipOf(await droplet(id))).toMatch(/^127\.1\./);
    await actionDone(await act(id, 'shutdown'));
    expect((await droplet(id)).status).toBe('off');
  });
});
