/**
 * A small loopback stand-in for the DigitalOcean API (the routes the driver uses, with DigitalOcean's
 * JSON shapes in snake_case), for unit tests that drive the real dots client. Droplets are all
 * reachable over one real ssh2 server on 127.0.0.1 that accepts the account's keys.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { md5Fingerprint, parsePublicKeyLine } from '@machine/driver-core/keys';
import { type RunningSSHServer, startSSHServer } from '@machine/driver-core/testing';

interface MockKey {
  id: number;
  name: string;
  fingerprint: string;
  public_key: string;
  preExisting: boolean;
}
interface MockDroplet {
  id: number;
  name: string;
  status: 'new' | 'active' | 'off' | 'archive';
  pollsUntilActive: number;
  tags: string[];
  created_at: string;
  body: Record<string, unknown>;
}
interface MockAction {
  id: number;
  type: string;
  dropletId: number;
  status: 'in-progress' | 'completed' | 'errored';
  pollsLeft: number;
  outcome: 'completed' | 'errored' | 'never';
}
interface MockFirewall {
  id: string;
  body: Record<string, unknown>;
}

/** One canned failure: the next request matching `route` gets this answer. */
export interface MockFault {
  /** `METHOD /path/pattern` where `:id` matches one segment, e.g. `POST /v2/droplets`. */
  route: string;
  status: number;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Answer this many matching requests (default 1). */
  times?: number;
  /** Let the request through first (so the resource is made), then answer with the fault. */
  afterApplying?: boolean;
}

/** Options of {@link startMockDigitalOceanApi}. */
export interface MockOptions {
  token?: string;
  /** GETs of a new droplet before it turns active (default 1); Infinity = never. */
  pollsUntilActive?: number;
  /** GETs of an action before it ends (default 1). */
  actionPolls?: number;
  /** Per action type: how it ends (default completed). */
  actionOutcome?: Partial<Record<string, 'completed' | 'errored' | 'never'>>;
}

/** A running mock. */
export interface MockDigitalOceanApi {
  readonly url: string;
  readonly token: string;
  readonly sshPort: number;
  readonly ssh: RunningSSHServer;
  /** `METHOD /path?query` of every request, in order. */
  readonly requests: string[];
  readonly droplets: Map<number, MockDroplet>;
  readonly keys: Map<number, MockKey>;
  readonly firewalls: Map<string, MockFirewall>;
  readonly actions: Map<number, MockAction>;
  options: MockOptions;
  fault(fault: MockFault): void;
  /** Adds a key that exists before the test (never counted as a leak). */
  seedKey(publicKey: string, name?: string): MockKey;
  /** Resources made through the API and not deleted. */
  leaks(): string[];
  close(): Promise<void>;
}

