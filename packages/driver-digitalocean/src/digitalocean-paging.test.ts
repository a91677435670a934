import { join } from 'node:path';
import type { Sim } from '@machine/cloud-sim';
import { AuthError, createMemoryContext, NotFoundError, parseFlags, State } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DigitalOceanConfig } from './digitalocean-flags.ts';
import { dropletPageOf } from './digitalocean-client.ts';
import { hasNextPage } from './digitalocean-paging.ts';
import { createDigitalOceanDescriptor, machineTag, ResourceKind } from './index.ts';
import { fastTimings } from './test-support/fast-timings.ts';
import { simFlags, startDigitalOceanSim } from './test-support/sim-harness.ts';

describe('dropletPageOf', () => {
  it('reads the fields a listing needs in dots\' model names, and anything malformed as absent', () => {
    const page = dropletPageOf({
      droplets: [
        { id: 7, name: 'web1', status: 'active', networks: { v4: [{ ip_address: '203.0.113.7', type: 'public' }, { ip_address: '10.0.0.7', type: 'private' }], v6: [] } },
        { id: 'eight', name: 8, status: null, networks: 'none' },
        'not a droplet',
      ],
      links: { pages: { next: 'https://api/v2/droplets?page=2' } },
      meta: { total: 201 },
    });
    expect(page.droplets).toEqual([
      { id: 7, name: 'web1', status: 'active', networks: { v4: [{ ipAddress: '203.0.113.7', type: 'public' }, { ipAddress: '10.0.0.7', type: 'private' }], v6: [] } },
      { id: null, name: null, status: null, networks: null },
    ]);
    expect(page.links?.pages?.next).toBe('https://api/v2/droplets?page=2');
    expect(page.meta?.total).toBe(201);
    expect(dropletPageOf(undefined)).toEqual({ droplets: [], links: null, meta: { total: null } });
    expect(dropletPageOf({ droplets: 'many' }).droplets).toEqual([]);
  });
});

describe('hasNextPage', () => {
  it('follows meta.total, and a next link wherever dots put it', () => {
    expect(hasNextPage({ meta: { total: 250 } }, 1, 200, 200)).toBe(true);
    expect(hasNextPage({ meta: { total: 250 } }, 2, 200, 50)).toBe(false);
    expect(hasNextPage({ meta: { total: 400 } }, 2, 200, 200)).toBe(false);
    // dots 1.19 reads a first page's `pages` as Backward_links: `next` is only in additionalData.
    expect(hasNextPage({ links: { pages: { additionalData: { next: 'https://api/v2/droplets?page=2' } } } }, 1, 200, 200)).toBe(true);
    expect(hasNextPage({ links: { pages: { next: 'https://api/v2/droplets?page=3' } } }, 2, 200, 200)).toBe(true);
    expect(hasNextPage({ links: { pages: { additionalData: { prev: 'https://api/v2/droplets?page=1' } } } }, 2, 200, 200)).toBe(false);
    expect(hasNextPage({ links: {} }, 1, 200, 200)).toBe(true);
  });
});

