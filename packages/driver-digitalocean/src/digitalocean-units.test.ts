import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthError, type FlagDefinition, InvalidConfigError, NotFoundError, ProviderError, parseFlags, QuotaError, State } from '@machine/driver-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverDelayMs } from './digitalocean-client.ts';
import { readDoctlToken, resolveAccessToken } from './digitalocean-credentials.ts';
import { stateWithPendingAction } from './digitalocean-state.ts';
import digitalOcean, { digitalOceanFlags, mapDigitalOceanError, stateOfDropletStatus } from './index.ts';

const token = `dop_v1_${'f'.repeat(64)}`;

describe('flags', () => {
  it('has the reference names, env vars and defaults, and a current Ubuntu LTS image', () => {
    const config = parseFlags(digitalOceanFlags, {}, { env: {} });
    expect(config).toMatchObject({
      apiUrl: 'https://api.digitalocean.com',
      image: 'ubuntu-24-04-x64',
      region: 'nyc3',
      size: 's-1vcpu-1gb',
      sshUser: 'root',
      sshPort: 22,
      ipv6: false,
      privateNetworking: false,
      backups: false,
      monitoring: false,
      firewall: false,
      allowedCidrs: ['0.0.0.0/0', '::/0'],
      tags: [],
    });
    const byName = new Map<string, FlagDefinition>(digitalOceanFlags.map((flag) => [flag.name, flag]));
    for (const [name, envVar] of [
      ['digitalocean-access-token', 'DIGITALOCEAN_ACCESS_TOKEN'],
      ['digitalocean-api-url', 'DIGITALOCEAN_API_URL'],
      ['digitalocean-ssh-port', 'DIGITALOCEAN_SSH_PORT'],
      ['digitalocean-ssh-key-fingerprint', 'DIGITALOCEAN_SSH_KEY_FINGERPRINT'],
      ['digitalocean-userdata', 'DIGITALOCEAN_USERDATA'],
      ['digitalocean-tags', 'DIGITALOCEAN_TAGS'],
    ] as [string, string][]) {
      expect(byName.get(name)?.envVar, name).toBe(envVar);
    }
    expect(byName.get('digitalocean-access-token')?.secret).toBe(true);
  });

  it('reads env vars, splits tags, and reports every bad flag in one error', () => {
    const config = parseFlags(digitalOceanFlags, {}, { env: { DIGITALOCEAN_TAGS: ' a , b:c ', DIGITALOCEAN_SSH_PORT: '2222', DIGITALOCEAN_API_URL: 'http://127.0.0.1:9' } });
    expect(config.tags).toEqual(['a', 'b:c']);
    expect(config.sshPort).toBe(2222);
    expect(config.apiUrl).toBe('http://127.0.0.1:9');
    const error = (() => {
      try {
        parseFlags(
          digitalOceanFlags,
          {
            'digitalocean-region': 'NYC3',
            'digitalocean-ssh-key-fingerprint': 'nope',
            'digitalocean-tags': 'bad tag',
            'digitalocean-vpc-uuid': 'x',
            'digitalocean-api-url': 'ftp://x',
          },
          { env: {} },
        );
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).issues.map((issue) => issue.flag).sort()).toEqual([
      'digitalocean-api-url',
      'digitalocean-region',
      'digitalocean-ssh-key-fingerprint',
      'digitalocean-tags',
      'digitalocean-vpc-uuid',
    ]);
  });

  it('the README lists every flag with its env var', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const flag of digitalOceanFlags) {
      expect(readme, flag.name).toContain(`\`--${flag.name}\``);
      if (flag.envVar !== undefined) expect(readme, flag.envVar).toContain(`\`${flag.envVar}\``);
    }
  });

  it('the descriptor is plain data for the CLI', () => {
    expect(digitalOcean.name).toBe('digitalocean');
    expect(digitalOcean.specificationVersion).toBe('v1');
    expect(typeof digitalOcean.createDriver).toBe('function');
    expect(typeof digitalOcean.getStates).toBe('function');
  });
});

