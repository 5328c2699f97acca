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

  it('takes canonical IPv4 text on a fast path and everything else on the general one, with the same answers', () => {
    // A leased subnet outside the cluster network (the agent screens those out first) and a
    // cluster network of /0 and /32 edges: the fast path must still refuse what the general one does.
    const f = importFilter({ clusterNetwork: '10.0.0.0/8', ownSubnet: '10.1.0.0/24', leasedSubnets: ['10.1.0.0/24', '10.2.0.0/24', '11.0.0.0/24', '10.3.0.0/24', '10.4.0.4/32', '010.5.0.0/24'] });
    const answers = ['10.2.0.0/24', '11.0.0.0/24', '10.1.0.0/24', '10.3.0.0/24', '10.4.0.4/32', '10.5.0.0/24', '10.2.0.0/024', '10.2.0.1/24', '10.2.0.0/33']
      .map((p) => { const d = f(p); return d.ok ? `ok ${d.prefix}` : d.reason; });
    expect(answers).toEqual(['ok 10.2.0.0/24', 'outside_cluster', 'own_subnet', 'ok 10.3.0.0/24', 'ok 10.4.0.4/32', 'no_lease', 'ok 10.2.0.0/24', 'malformed', 'malformed']);
    const all = importFilter({ clusterNetwork: '0.0.0.0/0', ownSubnet: undefined, leasedSubnets: ['192.168.7.0/24'] });
    expect(all('192.168.7.0/24')).toEqual({ ok: true, prefix: '192.168.7.0/24' });
    expect(all('0.0.0.0/0')).toMatchObject({ ok: false, reason: 'default_route' });
  });
});
