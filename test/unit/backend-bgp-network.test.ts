import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Network, RemoteLease } from '../../src/backends/backend.js';
import { parseBgpOptions, parsePeerFlag } from '../../src/backends/bgp/config.js';
import { BgpNetwork } from '../../src/backends/bgp/network.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { fakeHost } from '../fakes/backend-context.js';
import { FakeBgpDriver, path } from '../fakes/bgp-driver.js';
import type { FakeNetlink } from '../fakes/netlink.js';
import { waitFor } from '../helpers/wait.js';

// The bgp backend's Network on the in-memory kernel with a fake speaker: sessions follow the
// leases, learned paths become proto-84 routes only for leased subnets, refusals are counted,
// and a restart keeps the kernel's routes until the peers have sent their tables again.
// (test/integration/backend-bgp-*.test.ts runs it with real speakers and routers.)

const lease = (n: number, publicIp = `198.18.0.${n}`): RemoteLease => ({ subnet: `10.244.${n}.0/24`, publicIp, backendType: 'bgp', backendData: null });
const own = { subnet: '10.244.1.0/24', publicIp: '198.18.0.1' };

async function twillRoutes(nl: FakeNetlink): Promise<string[]> {
  const nexthops = new Map((await nl.listNexthops()).map((n) => [n.id, n.gateway]));
  return (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL }))
    .map((r) => `${r.dst} via ${r.gateway ?? nexthops.get(r.nexthopId ?? -1) ?? '-'}`).sort();
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => { for (const stop of stops.splice(0)) await stop(); });

async function started(opts: { options?: Record<string, unknown>; ctx?: ReturnType<typeof fakeHost> } = {}): Promise<{ network: BgpNetwork; driver: FakeBgpDriver } & ReturnType<typeof fakeHost>> {
  const host = opts.ctx ?? fakeHost();
  const driver = new FakeBgpDriver();
  const network = new BgpNetwork(host.ctx, parseBgpOptions(opts.options ?? {}), driver.factory);
  await network.start(own);
  return { network, driver, ...host };
}

function running(network: Network): AbortController {
  const ac = new AbortController();
  const done = network.run(ac.signal);
  stops.push(async () => { ac.abort(); await done; });
  return ac;
}

