import { describe, expect, it } from 'vitest';
import { LoopbackIpAllocator } from './loopback-ips.ts';

describe('LoopbackIpAllocator', () => {
  it('hands out 127.1.x.y addresses from .2, with matching private addresses, and reuses released ones', () => {
    const ips = new LoopbackIpAllocator();
    expect(ips.allocate()).toEqual({ publicIp: '127.1.0.2', privateIp: '10.1.0.2' });
    const second = ips.allocate();
    expect(second.publicIp).toBe('127.1.0.3');
    for (let index = 0; index < 300; index++) ips.allocate();
    expect(ips.inUse).toBe(302);
    expect(ips.allocate().publicIp).toBe('127.1.1.48');
    ips.release(second.publicIp);
    ips.release('127.1.0.3'); // twice: ignored
    expect(ips.inUse).toBe(302);
    expect(ips.allocate().publicIp).toBe('127.1.0.3');
  });
});
