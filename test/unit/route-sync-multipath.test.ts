import { describe, expect, it } from 'vitest';
import { matches, NEXTHOP_ID_BASE, planNexthops, syncRoutes } from '../../src/backends/route-sync.js';
import { RTPROT_TWILL, type Nexthop, type Route, type RouteSpec } from '../../src/netlink/index.js';
import { FakeNetlink } from '../fakes/netlink.js';

// ECMP routes (RouteSpec.multipath) in the shared route sync: one Twill nexthop per member and a
// Twill group of them per member set, against the in-memory kernel (test/netns/route-sync.test.ts
// proves the same against the kernel).

const CLUSTER = '10.244.0.0/16';
const RTPROT_STATIC = 4;
const id = (n: number): number => NEXTHOP_ID_BASE + n;
/** Twill's ids less NEXTHOP_ID_BASE; others as they are. */
const short = (n: number): number => (n >= NEXTHOP_ID_BASE ? n - NEXTHOP_ID_BASE : n);

function host(opts: { nexthops?: boolean } = {}): { nl: FakeNetlink; eth0: number; ecmp: (n: number, ...gws: number[]) => RouteSpec } {
  const nl = new FakeNetlink(opts);
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24').index;
  return { nl, eth0, ecmp: (n, ...gws) => ({ dst: `10.244.${n}.0/24`, multipath: gws.map((g) => ({ gateway: `198.18.0.${g}`, oif: eth0 })) }) };
}

/** Each nexthop: "N via GW" or "N group A/B" (short ids), "proto P" when not Twill's. */
async function nexthops(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listNexthops()).map((n) => `${short(n.id)} ${n.members ? `group ${n.members.map((m) => short(m.id)).join('/')}` : `via ${n.gateway}`}`
    + `${n.protocol === RTPROT_TWILL ? '' : ` proto ${n.protocol}`}`).sort();
}

/** Each route of the cluster network: "dst nh N" or "dst via GW,GW" for a plain (multipath) one. */
async function routes(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listRoutes({ family: 4 })).filter((r) => r.dst.startsWith('10.')).map((r) => `${r.dst} ${r.nexthopId !== undefined
    ? `nh ${short(r.nexthopId)}`
    : `via ${(r.multipath ?? [r]).map((h) => h.gateway).join(',')}`}`).sort();
}

describe('planNexthops with multipath routes', () => {
  const nexthop = (n: number, extra: Partial<Nexthop>): Nexthop =>
    ({ id: id(n), family: 4, gateway: undefined, oif: 3, protocol: RTPROT_TWILL, onlink: false, group: false, blackhole: false, ...extra });

  it('names a group of one nexthop per member, created after them; reuses an equal-cost group of the same members in any order', () => {
    const hop = (g: number): { gateway: string; oif: number } => ({ gateway: `198.18.0.${g}`, oif: 3 });
    const existing = [
      nexthop(0, { gateway: '198.18.0.2' }), nexthop(1, { gateway: '198.18.0.3' }),
      nexthop(2, { family: undefined, oif: undefined, group: true, members: [{ id: id(1), weight: 1 }, { id: id(0), weight: 1 }] }),
    ];
    const plan = planNexthops(existing, [
      { dst: '10.244.2.0/24', multipath: [hop(2), hop(3)] },
      { dst: '10.244.3.0/24', multipath: [hop(3), hop(4)], metric: 7 },
      // One hop, and one hop given twice: the member's own nexthop, no group.
      { dst: '10.244.4.0/24', multipath: [hop(4)] },
      { dst: '10.244.5.0/24', multipath: [hop(2), hop(2)] },
    ]);
    expect(plan.routes).toEqual([
      { dst: '10.244.2.0/24', nexthopId: id(2) },
      { dst: '10.244.3.0/24', nexthopId: id(4), metric: 7 },
      { dst: '10.244.4.0/24', nexthopId: id(3) },
      { dst: '10.244.5.0/24', nexthopId: id(0) },
    ]);
    expect(plan.create).toEqual([{ id: id(3), gateway: '198.18.0.4', oif: 3, onlink: false }, { id: id(4), group: [{ id: id(1) }, { id: id(3) }] }]);
  });

  it('reuses no group that is not Twill\'s, has weights, or has other members; leaves a multipath route with a scope of its own plain', () => {
    const existing = [
      nexthop(0, { gateway: '198.18.0.2' }), nexthop(1, { gateway: '198.18.0.3' }),
      nexthop(2, { family: undefined, oif: undefined, group: true, protocol: RTPROT_STATIC, members: [{ id: id(0), weight: 1 }, { id: id(1), weight: 1 }] }),
      nexthop(3, { family: undefined, oif: undefined, group: true, members: [{ id: id(0), weight: 1 }, { id: id(1), weight: 2 }] }),
      nexthop(4, { family: undefined, oif: undefined, group: true, members: [{ id: id(0), weight: 1 }] }),
    ];
    const multipath = [{ gateway: '198.18.0.2', oif: 3 }, { gateway: '198.18.0.3', oif: 3 }];
    const plan = planNexthops(existing, [{ dst: '10.244.2.0/24', multipath }, { dst: '10.244.3.0/24', multipath, scope: 'link' }]);
    expect(plan.create).toEqual([{ id: id(5), group: [{ id: id(0) }, { id: id(1) }] }]);
    expect(plan.routes).toEqual([{ dst: '10.244.2.0/24', nexthopId: id(5) }, { dst: '10.244.3.0/24', multipath, scope: 'link' }]);
  });
});

