import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuthError,
  CancelledError,
  createMemoryContext,
  type FlagDefinition,
  InvalidConfigError,
  NotFoundError,
  ProviderError,
  parseFlags,
  QuotaError,
  type RawFlagValues,
  State,
} from '@machine/driver-core';
import { describe, expect, it } from 'vitest';
import type { AzureClients } from './azure-clients.ts';
import { resourceKinds } from './azure-driver.ts';
import { securityRules, vnetAddressSpace } from './azure-plan.ts';
import { azureErrorFacts, createAzureErrorMapper } from './azure-errors.ts';
import { endpointProblem, parseImage, parseTags } from './azure-flags.ts';
import { parseResourceId, resourceId } from './azure-resource-id.ts';
import { stateFromInstanceView } from './azure-state.ts';
import azure, { azureFlags } from './index.ts';

const subscription = '11111111-2222-4333-8444-555555555555';
const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));

/** A stand-in for the SDK clients: each `group.method` is a handler; any other call fails the test. */
function stubClients(handlers: Record<string, (...args: unknown[]) => unknown>) {
  const calls: string[] = [];
  const group = (path: string) =>
    new Proxy(
      {},
      {
        get: (_target, method: string) =>
          (...args: unknown[]) => {
            const name = `${path}.${method}`;
            calls.push(name);
            const handler = handlers[name];
            if (handler === undefined) throw new Error(`unexpected call ${name}`);
            return handler(...args);
          },
      },
    );
  const clients = {
    compute: { virtualMachines: group('virtualMachines'), availabilitySets: group('availabilitySets'), disks: group('disks') },
    network: {
      networkSecurityGroups: group('networkSecurityGroups'),
      virtualNetworks: group('virtualNetworks'),
      subnets: group('subnets'),
      publicIPAddresses: group('publicIPAddresses'),
      networkInterfaces: group('networkInterfaces'),
    },
    resources: { resourceGroups: group('resourceGroups'), resources: group('resources') },
    pollIntervalMs: 1,
  };
  // The proxies implement the methods structurally; the SDK's types cannot be satisfied by a Proxy.
  return { clients: clients as unknown as AzureClients, calls };
}

function restError(statusCode: number, code: string, message = `${code} happened`) {
  return Object.assign(new Error(message), {
    name: 'RestError',
    statusCode,
    code,
    response: { headers: { get: (name: string) => (name === 'x-ms-request-id' ? 'req-42' : undefined) } },
  });
}

async function driverWith(clients: AzureClients, flags: RawFlagValues = {}, withVm = true) {
  const context = createMemoryContext('web1', await mkdtemp(join(tmpdir(), 'driver-azure-unit-')));
  if (withVm) {
    await context.journal.record({ kind: resourceKinds.virtualMachine, id: resourceId(subscription, 'docker-machine', 'Microsoft.Compute', 'virtualMachines', 'web1') });
  }
  const config = parseFlags(azureFlags, { 'azure-subscription-id': subscription, ...flags }, { env: {} });
  return { driver: azure.createDriver({ config, context, client: clients }), context };
}

