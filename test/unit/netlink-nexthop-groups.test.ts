import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import * as C from '../../src/netlink/constants.js';
import { isNetlinkError, RTPROT_TWILL } from '../../src/netlink/index.js';
import { addNexthopRequest, parseNexthop, replaceNexthopRequest } from '../../src/netlink/nexthops.js';
import { parseRoute, replaceRouteRequest } from '../../src/netlink/routes.js';
import { parseAttrs } from '../../src/netlink/wire.js';
import { FakeNetlink } from '../fakes/netlink.js';

// Nexthop groups and multipath routes on the wire (a request's body has the layout of the
// kernel's dump message, so it parses back), and in the in-memory kernel the unit tests use.

const errnoOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (err: unknown) => (isNetlinkError(err) ? err.code : String(err)));

describe('nexthop groups on the wire', () => {
  it('encodes NHA_GROUP as struct nexthop_grp entries (weight less one) on an AF_UNSPEC nhmsg, and parses the members back', () => {
    const req = addNexthopRequest({ id: 9, group: [{ id: 7 }, { id: 8, weight: 3 }] });
    expect(req.label).toEqual({ op: 'nexthop.add', target: 'id 9 group 7/8,3' });
    expect([req.body.readUInt8(0), req.body.readUInt8(2), req.body.readUInt32LE(4)]).toEqual([C.AF_UNSPEC, RTPROT_TWILL, 0]);
    const attrs = parseAttrs(req.body, 8);
    expect(attrs.has(C.NHA_OIF) || attrs.has(C.NHA_GATEWAY)).toBe(false);
    expect([...attrs.get(C.NHA_GROUP)!]).toEqual([7, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0]);
    expect(parseNexthop(req.body)).toEqual({
      id: 9, family: undefined, gateway: undefined, oif: undefined, protocol: RTPROT_TWILL, onlink: false,
      group: true, members: [{ id: 7, weight: 1 }, { id: 8, weight: 3 }], blackhole: false,
    });
    // A nexthop of one gateway has no members.
    expect(parseNexthop(replaceNexthopRequest({ id: 7, gateway: '198.18.0.2', oif: 3 }).body)).not.toHaveProperty('members');
  });

  it('refuses an empty group and a weight outside 1..256 before sending', () => {
    expect(() => addNexthopRequest({ id: 9, group: [] })).toThrow(InvalidArgumentError);
    expect(() => addNexthopRequest({ id: 9, group: [{ id: 7, weight: 0 }] })).toThrow(/weight 0/);
    expect(() => addNexthopRequest({ id: 9, group: [{ id: 7, weight: 257 }] })).toThrow(/1 to 256/);
    expect(parseNexthop(addNexthopRequest({ id: 9, group: [{ id: 7, weight: 256 }] }).body).members).toEqual([{ id: 7, weight: 256 }]);
  });
});

describe('multipath routes on the wire', () => {
  it('encodes RTA_MULTIPATH as struct rtnexthop entries with their gateways, and parses them back', () => {
    const body = replaceRouteRequest({ dst: '10.244.2.0/24', multipath: [{ gateway: '198.18.0.2', oif: 3 }, { gateway: '198.18.9.3', oif: 4, onlink: true }] }).body;
    const mp = parseAttrs(body, 12).get(C.RTA_MULTIPATH)!;
    // rtnh_len 16 (8 + RTA_GATEWAY of 8), flags, hops (weight 1 - 1), ifindex.
    expect([mp.readUInt16LE(0), mp.readUInt8(2), mp.readUInt8(3), mp.readInt32LE(4), mp.length]).toEqual([16, 0, 0, 3, 32]);
    expect(mp.readUInt8(16 + 2)).toBe(C.RTNH_F_ONLINK);
    expect(parseRoute(body)).toMatchObject({
      dst: '10.244.2.0/24', gateway: undefined, oif: undefined, onlink: false, scope: C.ROUTE_SCOPES.universe,
      multipath: [{ gateway: '198.18.0.2', oif: 3, onlink: false, weight: 1 }, { gateway: '198.18.9.3', oif: 4, onlink: true, weight: 1 }],
    });
  });

  it('writes a one-hop multipath route as a plain one; refuses one mixed with a gateway, device or nexthop, an empty one, another family', () => {
    const one = parseRoute(replaceRouteRequest({ dst: '10.244.2.0/24', multipath: [{ gateway: '198.18.0.2', oif: 3, onlink: true }] }).body);
    expect(one).toMatchObject({ gateway: '198.18.0.2', oif: 3, onlink: true });
    expect(one).not.toHaveProperty('multipath');
    const two = [{ gateway: '198.18.0.2', oif: 3 }, { gateway: '198.18.0.3', oif: 3 }];
    expect(() => replaceRouteRequest({ dst: '10.244.2.0/24', multipath: two, oif: 3 })).toThrow(/takes its gateways/);
    expect(() => replaceRouteRequest({ dst: '10.244.2.0/24', multipath: two, nexthopId: 7 })).toThrow(/takes its gateways/);
    expect(() => replaceRouteRequest({ dst: '10.244.2.0/24', multipath: [] })).toThrow(/at least one next hop/);
    expect(() => replaceRouteRequest({ dst: '10.244.2.0/24', multipath: [...two, { gateway: 'fd00::1', oif: 3 }] })).toThrow(/is IPv6/);
  });
});