describe('matches with multipath routes', () => {
  const route = (extra: Partial<Route>): Route => ({
    family: 4, dst: '10.244.2.0/24', gateway: undefined, oif: undefined, table: 254, protocol: RTPROT_TWILL, scope: 0, type: 1, onlink: false,
    metric: undefined, prefsrc: undefined, nexthopId: undefined, ...extra,
  });
  const hops = (...gws: number[]): { gateway: string; oif: number; onlink: boolean; weight: number }[] => gws.map((g) => ({ gateway: `198.18.0.${g}`, oif: 3, onlink: false, weight: 1 }));
  const want = (...gws: number[]): RouteSpec => ({ dst: '10.244.2.0/24', multipath: gws.map((g) => ({ gateway: `198.18.0.${g}`, oif: 3 })) });

  it('a route through a group is converged only when it names the wanted group, whatever hops it lists', () => {
    expect(matches(route({ nexthopId: 9, multipath: hops(2, 3) }), { dst: '10.244.2.0/24', nexthopId: 9 })).toBe(true);
    expect(matches(route({ nexthopId: 8, multipath: hops(2, 3) }), { dst: '10.244.2.0/24', nexthopId: 9 })).toBe(false);
    expect(matches(route({ nexthopId: 9, multipath: hops(2, 3) }), want(2, 3))).toBe(false);
  });

  it('a plain multipath route is converged on the same hops in any order, each of weight 1; a single hop is a plain route', () => {
    expect(matches(route({ multipath: hops(3, 2) }), want(2, 3))).toBe(true);
    expect(matches(route({ multipath: hops(2, 3) }), want(2, 4))).toBe(false);
    expect(matches(route({ multipath: hops(2, 3) }), want(2, 3, 4))).toBe(false);
    expect(matches(route({ multipath: [...hops(2), { ...hops(3)[0]!, weight: 2 }] }), want(2, 3))).toBe(false);
    expect(matches(route({ multipath: hops(2, 3) }), { dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 3 })).toBe(false);
    expect(matches(route({ gateway: '198.18.0.2', oif: 3 }), want(2))).toBe(true);
    expect(matches(route({ gateway: '198.18.0.2', oif: 3 }), want(2, 3))).toBe(false);
  });
});

