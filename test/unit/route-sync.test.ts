import { describe, expect, it } from 'vitest';
import { NEXTHOP_ID_BASE, splitRouteFailures, syncRoutes } from '../../src/backends/route-sync.js';
import { RTPROT_TWILL, type RouteSpec } from '../../src/netlink/index.js';
import { FakeNetlink } from '../fakes/netlink.js';

// syncRoutes against the in-memory kernel: what it owns, what it refuses, what it writes and
// what a failed write or removal means (test/netns/route-sync.test.ts proves the same against
// the kernel where only the kernel can).

const CLUSTER = '10.244.0.0/16';
const RTPROT_STATIC = 4;

function host(opts: { nexthops?: boolean } = {}): { nl: FakeNetlink; eth0: number; via: (n: number) => RouteSpec } {
  const nl = new FakeNetlink(opts);
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24').index;
  return { nl, eth0, via: (n) => ({ dst: `10.244.${n}.0/24`, gateway: `198.18.0.${n}`, oif: eth0 }) };
}

/** Every route of the main table: "dst via gw proto P [nh]" (nh: through a nexthop object). */
async function table(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listRoutes({ family: 4 })).map((r) => `${r.dst} via ${r.gateway ?? '-'} proto ${r.protocol}${r.nexthopId === undefined ? '' : ' nh'}`).sort();
}

