// The wire format and the kind profile's state machine; the real-cloud timing windows are in digitalocean-realism.test.ts.
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH, withSSHClient } from '@machine/driver-core/ssh';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../../sim.ts';
import { type DotsClient, type DotsItem, dotsClient, dotsFailure, eventually, ipOf } from './dots-client.test-helpers.ts';

let sim: Sim;
let client: DotsClient;
const userKey = generateSSHKeyPair({ comment: 'driver' });

beforeEach(async () => {
  sim = await startSim({ providers: ['digitalocean'], profile: 'kind', delays: { pendingMs: 20, stoppingMs: 10 } });
  client = dotsClient(sim.endpoints.digitalocean!);
});
afterEach(async () => {
  await sim.close();
});

async function createKey(name = 'machine-key') {
  const created = await client.v2.account.keys.post({ name, publicKey: userKey.publicKey });
  return created!.sshKey!;
}

async function createDroplet(name: string, keyId: number, tags: string[] = []) {
  const created = await client.v2.droplets.post({ name, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [String(keyId)], tags });
  return created as { droplet?: { id?: number; status?: string }; links?: { actions?: { id?: number; rel?: string; href?: string }[] } };
}

async function waitActive(id: number) {
  return eventually(async () => {
    const response = await client.v2.droplets.byDroplet_id(id).get();
    return response?.droplet?.status === 'active' ? response.droplet : undefined;
  });
}