export async function startMockDigitalOceanApi(options: MockOptions = {}): Promise<MockDigitalOceanApi> {
  const token = options.token ?? 'dop_v1_test';
  const requests: string[] = [];
  const droplets = new Map<number, MockDroplet>();
  const keys = new Map<number, MockKey>();
  const firewalls = new Map<string, MockFirewall>();
  const actions = new Map<number, MockAction>();
  const faults: (MockFault & { left: number })[] = [];
  let nextId = 1000;
  const ssh = await startSSHServer({
    host: '127.0.0.1',
    authorizedKeys: () => [...keys.values()].map((key) => key.public_key),
  });

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req-${requests.length}`, ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  type Reply = (status: number, body?: unknown, headers?: Record<string, string>) => void;
  const notFound = (reply: Reply) =>
    reply(404, { id: 'not_found', message: 'The resource you were accessing could not be found.', request_id: `req-${requests.length}` });
  const dropletJson = (droplet: MockDroplet) => ({
    id: droplet.id,
    name: droplet.name,
    status: droplet.status,
    locked: false,
    memory: 1024,
    vcpus: 1,
    disk: 25,
    created_at: droplet.created_at,
    features: ['droplet_agent', 'private_networking'],
    tags: droplet.tags,
    size_slug: droplet.body.size,
    region: { slug: droplet.body.region, name: 'New York 3', available: true, sizes: ['s-1vcpu-1gb'], features: ['metadata'] },
    networks: {
      v4:
        droplet.status === 'new'
          ? []
          : [
              { ip_address: '10.10.0.5', netmask: '255.255.0.0', gateway: '10.10.0.1', type: 'private' },
              { ip_address: '127.0.0.1', netmask: '255.255.240.0', gateway: '127.0.0.254', type: 'public' },
            ],
      v6: [],
    },
    vpc_uuid: droplet.body.vpc_uuid ?? '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
  });
  const actionJson = (action: MockAction) => ({
    id: action.id,
    status: action.status,
    type: action.type,
    started_at: new Date().toISOString(),
    completed_at: null,
    resource_id: action.dropletId,
    resource_type: 'droplet',
    region_slug: 'nyc3',
  });

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? '/', 'http://mock');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '');
    requests.push(`${method} ${path}${url.search}`);
    const faultIndex = faults.findIndex((fault) => {
      const [fm, fp] = fault.route.split(' ');
      const pattern = new RegExp(`^${(fp ?? '').replace(/:id/g, '[^/]+')}$`);
      return fm === method && pattern.test(path);
    });
    const fault = faultIndex === -1 ? undefined : faults[faultIndex];
    if (fault !== undefined) {
      fault.left -= 1;
      if (fault.left <= 0) faults.splice(faultIndex, 1);
      if (!fault.afterApplying) {
        send(res, fault.status, fault.body ?? { id: 'error', message: `injected ${fault.status}` }, fault.headers);
        return;
      }
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      send(res, 401, { id: 'Unauthorized', message: 'Unable to authenticate you', request_id: 'req-auth' });
      return;
    }
    const body = raw === '' ? {} : (JSON.parse(raw) as Record<string, unknown>);
    const segments = path.split('/').slice(2); // after /v2
    if (fault?.afterApplying) {
      route(method, segments, body, url, () => {});
      send(res, fault.status, fault.body ?? { id: 'error', message: `injected ${fault.status}` }, fault.headers);
      return;
    }
    route(method, segments, body, url, (status, answer, headers) => send(res, status, answer, headers));
  };

  const route = (method: string, segments: string[], body: Record<string, unknown>, url: URL, reply: Reply): unknown => {
    const [collection, id, sub] = segments;
    if (collection === 'regions' && method === 'GET') {
      return reply(200, {
        regions: [
          { slug: 'nyc3', name: 'New York 3', available: true, sizes: ['s-1vcpu-1gb', 's-2vcpu-2gb'], features: ['metadata'] },
          { slug: 'ams3', name: 'Amsterdam 3', available: true, sizes: ['s-1vcpu-1gb'], features: [] },
        ],
        links: {},
        meta: { total: 2 },
      });
    }
    if (collection === 'images' && method === 'GET' && id !== undefined) {
      if (id !== 'ubuntu-24-04-x64' && id !== '12345') return notFound(reply);
      return reply(200, { image: { id: 12345, slug: 'ubuntu-24-04-x64', name: '24.04 (LTS) x64', distribution: 'Ubuntu', public: true } });
    }
    if (collection === 'account' && id === 'keys') {
      const identifier = segments[2] === undefined ? undefined : decodeURIComponent(segments[2]);
      if (identifier === undefined && method === 'POST') {
        const publicKey = String(body.public_key ?? '');
        const fingerprint = md5Fingerprint(parsePublicKeyLine(publicKey).blob);
        if ([...keys.values()].some((key) => key.fingerprint === fingerprint)) {
          return reply(422, { id: 'unprocessable_entity', message: 'SSH Key is already in use on your account' });
        }
        const key: MockKey = { id: nextId++, name: String(body.name), fingerprint, public_key: publicKey, preExisting: false };
        keys.set(key.id, key);
        const { preExisting: _, ...json } = key;
        return reply(201, { ssh_key: json });
      }
      if (identifier === undefined && method === 'GET') {
        return reply(200, { ssh_keys: [...keys.values()].map(({ preExisting: _, ...json }) => json), links: {}, meta: { total: keys.size } });
      }
      const key = [...keys.values()].find((candidate) => String(candidate.id) === identifier || candidate.fingerprint === identifier);
      if (key === undefined) return notFound(reply);
      if (method === 'GET') {
        const { preExisting: _, ...json } = key;
        return reply(200, { ssh_key: json });
      }
      if (method === 'DELETE') {
        keys.delete(key.id);
        return reply(204);
      }
    }
    if (collection === 'droplets' && id === undefined) {
      if (method === 'POST') {
        const droplet: MockDroplet = {
          id: nextId++,
          name: String(body.name),
          status: 'new',
          pollsUntilActive: options.pollsUntilActive ?? 1,
          tags: (body.tags as string[] | undefined) ?? [],
          created_at: new Date().toISOString(),
          body,
        };
        droplets.set(droplet.id, droplet);
        return reply(202, { droplet: dropletJson(droplet), links: { actions: [{ id: nextId++, rel: 'create', href: 'x' }] } });
      }
      if (method === 'GET') {
        const tag = url.searchParams.get('tag_name');
        const list = [...droplets.values()].filter((droplet) => tag === null || droplet.tags.includes(tag));
        return reply(200, { droplets: list.map(dropletJson), links: {}, meta: { total: list.length } });
      }
    }
    if (collection === 'droplets' && id !== undefined) {
      const droplet = droplets.get(Number(id));
      if (droplet === undefined) return notFound(reply);
      if (sub === 'actions' && method === 'POST') {
        const type = String(body.type);
        const action: MockAction = {
          id: nextId++,
          type,
          dropletId: droplet.id,
          status: 'in-progress',
          pollsLeft: options.actionPolls ?? 1,
          outcome: options.actionOutcome?.[type] ?? 'completed',
        };
        actions.set(action.id, action);
        return reply(201, { action: actionJson(action) });
      }
      if (method === 'GET') {
        if (droplet.status === 'new' && --droplet.pollsUntilActive < 0) droplet.status = 'active';
        return reply(200, { droplet: dropletJson(droplet) });
      }
      if (method === 'DELETE') {
        droplets.delete(droplet.id);
        for (const firewall of firewalls.values()) {
          const ids = firewall.body.droplet_ids as number[] | undefined;
          if (ids !== undefined) firewall.body.droplet_ids = ids.filter((candidate) => candidate !== droplet.id);
        }
        return reply(204);
      }
    }
    if (collection === 'actions' && id !== undefined && method === 'GET') {
      const action = actions.get(Number(id));
      if (action === undefined) return notFound(reply);
      if (action.status === 'in-progress' && action.outcome !== 'never' && --action.pollsLeft < 0) {
        action.status = action.outcome;
        const droplet = droplets.get(action.dropletId);
        if (droplet !== undefined && action.status === 'completed') {
          droplet.status = ['shutdown', 'power_off'].includes(action.type) ? 'off' : 'active';
        }
      }
      return reply(200, { action: actionJson(action) });
    }
    if (collection === 'firewalls') {
      if (id === undefined && method === 'POST') {
        const firewall: MockFirewall = { id: `fw-${nextId++}-0000-0000-000000000000`, body };
        firewalls.set(firewall.id, firewall);
        return reply(202, { firewall: { id: firewall.id, status: 'waiting', created_at: new Date().toISOString(), pending_changes: [], ...body } });
      }
      if (id === undefined && method === 'GET') {
        return reply(200, { firewalls: [...firewalls.values()].map((firewall) => ({ id: firewall.id, ...firewall.body })), links: {}, meta: { total: firewalls.size } });
      }
      if (id !== undefined && method === 'DELETE') {
        if (!firewalls.delete(id)) return notFound(reply);
        return reply(204);
      }
    }
    reply(404, { id: 'not_found', message: `mock has no route ${method} /v2/${segments.join('/')}` });
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const api: MockDigitalOceanApi = {
    url: `http://127.0.0.1:${port}`,
    token,
    sshPort: ssh.port,
    ssh,
    requests,
    droplets,
    keys,
    firewalls,
    actions,
    options,
    fault: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    seedKey: (publicKey, name = 'my laptop') => {
      const key: MockKey = { id: nextId++, name, fingerprint: md5Fingerprint(parsePublicKeyLine(publicKey).blob), public_key: publicKey, preExisting: true };
      keys.set(key.id, key);
      return key;
    },
    leaks: () => [
      ...[...droplets.values()].map((droplet) => `droplet ${droplet.id} (${droplet.name})`),
      ...[...keys.values()].filter((key) => !key.preExisting).map((key) => `ssh key ${key.id} (${key.name})`),
      ...[...firewalls.keys()].map((id) => `firewall ${id}`),
    ],
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ssh.close();
    },
  };
  return api;
}