describe('syncRoutes with multipath routes', () => {
  it('writes a route over two gateways through a Twill group of two Twill nexthops, and a converged sync writes nothing', async () => {
    const { nl, ecmp } = host();
    const result = await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3), ecmp(3, 3, 2)]);
    expect(result).toEqual({ replaced: 2, deleted: 0, nexthops: 3, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([
      `nexthop.add id ${id(0)} via 198.18.0.2`, `nexthop.add id ${id(1)} via 198.18.0.3`, `nexthop.add id ${id(2)} group ${id(0)}/${id(1)}`,
      'route.add 10.244.2.0/24', 'route.add 10.244.3.0/24',
    ]);
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '1 via 198.18.0.3', '2 group 0/1']);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 nh 2', '10.244.3.0/24 nh 2']);
    // Listed as the kernel lists a route through a group: with its members' next hops.
    expect((await nl.listRoutes({ family: 4 })).find((r) => r.dst === '10.244.2.0/24')?.multipath?.map((h) => h.gateway)).toEqual(['198.18.0.2', '198.18.0.3']);
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 3, 2), ecmp(3, 2, 3)])).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([]);
  });

  it('moves a route whose member set changes to a new group, then deletes the old group before its stale member', async () => {
    const { nl, ecmp } = host();
    await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)]);
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 4)])).toEqual({ replaced: 1, deleted: 0, nexthops: 4, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([
      `nexthop.add id ${id(3)} via 198.18.0.4`, `nexthop.add id ${id(4)} group ${id(0)}/${id(3)}`, 'route.replace 10.244.2.0/24',
      `nexthop.delete id ${id(2)}`, `nexthop.delete id ${id(1)}`,
    ]);
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '3 via 198.18.0.4', '4 group 0/3']);

    // Down to one gateway: the route names that gateway's nexthop, and the group goes.
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 4)])).toEqual({ replaced: 1, deleted: 0, nexthops: 2, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual(['route.replace 10.244.2.0/24', `nexthop.delete id ${id(4)}`, `nexthop.delete id ${id(0)}`]);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 nh 3']);

    // And back to two; then the route goes, and with it its group and members.
    await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 4)]);
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '1 group 0/3', '3 via 198.18.0.4']);
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, [])).toEqual({ replaced: 0, deleted: 1, nexthops: 3, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual(['route.delete 10.244.2.0/24', `nexthop.delete id ${id(1)}`, `nexthop.delete id ${id(3)}`, `nexthop.delete id ${id(0)}`]);
    expect(await nexthops(nl)).toEqual([]);
  });

  it('repairs a group whose member was deleted by hand (the kernel took the member out of it)', async () => {
    const { nl, ecmp } = host();
    await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)]);
    nl.kernel.routes.deleteNexthop(id(1));
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '2 group 0']);
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)])).toMatchObject({ replaced: 1, failed: [] });
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '1 via 198.18.0.3', '3 group 0/1']);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 nh 3']);
  });

  it('never deletes a group another owner\'s route names, nor a member another owner\'s group holds; never touches a group not its own', async () => {
    const { nl, eth0, ecmp } = host();
    await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3), ecmp(3, 4, 5)]);
    // Somebody routes through Twill's first group, and groups Twill's nexthop for 198.18.0.4 with one of theirs.
    nl.kernel.routes.add({ dst: '192.0.2.0/24', nexthopId: id(2), protocol: RTPROT_STATIC });
    nl.kernel.routes.addNexthop({ id: 7, gateway: '198.18.0.7', oif: eth0, protocol: RTPROT_STATIC });
    nl.kernel.routes.addNexthop({ id: 8, group: [{ id: 7 }, { id: id(3) }], protocol: RTPROT_STATIC });
    nl.kernel.routes.add({ dst: '10.244.9.0/24', nexthopId: 8, protocol: RTPROT_STATIC });
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, [])).toEqual({ replaced: 0, deleted: 2, nexthops: 2, failed: [], refused: [] });
    // Gone: the second group and the member only it held; kept: the used group, its members and the foreign group's member.
    expect(nl.writeLog()).toEqual(['route.delete 10.244.2.0/24', 'route.delete 10.244.3.0/24', `nexthop.delete id ${id(5)}`, `nexthop.delete id ${id(4)}`]);
    expect(await nexthops(nl)).toEqual(['0 via 198.18.0.2', '1 via 198.18.0.3', '2 group 0/1', '3 via 198.18.0.4', '7 via 198.18.0.7 proto 4', '8 group 7/3 proto 4']);
    expect(await routes(nl)).toEqual(['10.244.9.0/24 nh 8']);
  });

  it('writes a plain multipath route where the kernel refuses a member (no carrier), and moves it to a group once it can', async () => {
    const { nl, ecmp } = host();
    nl.kernel.links.setCarrier('eth0', false);
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 0, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([
      `nexthop.add id ${id(0)} via 198.18.0.2 !ENETDOWN`, `nexthop.add id ${id(1)} via 198.18.0.3 !ENETDOWN`, `nexthop.add id ${id(2)} group ${id(0)}/${id(1)} !EINVAL`,
      'route.add 10.244.2.0/24',
    ]);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2,198.18.0.3']);
    nl.kernel.links.setCarrier('eth0', true);
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)])).toMatchObject({ replaced: 1, nexthops: 3, failed: [] });
    expect(await routes(nl)).toEqual(['10.244.2.0/24 nh 2']);
  });

  it('writes plain multipath routes on a kernel without nexthop objects, converges there, and moves a route between one gateway and two', async () => {
    const { nl, ecmp } = host({ nexthops: false });
    expect(await syncRoutes(nl, CLUSTER, [ecmp(2, 2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 0, failed: [], refused: [] });
    expect(await routes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2,198.18.0.3']);
    nl.clearWrites();
    await syncRoutes(nl, CLUSTER, [ecmp(2, 3, 2)]);
    expect(nl.writeLog()).toEqual([]);
    await syncRoutes(nl, CLUSTER, [ecmp(2, 3)]);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.3']);
    await syncRoutes(nl, CLUSTER, [ecmp(2, 3, 4)]);
    expect(await routes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.3,198.18.0.4']);
    expect(await syncRoutes(nl, CLUSTER, [])).toMatchObject({ deleted: 1, failed: [] });
    expect(await routes(nl)).toEqual([]);
  });
});