describe('DigitalOcean front end through @digitalocean/dots', () => {
  it('answers account, regions, sizes and images', async () => {
    const account = await client.v2.account.get();
    expect(account?.account?.status).toBe('active');
    expect(account?.account?.dropletLimit).toBe(1000);
    const regions = await client.v2.regions.get();
    expect(regions?.regions?.map((region: DotsItem) => region.slug)).toContain('nyc3');
    expect(regions?.regions?.[0]?.features?.length).toBeGreaterThan(0);
    const sizes = await client.v2.sizes.get();
    expect(sizes?.sizes?.find((size: DotsItem) => size.slug === 's-1vcpu-1gb')?.memory).toBe(1024);
    const images = await client.v2.images.get({ queryParameters: { type: 'distribution' } });
    expect(images?.images?.map((image: DotsItem) => image.slug)).toContain('ubuntu-24-04-x64');
    expect(sim.requestLog.counts()).toMatchObject({ 'account.get': 1, 'regions.list': 1, 'sizes.list': 1, 'images.list': 1 });
  });

  it('creates, gets, lists and deletes SSH keys with MD5 fingerprints', async () => {
    const key = await createKey();
    expect(key.fingerprint).toBe(userKey.md5Fingerprint);
    expect(key.publicKey).toBe(userKey.publicKey);
    const byId = await client.v2.account.keys.bySsh_key_identifier(key.id!).get();
    expect(byId?.sshKey?.name).toBe('machine-key');
    const list = await client.v2.account.keys.get();
    expect(list?.sshKeys?.map((entry: DotsItem) => entry.id)).toEqual([key.id]);
    expect(list?.meta?.total).toBe(1);
    const duplicate = await dotsFailure(client.v2.account.keys.post({ name: 'again', publicKey: userKey.publicKey }));
    expect(duplicate.responseStatusCode).toBe(422);
    expect(duplicate.messageEscaped).toBe('SSH Key is already in use on your account');
    await client.v2.account.keys.bySsh_key_identifier(key.id!).delete();
    const gone = await dotsFailure(client.v2.account.keys.bySsh_key_identifier(key.id!).get());
    expect(gone.responseStatusCode).toBe(404);
    expect(gone.requestId).toMatch(/[0-9a-f-]{36}/);
    expect(sim.leaks()).toEqual([]);
  });

  it('creates a droplet that goes new → active with a loopback public IP, and polls its create action', async () => {
    // A 400 ms boot, so a loaded machine still reads the create action in progress.
    await sim.close();
    sim = await startSim({ providers: ['digitalocean'], profile: 'kind', delays: { pendingMs: 400, stoppingMs: 10 } });
    client = dotsClient(sim.endpoints.digitalocean!);
    const key = await createKey();
    const created = await createDroplet('web-1', key.id!, ['machine']);
    expect(created.droplet?.status).toBe('new');
    const actionId = created.links?.actions?.[0]?.id;
    expect(created.links?.actions?.[0]?.rel).toBe('create');
    const first = await client.v2.actions.byAction_id(actionId!).get();
    expect(first?.action?.status).toBe('in-progress');
    await eventually(async () => ((await client.v2.actions.byAction_id(actionId!).get())?.action?.status === 'completed' ? true : undefined));
    const droplet = await waitActive(created.droplet!.id!);
    const publicV4 = droplet.networks?.v4?.find((network: { type?: string }) => network.type === 'public');
    expect(publicV4?.ipAddress).toMatch(/^127\.1\.\d+\.\d+$/);
    expect(ipOf(droplet, 'private')).toMatch(/^10\./);
    expect(droplet.tags).toEqual(['machine']);
    expect(droplet.sizeSlug).toBe('s-1vcpu-1gb');
    expect(droplet.region?.slug).toBe('nyc3');
    expect(droplet.image?.slug).toBe('ubuntu-24-04-x64');
    const dropletActions = await client.v2.droplets.byDroplet_id(droplet.id!).actions.get();
    expect(dropletActions?.actions?.map((action: DotsItem) => action.type)).toEqual(['create']);
    expect(sim.requestLog.count('droplets.create')).toBe(1);
  });

  it('lists droplets with a tag filter and paginates with links and meta', async () => {
    const key = await createKey();
    await createDroplet('a-1', key.id!, ['group-a']);
    await createDroplet('a-2', key.id!, ['group-a']);
    await createDroplet('b-1', key.id!, ['group-b']);
    const tagged = await client.v2.droplets.get({ queryParameters: { tagName: 'group-a' } });
    expect(tagged?.droplets?.map((droplet: DotsItem) => droplet.name)).toEqual(['a-1', 'a-2']);
    const page = await client.v2.droplets.get({ queryParameters: { perPage: 2, page: 1 } });
    expect(page?.droplets).toHaveLength(2);
    expect(page?.meta?.total).toBe(3);
    const raw = await fetch(`${sim.endpoints.digitalocean}/v2/droplets?per_page=2`, { headers: { authorization: 'Bearer t' } });
    const body = (await raw.json()) as { links: { pages: { next: string; last: string } } };
    expect(body.links.pages.next).toBe(`${sim.endpoints.digitalocean}/v2/droplets?per_page=2&page=2`);
    expect(raw.headers.get('ratelimit-limit')).toBe('5000');
    expect(Number(raw.headers.get('ratelimit-remaining'))).toBeLessThan(5000);
  });

  it('accepts the uploaded key over SSH, runs the emulated shell and serves SFTP; refuses another key', async () => {
    const key = await createKey();
    const created = await createDroplet('ssh-1', key.id!);
    const droplet = await waitActive(created.droplet!.id!);
    const ip = ipOf(droplet)!;
    const target = { host: ip, port: sim.sshPort, username: 'root', privateKey: userKey.privateKey };
    const uname = await runSSH(target, 'uname -a');
    expect(uname.code).toBe(0);
    expect(uname.stdout).toMatch(/^Linux ssh-1 .* GNU\/Linux\n$/);
    const release = await runSSH({ ...target, username: 'ubuntu' }, 'sudo cat /etc/os-release && exit 3');
    expect(release.stdout).toContain('ID=ubuntu');
    expect(release.code).toBe(3);

    await withSSHClient(target, undefined, (connection) =>
      new Promise<void>((resolve, reject) => {
        connection.sftp((error, sftp) => {
          if (error) return reject(error);
          sftp.writeFile('/tmp/uploaded.txt', 'hello from sftp\n', (writeError) => (writeError ? reject(writeError) : resolve()));
        });
      }),
    );
    const readBack = await runSSH(target, 'cat /tmp/uploaded.txt');
    expect(readBack.stdout).toBe('hello from sftp\n');

    const stranger = generateSSHKeyPair({ comment: 'stranger' });
    await expect(runSSH({ ...target, privateKey: stranger.privateKey }, 'true')).rejects.toMatchObject({ failure: 'auth' });
  });

  it('power actions change state and open/close SSH; actions complete', async () => {
    const key = await createKey();
    const created = await createDroplet('power-1', key.id!);
    const droplet = await waitActive(created.droplet!.id!);
    const id = droplet.id!;
    const ip = ipOf(droplet)!;
    const target = { host: ip, port: sim.sshPort, username: 'root', privateKey: userKey.privateKey, readyTimeout: 2000 };
    const act = async (type: string, expected: string) => {
      const started = await client.v2.droplets.byDroplet_id(id).actions.post({ type } as never);
      expect(started?.action?.status).toBe('in-progress');
      const actionId = started!.action!.id!;
      await eventually(async () => {
        const action = await client.v2.droplets.byDroplet_id(id).actions.byAction_id(actionId).get();
        return action?.action?.status === 'completed' ? true : undefined;
      });
      expect((await client.v2.droplets.byDroplet_id(id).get())?.droplet?.status).toBe(expected);
    };
    await act('shutdown', 'off');
    await expect(runSSH(target, 'true')).rejects.toMatchObject({ failure: 'refused' });
    await act('power_on', 'active');
    expect((await runSSH(target, 'hostname')).stdout).toBe('power-1\n');
    await act('reboot', 'active');
    await act('power_cycle', 'active');
    await act('power_off', 'off');
    sim.lifecycle.delays.pendingMs = 2_000; // keep the droplet booting while the second power_on arrives, however slow the machine
    const busy = await client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_on' } as never);
    const pending = await dotsFailure(client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_on' } as never));
    expect(busy?.action?.type).toBe('power_on');
    expect(pending.responseStatusCode).toBe(422);
    expect(sim.requestLog.count('droplet_actions.create')).toBe(7);
  });

  it('manages firewalls', async () => {
    const key = await createKey();
    const created = await createDroplet('fw-1', key.id!);
    const firewall = await client.v2.firewalls.post({
      name: 'machine-fw',
      inboundRules: [{ protocol: 'tcp', ports: '22', sources: { addresses: ['0.0.0.0/0', '::/0'] } }],
      outboundRules: [{ protocol: 'tcp', ports: 'all', destinations: { addresses: ['0.0.0.0/0'] } }],
      dropletIds: [created.droplet!.id!],
    } as never);
    expect(firewall?.firewall?.status).toBe('waiting');
    const id = firewall!.firewall!.id!;
    const fetched = await client.v2.firewalls.byFirewall_id(id).get();
    expect(fetched?.firewall?.status).toBe('succeeded');
    expect(fetched?.firewall?.inboundRules?.[0]?.sources?.addresses).toEqual(['0.0.0.0/0', '::/0']);
    expect(fetched?.firewall?.dropletIds).toEqual([created.droplet!.id]);
    expect((await client.v2.firewalls.get())?.firewalls).toHaveLength(1);
    await client.v2.firewalls.byFirewall_id(id).delete();
    expect((await dotsFailure(client.v2.firewalls.byFirewall_id(id).get())).responseStatusCode).toBe(404);
  });

  it('deletes droplets (SSH torn down, 404 afterwards) and leaves no leaks', async () => {
    const key = await createKey();
    const created = await createDroplet('gone-1', key.id!, ['bulk']);
    await createDroplet('gone-2', key.id!, ['bulk']);
    const droplet = await waitActive(created.droplet!.id!);
    const ip = ipOf(droplet)!;
    expect(sim.leaks().map((leak) => leak.kind).sort()).toEqual(['droplet', 'droplet', 'ssh_key']);
    await client.v2.droplets.byDroplet_id(droplet.id!).delete();
    const missing = await dotsFailure(client.v2.droplets.byDroplet_id(droplet.id!).get());
    expect(missing).toMatchObject({ responseStatusCode: 404, messageEscaped: 'The resource you were accessing could not be found.' });
    await eventually(async () => (sim.ssh.openCount === 1 ? true : undefined));
    await expect(runSSH({ host: ip, port: sim.sshPort, username: 'root', privateKey: userKey.privateKey }, 'true')).rejects.toMatchObject({ failure: 'refused' });
    await client.v2.droplets.delete({ queryParameters: { tagName: 'bulk' } });
    await client.v2.account.keys.bySsh_key_identifier(key.id!).delete();
    expect(sim.leaks()).toEqual([]);
  });

  it('accepts ssh_keys by fingerprint and creates several droplets with `names`', async () => {
    await createKey();
    const response = await fetch(`${sim.endpoints.digitalocean}/v2/droplets`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: JSON.stringify({ names: ['m-1', 'm-2'], size: 's-1vcpu-1gb', image: 'ubuntu-22-04-x64', ssh_keys: [userKey.md5Fingerprint] }),
    });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { droplets: { id: number; name: string; status: string }[]; links: { actions: unknown[] } };
    expect(body.droplets.map((droplet) => [droplet.name, droplet.status])).toEqual([
      ['m-1', 'new'],
      ['m-2', 'new'],
    ]);
    expect(body.links.actions).toHaveLength(2);
    const droplet = await waitActive(body.droplets[1]!.id);
    const result = await runSSH({ host: ipOf(droplet)!, port: sim.sshPort, username: 'ubuntu', privateKey: userKey.privateKey }, 'cat /home/ubuntu/.ssh/authorized_keys');
    expect(result.stdout.trim()).toBe(userKey.publicKey);
  });

  it('rejects invalid requests with DigitalOcean error bodies', async () => {
    const unknownKey = await dotsFailure(client.v2.droplets.post({ name: 'x', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: ['12345'] }));
    expect(unknownKey.responseStatusCode).toBe(422);
    const invalidSize = await dotsFailure(client.v2.droplets.post({ name: 'x', region: 'nyc3', size: 'huge', image: 'ubuntu-24-04-x64' }));
    expect(invalidSize).toMatchObject({ responseStatusCode: 422, messageEscaped: 'You specified an invalid size for Droplet creation.' });
    const raw = await fetch(`${sim.endpoints.digitalocean}/v2/droplets/123`, { headers: { authorization: 'Bearer t' } });
    const body = (await raw.json()) as Record<string, string>;
    expect(raw.status).toBe(404);
    expect(body).toEqual({ id: 'not_found', message: 'The resource you were accessing could not be found.', request_id: raw.headers.get('x-request-id') });
    expect(sim.leaks()).toEqual([]);
  });
});
