import { generateSSHKeyPair } from '@machine/driver-core/keys';
import { runSSH } from '@machine/driver-core/ssh';
import { afterEach, describe, expect, it } from 'vitest';
import { type Sim, startSim } from '../sim.ts';

let sim: Sim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('InstanceLifecycle', () => {
  it('moves pending → running → stopping → stopped → pending → running → terminated with SSH following', async () => {
    sim = await startSim({ providers: [], delays: { pendingMs: 30, stoppingMs: 30 } });
    const key = generateSSHKeyPair();
    const { instance, running } = sim.lifecycle.launch({ provider: 'test', kind: 'vm', id: 'i-1', name: 'vm-1', authorizedKeys: [key.publicKey] });
    expect(instance.state).toBe('pending');
    expect(sim.ssh.isOpen(instance)).toBe(false);
    expect(await running).toBe(true);
    expect(instance.state).toBe('running');
    expect(sim.ssh.isOpen(instance)).toBe(true);
    const result = await runSSH({ host: instance.publicIp, port: sim.sshPort, username: 'docker-user', privateKey: key.privateKey }, 'cat /etc/hostname');
    expect(result.stdout).toBe('vm-1\n');

    const stopped = sim.lifecycle.stop(instance);
    expect(instance.state).toBe('stopping');
    expect(await stopped).toBe(true);
    expect(instance.state).toBe('stopped');
    expect(sim.ssh.isOpen(instance)).toBe(false);
    expect(await sim.lifecycle.start(instance)).toBe(true);
    expect(instance.state).toBe('running');

    expect(sim.leaks()).toEqual([{ provider: 'test', kind: 'vm', id: 'i-1', name: 'vm-1', state: 'running' }]);
    expect(await sim.lifecycle.terminate(instance)).toBe(true);
    expect(instance.state).toBe('terminated');
    expect(sim.ssh.isOpen(instance)).toBe(false);
    expect(sim.leaks()).toEqual([]);
  });

  it('terminating a pending instance supersedes its boot', async () => {
    sim = await startSim({ providers: [], delays: { pendingMs: 50 } });
    const { instance, running } = sim.lifecycle.launch({ provider: 'test', kind: 'vm', id: 'i-2', name: 'vm-2', authorizedKeys: [] });
    await sim.lifecycle.terminate(instance);
    expect(await running).toBe(false);
    expect(instance.state).toBe('terminated');
  });

  it('starts with every provider (its start-up time is measured by pnpm bench, not here)', async () => {
    sim = await startSim();
    expect(Object.keys(sim.endpoints)).toContain('digitalocean');
    expect(sim.env().DIGITALOCEAN_API_URL).toBe(sim.endpoints.digitalocean);
    expect(sim.sshPort).toBeGreaterThan(0);
  });

  it('refuses non-loopback hosts and unknown providers', async () => {
    await expect(startSim({ host: '0.0.0.0' })).rejects.toThrow(/loopback only/);
    await expect(startSim({ providers: ['nimbus'] })).rejects.toThrow(/unknown provider "nimbus"/);
  });
});
