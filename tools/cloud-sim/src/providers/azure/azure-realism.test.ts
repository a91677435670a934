import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sim, type SimOptions, startSim } from '../../sim.ts';
import type { AzureSimOptions } from './index.ts';

// The realistic profile of the Azure front end, over plain HTTP in ARM's wire format (the drivers'
// tests cover the same behaviours through the real @azure/arm-* clients).

const subscription = '00000000-0000-4000-8000-0000000000a1';
const group = `/subscriptions/${subscription}/resourceGroups/rg`;
const network = `${group}/providers/Microsoft.Network`;
const vmPath = (name: string) => `${group}/providers/Microsoft.Compute/virtualMachines/${name}`;
const rsaKey = generateSSHKeyPair({ type: 'rsa', bits: 2048, comment: 'rsa' });
const shortRsaKey = generateSSHKeyPair({ type: 'rsa', bits: 1024, comment: 'short' });
const edKey = generateSSHKeyPair({ comment: 'ed' });

let sim: Sim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(azure: AzureSimOptions = {}, options: SimOptions = {}): Promise<Sim> {
  sim = await startSim({ providers: ['azure'], delays: { pendingMs: 10, stoppingMs: 5, cloudInitMs: 5 }, providerOptions: { azure }, ...options });
  return sim;
}

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details?: { code: string; target?: string; message: string }[] } } & Record<string, unknown>;
}