describe('flags', () => {
  it('has the reference names, env vars and the issue defaults', () => {
    const config = parseFlags(azureFlags, { 'azure-subscription-id': subscription }, { env: {} });
    expect(config).toMatchObject({
      environment: 'AzurePublicCloud',
      location: 'westus2',
      size: 'Standard_B2s',
      image: 'Canonical:ubuntu-24_04-lts:server:latest',
      resourceGroup: 'docker-machine',
      vnet: 'docker-machine-vnet',
      subnet: 'docker-machine',
      subnetPrefix: '192.168.0.0/16',
      sshUser: 'docker-user',
      sshPort: 22,
      dockerPort: 2376,
      storageType: 'Standard_LRS',
      diskSize: 30,
      stopDeallocate: true,
      usePrivateIp: false,
      noPublicIp: false,
      openPorts: [],
    });
    expect(config.availabilitySet).toBeUndefined();
    const fromEnv = parseFlags(azureFlags, {}, { env: { AZURE_SUBSCRIPTION_ID: subscription, AZURE_LOCATION: 'northeurope', AZURE_TAGS: 'a=1,b=2' } });
    expect(fromEnv).toMatchObject({ subscriptionId: subscription, location: 'northeurope', tags: ['a=1', 'b=2'] });
    expect(azureFlags.find((flag) => flag.name === 'azure-client-secret')?.secret).toBe(true);
  });

  it('rejects bad values before any API call, listing every problem', () => {
    const error = (() => {
      try {
        parseFlags(
          azureFlags,
          {
            'azure-subscription-id': 'nope',
            'azure-environment': 'AzureGermanCloud',
            'azure-image': 'ubuntu',
            'azure-ssh-user': 'root',
            'azure-open-port': ['http'],
            'azure-allowed-cidr': ['10.0.0.0/33'],
            'azure-endpoint': 'http://management.example.com',
            'azure-storage-type': 'Ultra_Fast',
            'azure-availability-zone': 'east',
          },
          { env: {} },
        );
      } catch (caught) {
        return caught as InvalidConfigError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error?.issues.map((issue) => issue.flag).sort()).toEqual(
      [
        'azure-allowed-cidr',
        'azure-availability-zone',
        'azure-endpoint',
        'azure-environment',
        'azure-image',
        'azure-open-port',
        'azure-ssh-user',
        'azure-storage-type',
        'azure-subscription-id',
      ].sort(),
    );
  });

  it('parses images, tags, endpoints and resource IDs', () => {
    expect(parseImage('Canonical:ubuntu-24_04-lts:server:latest')).toEqual({ kind: 'marketplace', publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
    expect(parseImage(`/subscriptions/${subscription}/resourceGroups/img/providers/Microsoft.Compute/images/golden`)).toMatchObject({ kind: 'id' });
    expect(parseImage('a:b:c')).toHaveProperty('problem');
    expect(parseTags(['team=web', 'flag'])).toEqual({ tags: { team: 'web', flag: '' } });
    expect(parseTags(['a/b=c'])).toHaveProperty('problem');
    expect(endpointProblem('https://management.usgovcloudapi.net')).toBeUndefined();
    expect(endpointProblem('http://127.0.0.1:8080')).toBeUndefined();
    expect(endpointProblem('http://10.0.0.1:8080')).toContain('https');
    const parsed = parseResourceId(resourceId(subscription, 'rg', 'Microsoft.Network', 'virtualNetworks', 'v', 'subnets', 's'));
    expect(parsed).toEqual({ subscriptionId: subscription, resourceGroup: 'rg', type: 'Microsoft.Network/virtualNetworks/subnets', names: ['v', 's'] });
    expect(parseResourceId(`/subscriptions/${subscription}/resourceGroups/rg`).names).toEqual([]);
    expect(() => parseResourceId('/nope')).toThrow();
  });

  it('the README lists every flag with its env var', async () => {
    const readme = await readFile(join(packageDir, 'README.md'), 'utf8');
    for (const flag of azureFlags as readonly FlagDefinition[]) {
      expect(readme, flag.name).toContain(`\`--${flag.name}\``);
      if (flag.envVar !== undefined) expect(readme, flag.envVar).toContain(`\`${flag.envVar}\``);
    }
  });
});

describe('NSG rules and networks', () => {
  it('maps the firewall model onto the reference rule names and priorities', () => {
    const anywhere = ['0.0.0.0/0', '::/0'];
    const rules = securityRules([
      { protocol: 'tcp', fromPort: 22, toPort: 22, sources: anywhere, purpose: 'ssh' },
      { protocol: 'tcp', fromPort: 2376, toPort: 2376, sources: anywhere, purpose: 'docker' },
      { protocol: 'udp', fromPort: 8000, toPort: 8010, sources: ['203.0.113.0/24', '2001:db8::/32'], purpose: 'user' },
    ]);
    expect(rules.map((rule) => [rule.name, rule.priority, rule.protocol, rule.destinationPortRange, rule.sourceAddressPrefix ?? rule.sourceAddressPrefixes])).toEqual([
      ['SSHAllowAny', 100, 'Tcp', '22', '*'],
      ['DockerAllowAny', 300, 'Tcp', '2376', '*'],
      ['Port8000-8010-udpAllowIPv4', 1000, 'Udp', '8000-8010', '203.0.113.0/24'],
      ['Port8000-8010-udpAllowIPv6', 1001, 'Udp', '8000-8010', '2001:db8::/32'],
    ]);
    expect(rules.every((rule) => rule.access === 'Allow' && rule.direction === 'Inbound')).toBe(true);
  });

  it('adds the subnet prefix to the vnet address space only when it lies outside', () => {
    expect(vnetAddressSpace('192.168.0.0/16')).toEqual(['192.168.0.0/16', '10.0.0.0/8', '172.16.0.0/12']);
    expect(vnetAddressSpace('10.20.0.0/24')).toHaveLength(3);
    expect(vnetAddressSpace('100.64.0.0/24')).toEqual(['192.168.0.0/16', '10.0.0.0/8', '172.16.0.0/12', '100.64.0.0/24']);
  });
});

describe('state', () => {
  it.each([
    [['ProvisioningState/succeeded', 'PowerState/running'], State.Running],
    [['ProvisioningState/succeeded', 'PowerState/starting'], State.Starting],
    [['ProvisioningState/succeeded', 'PowerState/stopping'], State.Stopping],
    [['ProvisioningState/updating', 'PowerState/deallocating'], State.Stopping],
    [['ProvisioningState/succeeded', 'PowerState/stopped'], State.Stopped],
    [['ProvisioningState/succeeded', 'PowerState/deallocated'], State.Stopped],
    [['ProvisioningState/succeeded', 'PowerState/unknown'], State.None],
    [['ProvisioningState/creating'], State.Starting],
    [['ProvisioningState/deleting', 'PowerState/running'], State.Stopping],
    [['ProvisioningState/failed/OSProvisioningTimedOut', 'PowerState/running'], State.Error],
    [[], State.None],
  ])('%j is %s', (codes, state) => {
    expect(stateFromInstanceView(codes.map((code) => ({ code })))).toBe(state);
  });
});

describe('errors', () => {
  const map = createAzureErrorMapper(() => ['s3cr3t-value']);
  const where = { machine: 'web1', operation: 'create' };

  it('maps ARM errors onto typed errors with the request id', () => {
    expect(map(restError(403, 'AuthorizationFailed'), where)).toBeInstanceOf(AuthError);
    expect(map(restError(401, 'InvalidAuthenticationToken'), where)).toBeInstanceOf(AuthError);
    expect(map(restError(409, 'OperationNotAllowed', 'exceeding approved Total Regional Cores quota'), where)).toBeInstanceOf(QuotaError);
    expect(map(restError(409, 'OperationNotAllowed', 'Disk is attached'), where)).toBeInstanceOf(ProviderError);
    expect(map(restError(404, 'ResourceNotFound'), where)).toBeInstanceOf(NotFoundError);
    const provider = map(restError(500, 'InternalServerError'), where) as ProviderError;
    expect(provider).toBeInstanceOf(ProviderError);
    expect(provider.requestId).toBe('req-42');
    expect(provider.providerCode).toBe('InternalServerError');
    expect(provider.isRetryable).toBe(true);
    expect(provider.message).toContain('[request id req-42]');
  });

  it('reads the code of a failed long-running operation', () => {
    const failed = new Error('The long-running operation has failed. QuotaExceeded. Not enough cores.');
    expect(azureErrorFacts(failed)).toMatchObject({ code: 'QuotaExceeded', message: 'Not enough cores.' });
    expect(map(failed, where)).toBeInstanceOf(QuotaError);
  });

  it('turns a missing credential into one AuthError line naming where it looked, and redacts secrets', () => {
    const missing = Object.assign(new Error('DefaultAzureCredential failed to retrieve a token.\n  EnvironmentCredential unavailable'), { name: 'AggregateAuthenticationError' });
    const error = map(missing, where);
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain('az login');
    expect(error.message).toContain('AZURE_CLIENT_SECRET');
    const leaky = map(restError(400, 'BadRequest', 'client secret s3cr3t-value rejected'), where);
    expect(leaky.message).not.toContain('s3cr3t-value');
  });

  it('maps an aborted SDK call to CancelledError', () => {
    expect(map(Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' }), where)).toBeInstanceOf(CancelledError);
  });
});

describe('driver with a stubbed SDK client', () => {
  it('checks combined flags and the custom data file before any API call', async () => {
    const { clients, calls } = stubClients({});
    const both = await driverWith(clients, { 'azure-availability-set': 'as1', 'azure-availability-zone': '1' }, false);
    await expect(both.driver.create()).rejects.toBeInstanceOf(InvalidConfigError);
    const secretOnly = await driverWith(clients, { 'azure-client-secret': 'x' }, false);
    await expect(secretOnly.driver.preCreateCheck()).rejects.toBeInstanceOf(InvalidConfigError);
    const missingFile = await driverWith(clients, { 'azure-custom-data': '/nonexistent/cloud-init.yml' }, false);
    await expect(missingFile.driver.create()).rejects.toThrow(/azure-custom-data/);
    expect(calls).toEqual([]);
  });

  it('reads the state from the instance view, and a deleted VM is NotFoundError', async () => {
    let gone = false;
    const { clients, calls } = stubClients({
      'virtualMachines.instanceView': async (group, name) => {
        expect([group, name]).toEqual(['docker-machine', 'web1']);
        if (gone) throw restError(404, 'ResourceNotFound');
        return { statuses: [{ code: 'ProvisioningState/succeeded' }, { code: 'PowerState/deallocated' }] };
      },
    });
    const { driver } = await driverWith(clients);
    expect(await driver.getState()).toBe(State.Stopped);
    gone = true;
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toEqual(['virtualMachines.instanceView', 'virtualMachines.instanceView']);
  });

  it('stop = powerOff + deallocate, kill = powerOff(skipShutdown), start, restart; each with a poll interval and a deadline', async () => {
    const seen: unknown[] = [];
    const record = async (_group: unknown, _name: unknown, options: unknown) => {
      seen.push(options);
    };
    const { clients, calls } = stubClients({
      'virtualMachines.powerOff': record,
      'virtualMachines.deallocate': record,
      'virtualMachines.start': record,
      'virtualMachines.restart': record,
      // start and restart wait until the instance view shows the VM running.
      'virtualMachines.instanceView': async () => ({ statuses: [{ code: 'ProvisioningState/succeeded' }, { code: 'PowerState/running' }] }),
    });
    const { driver } = await driverWith(clients);
    await driver.stop();
    await driver.kill();
    await driver.start();
    await driver.restart();
    expect(calls).toEqual([
      'virtualMachines.powerOff',
      'virtualMachines.deallocate',
      'virtualMachines.powerOff',
      'virtualMachines.start',
      'virtualMachines.instanceView',
      'virtualMachines.restart',
      'virtualMachines.instanceView',
    ]);
    expect(seen[2]).toMatchObject({ skipShutdown: true, updateIntervalInMs: 1 });
    expect((seen[0] as { abortSignal?: AbortSignal }).abortSignal).toBeInstanceOf(AbortSignal);
  });

  it('a long-running operation past --azure-wait-timeout is a TimeoutError', async () => {
    const { clients } = stubClients({
      'virtualMachines.start': (_group, _name, options) =>
        new Promise((_resolve, reject) => {
          (options as { abortSignal: AbortSignal }).abortSignal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
        }),
    });
    const { driver } = await driverWith(clients, { 'azure-wait-timeout': 1 });
    const error = await driver.start().catch((caught: unknown) => caught);
    expect((error as Error).name).toBe('TimeoutError');
    expect((error as Error).message).toContain('gave up waiting for virtual machine web1 to start: --azure-wait-timeout (1 s) passed');
  });

  it('getIP reads the public IP (or its FQDN with --azure-dns) and the NIC for private addresses', async () => {
    const { clients } = stubClients({
      'publicIPAddresses.get': async () => ({ ipAddress: '20.1.2.3', dnsSettings: { fqdn: 'web1.westus2.cloudapp.azure.com' } }),
      'networkInterfaces.get': async () => ({ ipConfigurations: [{ primary: true, privateIPAddress: '192.168.0.4' }] }),
    });
    const publicDriver = await driverWith(clients);
    await publicDriver.context.journal.record({ kind: resourceKinds.networkInterface, id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'networkInterfaces', 'web1-nic') });
    await publicDriver.context.journal.record({ kind: resourceKinds.publicIp, id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'publicIPAddresses', 'web1-ip') });
    expect(await publicDriver.driver.getIP()).toBe('20.1.2.3');
    expect(await publicDriver.driver.getURL()).toBe('tcp://20.1.2.3:2376');
    const dnsDriver = await driverWith(clients, { 'azure-dns': 'web1' });
    await dnsDriver.context.journal.record({ kind: resourceKinds.publicIp, id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'publicIPAddresses', 'web1-ip') });
    expect(await dnsDriver.driver.getIP()).toBe('web1.westus2.cloudapp.azure.com');
    const privateDriver = await driverWith(clients, { 'azure-use-private-ip': true });
    await privateDriver.context.journal.record({ kind: resourceKinds.networkInterface, id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'networkInterfaces', 'web1-nic') });
    expect(await privateDriver.driver.getIP()).toBe('192.168.0.4');
  });

  it('remove skips a shared subnet other machines use, and deletes an empty group it made', async () => {
    const { clients, calls } = stubClients({
      'subnets.get': async () => ({ ipConfigurations: [{ id: 'someone-elses-nic' }] }),
      'resources.listByResourceGroup': () => (async function* () {})(),
      'resourceGroups.delete': async () => undefined,
    });
    const { driver, context } = await driverWith(clients, {}, false);
    await context.journal.record({ kind: resourceKinds.resourceGroup, id: resourceId(subscription, 'docker-machine') });
    await context.journal.record({ kind: resourceKinds.subnet, id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'virtualNetworks', 'v', 'subnets', 's') });
    await driver.remove();
    expect(calls).toEqual(['subnets.get', 'resources.listByResourceGroup', 'resourceGroups.delete']);
    expect(context.journal.entries()).toEqual([]);
  });

  it('remove treats resources already gone as deleted', async () => {
    const { clients } = stubClients({
      'virtualMachines.delete': async () => {
        throw restError(404, 'ResourceNotFound');
      },
      'disks.delete': async () => undefined,
    });
    const { driver, context } = await driverWith(clients, {}, false);
    await context.journal.record({ kind: resourceKinds.osDisk, id: resourceId(subscription, 'docker-machine', 'Microsoft.Compute', 'disks', 'web1-os-disk') });
    await context.journal.record({ kind: resourceKinds.virtualMachine, id: resourceId(subscription, 'docker-machine', 'Microsoft.Compute', 'virtualMachines', 'web1') });
    await driver.remove();
    expect(context.journal.entries()).toEqual([]);
  });

  it('operations on a machine that was never made are NotFoundError without API calls', async () => {
    const { clients, calls } = stubClients({});
    const { driver } = await driverWith(clients, {}, false);
    await expect(driver.getState()).rejects.toBeInstanceOf(NotFoundError);
    await expect(driver.getIP()).rejects.toBeInstanceOf(NotFoundError);
    await expect(driver.stop()).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toEqual([]);
  });

  it('writes custom data base64-encoded into the VM request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'driver-azure-cd-'));
    const file = join(dir, 'cloud-init.yml');
    await writeFile(file, '#cloud-config\npackages: [htop]\n');
    let vmBody: Record<string, unknown> = {};
    const lro = async (_group: unknown, _name: unknown, body: unknown) => body;
    const { clients } = stubClients({
      'resourceGroups.get': async () => ({ id: resourceId(subscription, 'docker-machine') }),
      'networkSecurityGroups.createOrUpdate': lro,
      'virtualNetworks.get': async () => ({ id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'virtualNetworks', 'docker-machine-vnet') }),
      'subnets.get': async () => ({ id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'virtualNetworks', 'docker-machine-vnet', 'subnets', 'docker-machine') }),
      // After a refused PUT the driver looks the VM up by name (it may have been made): it was not.
      'virtualMachines.get': async () => {
        throw restError(404, 'ResourceNotFound');
      },
      'publicIPAddresses.createOrUpdate': lro,
      'networkInterfaces.createOrUpdate': lro,
      'virtualMachines.createOrUpdate': async (_group, _name, body) => {
        vmBody = body as Record<string, unknown>;
        throw restError(409, 'QuotaExceeded');
      },
      'virtualMachines.delete': async () => undefined,
      'disks.delete': async () => undefined,
      'networkInterfaces.delete': async () => undefined,
      'publicIPAddresses.delete': async () => undefined,
      'networkSecurityGroups.delete': async () => undefined,
    });
    const { driver, context } = await driverWith(clients, { 'azure-custom-data': file }, false);
    await expect(driver.create()).rejects.toBeInstanceOf(QuotaError);
    const osProfile = vmBody.osProfile as { customData: string; adminUsername: string };
    expect(Buffer.from(osProfile.customData, 'base64').toString('utf8')).toContain('packages: [htop]');
    expect(osProfile.adminUsername).toBe('docker-user');
    expect(context.journal.entries()).toEqual([]);
  });
});

