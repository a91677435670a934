import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { ComputeManagementClient } from '@azure/arm-compute';
import { createDefaultHttpClient, type HttpClient } from '@azure/core-rest-pipeline';
import { InstancesClient } from '@google-cloud/compute';
import { combineUserData } from '@machine/driver-core';
import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimInstance } from '../core/store.ts';
import { dotsClient, eventually, ipOf } from '../providers/digitalocean/dots-client.test-helpers.ts';
import { type Sim, startSim } from '../sim.ts';

// Each provider's real SDK sends user data in its own wire format (DigitalOcean `user_data` as is,
// EC2 `UserData` base64, GCE metadata item `user-data`, Azure `osProfile.customData` base64); the
// simulator keeps it decoded on the instance and cloud-init applies it at first boot.

let sim: Sim;
const key = generateSSHKeyPair({ comment: 'machine-user' });
const userData = combineUserData([
  '#cloud-config\nwrite_files:\n  - path: /etc/machine-marker\n    content: "from cloud-init: ünïcode ok\\n"\n',
  '#!/bin/sh\necho "user script ran" > /root/user-script.txt\n',
])!;

beforeAll(async () => {
  sim = await startSim({
    delays: { pendingMs: 5, stoppingMs: 5, cloudInitMs: 5 },
    faults: [
      { instance: 'ipChangesOnStart', name: 'moving-droplet' },
      { instance: 'ipChangesOnStart', name: 'ud-azure' },
    ],
    // The Azure case talks raw ARM to a new subscription: no provider registration or role-assignment window here.
    providerOptions: { azure: { profile: 'kind' } },
  });
});
afterAll(async () => {
  await sim.close();
});

/** The instance once the front end launched it, and running. */
async function launched(provider: string, name: string): Promise<SimInstance> {
  return eventually(async () => sim.store.listInstances(provider).find((instance) => instance.name === name && instance.state === 'running'));
}

async function expectApplied(instance: SimInstance): Promise<void> {
  expect(instance.attributes.userData).toBe(userData);
  expect(instance.filesystem.readFile('/var/lib/cloud/instance/user-data.txt').toString()).toBe(userData);
  const target = { host: instance.publicIp, port: sim.sshPort, username: 'root', privateKey: key.privateKey };
  expect((await runSSH(target, 'cloud-init status --wait')).code).toBe(0);
  expect(instance.filesystem.readFile('/etc/machine-marker').toString()).toBe('from cloud-init: ünïcode ok\n');
  expect(instance.filesystem.readFile('/root/user-script.txt').toString()).toBe('user script ran\n');
}

