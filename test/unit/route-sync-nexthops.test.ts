import { describe, expect, it } from 'vitest';
import { NEXTHOP_ID_BASE, planNexthops } from '../../src/backends/route-sync.js';
import { RTPROT_TWILL, type Nexthop } from '../../src/netlink/index.js';

const nexthop = (id: number, gateway: string, oif: number, extra: Partial<Nexthop> = {}): Nexthop =>
  ({ id, family: 4, gateway, oif, protocol: RTPROT_TWILL, onlink: false, group: false, blackhole: false, ...extra });

describe('planNexthops', () => {
  it('gives each gateway/device/onlink one nexthop, reusing Twill\'s existing ones so a converged sync creates none', () => {
    const existing = [nexthop(NEXTHOP_ID_BASE + 5, '10.244.2.0', 7, { onlink: true })];
    const { routes, create } = planNexthops(existing, [
      { dst: '10.244.2.0/24', gateway: '10.244.2.0', oif: 7, onlink: true },
      { dst: '10.244.3.0/24', gateway: '10.244.3.0', oif: 7, onlink: true },
      // Same gateway and device as the one before: the same nexthop.
      { dst: '10.244.4.0/24', gateway: '10.244.3.0', oif: 7, onlink: true, metric: 5 },
    ]);
    expect(routes).toEqual([
      { dst: '10.244.2.0/24', nexthopId: NEXTHOP_ID_BASE + 5 },
      { dst: '10.244.3.0/24', nexthopId: NEXTHOP_ID_BASE },
      { dst: '10.244.4.0/24', nexthopId: NEXTHOP_ID_BASE, metric: 5 },
    ]);
    expect(create).toEqual([{ id: NEXTHOP_ID_BASE, gateway: '10.244.3.0', oif: 7, onlink: true }]);
  });

  it('never reuses or takes the id of a nexthop that is not Twill\'s, nor one whose onlink flag differs', () => {
    const existing = [
      nexthop(NEXTHOP_ID_BASE, '198.18.0.2', 3, { protocol: 4 }),
      nexthop(NEXTHOP_ID_BASE + 1, '198.18.0.3', 3, { onlink: true }),
    ];
    const { routes, create } = planNexthops(existing, [
      { dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 3 },
      { dst: '10.244.3.0/24', gateway: '198.18.0.3', oif: 3 },
    ]);
    expect(create.map((c) => c.id)).toEqual([NEXTHOP_ID_BASE + 2, NEXTHOP_ID_BASE + 3]);
    expect(routes.map((r) => r.nexthopId)).toEqual([NEXTHOP_ID_BASE + 2, NEXTHOP_ID_BASE + 3]);
  });

  it('leaves plain the routes a nexthop cannot express: no device, no gateway, a scope or a source of their own', () => {
    const desired = [
      { dst: '10.244.2.0/24', gateway: '192.0.2.1' },
      { dst: '10.244.3.0/24', oif: 3 },
      { dst: '10.244.4.0/24', gateway: '198.18.0.4', oif: 3, scope: 'link' as const },
      { dst: '10.244.5.0/24', gateway: '198.18.0.5', oif: 3, prefsrc: '198.18.0.1' },
    ];
    expect(planNexthops([], desired)).toEqual({ routes: desired, create: [] });
  });
});
