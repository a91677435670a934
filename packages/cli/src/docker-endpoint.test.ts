import { describe, expect, it } from 'vitest';
import { dockerUrlOf, sansInclude } from './docker-endpoint.ts';

describe('docker endpoint helpers', () => {
  it('matches an IPv6 address against the certificate SANs in any spelling, DNS names case-insensitively', () => {
    // provision stores SANs canonical (serverCertificateSans); a driver may report the long or upper-case form.
    const sans = ['2001:db8::1', 'web1.example.com', 'localhost'];
    expect(sansInclude(sans, '2001:DB8:0:0:0:0:0:1')).toBe(true);
    expect(sansInclude(sans, '[2001:db8::1]')).toBe(true);
    expect(sansInclude(sans, 'WEB1.example.com')).toBe(true);
    expect(sansInclude(sans, '2001:db8::2')).toBe(false);
    expect(sansInclude(['10.0.0.1'], '10.0.0.12')).toBe(false);
  });

  it('writes IPv6 hosts in brackets once, whether or not the driver bracketed them', () => {
    expect(dockerUrlOf('2001:db8::1', 2376)).toBe('tcp://[2001:db8::1]:2376');
    expect(dockerUrlOf('[2001:db8::1]', 2376)).toBe('tcp://[2001:db8::1]:2376');
    expect(dockerUrlOf('10.0.0.1', 2377)).toBe('tcp://10.0.0.1:2377');
    expect(dockerUrlOf('web1.example.com', 2376)).toBe('tcp://web1.example.com:2376');
  });
});