describe('FakeNetlink nexthop groups', () => {
  function host(): { nl: FakeNetlink; eth0: number } {
    const nl = new FakeNetlink();
    return { nl, eth0: nl.kernel.addUplink('eth0', '198.18.0.1/24').index };
  }

  it('a group needs existing members, each once and none a group; replaces only a group; its routes list their members\' next hops', async () => {
    const { nl, eth0 } = host();
    await nl.addNexthop({ id: 1, gateway: '198.18.0.2', oif: eth0 });
    await nl.addNexthop({ id: 2, gateway: '198.18.0.3', oif: eth0 });
    expect(await errnoOf(nl.addNexthop({ id: 9, group: [{ id: 1 }, { id: 5 }] }))).toBe('EINVAL');
    expect(await errnoOf(nl.addNexthop({ id: 9, group: [{ id: 1 }, { id: 1 }] }))).toBe('EINVAL');
    await nl.addNexthop({ id: 9, group: [{ id: 1 }, { id: 2 }] });
    expect(await errnoOf(nl.addNexthop({ id: 10, group: [{ id: 9 }] }))).toBe('EINVAL');
    expect(await errnoOf(nl.replaceNexthop({ id: 9, gateway: '198.18.0.4', oif: eth0 }))).toBe('EINVAL');
    expect(await errnoOf(nl.replaceNexthop({ id: 1, group: [{ id: 2 }] }))).toBe('EINVAL');
    expect((await nl.listNexthops()).find((n) => n.id === 9)).toMatchObject({ group: true, family: undefined, members: [{ id: 1, weight: 1 }, { id: 2, weight: 1 }] });
    await nl.addRoute({ dst: '10.244.2.0/24', nexthopId: 9 });
    expect((await nl.listRoutes({ family: 4 })).find((r) => r.nexthopId === 9)).toMatchObject({
      gateway: undefined, oif: undefined, multipath: [{ gateway: '198.18.0.2', oif: eth0, weight: 1 }, { gateway: '198.18.0.3', oif: eth0, weight: 1 }],
    });
  });

  it('a deleted member leaves its groups, a group left empty goes with its routes, and a deleted group takes its routes', async () => {
    const { nl, eth0 } = host();
    await nl.addNexthop({ id: 1, gateway: '198.18.0.2', oif: eth0 });
    await nl.addNexthop({ id: 2, gateway: '198.18.0.3', oif: eth0 });
    await nl.addNexthop({ id: 9, group: [{ id: 1 }, { id: 2 }] });
    await nl.addNexthop({ id: 10, group: [{ id: 2 }] });
    await nl.addRoute({ dst: '10.244.2.0/24', nexthopId: 9 });
    await nl.addRoute({ dst: '10.244.3.0/24', nexthopId: 10 });
    await nl.deleteNexthop(2);
    expect((await nl.listNexthops()).map((n) => `${n.id} ${n.members?.map((m) => m.id).join('/') ?? n.gateway}`)).toEqual(['1 198.18.0.2', '9 1']);
    // A group of one lists its route as a plain one, as the kernel does.
    expect((await nl.listRoutes({ family: 4 })).filter((r) => r.nexthopId !== undefined)).toEqual([expect.objectContaining({ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: eth0 })]);
    await nl.deleteNexthop(9);
    expect((await nl.listRoutes({ family: 4 })).map((r) => r.dst)).toEqual(['198.18.0.0/24']);
    expect(await errnoOf(nl.deleteNexthop(9))).toBe('ENOENT');
  });

  it('plain multipath routes: each hop checked, listed with its hops, deleted by destination; a device going takes them and the groups over it', async () => {
    const { nl, eth0 } = host();
    const multipath = [{ gateway: '198.18.0.2', oif: eth0 }, { gateway: '198.18.0.3', oif: eth0 }];
    expect(await errnoOf(nl.addRoute({ dst: '10.244.2.0/24', multipath: [...multipath, { gateway: '192.0.2.1', oif: eth0 }] }))).toBe('ENETUNREACH');
    await nl.addRoute({ dst: '10.244.2.0/24', multipath });
    expect((await nl.listRoutes({ family: 4 })).find((r) => r.dst === '10.244.2.0/24')?.multipath?.map((h) => h.gateway)).toEqual(['198.18.0.2', '198.18.0.3']);
    await nl.deleteRoute({ dst: '10.244.2.0/24' });
    await nl.addRoute({ dst: '10.244.2.0/24', multipath });
    await nl.addNexthop({ id: 1, gateway: '198.18.0.2', oif: eth0 });
    await nl.addNexthop({ id: 9, group: [{ id: 1 }] });
    await nl.addRoute({ dst: '10.244.3.0/24', nexthopId: 9 });
    await nl.setUp('eth0', false);
    expect([await nl.listRoutes(), await nl.listNexthops()]).toEqual([[], []]);
  });
});
