import { describe, expect, it } from 'vitest';
import { importFilter } from '../../src/backends/bgp/import-filter.js';

describe('bgp backend import filter', () => {
  const accept = importFilter({ clusterNetwork: '10.244.0.0/16', ownSubnet: '10.244.1.0/24', leasedSubnets: ['10.244.2.0/24', '10.244.3.0/24', 'garbage'] });

  it('installs exactly the other hosts\' leased subnets', () => {
    expect(accept('10.244.2.0/24')).toEqual({ ok: true, prefix: '10.244.2.0/24' });
    expect(accept('10.244.3.0/24')).toEqual({ ok: true, prefix: '10.244.3.0/24' });
  });

  it('refuses, with a reason a metric can count, a default route, the outside, this host\'s own subnet, what no lease holds and a malformed prefix', () => {
    const reasons = ['0.0.0.0/0', '8.8.8.0/24', '10.244.1.0/24', '10.244.9.0/24', '10.244.2.0/25', '10.244.0.0/16', 'fd00::/64', '10.244.2.1/24']
      .map((p) => { const d = accept(p); return d.ok ? 'ok' : d.reason; });
    expect(reasons).toEqual(['default_route', 'outside_cluster', 'own_subnet', 'no_lease', 'no_lease', 'no_lease', 'not_ipv4', 'malformed']);
    const d = accept('10.244.9.0/24');
    expect(d.ok ? '' : d.detail).toBe('no host holds a lease for 10.244.9.0/24');
  });
});