describe('user data through each provider SDK', () => {
  it('DigitalOcean (@digitalocean/dots): user_data', async () => {
    const client = dotsClient(sim.endpoints.digitalocean!);
    const created = await client.v2.account.keys.post({ name: 'machine', publicKey: key.publicKey });
    await client.v2.droplets.post({ name: 'ud-do', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [created.sshKey.id], userData });
    await expectApplied(await launched('digitalocean', 'ud-do'));
  });

  it('EC2 (@aws-sdk/client-ec2): UserData base64', async () => {
    const ec2 = new EC2Client({ region: 'eu-west-3', endpoint: sim.endpoints.amazonec2, credentials: { accessKeyId: 'AKIDSIMTESTS00000001', secretAccessKey: 'sim-test-secret' }, maxAttempts: 1 });
    await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-0a1b2c3d4e5f60718',
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        UserData: Buffer.from(userData).toString('base64'),
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'ud-ec2' }] }],
      }),
    );
    const instance = await launched('amazonec2', 'ud-ec2');
    instance.authorizedKeys.push(key.publicKey); // launched without a key pair; let the test log in
    await expectApplied(instance);
    ec2.destroy();
  });

  it('Compute Engine (@google-cloud/compute): metadata item user-data', async () => {
    const endpoint = new URL(sim.endpoints.google!);
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'sim-token', expiry_date: Date.now() + 3_600_000 });
    const instances = new InstancesClient({ apiEndpoint: endpoint.hostname, port: Number(endpoint.port), protocol: 'http', authClient: auth as never, fallback: true });
    await instances.insert({
      project: 'p1',
      zone: 'us-central1-a',
      instanceResource: {
        name: 'ud-gce',
        machineType: 'zones/us-central1-a/machineTypes/e2-small',
        disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64', diskSizeGb: '10' } }],
        networkInterfaces: [{ network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
        metadata: { items: [{ key: 'ssh-keys', value: `root:${key.publicKey}` }, { key: 'user-data', value: userData }] },
      },
    });
    await expectApplied(await launched('google', 'ud-gce'));
    await instances.close();
  });

  it('Azure (@azure/arm-compute): osProfile.customData base64, and the public IP follows an address change', async () => {
    const base = sim.endpoints.azure!;
    const subscription = '00000000-0000-0000-0000-0000000000aa';
    const group = `/subscriptions/${subscription}/resourceGroups/rg-ud`;
    const put = async (path: string, body: unknown) => {
      const response = await fetch(`${base}${path}?api-version=2024-01-01`, { method: 'PUT', headers: { authorization: 'Bearer sim', 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(response.status).toBeLessThan(300);
    };
    await put(group, { location: 'westeurope' });
    await put(`${group}/providers/Microsoft.Network/virtualNetworks/vnet`, {
      location: 'westeurope',
      properties: { addressSpace: { addressPrefixes: ['10.0.0.0/16'] }, subnets: [{ name: 'default', properties: { addressPrefix: '10.0.0.0/24' } }] },
    });
    await put(`${group}/providers/Microsoft.Network/publicIPAddresses/ip`, { location: 'westeurope', properties: { publicIPAllocationMethod: 'Dynamic' } });
    await put(`${group}/providers/Microsoft.Network/networkInterfaces/nic`, {
      location: 'westeurope',
      properties: {
        ipConfigurations: [
          {
            name: 'ipconfig1',
            properties: { subnet: { id: `${group}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default` }, publicIPAddress: { id: `${group}/providers/Microsoft.Network/publicIPAddresses/ip` } },
          },
        ],
      },
    });
    // The SDK insists on https; rewrite to the simulator (see src/providers/azure/README.md).
    const standIn = 'https://management.azure.com';
    const inner = createDefaultHttpClient();
    const httpClient: HttpClient = {
      async sendRequest(request) {
        const original = request.url;
        request.url = original.startsWith(standIn) ? `${base}${original.slice(standIn.length)}` : original;
        request.allowInsecureConnection = true;
        try {
          const response = await inner.sendRequest(request);
          for (const name of ['location', 'azure-asyncoperation']) {
            const value = response.headers.get(name);
            if (value?.startsWith(base)) response.headers.set(name, `${standIn}${value.slice(base.length)}`);
          }
          return response;
        } finally {
          request.url = original;
        }
      },
    };
    const credential = { getToken: async () => ({ token: 'sim-token', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const compute = new ComputeManagementClient(credential, subscription, { endpoint: standIn, httpClient, credentials: { scopes: [`${standIn}/.default`] } });
    await compute.virtualMachines.beginCreateOrUpdateAndWait(
      'rg-ud',
      'ud-azure',
      {
        location: 'westeurope',
        hardwareProfile: { vmSize: 'Standard_B1s' },
        storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' } },
        osProfile: {
          computerName: 'ud-azure',
          adminUsername: 'azureuser',
          customData: Buffer.from(userData).toString('base64'),
          linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: '/home/azureuser/.ssh/authorized_keys', keyData: key.publicKey }] } },
        },
        networkProfile: { networkInterfaces: [{ id: `${group}/providers/Microsoft.Network/networkInterfaces/nic`, primary: true }] },
      },
      { updateIntervalInMs: 10 },
    );
    const instance = await launched('azure', 'ud-azure');
    await expectApplied(instance);

    const publicIp = async () => {
      const response = await fetch(`${base}${group}/providers/Microsoft.Network/publicIPAddresses/ip?api-version=2024-01-01`, { headers: { authorization: 'Bearer sim' } });
      return ((await response.json()) as { properties: { ipAddress?: string } }).properties.ipAddress;
    };
    expect(await publicIp()).toBe(instance.publicIp);
    expect(instance.faults.has('ipChangesOnStart')).toBe(true);
    const before = instance.publicIp;
    await compute.virtualMachines.beginDeallocateAndWait('rg-ud', 'ud-azure', { updateIntervalInMs: 10 });
    await compute.virtualMachines.beginStartAndWait('rg-ud', 'ud-azure', { updateIntervalInMs: 10 });
    expect(instance.publicIp).not.toBe(before);
    expect(await publicIp()).toBe(instance.publicIp);
  });

  it('ipChangesOnStart: DigitalOcean reports the new address after power off/on, and SSH answers there', async () => {
    const client = dotsClient(sim.endpoints.digitalocean!);
    const keys = await client.v2.account.keys.get();
    const keyId = keys.sshKeys.find((entry: { name?: string }) => entry.name === 'machine').id;
    const created = await client.v2.droplets.post({ name: 'moving-droplet', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [keyId] });
    const id = created.droplet.id;
    const activeIp = async (status: string) =>
      eventually(async () => {
        const droplet = (await client.v2.droplets.byDroplet_id(id).get()).droplet;
        return droplet.status === status ? (ipOf(droplet) ?? '') : undefined;
      });
    const first = await activeIp('active');
    await client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_off' });
    await activeIp('off');
    await client.v2.droplets.byDroplet_id(id).actions.post({ type: 'power_on' });
    const second = await activeIp('active');
    expect(second).not.toBe(first);
    expect(second).toMatch(/^127\.1\.\d+\.\d+$/);
    const result = await runSSH({ host: second, port: sim.sshPort, username: 'root', privateKey: key.privateKey }, 'hostname');
    expect(result.stdout).toBe('moving-droplet\n');
  });
});