describe('boot user data (provisioning) with a stubbed SDK client', () => {
  const hostCloudConfig = '#cloud-config\nssh_deletekeys: true\n';

  /** Runs create until the VM PUT (which fails) and returns the custom data it got, decoded; undefined when there was none. */
  async function customDataSent(flags: RawFlagValues, boot?: { userData?: string }): Promise<Buffer | undefined> {
    let vmBody: Record<string, unknown> | undefined;
    const lro = async (_group: unknown, _name: unknown, body: unknown) => body;
    const { clients } = stubClients({
      'resourceGroups.get': async () => ({ id: resourceId(subscription, 'docker-machine') }),
      'networkSecurityGroups.createOrUpdate': lro,
      'virtualNetworks.get': async () => ({ id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'virtualNetworks', 'docker-machine-vnet') }),
      'subnets.get': async () => ({ id: resourceId(subscription, 'docker-machine', 'Microsoft.Network', 'virtualNetworks', 'docker-machine-vnet', 'subnets', 'docker-machine') }),
      // After a refused PUT the driver looks the VM up by name (it may have been made): it was not.
      'virtualMachines.get': async () => {
        throw restError(404, 'ResourceNotFound');
      },
      'publicIPAddresses.createOrUpdate': lro,
      'networkInterfaces.createOrUpdate': lro,
      'virtualMachines.createOrUpdate': async (_group, _name, body) => {
        vmBody = body as Record<string, unknown>;
        throw restError(409, 'QuotaExceeded');
      },
      'virtualMachines.delete': async () => undefined,
      'disks.delete': async () => undefined,
      'networkInterfaces.delete': async () => undefined,
      'publicIPAddresses.delete': async () => undefined,
      'networkSecurityGroups.delete': async () => undefined,
    });
    const { driver } = await driverWith(clients, flags, false);
    await expect(driver.create(boot === undefined ? {} : { boot })).rejects.toBeInstanceOf(QuotaError);
    expect(vmBody).toBeDefined();
    const customData = (vmBody?.osProfile as { customData?: string } | undefined)?.customData;
    return customData === undefined ? undefined : Buffer.from(customData, 'base64');
  }

  it('sends the host cloud-config and --azure-custom-data as one MIME multipart, host part first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'driver-azure-boot-'));
    const file = join(dir, 'user.sh');
    await writeFile(file, '#!/bin/sh\necho user\n');
    const sent = String(await customDataSent({ 'azure-custom-data': file }, { userData: hostCloudConfig }));
    expect(sent).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
    const hostAt = sent.indexOf('Content-Type: text/cloud-config');
    expect(hostAt).toBeGreaterThan(0);
    expect(sent.indexOf('Content-Type: text/x-shellscript')).toBeGreaterThan(hostAt);
    expect(sent).toContain('ssh_deletekeys: true');
    expect(sent).toContain('echo user');
  });

  it('sends the host cloud-config alone, unchanged, and the file bytes alone (gzip too) without boot user data', async () => {
    expect(String(await customDataSent({}, { userData: hostCloudConfig }))).toBe(hostCloudConfig);
    const dir = await mkdtemp(join(tmpdir(), 'driver-azure-boot-'));
    const file = join(dir, 'user-data.gz');
    const { gzipSync } = await import('node:zlib');
    const gzipped = gzipSync('#cloud-config\npackages: [htop]\n');
    await writeFile(file, gzipped);
    expect(await customDataSent({ 'azure-custom-data': file })).toEqual(gzipped);
    expect(await customDataSent({})).toBeUndefined();
  });

  it('refuses custom data over 65 535 bytes (decoded) before any API call', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'driver-azure-boot-'));
    const file = join(dir, 'user-data-40k.yaml');
    await writeFile(file, `#cloud-config\n#${'x'.repeat(40 * 1024)}\n`);
    const { clients, calls } = stubClients({});
    const { driver } = await driverWith(clients, { 'azure-custom-data': file }, false);
    const error = await driver.create({ boot: { userData: `${hostCloudConfig}#${'y'.repeat(30 * 1024)}\n` } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toMatch(/: custom data: the provisioning cloud-config plus ".*" is \d+ bytes, over Azure's 64 KiB \(65 535 bytes\) custom data limit$/);
    const alone = join(dir, 'user-data-65536.bin');
    await writeFile(alone, Buffer.alloc(65_536, 1));
    const tooBig = await driverWith(clients, { 'azure-custom-data': alone }, false);
    await expect(tooBig.driver.create()).rejects.toThrow(/--azure-custom-data: ".*" is 65536 bytes, over Azure's 64 KiB/);
    expect(calls).toEqual([]);
    // 65 535 bytes exactly is accepted.
    const exact = `${hostCloudConfig}#${'z'.repeat(65_535 - hostCloudConfig.length - 2)}\n`;
    expect(Buffer.byteLength(exact)).toBe(65_535);
    expect(String(await customDataSent({}, { userData: exact }))).toBe(exact);
  });
});

describe('import cost', () => {
  it('importing the package loads no Azure SDK module and no ssh2', () => {
    const script = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
const driver = await import('@machine/driver-azure');
if (driver.default.name !== 'azure') throw new Error('not the azure descriptor');
process.stdout.write(JSON.stringify(seen.filter((url) => /@azure|@typespec|msal|ssh2/.test(url))));`;
    const result = spawnSync(process.execPath, ['--conditions=@machine/source', '--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual([]);
  });
});