describe('bgp network', () => {
  it('announces exactly its own subnet with its PublicIP as next hop; MTU is the underlay\'s; no lease data', async () => {
    const { network, driver } = await started({ ctx: fakeHost({ mtu: 9000 }) });
    expect(driver.announced).toEqual([{ prefix: '10.244.1.0/24', nextHop: '198.18.0.1' }]);
    expect([network.mtu, network.leaseData]).toEqual([9000, null]);
    expect(driver.startOptions).toMatchObject({ asn: 64512, routerId: '198.18.0.1', listen: { address: '198.18.0.1', port: 179 }, ownSubnet: '10.244.1.0/24', restartTimeS: 120, maxPrefixes: 10_000 });
  });

  it('mesh sessions follow the leases of bgp hosts; a --bgp-peer adds the ToR', async () => {
    const host = fakeHost();
    const ctx = { ...host.ctx, bgp: { asn: 65001, routerId: undefined, peers: [parsePeerFlag('198.18.0.254,asn=65100')], listen: undefined, speaker: undefined, gobgpApi: undefined } };
    const { network, driver } = await started({ ctx: { ...host, ctx } });
    await network.sync([lease(2), lease(3), { ...lease(4), backendType: 'vxlan' }]);
    expect(driver.sessions.map((s) => `${s.address} ${s.asn} ${s.role}`)).toEqual(['198.18.0.2 65001 mesh', '198.18.0.254 65100 external', '198.18.0.3 65001 mesh']);
    await network.sync([lease(3)]);
    expect(driver.sessions.map((s) => s.address)).toEqual(['198.18.0.254', '198.18.0.3']);
  });

  it('installs learned paths for leased subnets only, follows withdrawals, and counts every refusal by peer and reason', async () => {
    const { network, driver, nl } = await started();
    await network.sync([lease(2), lease(3)]);
    driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2'), path('0.0.0.0/0', '198.18.0.2'), path('10.99.0.0/24', '198.18.0.2'),
      path('10.244.1.0/24', '198.18.0.2'), path('10.244.77.0/24', '198.18.0.2')]);
    driver.give('198.18.0.3', [path('10.244.3.0/24', '198.18.0.3')]);
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'the two leased routes' });
    expect(await twillRoutes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
    const status = network.routing();
    expect(status.rejected.map((r) => `${r.peer} ${r.reason} ${r.count}`).sort()).toEqual([
      '198.18.0.2 default_route 1', '198.18.0.2 no_lease 1', '198.18.0.2 outside_cluster 1', '198.18.0.2 own_subnet 1']);
    expect(status.routes.find((r) => r.prefix === '10.244.77.0/24')).toMatchObject({ installed: false, reason: expect.stringContaining('no_lease') as string });
    driver.give('198.18.0.3', [], ['10.244.3.0/24']);
    await waitFor(async () => (await twillRoutes(nl)).length === 1, { what: 'the withdrawn route gone' });
    // A lease that goes away takes its route with it, even while a peer still announces it.
    await network.sync([]);
    expect(await twillRoutes(nl)).toEqual([]);
  });

  it('a path after a quiet spell is written within 2 ms; in a burst, paths wait for the rest while they keep coming, at most 20 ms', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const { network, driver, nl } = await started();
      await network.sync([2, 3, 4, 5, 6].map((n) => lease(n)));
      const installed = async (prefix: string): Promise<boolean> => (await twillRoutes(nl)).some((r) => r.startsWith(prefix));
      // A host joined: its route alone.
      driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
      await vi.advanceTimersByTimeAsync(1);
      expect(await installed('10.244.2.0/24')).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await installed('10.244.2.0/24')).toBe(true);
      // Right after a write, UPDATEs keep coming every millisecond: gathered until 20 ms after the first.
      driver.give('198.18.0.3', [path('10.244.3.0/24', '198.18.0.3')]);
      for (let ms = 1; ms < 20; ms++) {
        await vi.advanceTimersByTimeAsync(1);
        driver.give('198.18.0.4', [path('10.244.4.0/24', '198.18.0.4', { med: ms })]);
      }
      expect(await installed('10.244.3.0/24')).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await installed('10.244.3.0/24')).toBe(true);
      expect(await installed('10.244.4.0/24')).toBe(true);
      // Still in the burst, one more UPDATE and then nothing: written once the peer was quiet for 2 ms.
      driver.give('198.18.0.5', [path('10.244.5.0/24', '198.18.0.5')]);
      await vi.advanceTimersByTimeAsync(1);
      expect(await installed('10.244.5.0/24')).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await installed('10.244.5.0/24')).toBe(true);
      // Quiet again.
      await vi.advanceTimersByTimeAsync(100);
      driver.give('198.18.0.6', [path('10.244.6.0/24', '198.18.0.6')]);
      await vi.advanceTimersByTimeAsync(2);
      expect(await installed('10.244.6.0/24')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('equal-cost paths from two ToRs become one route through a nexthop group; one ToR gone, a plain route via the other', async () => {
    const { network, driver, nl } = await started();
    await network.sync([lease(9)]);
    driver.give('198.18.0.253', [path('10.244.9.0/24', '198.18.0.253', { ebgp: true, asPathLength: 2 })]);
    driver.give('198.18.0.254', [path('10.244.9.0/24', '198.18.0.254', { ebgp: true, asPathLength: 2 })]);
    const group = async (): Promise<string[] | undefined> => {
      const [route] = await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL });
      const nexthops = await nl.listNexthops();
      const g = nexthops.find((n) => n.id === route?.nexthopId);
      return g?.members?.map((m) => nexthops.find((n) => n.id === m.id)?.gateway ?? '?').sort();
    };
    await waitFor(async () => (await group())?.length === 2, { what: 'the ECMP group' });
    expect(await group()).toEqual(['198.18.0.253', '198.18.0.254']);
    expect(network.routing().routes).toEqual([{ prefix: '10.244.9.0/24', nextHops: ['198.18.0.253', '198.18.0.254'], peers: ['198.18.0.253', '198.18.0.254'], installed: true, reason: undefined }]);
    // A longer AS path through one ToR is no equal cost.
    driver.give('198.18.0.253', [path('10.244.9.0/24', '198.18.0.253', { ebgp: true, asPathLength: 3 })]);
    await waitFor(async () => (await twillRoutes(nl)).join() === '10.244.9.0/24 via 198.18.0.254', { what: 'the single best path' });
    driver.give('198.18.0.254', [], ['10.244.9.0/24']);
    await waitFor(async () => (await twillRoutes(nl)).join() === '10.244.9.0/24 via 198.18.0.253', { what: 'the remaining path' });
  });

  it('a next hop off the external interface\'s networks is not installed, and says why', async () => {
    const { network, driver, nl } = await started();
    await network.sync([lease(2)]);
    driver.give('198.18.0.2', [path('10.244.2.0/24', '203.0.113.9')]);
    await waitFor(() => network.routing().routes.length === 1, { what: 'the route status' });
    expect(network.routing().routes[0]).toMatchObject({ installed: false, reason: expect.stringContaining('no usable next hop') as string });
    expect(await twillRoutes(nl)).toEqual([]);
  });

  it('after a restart, keeps the routes it finds until the peers sent End-of-RIB; then drops what nobody sent again', async () => {
    const host = fakeHost();
    const first = await started({ ctx: host });
    await first.network.sync([lease(2), lease(3)]);
    first.driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
    first.driver.give('198.18.0.3', [path('10.244.3.0/24', '198.18.0.3')]);
    await waitFor(async () => (await twillRoutes(host.nl)).length === 2, { what: 'routes' });

    // The agent restarts: a new network on the same kernel, sessions not up yet.
    const second = await started({ ctx: host });
    expect(await second.network.sync([lease(2), lease(3)])).toMatchObject({ changes: 0 });
    expect(await twillRoutes(host.nl)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
    second.driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
    second.driver.emit('end-of-rib', { peer: '198.18.0.2' });
    host.nl.clearWrites();
    await new Promise((r) => setImmediate(r));
    expect(await twillRoutes(host.nl)).toHaveLength(2);
    second.driver.emit('end-of-rib', { peer: '198.18.0.3' });
    await waitFor(async () => (await twillRoutes(host.nl)).length === 1, { what: 'the route nobody re-announced gone' });
    expect(await twillRoutes(host.nl)).toEqual(['10.244.2.0/24 via 198.18.0.2']);
  });

  it('once a full sync ran under the kernel\'s notifications, a burst writes only its own prefixes, with no listing; a route another owner takes is left alone', async () => {
    const { network, driver, nl, eth0 } = await started();
    running(network);
    await network.sync([lease(2), lease(3), lease(4), lease(5)]);
    driver.give('198.18.0.254', [path('10.244.2.0/24', '198.18.0.254'), path('10.244.3.0/24', '198.18.0.254')]);
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'the first burst' });
    nl.clearWrites();
    const lift = [nl.fail('route.list', 'EIO'), nl.fail('nexthop.list', 'EIO')];
    driver.give('198.18.0.254', [path('10.244.4.0/24', '198.18.0.254')], ['10.244.3.0/24']);
    await waitFor(() => nl.writeLog().length === 2, { what: 'the second burst written' });
    expect(nl.writeLog().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['route.add 10.244.4.0/24', 'route.delete 10.244.3.0/24']);
    lift.forEach((l) => l());
    expect(await twillRoutes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.254', '10.244.4.0/24 via 198.18.0.254']);

    // `ip route replace 10.244.2.0/24 via 198.18.0.9 proto static`: the kernel says so, and
    // Twill's record lets go of the destination; a later path for it is refused, not written over.
    await nl.deleteRoute({ dst: '10.244.2.0/24' });
    nl.kernel.routes.add({ dst: '10.244.2.0/24', gateway: '198.18.0.9', oif: eth0.index, protocol: 4 });
    nl.notify({ kind: 'foreign-route', route: (await nl.listRoutes({ family: 4 })).find((r) => r.dst === '10.244.2.0/24')! });
    await waitFor(() => network.routing().routes.find((r) => r.prefix === '10.244.2.0/24')?.installed === false, { what: 'the destination refused' });
    driver.give('198.18.0.254', [path('10.244.2.0/24', '198.18.0.254', { med: 5 }), path('10.244.5.0/24', '198.18.0.254')]);
    await waitFor(async () => (await twillRoutes(nl)).includes('10.244.5.0/24 via 198.18.0.254'), { what: 'the third burst' });
    const routes = await nl.listRoutes({ family: 4 });
    expect(routes.find((r) => r.dst === '10.244.2.0/24')).toMatchObject({ gateway: '198.18.0.9', protocol: 4 });
    expect(network.routing().routes.find((r) => r.prefix === '10.244.2.0/24')).toMatchObject({ installed: false, reason: expect.stringContaining('another owner') as string });
  });

  it('max-prefix is logged and counted; run() ends with a graceful close (no Cease: peers keep our route)', async () => {
    const { network, driver } = await started();
    await network.sync([lease(2)]);
    driver.emit('max-prefix', { peer: '198.18.0.2', limit: 10_000 });
    expect(network.routing().rejected).toEqual([{ peer: '198.18.0.2', reason: 'max_prefix', count: 1 }]);
    const ac = running(network);
    ac.abort();
    await waitFor(() => driver.closed !== undefined, { what: 'the driver closed' });
    expect(driver.closed).toEqual({ graceful: true });
  });

  it('a new lease (the old one lost): the speaker starts over for the new subnet, the old one is closed with Cease', async () => {
    const host = fakeHost();
    const drivers: FakeBgpDriver[] = [];
    const network = new BgpNetwork(host.ctx, parseBgpOptions({}), (options, driverOptions, bgp) => {
      const d = new FakeBgpDriver();
      drivers.push(d);
      return d.factory(options, driverOptions, bgp);
    });
    await network.start(own);
    await network.sync([lease(2)]);
    drivers[0]!.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
    await network.start({ subnet: '10.244.7.0/24', publicIp: own.publicIp });
    expect(drivers).toHaveLength(2);
    expect(drivers[0]!.closed).toEqual({ graceful: false });
    expect(drivers[1]!.startOptions?.ownSubnet).toBe('10.244.7.0/24');
    expect(drivers[1]!.announced).toEqual([{ prefix: '10.244.7.0/24', nextHop: '198.18.0.1' }]);
    expect(drivers[1]!.sessions.map((s) => s.address)).toEqual(['198.18.0.2']);
    // Same subnet again (a renewal): nothing restarts.
    await network.start({ subnet: '10.244.7.0/24', publicIp: own.publicIp });
    expect(drivers).toHaveLength(2);
  });
});