async function arm(method: string, path: string, body?: unknown, token = 'sim-token', query = 'api-version=2024-07-01'): Promise<Answer> {
  const response = await fetch(`${sim?.endpoints.azure}${path}${query === '' ? '' : `?${query}`}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text) };
}

/** Polls an operation URL until it is no longer InProgress. */
async function settle(answer: Answer): Promise<Record<string, unknown>> {
  const url = answer.headers.get('azure-asyncoperation');
  if (url === null) return {};
  for (;;) {
    const status = (await (await fetch(url, { headers: { authorization: 'Bearer sim-token' } })).json()) as Record<string, unknown>;
    if (status.status !== 'InProgress') return status;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Registers both namespaces and waits out the role-assignment window. */
async function ready(): Promise<void> {
  await arm('POST', `/subscriptions/${subscription}/providers/Microsoft.Compute/register`);
  await arm('POST', `/subscriptions/${subscription}/providers/Microsoft.Network/register`);
  for (;;) {
    const answers = await Promise.all(['Microsoft.Compute', 'Microsoft.Network'].map((ns) => arm('GET', `/subscriptions/${subscription}/providers/${ns}`)));
    if (answers.every((answer) => answer.body.registrationState === 'Registered')) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A group, vnet + subnet, NSG, public IP and NIC, each settled. */
async function networkFor(name: string, publicIp: 'Static' | 'Dynamic' = 'Static'): Promise<string> {
  await arm('PUT', group, { location: 'westus2' });
  if ((await arm('GET', `${network}/virtualNetworks/vnet`)).status === 404) {
    await settle(await arm('PUT', `${network}/virtualNetworks/vnet`, { location: 'westus2', properties: { addressSpace: { addressPrefixes: ['10.0.0.0/16'] } } }));
    await settle(await arm('PUT', `${network}/virtualNetworks/vnet/subnets/default`, { properties: { addressPrefix: '10.0.0.0/24' } }));
  }
  await settle(await arm('PUT', `${network}/networkSecurityGroups/${name}-nsg`, { location: 'westus2', properties: { securityRules: [] } }));
  await settle(await arm('PUT', `${network}/publicIPAddresses/${name}-ip`, { location: 'westus2', properties: { publicIPAllocationMethod: publicIp } }));
  const nic = await arm('PUT', `${network}/networkInterfaces/${name}-nic`, {
    location: 'westus2',
    properties: {
      networkSecurityGroup: { id: `${network}/networkSecurityGroups/${name}-nsg` },
      ipConfigurations: [{ name: 'ip', properties: { subnet: { id: `${network}/virtualNetworks/vnet/subnets/default` }, publicIPAddress: { id: `${network}/publicIPAddresses/${name}-ip` } } }],
    },
  });
  expect(nic.status).toBe(201);
  await settle(nic);
  return `${network}/networkInterfaces/${name}-nic`;
}

function vmBody(nicId: string, options: { key?: string; size?: string } = {}): Record<string, unknown> {
  return {
    location: 'westus2',
    properties: {
      hardwareProfile: { vmSize: options.size ?? 'Standard_B2s' },
      storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } },
      osProfile: {
        computerName: 'vm',
        adminUsername: 'docker-user',
        linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: '/home/docker-user/.ssh/authorized_keys', keyData: options.key ?? rsaKey.publicKey }] } },
      },
      networkProfile: { networkInterfaces: [{ id: nicId }] },
    },
  };
}

describe('azure realistic profile (default)', () => {
  it('a new subscription has Compute and Network unregistered: 409 MissingSubscriptionRegistration naming the namespace, until register finishes', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await arm('PUT', group, { location: 'westus2' });
    const refused = await arm('PUT', `${network}/networkSecurityGroups/n`, { location: 'westus2', properties: {} });
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe('MissingSubscriptionRegistration');
    expect(refused.body.error?.message).toContain("namespace 'Microsoft.Network'");
    expect(refused.body.error?.details?.[0]?.target).toBe('Microsoft.Network');
    const registering = await arm('POST', `/subscriptions/${subscription}/providers/Microsoft.Network/register`);
    expect(registering.body.registrationState).toBe('Registering');
    await ready();
    expect((await arm('PUT', `${network}/networkSecurityGroups/n`, { location: 'westus2', properties: {} })).status).toBe(201);
  });

  it('a token seen for the first time gets 403 AuthorizationFailed while its role assignment propagates, then is let through', async () => {
    await start({ unregisteredNamespaces: [] });
    const first = await arm('GET', group, undefined, 'fresh-principal');
    expect(first.status).toBe(403);
    expect(first.body.error?.code).toBe('AuthorizationFailed');
    expect(first.body.error?.message).toMatch(/does not have authorization to perform action 'Microsoft\.Resources\/subscriptions\/resourceGroups\/read' over scope .*If access was recently granted/);
    await new Promise((resolve) => setTimeout(resolve, 320));
    expect((await arm('GET', group, undefined, 'fresh-principal')).status).toBe(404);
  });

  it('throttles per-VM GETs with CRP’s 429: top-level OperationNotAllowed, a TooManyRequests detail, Retry-After and the remaining-resource header', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await ready();
    const nic = await networkFor('t');
    await settle(await arm('PUT', vmPath('t'), vmBody(nic)));
    // All at once: the bucket (36, refilling 12/min scaled by timeScale) must not refill in between,
    // however slow a loaded machine makes each request.
    const answers: Answer[] = await Promise.all(Array.from({ length: 60 }, () => arm('GET', vmPath('t'))));
    const throttled = answers.find((answer) => answer.status === 429);
    expect(answers[0]?.headers.get('x-ms-ratelimit-remaining-resource')).toMatch(/^Microsoft\.Compute\/GetVM3Min;\d+$/);
    expect(answers[0]?.headers.get('x-ms-ratelimit-remaining-subscription-reads')).toMatch(/^\d+$/);
    expect(throttled?.body.error?.code).toBe('OperationNotAllowed');
    expect(throttled?.body.error?.details?.[0]).toMatchObject({ code: 'TooManyRequests', target: 'GetVM3Min' });
    expect(Number(throttled?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(throttled?.headers.get('x-ms-ratelimit-remaining-resource')).toBe('Microsoft.Compute/GetVM3Min;0');
  });

  it('a write on a subnet while its vnet’s operation runs is 409 AnotherOperationInProgress; a NIC on an Updating subnet is 429 RetryableError', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await ready();
    await arm('PUT', group, { location: 'westus2' });
    const vnet = await arm('PUT', `${network}/virtualNetworks/busy`, { location: 'westus2', properties: { addressSpace: { addressPrefixes: ['10.0.0.0/16'] } } });
    const conflict = await arm('PUT', `${network}/virtualNetworks/busy/subnets/a`, { properties: { addressPrefix: '10.0.1.0/24' } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error?.code).toBe('AnotherOperationInProgress');
    expect(conflict.body.error?.message).toMatch(/To retrieve status of the operation use uri: http.*\/locations\/westus2\/operations\//);
    expect((await arm('GET', `${network}/virtualNetworks/busy`)).body.properties).toMatchObject({ provisioningState: 'Updating' });
    await settle(vnet);
    const subnet = await arm('PUT', `${network}/virtualNetworks/busy/subnets/a`, { properties: { addressPrefix: '10.0.1.0/24' } });
    expect(subnet.status).toBe(201);
    const nic = await arm('PUT', `${network}/networkInterfaces/early`, {
      location: 'westus2',
      properties: { ipConfigurations: [{ name: 'ip', properties: { subnet: { id: `${network}/virtualNetworks/busy/subnets/a` } } }] },
    });
    expect(nic.status).toBe(429);
    expect(nic.body.error).toMatchObject({ code: 'RetryableError', details: [{ code: 'ReferencedResourceNotProvisioned' }] });
    await settle(subnet);
  });

  it('capacity: SkuNotAvailable at once; AllocationFailed only in the poll, leaving a Failed VM whose NIC stays reserved after its delete', async () => {
    await start({ roleAssignmentLagMs: 0, skuNotAvailable: { sizes: ['Standard_NC6'] }, allocationFailure: { name: 'full', times: 1 } });
    await ready();
    const nic = await networkFor('full');
    const sku = await arm('PUT', vmPath('full'), vmBody(nic, { size: 'Standard_NC6' }));
    expect(sku.status).toBe(409);
    expect(sku.body.error?.code).toBe('SkuNotAvailable');
    expect(sku.body.error?.message).toContain('Please try another size or deploy to a different location or zones');
    const accepted = await arm('PUT', vmPath('full'), vmBody(nic));
    expect(accepted.status).toBe(201);
    const failed = await settle(accepted);
    expect(failed).toMatchObject({ status: 'Failed', error: { code: 'AllocationFailed' } });
    expect((await arm('GET', vmPath('full'))).body.properties).toMatchObject({ provisioningState: 'Failed' });
    expect(sim?.leaks().some((leak) => leak.name === 'full')).toBe(true);
    await settle(await arm('DELETE', vmPath('full')));
    const reserved = await arm('DELETE', `${network}/networkInterfaces/full-nic`);
    expect(reserved.status).toBe(400);
    expect(reserved.body.error?.code).toBe('NicReservedForAnotherVm');
    expect(reserved.body.error?.message).toContain('reserved for another Virtual Machine for 180 seconds');
  });

  it('in-use windows: a NIC is NicInUse while its VM is Deleting, and its NSG and public IP stay in use just after the NIC is gone', async () => {
    await start({ roleAssignmentLagMs: 0, vmDeleteMs: 20_000, nicReleaseMs: 20_000 });
    await ready();
    const nic = await networkFor('w');
    await settle(await arm('PUT', vmPath('w'), vmBody(nic)));
    const deleting = await arm('DELETE', vmPath('w'));
    expect((await arm('GET', vmPath('w'))).body.properties).toMatchObject({ provisioningState: 'Deleting' });
    expect((await arm('POST', `${vmPath('w')}/start`)).body.error?.message).toContain('marked for deletion');
    expect((await arm('DELETE', nic)).body.error?.code).toBe('NicInUse');
    await settle(deleting);
    await settle(await arm('DELETE', nic));
    expect((await arm('DELETE', `${network}/networkSecurityGroups/w-nsg`)).body.error?.code).toBe('InUseNetworkSecurityGroupCannotBeDeleted');
    expect((await arm('DELETE', `${network}/publicIPAddresses/w-ip`)).body.error?.code).toBe('PublicIPAddressCannotBeDeleted');
    await new Promise((resolve) => setTimeout(resolve, 220));
    expect((await arm('DELETE', `${network}/networkSecurityGroups/w-nsg`)).status).toBe(202);
  });

  it('knob nicReservedAfterDelete: the NIC of a deleted VM is NicReservedForAnotherVm for a while', async () => {
    await start({ roleAssignmentLagMs: 0, nicReservedAfterDelete: true, nicReservationMs: 20_000 });
    await ready();
    const nic = await networkFor('v');
    await settle(await arm('PUT', vmPath('v'), vmBody(nic)));
    await settle(await arm('DELETE', vmPath('v')));
    expect((await arm('DELETE', nic)).body.error?.code).toBe('NicReservedForAnotherVm');
    await new Promise((resolve) => setTimeout(resolve, 220));
    expect((await arm('DELETE', nic)).status).toBe(202);
  });

  it('SSH keys: RSA >= 2048 and ed25519 pass, ECDSA and short RSA are InvalidParameter; an rsaKeysOnly region refuses ed25519', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await ready();
    const nic = await networkFor('k');
    const ecdsa = `ecdsa-sha2-nistp256 ${Buffer.from('not-a-real-key').toString('base64')} x`;
    expect((await arm('PUT', vmPath('k'), vmBody(nic, { key: ecdsa }))).body.error).toMatchObject({ code: 'InvalidParameter', target: 'linuxConfiguration.ssh.publicKeys.keyData' });
    expect((await arm('PUT', vmPath('k'), vmBody(nic, { key: shortRsaKey.publicKey }))).body.error?.message).toContain('at least 2048 bits');
    expect((await arm('PUT', vmPath('k'), vmBody(nic, { key: edKey.publicKey }))).status).toBe(201);
    await sim?.close();
    await start({ roleAssignmentLagMs: 0, rsaKeysOnly: true });
    await ready();
    const nic2 = await networkFor('r');
    const refused = await arm('PUT', vmPath('r'), vmBody(nic2, { key: edKey.publicKey }));
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toContain('only ssh-rsa keys are supported');
    expect((await arm('PUT', vmPath('r'), vmBody(nic2, { key: rsaKey.publicKey }))).status).toBe(201);
  });

  it('a Dynamic public IP has no address until its VM runs, and another one after deallocate and start; the PowerState lags a start', async () => {
    await start({ roleAssignmentLagMs: 0, powerStateLagMs: 5_000 });
    await ready();
    const nic = await networkFor('d', 'Dynamic');
    const created = await arm('PUT', vmPath('d'), vmBody(nic));
    expect((await arm('GET', `${network}/publicIPAddresses/d-ip`)).body.properties).not.toHaveProperty('ipAddress');
    await settle(created);
    const view = await arm('GET', `${vmPath('d')}/instanceView`);
    expect((view.body.statuses as { code: string }[]).map((status) => status.code)).toEqual(['ProvisioningState/succeeded']);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const first = (await arm('GET', `${network}/publicIPAddresses/d-ip`)).body.properties as { ipAddress?: string };
    expect(first.ipAddress).toMatch(/^127\.1\./);
    await settle(await arm('POST', `${vmPath('d')}/deallocate`));
    expect((await arm('GET', `${network}/publicIPAddresses/d-ip`)).body.properties).not.toHaveProperty('ipAddress');
    await settle(await arm('POST', `${vmPath('d')}/start`));
    await new Promise((resolve) => setTimeout(resolve, 60));
    const second = (await arm('GET', `${network}/publicIPAddresses/d-ip`)).body.properties as { ipAddress?: string };
    expect(second.ipAddress).toMatch(/^127\.1\./);
    expect(second.ipAddress).not.toBe(first.ipAddress);
  });

  it('lists every public IP address and network interface of the subscription in one call each (publicIPAddresses.listAll, networkInterfaces.listAll), addresses as a GET shows them', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await ready();
    const nic = await networkFor('l1');
    await networkFor('l2', 'Dynamic');
    await settle(await arm('PUT', vmPath('l1'), vmBody(nic)));
    sim?.requestLog.clear();
    const ips = await arm('GET', `/subscriptions/${subscription}/providers/Microsoft.Network/publicIPAddresses`);
    const nics = await arm('GET', `/subscriptions/${subscription}/providers/Microsoft.Network/networkInterfaces`);
    expect(sim?.requestLog.counts('azure')).toEqual({ 'publicIPAddresses.listAll': 1, 'networkInterfaces.listAll': 1 });
    const byName = new Map((ips.body.value as { name: string; properties: { ipAddress?: string } }[]).map((ip) => [ip.name, ip.properties]));
    expect([...byName.keys()].sort()).toEqual(['l1-ip', 'l2-ip']);
    const got = (await arm('GET', `${network}/publicIPAddresses/l1-ip`)).body.properties as { ipAddress?: string };
    expect(got.ipAddress).toMatch(/^127\.1\./);
    expect(byName.get('l1-ip')?.ipAddress).toBe(got.ipAddress);
    // A Dynamic address whose VM does not run has none, in the list as in a GET.
    expect(byName.get('l2-ip')).not.toHaveProperty('ipAddress');
    expect((nics.body.value as { name: string }[]).map((item) => item.name).sort()).toEqual(['l1-nic', 'l2-nic']);
    // Another subscription's list is its own.
    expect((await arm('GET', '/subscriptions/00000000-0000-4000-8000-0000000000b2/providers/Microsoft.Network/publicIPAddresses')).body.value).toEqual([]);
  });

  it('a re-PUT of a VM is an update (200, no twin); changing its admin user is 409 PropertyChangeNotAllowed', async () => {
    await start({ roleAssignmentLagMs: 0 });
    await ready();
    const nic = await networkFor('u');
    await settle(await arm('PUT', vmPath('u'), vmBody(nic)));
    expect((await arm('PUT', vmPath('u'), vmBody(nic))).status).toBe(200);
    expect(sim?.store.listInstances('azure').filter((vm) => vm.name === 'u')).toHaveLength(1);
    const body = vmBody(nic);
    (body.properties as { osProfile: { adminUsername: string } }).osProfile.adminUsername = 'someone-else';
    expect((await arm('PUT', vmPath('u'), body)).body.error).toMatchObject({ code: 'PropertyChangeNotAllowed', target: 'osProfile.adminUsername' });
  });

  it('core quota: 409 OperationNotAllowed with the regional cores details', async () => {
    await start({ roleAssignmentLagMs: 0, regionalCores: 2 });
    await ready();
    const one = await networkFor('q1');
    const two = await networkFor('q2');
    await settle(await arm('PUT', vmPath('q1'), vmBody(one)));
    const refused = await arm('PUT', vmPath('q2'), vmBody(two));
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe('OperationNotAllowed');
    expect(refused.body.error?.message).toMatch(/exceeding approved Total Regional Cores quota.*Current Limit: 2, Current Usage: 2, Additional Required: 2/);
  });

  it('a request without api-version is 400 MissingApiVersionParameter; answers carry the x-ms request headers', async () => {
    await start({ roleAssignmentLagMs: 0 });
    const answer = await arm('GET', group, undefined, 'sim-token', '');
    expect(answer.status).toBe(400);
    expect(answer.body.error?.code).toBe('MissingApiVersionParameter');
    expect(answer.headers.get('x-ms-routing-request-id')).toMatch(/^WESTUS2:/);
  });
});

describe('azure kind profile', () => {
  it('answers at once: providers registered, no role window, no locks, no key checks', async () => {
    await start({}, { profile: 'kind' });
    const nic = await networkFor('kind');
    const vm = await arm('PUT', vmPath('kind'), vmBody(nic, { key: `ecdsa-sha2-nistp256 ${Buffer.from('x').toString('base64')}` }));
    expect(vm.status).toBe(201);
    await settle(vm);
    await settle(await arm('DELETE', vmPath('kind')));
    expect((await arm('DELETE', nic)).status).toBe(202);
  });
});