// The bug: getStates read `links.pages.next`, which dots 1.19 never fills on a first page (it lands
// in `pages.additionalData`), so a fleet of more than 200 tagged droplets lost every one past 200.
describe('getStates over more than one page of droplets (real dots client, simulator)', () => {
  let sim: Sim;
  const count = 250;
  const ids: string[] = [];

  beforeAll(async () => {
    sim = await startDigitalOceanSim({ profile: 'kind' });
    const url = sim.endpoints.digitalocean;
    // DigitalOcean's multi-create takes 10 names a call; the droplets carry the driver's `machine` tag.
    for (let batch = 0; batch < count / 10; batch++) {
      const names = Array.from({ length: 10 }, (_, index) => `paged-${batch * 10 + index}`);
      const response = await fetch(`${url}/v2/droplets`, {
        method: 'POST',
        headers: { authorization: 'Bearer paging', 'content-type': 'application/json' },
        body: JSON.stringify({ names, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: [machineTag] }),
      });
      expect(response.status).toBe(202);
      const body = (await response.json()) as { droplets: { id: number }[] };
      ids.push(...body.droplets.map((droplet) => String(droplet.id)));
    }
  });
  afterAll(async () => {
    await sim.close();
  });

  it(`answers all ${count} machines, reading the second page`, async () => {
    const descriptor = createDigitalOceanDescriptor({ timings: fastTimings });
    const machines = await Promise.all(
      ids.map(async (id, index) => {
        const context = createMemoryContext(`paged-${index}`, join('/nonexistent', `paged-${index}`));
        await context.journal.record({ kind: ResourceKind.droplet, id });
        const config = parseFlags(descriptor.flags, simFlags(sim), { env: {} }) as DigitalOceanConfig;
        return { config, context };
      }),
    );
    const gone = createMemoryContext('gone', '/nonexistent/gone');
    await gone.journal.record({ kind: ResourceKind.droplet, id: '999999999' });
    const goneConfig = parseFlags(descriptor.flags, simFlags(sim), { env: {} }) as DigitalOceanConfig;
    sim.requestLog.clear();
    const states = await descriptor.getStates?.([...machines, { config: goneConfig, context: gone }]);
    // Both pages this many machines need are asked together, so their order in the log is free.
    const paths = sim.requestLog.entries('digitalocean').map((entry) => entry.path);
    expect(paths).toHaveLength(2);
    expect(paths).toEqual(expect.arrayContaining([expect.stringMatching(/^\/v2\/droplets\?.*page=1/), expect.stringMatching(/^\/v2\/droplets\?.*page=2/)]));
    const missing = machines.filter(({ context }) => !(typeof states?.get(context.machineName) === 'object' && 'state' in (states.get(context.machineName) as object)));
    expect(missing.map(({ context }) => context.machineName)).toEqual([]);
    expect(states?.get(machines[count - 1]!.context.machineName)).toMatchObject({ state: State.Running });
    expect(states?.get('gone')).toBeInstanceOf(NotFoundError);
  });

  it('lists through the dots adapter alone: a refused token is a typed AuthError per machine, with no token in it', async () => {
    const descriptor = createDigitalOceanDescriptor({ timings: fastTimings });
    const context = createMemoryContext('refused', '/nonexistent/refused');
    await context.journal.record({ kind: ResourceKind.droplet, id: ids[0] ?? '' });
    // The simulator refuses tokens starting with `invalid`.
    const token = 'invalid_dop_v1_refused_token';
    const config = parseFlags(descriptor.flags, { ...simFlags(sim), 'digitalocean-access-token': token }, { env: {} }) as DigitalOceanConfig;
    const answer = (await descriptor.getStates?.([{ config, context }]))?.get('refused');
    expect(answer).toBeInstanceOf(AuthError);
    // DigitalOcean's own error body is read, as through dots.
    expect(String(answer)).toContain('401 Unable to authenticate you');
    expect(String(answer)).not.toContain(token);
  });

  it('follows the pages one after the other when the account has more tagged droplets than the machines asked about', async () => {
    const descriptor = createDigitalOceanDescriptor({ timings: fastTimings });
    const context = createMemoryContext('last-one', '/nonexistent/last-one');
    await context.journal.record({ kind: ResourceKind.droplet, id: ids[count - 1] ?? '' });
    const config = parseFlags(descriptor.flags, simFlags(sim), { env: {} }) as DigitalOceanConfig;
    sim.requestLog.clear();
    const states = await descriptor.getStates?.([{ config, context }]);
    expect(states?.get('last-one')).toMatchObject({ state: State.Running });
    expect(sim.requestLog.entries('digitalocean').map((entry) => entry.path)).toEqual([
      expect.stringMatching(/^\/v2\/droplets\?.*page=1/),
      expect.stringMatching(/^\/v2\/droplets\?.*page=2/),
    ]);
  });
});