describe('credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'do-creds-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('takes the flag, then DIGITALOCEAN_TOKEN, then the doctl context', async () => {
    const doctl = join(dir, 'config.yaml');
    await writeFile(doctl, 'access-token: from-default\ncontext: work\nauth-contexts:\n  work: "from-work"\n  default: x\noutput: text\n');
    expect(await resolveAccessToken({ flagValue: 'from-flag', env: { DIGITALOCEAN_TOKEN: 'env' }, doctlConfigPath: doctl })).toMatchObject({ token: 'from-flag' });
    expect(await resolveAccessToken({ env: { DIGITALOCEAN_TOKEN: 'from-env' }, doctlConfigPath: doctl })).toMatchObject({ token: 'from-env', source: 'DIGITALOCEAN_TOKEN' });
    expect(await resolveAccessToken({ env: {}, doctlConfigPath: doctl })).toMatchObject({ token: 'from-work' });
    await writeFile(doctl, 'access-token: from-default\n');
    expect(await readDoctlToken(doctl)).toBe('from-default');
  });

  it('a missing token is one AuthError naming every place it looked', async () => {
    const missing = join(dir, 'nope', 'config.yaml');
    const error = await resolveAccessToken({ env: {}, doctlConfigPath: missing }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    const message = (error as Error).message;
    for (const place of ['--digitalocean-access-token', 'DIGITALOCEAN_ACCESS_TOKEN', 'DIGITALOCEAN_TOKEN', missing]) expect(message).toContain(place);
  });
});

describe('error mapping', () => {
  const where = { machine: 'web1', operation: 'create', resource: 'droplet web1' };
  const doError = (status: number, message: string, headers: Record<string, string[]> = {}) => ({
    responseStatusCode: status,
    id: 'some_id',
    messageEscaped: message,
    requestId: 'req-9',
    responseHeaders: headers,
  });

  it('maps statuses to typed errors with the request id, and never shows the token', () => {
    const auth = mapDigitalOceanError(doError(401, `token ${token} is bad`), where, [token]);
    expect(auth).toBeInstanceOf(AuthError);
    expect(auth.message).not.toContain(token);
    expect(auth.message).toContain('req-9');
    expect(mapDigitalOceanError(doError(403, 'forbidden'), where)).toBeInstanceOf(AuthError);
    expect(mapDigitalOceanError(doError(404, 'not found'), where)).toBeInstanceOf(NotFoundError);
    expect(mapDigitalOceanError(doError(422, 'creating this/these droplet(s) will exceed your droplet limit'), where)).toBeInstanceOf(QuotaError);
    const invalid = mapDigitalOceanError(doError(422, 'Name is invalid'), where);
    expect(invalid).toBeInstanceOf(ProviderError);
    expect((invalid as ProviderError).statusCode).toBe(422);
    expect((invalid as ProviderError).providerCode).toBe('some_id');
    expect(invalid.isRetryable).toBe(false);
    const server = mapDigitalOceanError(doError(500, 'boom'), where) as ProviderError;
    expect(server.requestId).toBe('req-9');
    expect(server.isRetryable).toBe(true);
    const throttled = mapDigitalOceanError(doError(429, 'slow down', { 'ratelimit-reset': ['1800000000'] }), where);
    expect(throttled.isRetryable).toBe(true);
    expect(throttled.message).toContain('2027-01-15T08:00:00.000Z');
  });

  it('maps a network failure to a retryable ProviderError naming the cause', () => {
    const network = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const error = mapDigitalOceanError(network, where);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.isRetryable).toBe(true);
  });
});

describe('rate-limit delays', () => {
  const now = 1_800_000_000_000;
  it('prefers Retry-After (seconds or a date), then ratelimit-reset for a 429 only', () => {
    expect(serverDelayMs(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(serverDelayMs(new Headers({ 'retry-after': new Date(now + 5000).toUTCString() }), now)).toBe(5000);
    expect(serverDelayMs(new Headers({ 'ratelimit-reset': String(now / 1000 + 7) }), now)).toBe(7000);
    expect(serverDelayMs(new Headers({ 'ratelimit-reset': String(now / 1000 + 7) }), now, false)).toBeUndefined();
    expect(serverDelayMs(new Headers({ 'ratelimit-reset': String(now / 1000 - 7) }), now)).toBe(0);
    expect(serverDelayMs(new Headers(), now)).toBeUndefined();
  });
});

describe('states', () => {
  it('maps every droplet status', () => {
    expect(stateOfDropletStatus('new')).toBe(State.Starting);
    expect(stateOfDropletStatus('active')).toBe(State.Running);
    expect(stateOfDropletStatus('off')).toBe(State.Stopped);
    expect(stateOfDropletStatus('archive')).toBe(State.Error);
    expect(stateOfDropletStatus('something-new')).toBe(State.None);
  });

  it('shows power actions in progress', () => {
    expect(stateWithPendingAction(State.Running, 'shutdown', 'in-progress')).toBe(State.Stopping);
    expect(stateWithPendingAction(State.Running, 'power_off', 'in-progress')).toBe(State.Stopping);
    expect(stateWithPendingAction(State.Stopped, 'power_on', 'in-progress')).toBe(State.Starting);
    expect(stateWithPendingAction(State.Running, 'reboot', 'in-progress')).toBe(State.Starting);
    expect(stateWithPendingAction(State.Stopped, 'shutdown', 'completed')).toBe(State.Stopped);
  });
});