describe('syncRoutes', () => {
  it('owns only protocol-84 routes inside the cluster network: writes the desired ones through nexthops, removes its stale ones, touches nothing else', async () => {
    const { nl, eth0, via } = host();
    nl.kernel.routes.add({ ...via(7), protocol: RTPROT_STATIC });             // another owner's, in the cluster network
    nl.kernel.routes.add({ dst: '10.99.0.0/24', gateway: '198.18.0.9', oif: eth0 }); // Twill's protocol, outside it
    nl.kernel.routes.add(via(9));                                            // Twill's, no longer wanted
    const result = await syncRoutes(nl, CLUSTER, [via(2), via(3), via(7)]);
    expect(result).toMatchObject({ replaced: 2, deleted: 1, nexthops: 2, failed: [] });
    expect(result.refused).toEqual([{
      subnet: '10.244.7.0/24', code: 'foreign_route',
      reason: 'a route of another owner (protocol static via 198.18.0.7) already holds 10.244.7.0/24; Twill does not replace it',
    }]);
    expect(await table(nl)).toEqual([
      `10.244.2.0/24 via 198.18.0.2 proto ${RTPROT_TWILL} nh`,
      `10.244.3.0/24 via 198.18.0.3 proto ${RTPROT_TWILL} nh`,
      '10.244.7.0/24 via 198.18.0.7 proto 4',
      `10.99.0.0/24 via 198.18.0.9 proto ${RTPROT_TWILL}`,
      '198.18.0.0/24 via - proto 2',
    ]);
    expect((await nl.listNexthops()).map((n) => `${n.id - NEXTHOP_ID_BASE} ${n.gateway}`)).toEqual(['0 198.18.0.2', '1 198.18.0.3']);
  });

  it('reuses its nexthops, so a converged sync writes nothing; two routes via one gateway share one', async () => {
    const { nl, eth0, via } = host();
    const desired = [via(2), { dst: '10.244.20.0/24', gateway: '198.18.0.2', oif: eth0 }, via(3)];
    await syncRoutes(nl, CLUSTER, desired);
    expect(nl.writeLog().filter((w) => w.startsWith('nexthop.add'))).toHaveLength(2);
    nl.clearWrites();
    expect(await syncRoutes(nl, CLUSTER, desired)).toEqual({ replaced: 0, deleted: 0, nexthops: 0, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([]);
  });

  it('deletes a stale route and then its nexthop; keeps a nexthop another owner\'s route names', async () => {
    const { nl, via } = host();
    await syncRoutes(nl, CLUSTER, [via(2), via(3), via(4)]);
    // Somebody routes through Twill's nexthop for 198.18.0.4.
    nl.kernel.routes.add({ dst: '192.0.2.0/24', nexthopId: NEXTHOP_ID_BASE + 2, protocol: RTPROT_STATIC });
    nl.clearWrites();
    const result = await syncRoutes(nl, CLUSTER, [via(2)]);
    expect(result).toMatchObject({ replaced: 0, deleted: 2, nexthops: 1 });
    expect(nl.writeLog()).toEqual(['route.delete 10.244.3.0/24', 'route.delete 10.244.4.0/24', `nexthop.delete id ${NEXTHOP_ID_BASE + 1}`]);
    expect((await nl.listNexthops()).map((n) => n.gateway)).toEqual(['198.18.0.2', '198.18.0.4']);
    expect(await table(nl)).toContain('192.0.2.0/24 via 198.18.0.4 proto 4 nh');
  });

  it('refuses a destination another owner takes between its listing and its write (EEXIST), and leaves that route alone', async () => {
    const { nl, via } = host();
    nl.before('route.add', () => nl.kernel.routes.add({ ...via(5), gateway: '198.18.0.50', protocol: RTPROT_STATIC }), { when: (r) => r.dst === '10.244.5.0/24' });
    const result = await syncRoutes(nl, CLUSTER, [via(2), via(5)]);
    expect(result.refused).toEqual([{ subnet: '10.244.5.0/24', code: 'foreign_route', reason: 'a route of another owner appeared at this destination; Twill does not replace it' }]);
    expect(result).toMatchObject({ replaced: 1, failed: [] });
    expect(await table(nl)).toContain('10.244.5.0/24 via 198.18.0.50 proto 4');
    // The next sync refuses the destination up front, and drops the nexthop made for it.
    expect((await nl.listNexthops()).map((n) => n.gateway)).toEqual(['198.18.0.2', '198.18.0.5']);
    expect((await syncRoutes(nl, CLUSTER, [via(2), via(5)])).refused[0]?.reason).toMatch(/^a route of another owner \(protocol static via 198\.18\.0\.50\)/);
    expect((await nl.listNexthops()).map((n) => n.gateway)).toEqual(['198.18.0.2']);
  });

  it('writes a plain route where the kernel refuses the nexthop (no carrier), and moves it to a nexthop once it can', async () => {
    const { nl, via } = host();
    nl.kernel.links.setCarrier('eth0', false);
    const result = await syncRoutes(nl, CLUSTER, [via(2)]);
    expect(result).toMatchObject({ replaced: 1, nexthops: 0, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual([`nexthop.add id ${NEXTHOP_ID_BASE} via 198.18.0.2 !ENETDOWN`, 'route.add 10.244.2.0/24']);
    expect(await table(nl)).toContain(`10.244.2.0/24 via 198.18.0.2 proto ${RTPROT_TWILL}`);
    nl.kernel.links.setCarrier('eth0', true);
    expect(await syncRoutes(nl, CLUSTER, [via(2)])).toMatchObject({ replaced: 1, nexthops: 1 });
    expect(await table(nl)).toContain(`10.244.2.0/24 via 198.18.0.2 proto ${RTPROT_TWILL} nh`);
  });

  it('writes plain routes on a kernel without nexthop objects, and converges there too', async () => {
    const { nl, via } = host({ nexthops: false });
    nl.kernel.routes.add(via(9));
    expect(await syncRoutes(nl, CLUSTER, [via(2), via(3)])).toEqual({ replaced: 2, deleted: 1, nexthops: 0, failed: [], refused: [] });
    expect(nl.writeLog()).toEqual(['route.add 10.244.2.0/24', 'route.add 10.244.3.0/24', 'route.delete 10.244.9.0/24']);
    nl.clearWrites();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)]);
    expect(nl.writeLog()).toEqual([]);
  });

  it('tells a refused write (the lease is skipped) from a failed removal (the sync fails), and keeps the nexthop a stuck route needs', async () => {
    const { nl, via } = host();
    await syncRoutes(nl, CLUSTER, [via(4)]);
    nl.fail('route.add', 'EINVAL', { when: (r) => r.dst === '10.244.2.0/24' });
    nl.fail('route.delete', 'EBUSY');
    const result = await syncRoutes(nl, CLUSTER, [via(2), via(3)]);
    const { writeFailed, removeFailed } = splitRouteFailures(result);
    expect(writeFailed).toEqual([{ subnet: '10.244.2.0/24', code: 'write_failed', reason: expect.stringMatching(/^the kernel refused the route: route\.add 10\.244\.2\.0\/24 failed: EINVAL/) as string }]);
    expect(removeFailed.map((f) => `${f.dst} ${(f.error as { code?: string }).code}`)).toEqual(['10.244.4.0/24 EBUSY']);
    expect(result).toMatchObject({ replaced: 1, deleted: 0 });
    // The stuck route still works: its nexthop stays (and the refused route's, for the retry).
    expect(await table(nl)).toContain(`10.244.4.0/24 via 198.18.0.4 proto ${RTPROT_TWILL} nh`);
    expect((await nl.listNexthops()).map((n) => n.gateway).sort()).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4']);
  });
});
