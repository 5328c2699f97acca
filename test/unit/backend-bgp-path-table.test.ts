import { describe, expect, it } from 'vitest';
import { PathTable } from '../../src/backends/bgp/path-table.js';
import { path } from '../fakes/bgp-driver.js';

const nextHops = (t: PathTable, prefix: string): string[] => t.best(prefix).map((b) => b.path.nextHop);

describe('bgp path table: equal-cost best paths per prefix', () => {
  it('two equal paths from two peers are both best (ECMP), sorted by next hop; a withdrawal leaves one', () => {
    const t = new PathTable();
    t.apply({ peer: 'tor-b', announced: [path('10.244.3.0/24', '198.18.0.253')], withdrawn: [] });
    t.apply({ peer: 'tor-a', announced: [path('10.244.3.0/24', '198.18.0.254')], withdrawn: [] });
    expect(nextHops(t, '10.244.3.0/24')).toEqual(['198.18.0.253', '198.18.0.254']);
    expect([...t.apply({ peer: 'tor-b', announced: [], withdrawn: ['10.244.3.0/24'] })]).toEqual(['10.244.3.0/24']);
    expect(nextHops(t, '10.244.3.0/24')).toEqual(['198.18.0.254']);
    t.apply({ peer: 'tor-a', announced: [], withdrawn: ['10.244.3.0/24'] });
    expect(t.size).toBe(0);
  });

  it('RFC 4271 §9.1.2.2 order: LOCAL_PREF, then AS_PATH length, ORIGIN, MED, eBGP over iBGP', () => {
    const cases: [Partial<Parameters<typeof path>[2]>, Partial<Parameters<typeof path>[2]>][] = [
      [{ localPref: 200, asPathLength: 5 }, { localPref: 100 }],
      [{ asPathLength: 1, origin: 2 }, { asPathLength: 2 }],
      [{ origin: 0, med: 50 }, { origin: 1 }],
      [{ med: 10, ebgp: false }, { med: 20, ebgp: true }],
      [{ ebgp: true }, { ebgp: false }],
    ];
    for (const [better, worse] of cases) {
      const t = new PathTable();
      t.apply({ peer: 'p1', announced: [path('10.244.3.0/24', '198.18.0.1', worse)], withdrawn: [] });
      t.apply({ peer: 'p2', announced: [path('10.244.3.0/24', '198.18.0.2', better)], withdrawn: [] });
      expect(nextHops(t, '10.244.3.0/24'), JSON.stringify(better)).toEqual(['198.18.0.2']);
    }
  });

  it('a peer replacing its path, and dropping a peer, touch only its prefixes; counts per peer', () => {
    const t = new PathTable();
    t.apply({ peer: 'p1', announced: [path('10.244.1.0/24', '198.18.0.1'), path('10.244.2.0/24', '198.18.0.1')], withdrawn: [] });
    t.apply({ peer: 'p2', announced: [path('10.244.2.0/24', '198.18.0.2')], withdrawn: [] });
    t.apply({ peer: 'p1', announced: [path('10.244.1.0/24', '198.18.0.9')], withdrawn: [] });
    expect(nextHops(t, '10.244.1.0/24')).toEqual(['198.18.0.9']);
    expect(Object.fromEntries(t.countByPeer())).toEqual({ p1: 2, p2: 1 });
    expect([...t.dropPeer('p1')].sort()).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    expect([...t.prefixes()]).toEqual(['10.244.2.0/24']);
    // The usable filter (a next hop off-link) leaves the next best set.
    expect(t.best('10.244.2.0/24', (p) => p.nextHop !== '198.18.0.2')).toEqual([]);
  });
});
