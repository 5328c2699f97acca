import { describe, expect, it } from 'vitest';
import { NEXTHOP_ID_BASE, syncRoutes } from '../../src/backends/route-sync.js';
import { NetlinkError, RTPROT_TWILL, type RouteSpec } from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces, type Scratch } from './scratch.js';

interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string; flags: string[]; nhid?: number; nexthops?: { gateway: string; dev: string; weight: number }[] }
interface IpNexthop { id: number; gateway?: string; dev?: string; protocol?: string; flags: string[]; group?: { id: number; weight?: number }[] }

const TWILL = String(RTPROT_TWILL);

describe.skipIf(!canUseNetns)('declarative route sync', () => {
  const scratch = useScratchNamespaces();

  /** eth0 with 198.18.0.1/24; its veth peer up too unless `carrier` is false. */
  async function host(tag: string, carrier = true): Promise<{ s: Scratch; eth0: number; via: (n: number) => { dst: string; gateway: string; oif: number } }> {
    const s = await scratch(tag);
    await s.nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
    await s.nl.setUp('eth0');
    if (carrier) await s.nl.setUp('eth0p');
    await s.nl.addAddress('eth0', '198.18.0.1/24');
    const eth0 = (await s.nl.requireLink('eth0')).index;
    return { s, eth0, via: (n) => ({ dst: `10.244.${n}.0/24`, gateway: `198.18.0.${n}`, oif: eth0 }) };
  }

  const twillRoutes = async (s: Scratch): Promise<string[]> =>
    (await s.ipJson<IpRoute[]>('route', 'show', 'proto', TWILL)).map((r) => `${r.dst} via ${r.gateway}${r.nhid ? ' nhid' : ''}`).sort();
  const twillNexthops = async (s: Scratch): Promise<IpNexthop[]> =>
    (await s.ipJson<IpNexthop[]>('nexthop', 'show')).filter((n) => n.protocol === TWILL);

  it('converges on the desired routes through nexthops of its own, touching only Twill routes inside the cluster network', async () => {
    const { s, eth0, via } = await host('rsync');

    // Foreign routes: not Twill's protocol, or outside the cluster network. They must survive,
    // and so must a foreign nexthop.
    await s.nl.replaceRoute({ ...via(50), protocol: 4 });
    await s.nl.replaceRoute({ dst: '10.99.0.0/16', gateway: '198.18.0.9', oif: eth0 });
    await s.ip('nexthop', 'add', 'id', '7', 'via', '198.18.0.7', 'dev', 'eth0');
    // A stale Twill route (a host gone while the agent was down), one pointing elsewhere, and a
    // stale Twill nexthop.
    await s.nl.replaceRoute(via(7));
    await s.nl.replaceRoute({ ...via(2), gateway: '198.18.0.99' });
    await s.nl.replaceNexthop({ id: 99, gateway: '198.18.0.99', oif: eth0 });

    const first = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)]);
    expect(first).toEqual({ replaced: 2, deleted: 1, nexthops: 3, failed: [], refused: [] });
    expect(await twillRoutes(s)).toEqual(['10.244.2.0/24 via 198.18.0.2 nhid', '10.244.3.0/24 via 198.18.0.3 nhid', '10.99.0.0/16 via 198.18.0.9']);
    const nexthops = await twillNexthops(s);
    expect(nexthops.map((n) => `${n.gateway} dev ${n.dev}`).sort()).toEqual(['198.18.0.2 dev eth0', '198.18.0.3 dev eth0']);
    expect(nexthops.every((n) => n.id >= NEXTHOP_ID_BASE)).toBe(true);
    const routes = await s.ipJson<IpRoute[]>('route', 'show', 'proto', TWILL);
    expect(new Set(routes.filter((r) => r.nhid).map((r) => r.nhid))).toEqual(new Set(nexthops.map((n) => n.id)));
    expect((await s.ipJson<IpRoute[]>('route', 'show', '10.244.50.0/24'))[0]?.gateway).toBe('198.18.0.50');
    expect((await s.ipJson<IpNexthop[]>('nexthop', 'show', 'id', '7'))).toHaveLength(1);
    // New nexthops are added, never replaced: an id somebody took meanwhile fails rather than being overwritten.
    await expect(s.nl.addNexthop({ id: 7, gateway: '198.18.0.8', oif: eth0 })).rejects.toMatchObject({ code: 'EEXIST' });
    expect((await s.ipJson<IpNexthop[]>('nexthop', 'show', 'id', '7'))[0]?.gateway).toBe('198.18.0.7');

    // Converged: a second sync writes nothing.
    expect(await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)])).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });

    // A host leaves: its route and its nexthop go.
    expect(await syncRoutes(s.nl, '10.244.0.0/16', [via(2)])).toEqual({ replaced: 0, deleted: 1, nexthops: 1, failed: [], refused: [] });
    expect((await twillNexthops(s)).map((n) => n.gateway)).toEqual(['198.18.0.2']);

    // A route that cannot be installed is reported, the rest still converges.
    const bad = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), { dst: '10.244.4.0/24', gateway: '192.0.2.1' }]);
    expect(bad.failed).toEqual([expect.objectContaining({ dst: '10.244.4.0/24', write: true })]);
    expect((bad.failed[0]!.error as { code?: string }).code).toBe('ENETUNREACH');
  });

  it('never replaces a route of another owner: the connected underlay route, a static route in the cluster range', async () => {
    const { s, eth0, via } = await host('rsync-foreign');
    // The underlay's connected route (proto kernel) and an operator's static route (proto boot).
    await s.ip('route', 'add', '10.244.5.0/24', 'via', '198.18.0.55', 'dev', 'eth0');
    const underlay = { dst: '198.18.0.0/24', gateway: '198.18.0.9', oif: eth0 };
    const result = await syncRoutes(s.nl, '10.0.0.0/8', [via(5), via(6)]);
    expect(result.refused).toEqual([{ subnet: '10.244.5.0/24', code: 'foreign_route',
      reason: 'a route of another owner (protocol boot via 198.18.0.55) already holds 10.244.5.0/24; Twill does not replace it' }]);
    expect(result.failed).toEqual([]);
    const underlayResult = await syncRoutes(s.nl, '198.18.0.0/16', [underlay]);
    expect(underlayResult.refused).toEqual([expect.objectContaining({ subnet: '198.18.0.0/24', reason: expect.stringMatching(/protocol kernel on interface \d+\) already holds 198\.18\.0\.0\/24/) as string })]);
    // `ip -j` leaves out the protocol of a boot route (the default of `ip route add`).
    const routeOf = async (dst: string): Promise<IpRoute[]> => (await s.ipJson<IpRoute[]>('route', 'show', dst)).map((r) => ({ ...r, protocol: r.protocol ?? 'boot' }));
    expect(await routeOf('198.18.0.0/24')).toEqual([expect.objectContaining({ dev: 'eth0', protocol: 'kernel', scope: 'link' })]);
    expect(await routeOf('10.244.5.0/24')).toEqual([expect.objectContaining({ gateway: '198.18.0.55', protocol: 'boot' })]);
    expect(await twillRoutes(s)).toEqual(['10.244.6.0/24 via 198.18.0.6 nhid']);

    // Twill routed a destination, then an operator put a route of theirs there: Twill steps back.
    await s.ip('route', 'add', '10.244.6.0/24', 'via', '198.18.0.66', 'dev', 'eth0', 'metric', '100');
    const stepBack = await syncRoutes(s.nl, '10.0.0.0/8', [via(5), via(6)]);
    expect(stepBack.refused.map((r) => r.subnet)).toEqual(['10.244.5.0/24', '10.244.6.0/24']);
    expect(await twillRoutes(s)).toEqual([]);
    expect(await routeOf('10.244.6.0/24')).toEqual([expect.objectContaining({ gateway: '198.18.0.66', protocol: 'boot' })]);

    // A foreign route that appears between the listing and the write is not overwritten either:
    // the write is an exclusive add, and its EEXIST is a refusal, not an error.
    await s.ip('route', 'add', '10.244.7.0/24', 'via', '198.18.0.77', 'dev', 'eth0');
    const staleListing = Object.create(s.nl) as typeof s.nl;
    staleListing.listRoutes = async (filter) => (await s.nl.listRoutes(filter)).filter((r) => r.dst !== '10.244.7.0/24');
    const raced = await syncRoutes(staleListing, '10.0.0.0/8', [via(7)]);
    expect(raced.refused).toEqual([expect.objectContaining({ subnet: '10.244.7.0/24', reason: expect.stringMatching(/appeared at this destination/) as string })]);
    expect(raced.failed).toEqual([]);
    expect(await routeOf('10.244.7.0/24')).toEqual([expect.objectContaining({ gateway: '198.18.0.77', protocol: 'boot' })]);
  });

  it('repairs drift in its nexthops: one deleted by hand (taking its routes) or pointed elsewhere', async () => {
    const { s, via } = await host('rsync-drift');
    await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)]);
    const [a, b] = (await twillNexthops(s)).sort((x, y) => x.id - y.id);
    await s.ip('nexthop', 'del', 'id', String(a!.id));
    await s.ip('nexthop', 'replace', 'id', String(b!.id), 'via', '198.18.0.66', 'dev', 'eth0', 'proto', TWILL);
    expect(await twillRoutes(s)).toEqual(['10.244.3.0/24 via 198.18.0.66 nhid']);

    const repair = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)]);
    expect(repair.failed).toEqual([]);
    expect(await twillRoutes(s)).toEqual(['10.244.2.0/24 via 198.18.0.2 nhid', '10.244.3.0/24 via 198.18.0.3 nhid']);
    expect((await twillNexthops(s)).map((n) => n.gateway).sort()).toEqual(['198.18.0.2', '198.18.0.3']);
  });

  it('dual-stack: one sync owns both cluster networks; a sync of one family leaves the other\'s routes and nexthops alone', async () => {
    const { s, eth0, via } = await host('rsync6');
    await s.ip('address', 'add', 'fd00:18::1/64', 'dev', 'eth0', 'nodad');
    const via6 = (n: number): RouteSpec => ({ dst: `fd10:0:0:${n}::/64`, gateway: `fd00:18::${n}`, oif: eth0 });
    const both = ['10.244.0.0/16', 'fd10::/48'];
    // A stale IPv6 route of Twill's, and one of another owner inside the IPv6 network.
    await s.nl.replaceRoute(via6(9));
    await s.nl.replaceRoute({ ...via6(50), protocol: 4 });

    expect(await syncRoutes(s.nl, both, [via(2), via6(2), via6(3)])).toMatchObject({ replaced: 3, deleted: 1, failed: [], refused: [] });
    const routes6 = async (): Promise<string[]> =>
      (await s.ipJson<IpRoute[]>('-6', 'route', 'show', 'proto', TWILL)).map((r) => `${r.dst} via ${r.gateway}${r.nhid ? ' nhid' : ''}`).sort();
    expect(await twillRoutes(s)).toEqual(['10.244.2.0/24 via 198.18.0.2 nhid']);
    expect(await routes6()).toEqual(['fd10:0:0:2::/64 via fd00:18::2 nhid', 'fd10:0:0:3::/64 via fd00:18::3 nhid']);
    expect((await twillNexthops(s)).map((n) => n.gateway).sort()).toEqual(['198.18.0.2', 'fd00:18::2', 'fd00:18::3']);
    expect(await syncRoutes(s.nl, both, [via(2), via6(2), via6(3)])).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });

    // An IPv4-only sync (an IPv4-only cluster) neither reuses nor deletes IPv6 nexthops.
    expect(await syncRoutes(s.nl, '10.244.0.0/16', [via(3)])).toMatchObject({ replaced: 1, deleted: 1, failed: [] });
    expect(await routes6()).toEqual(['fd10:0:0:2::/64 via fd00:18::2 nhid', 'fd10:0:0:3::/64 via fd00:18::3 nhid']);
    expect((await twillNexthops(s)).map((n) => n.gateway).sort()).toEqual(['198.18.0.3', 'fd00:18::2', 'fd00:18::3']);

    // A host leaves: its IPv6 route and nexthop go; the other owner's route stays.
    expect(await syncRoutes(s.nl, both, [via(3), via6(2)])).toMatchObject({ replaced: 0, deleted: 1, nexthops: 1, failed: [] });
    expect(await routes6()).toEqual(['fd10:0:0:2::/64 via fd00:18::2 nhid']);
    expect((await s.ipJson<IpRoute[]>('-6', 'route', 'show', 'fd10:0:0:50::/64')).map((r) => r.protocol)).toEqual(['static']);
  });

  it('writes plain routes where the kernel refuses a nexthop (a device without carrier), and adopts routes of an older agent', async () => {
    const { s, via } = await host('rsync-plain', false);
    // An older agent's plain route for the same destination is simply replaced or kept.
    await s.nl.replaceRoute(via(2));
    expect(await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 0, failed: [], refused: [] });
    expect(await twillRoutes(s)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
    expect(await twillNexthops(s)).toEqual([]);

    // With carrier, the next sync moves them onto nexthops.
    await s.nl.setUp('eth0p');
    const moved = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)]);
    expect(moved).toEqual({ replaced: 2, deleted: 0, nexthops: 2, failed: [], refused: [] });
    expect(await twillRoutes(s)).toEqual(['10.244.2.0/24 via 198.18.0.2 nhid', '10.244.3.0/24 via 198.18.0.3 nhid']);
  });

  describe('ECMP routes (RouteSpec.multipath)', () => {
    async function ecmpHost(tag: string, carrier = true): Promise<{ s: Scratch; ecmp: (n: number, ...gws: number[]) => RouteSpec }> {
      const { s, eth0 } = await host(tag, carrier);
      return { s, ecmp: (n, ...gws) => ({ dst: `10.244.${n}.0/24`, multipath: gws.map((g) => ({ gateway: `198.18.0.${g}`, oif: eth0 })) }) };
    }
    /** Twill's nexthops as `ip` lists them: "via GW" for each single one, "group GW/GW" (members by gateway) for each group. */
    async function nexthopView(s: Scratch): Promise<string[]> {
      const mine = await twillNexthops(s);
      const gateway = new Map(mine.map((n) => [n.id, n.gateway]));
      return mine.map((n) => (n.group ? `group ${n.group.map((m) => gateway.get(m.id) ?? m.id).sort().join('/')}` : `via ${n.gateway}`)).sort();
    }
    /** The route to `dst` and the nexthop it names (undefined for a plain route). */
    async function routeTo(s: Scratch, dst: string): Promise<{ route: IpRoute | undefined; nexthop: IpNexthop | undefined }> {
      const route = (await s.ipJson<IpRoute[]>('route', 'show', dst))[0];
      const nexthop = route?.nhid === undefined ? undefined : (await s.ipJson<IpNexthop[]>('nexthop', 'show', 'id', String(route.nhid)))[0];
      return { route, nexthop };
    }
    const sync = (s: Scratch, routes: RouteSpec[]): ReturnType<typeof syncRoutes> => syncRoutes(s.nl, '10.244.0.0/16', routes);

    it('writes a route over two gateways as `nhid G`, G a Twill group of two Twill nexthops; converges; moves between one gateway and two; removes it all', async () => {
      const { s, ecmp } = await ecmpHost('rsync-ecmp');
      expect(await sync(s, [ecmp(2, 2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 3, failed: [], refused: [] });
      expect(await nexthopView(s)).toEqual(['group 198.18.0.2/198.18.0.3', 'via 198.18.0.2', 'via 198.18.0.3']);
      const { route, nexthop } = await routeTo(s, '10.244.2.0/24');
      expect(route).toMatchObject({ protocol: TWILL, nhid: nexthop?.id });
      expect(nexthop).toMatchObject({ protocol: TWILL, group: [expect.anything(), expect.anything()] });
      expect(route?.nexthops?.map((h) => h.gateway).sort()).toEqual(['198.18.0.2', '198.18.0.3']);
      // Twill reads back what the kernel holds: members and the route's hops.
      expect((await s.nl.listNexthops()).find((n) => n.id === nexthop?.id)).toMatchObject({ group: true, protocol: RTPROT_TWILL, members: [{ weight: 1 }, { weight: 1 }] });
      expect((await s.nl.listRoutes({ family: 4 })).find((r) => r.dst === '10.244.2.0/24')?.multipath).toHaveLength(2);

      // Converged, in any order of the gateways: nothing written.
      expect(await sync(s, [ecmp(2, 3, 2)])).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });

      // One gateway: the route names its nexthop; the group and the other member go.
      expect(await sync(s, [ecmp(2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 2, failed: [], refused: [] });
      expect(await nexthopView(s)).toEqual(['via 198.18.0.3']);
      const single = await routeTo(s, '10.244.2.0/24');
      expect(single.nexthop).toMatchObject({ gateway: '198.18.0.3', protocol: TWILL });
      expect(single.route?.gateway).toBe('198.18.0.3');

      // Two again, then another member set: a new group, the route moved to it, the old group and member gone.
      expect(await sync(s, [ecmp(2, 2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 2, failed: [], refused: [] });
      const before = (await routeTo(s, '10.244.2.0/24')).nexthop!.id;
      expect(await sync(s, [ecmp(2, 2, 4)])).toEqual({ replaced: 1, deleted: 0, nexthops: 4, failed: [], refused: [] });
      expect(await nexthopView(s)).toEqual(['group 198.18.0.2/198.18.0.4', 'via 198.18.0.2', 'via 198.18.0.4']);
      const after = await routeTo(s, '10.244.2.0/24');
      expect(after.nexthop?.id).not.toBe(before);
      expect(after.route?.nexthops?.map((h) => h.gateway).sort()).toEqual(['198.18.0.2', '198.18.0.4']);

      // Gone: route, group, members.
      expect(await sync(s, [])).toEqual({ replaced: 0, deleted: 1, nexthops: 3, failed: [], refused: [] });
      expect(await twillRoutes(s)).toEqual([]);
      expect(await twillNexthops(s)).toEqual([]);
    });

    it('never touches a group of another protocol, keeps its group another owner\'s route names and its nexthop another owner\'s group holds', async () => {
      const { s, ecmp } = await ecmpHost('rsync-ecmp-foreign');
      await s.ip('nexthop', 'add', 'id', '7', 'via', '198.18.0.7', 'dev', 'eth0');
      await s.ip('nexthop', 'add', 'id', '8', 'via', '198.18.0.8', 'dev', 'eth0');
      await s.ip('nexthop', 'add', 'id', '70', 'group', '7/8');
      await s.ip('route', 'add', '10.244.70.0/24', 'nhid', '70');
      await sync(s, [ecmp(2, 2, 3), ecmp(3, 4, 5)]);
      const group2 = (await routeTo(s, '10.244.2.0/24')).nexthop!.id;
      const member4 = (await twillNexthops(s)).find((n) => n.gateway === '198.18.0.4')!.id;
      await s.ip('route', 'add', '192.0.2.0/24', 'nhid', String(group2));
      await s.ip('nexthop', 'add', 'id', '71', 'group', `7/${member4}`);

      const result = await sync(s, []);
      expect(result).toEqual({ replaced: 0, deleted: 2, nexthops: 2, failed: [], refused: [] });
      // Kept: the group in use and its members, the member of the hand-made group; gone: the other group and its other member.
      expect(await nexthopView(s)).toEqual(['group 198.18.0.2/198.18.0.3', 'via 198.18.0.2', 'via 198.18.0.3', 'via 198.18.0.4']);
      const foreign = (await s.ipJson<IpNexthop[]>('nexthop', 'show')).filter((n) => n.protocol !== TWILL);
      expect(foreign.map((n) => `${n.id} ${n.group ? n.group.map((m) => m.id).join('/') : n.gateway}`).sort())
        .toEqual(['7 198.18.0.7', '70 7/8', `71 7/${member4}`, '8 198.18.0.8']);
      expect((await routeTo(s, '10.244.70.0/24')).route).toMatchObject({ nhid: 70 });
      expect((await routeTo(s, '192.0.2.0/24')).route).toMatchObject({ nhid: group2 });
      expect(await twillRoutes(s)).toEqual([]);
    });

    it('writes a plain RTA_MULTIPATH route where the kernel refuses the members (no carrier) or has no nexthop objects, and converges on it', async () => {
      const { s, ecmp } = await ecmpHost('rsync-ecmp-plain', false);
      // The members are refused (no carrier), so is their group (a missing member), and the route is written plain.
      expect(await sync(s, [ecmp(2, 2, 3)])).toEqual({ replaced: 1, deleted: 0, nexthops: 0, failed: [], refused: [] });
      const plain = (await routeTo(s, '10.244.2.0/24')).route;
      expect(plain?.nhid).toBeUndefined();
      expect(plain?.nexthops?.map((h) => `${h.gateway} ${h.dev} ${h.weight}`)).toEqual(['198.18.0.2 eth0 1', '198.18.0.3 eth0 1']);
      expect(await twillNexthops(s)).toEqual([]);

      // A kernel without nexthop objects (before 5.3, as listNexthopsIfSupported sees it): the plain route is converged.
      const old = Object.create(s.nl) as typeof s.nl;
      old.listNexthops = () => Promise.reject(new NetlinkError({ op: 'nexthop.list', errno: 95 }));
      expect(await syncRoutes(old, '10.244.0.0/16', [ecmp(2, 3, 2)])).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });
      expect(await syncRoutes(old, '10.244.0.0/16', [ecmp(2, 2, 4)])).toMatchObject({ replaced: 1, failed: [] });
      expect((await routeTo(s, '10.244.2.0/24')).route?.nexthops?.map((h) => h.gateway)).toEqual(['198.18.0.2', '198.18.0.4']);

      // With carrier, the route moves onto a group.
      await s.nl.setUp('eth0p');
      expect(await sync(s, [ecmp(2, 2, 4)])).toEqual({ replaced: 1, deleted: 0, nexthops: 3, failed: [], refused: [] });
      expect((await routeTo(s, '10.244.2.0/24')).nexthop?.group).toHaveLength(2);
    });
  });
});

