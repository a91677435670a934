import { describe, expect, it } from 'vitest';
import { FaultInjector, parseFaultSpecs } from './faults.ts';

describe('FaultInjector', () => {
  it('fires an error rule on the Nth matching call only, counting per rule', () => {
    const faults = new FaultInjector();
    faults.add({ provider: 'digitalocean', operation: 'droplets.create', nth: 2, error: 'quota' });
    expect(faults.decide('digitalocean', 'droplets.get').error).toBeUndefined();
    expect(faults.decide('digitalocean', 'droplets.create').error).toBeUndefined();
    expect(faults.decide('amazonec2', 'droplets.create').error).toBeUndefined();
    expect(faults.decide('digitalocean', 'droplets.create').error).toBe('quota');
    expect(faults.decide('digitalocean', 'droplets.create').error).toBeUndefined();
  });

  it('throttles `times` calls of any operation, and adds latency to every matching call', () => {
    const faults = new FaultInjector();
    faults.add({ operation: '*', throttle: { times: 2 } });
    faults.add({ operation: 'account.get', latencyMs: 25 });
    expect(faults.decide('p', 'a').throttle).toEqual({ times: 2, retryAfterSeconds: 0, resetSeconds: 1 });
    expect(faults.decide('p', 'account.get')).toMatchObject({ latencyMs: 25, throttle: { times: 2 } });
    expect(faults.decide('p', 'account.get')).toEqual({ latencyMs: 25 });
    expect(faults.decide('p', 'account.get').latencyMs).toBe(25);
  });

  it('removes rules through their handle', () => {
    const faults = new FaultInjector();
    const handle = faults.add({ error: 'server', times: 5 });
    expect(faults.decide('p', 'x').error).toBe('server');
    handle.remove();
    expect(faults.decide('p', 'x').error).toBeUndefined();
  });

  it('a reply rule fires once by default, parses from JSON and refuses unknown kinds', () => {
    const faults = new FaultInjector();
    faults.addAll(parseFaultSpecs('[{"operation":"droplets.create","reply":"drop"},{"operation":"keys.create","nth":2,"reply":"hold","latencyMs":5}]'));
    expect(faults.decide('digitalocean', 'droplets.create')).toEqual({ latencyMs: 0, reply: 'drop' });
    expect(faults.decide('digitalocean', 'droplets.create')).toEqual({ latencyMs: 0 });
    expect(faults.decide('digitalocean', 'keys.create')).toEqual({ latencyMs: 0 });
    expect(faults.decide('digitalocean', 'keys.create')).toEqual({ latencyMs: 5, reply: 'hold' });
    expect(() => parseFaultSpecs('{"reply":"lose"}')).toThrow(/reply must be one of drop, hold/);
  });

  it('applies instance faults to matching new instances, `times` at most', () => {
    const faults = new FaultInjector();
    faults.sshRejectsKey({ provider: 'digitalocean', times: 1 });
    faults.instanceNeverRuns({ name: /^stuck-/ });
    expect([...faults.instanceFaultsFor('digitalocean', 'stuck-1')].sort()).toEqual(['neverRuns', 'sshRejectsKey']);
    expect([...faults.instanceFaultsFor('digitalocean', 'stuck-2')]).toEqual(['neverRuns']);
    expect([...faults.instanceFaultsFor('digitalocean', 'fine')]).toEqual([]);
  });

  it('parses CLOUD_SIM_FAULTS and rejects malformed rules', () => {
    const specs = parseFaultSpecs('[{"operation":"droplets.create","error":"auth"},{"instance":"sshNeverOpens","name":"x"}]');
    expect(specs).toHaveLength(2);
    const faults = new FaultInjector();
    faults.addAll(specs);
    expect(faults.decide('digitalocean', 'droplets.create').error).toBe('auth');
    expect([...faults.instanceFaultsFor('digitalocean', 'x')]).toEqual(['sshNeverOpens']);
    expect(() => parseFaultSpecs('{"error":"boom"}')).toThrow(/error must be one of/);
    expect(() => parseFaultSpecs('[{"operation":"x"}]')).toThrow(/needs error, throttle, reply or latencyMs/);
    expect(() => parseFaultSpecs('nope')).toThrow(/not valid JSON/);
  });

  it('parses the booted-image instance faults from JSON and refuses unknown kinds', () => {
    const faults = new FaultInjector();
    faults.addAll(parseFaultSpecs('[{"instance":"engineInstallFails","name":"web1"},{"instance":"ipChangesOnStart","provider":"google","times":1}]'));
    expect([...faults.instanceFaultsFor('digitalocean', 'web1')]).toEqual(['engineInstallFails']);
    expect([...faults.instanceFaultsFor('google', 'web2')]).toEqual(['ipChangesOnStart']);
    expect([...faults.instanceFaultsFor('google', 'web3')]).toEqual([]);
    const api = new FaultInjector();
    api.engineInstallFails({ name: /^broken-/ });
    api.ipChangesOnStart({ provider: 'amazonec2' });
    expect([...api.instanceFaultsFor('amazonec2', 'broken-1')].sort()).toEqual(['engineInstallFails', 'ipChangesOnStart']);
    expect(() => parseFaultSpecs('{"instance":"diskFills"}')).toThrow(/must be one of neverRuns, sshNeverOpens, sshRejectsKey, engineInstallFails, ipChangesOnStart/);
  });
});
