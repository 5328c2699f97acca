import { afterEach, describe, expect, it } from 'vitest';
import type { BackendContext, LocalLease, RemoteLease } from '../../src/backends/backend.js';
import { bgpBackend } from '../../src/backends/bgp/bgp.js';
import { speakerPeerConfig } from '../../src/backends/bgp/builtin-driver.js';
import { parseBgpOptions, parseListenFlag, parsePeerFlag } from '../../src/backends/bgp/config.js';
import type { DriverOptions, DriverPeer } from '../../src/backends/bgp/driver.js';
import { ANY, type Path } from '../../src/backends/bgp/gobgp/api.js';
import { EXPORT_NAME_V6, exportPolicy, exportPrefixes } from '../../src/backends/bgp/gobgp/export.js';
import { learnedPath, ownPath, ownRoute, ownRouteOf } from '../../src/backends/bgp/gobgp/paths.js';
import { peerMessage } from '../../src/backends/bgp/gobgp/peers.js';
import { observe } from '../../src/backends/bgp/gobgp/status.js';
import { importFilter } from '../../src/backends/bgp/import-filter.js';
import { BgpNetwork } from '../../src/backends/bgp/network.js';
import { Speaker } from '../../src/bgp/index.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { fakeHost, type FakeHost } from '../fakes/backend-context.js';
import { FakeBgpDriver, path } from '../fakes/bgp-driver.js';
import type { FakeNetlink } from '../fakes/netlink.js';
import { settle, useLinkedSpeakers } from '../helpers/bgp-memory-transport.js';
import { waitFor } from '../helpers/wait.js';

// The bgp backend with IPv6 (issue 17): a dual-stack host announces its IPv6 subnet over MP-BGP
// (next hop its PublicIPv6) on its IPv4 sessions, installs what peers announce by the same import
// rules per family, and an IPv6-only host runs its sessions over IPv6.

const V6_NET = 'fd10::/48';
const RTPROT_KERNEL = 2;
const v4Lease = (n: number): RemoteLease => ({ subnet: `10.244.${n}.0/24`, publicIp: `198.18.0.${n}`, backendType: 'bgp', backendData: null });
const v6Lease = (n: number): RemoteLease => ({ subnet: `fd10:0:0:${n}::/64`, publicIp: `fd00:18::${n}`, backendType: 'bgp', backendData: null });
const dual = (n: number): RemoteLease[] => [v4Lease(n), v6Lease(n)];
const OWN: LocalLease = { subnet: '10.244.1.0/24', publicIp: '198.18.0.1', ipv6Subnet: 'fd10:0:0:1::/64', publicIpv6: 'fd00:18::1' };
const OWN_V6_ONLY: LocalLease = { subnet: undefined, publicIp: undefined, ipv6Subnet: 'fd10:0:0:1::/64', publicIpv6: 'fd00:18::1' };

/** A fake host with eth0 198.18.0.1/24 and fd00:18::1/64, in a dual-stack (or IPv6-only) cluster. */
async function dualHost(opts: { ipv4?: boolean; routerId?: string } = {}): Promise<FakeHost> {
  const ipv4 = opts.ipv4 ?? true;
  const host = fakeHost();
  await host.nl.addAddress('eth0', 'fd00:18::1/64');
  // The connected route the kernel adds with the address (the fake does it for IPv4 only).
  await host.nl.addRoute({ dst: 'fd00:18::/64', oif: host.eth0.index, scope: 'link', protocol: RTPROT_KERNEL });
  const ext = host.ctx.extIface;
  const ctx: BackendContext = {
    ...host.ctx,
    extIface: { ...ext, address: ipv4 ? ext.address : undefined, publicIp: ipv4 ? ext.publicIp : undefined, ipv6Address: 'fd00:18::1', publicIpv6: 'fd00:18::1' },
    clusterNetwork: ipv4 ? host.ctx.clusterNetwork : undefined,
    clusterNetworkV6: V6_NET,
    ...(opts.routerId !== undefined && { bgp: { asn: undefined, routerId: opts.routerId, peers: [], listen: undefined, speaker: undefined, gobgpApi: undefined } }),
  };
  return { ...host, ctx };
}

async function routesOf(nl: FakeNetlink, family: 4 | 6): Promise<string[]> {
  const nexthops = await nl.listNexthops();
  const gw = (id: number | undefined): string => {
    const n = nexthops.find((x) => x.id === id);
    if (n?.members) return n.members.map((m) => nexthops.find((x) => x.id === m.id)?.gateway ?? '?').sort().join('+');
    return n?.gateway ?? '-';
  };
  return (await nl.listRoutes({ family, protocol: RTPROT_TWILL })).map((r) => `${r.dst} via ${r.gateway ?? gw(r.nexthopId)}`).sort();
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => { for (const stop of stops.splice(0)) await stop(); });

async function started(host: FakeHost, lease: LocalLease = OWN, options: Record<string, unknown> = {}): Promise<{ network: BgpNetwork; driver: FakeBgpDriver }> {
  const driver = new FakeBgpDriver();
  const network = new BgpNetwork(host.ctx, parseBgpOptions(options), driver.factory);
  await network.start(lease);
  const ac = new AbortController();
  const done = network.run(ac.signal);
  stops.push(async () => { ac.abort(); await done; });
  return { network, driver };
}

describe('bgp backend, dual-stack', () => {
  it('says it routes IPv6', () => {
    expect(bgpBackend().supportsIpv6).toBe(true);
  });

  it('announces both subnets, each with its own family\'s PublicIP; one IPv4 session per host carries both families', async () => {
    const host = await dualHost();
    const { network, driver } = await started(host);
    expect(driver.announced).toEqual([{ prefix: '10.244.1.0/24', nextHop: '198.18.0.1' }, { prefix: 'fd10:0:0:1::/64', nextHop: 'fd00:18::1' }]);
    expect(driver.startOptions).toMatchObject({
      families: ['ipv4', 'ipv6'], routerId: '198.18.0.1', listen: { address: '198.18.0.1', port: 179 }, localAddress: '198.18.0.1', localAddressV6: 'fd00:18::1',
      clusterNetwork: '10.244.0.0/16', ownSubnet: '10.244.1.0/24', clusterNetworkV6: V6_NET, ownSubnetV6: 'fd10:0:0:1::/64',
    });
    await network.sync([...dual(2), ...dual(3)]);
    expect(driver.sessions.map((s) => `${s.address} ${s.role}`)).toEqual(['198.18.0.2 mesh', '198.18.0.3 mesh']);
  });

  it('installs learned IPv6 paths of leased subnets via their IPv6 next hop, beside the IPv4 ones, through nexthop objects', async () => {
    const host = await dualHost();
    const { network, driver } = await started(host);
    await network.sync([...dual(2), ...dual(3)]);
    driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2'), path('fd10:0:0:2::/64', 'fd00:18::2')]);
    driver.give('198.18.0.3', [path('10.244.3.0/24', '198.18.0.3'), path('fd10:0:0:3::/64', 'fd00:18::3')]);
    await waitFor(async () => (await routesOf(host.nl, 6)).length === 2 && (await routesOf(host.nl, 4)).length === 2, { what: 'routes of both families' });
    expect(await routesOf(host.nl, 6)).toEqual(['fd10:0:0:2::/64 via fd00:18::2', 'fd10:0:0:3::/64 via fd00:18::3']);
    expect(await routesOf(host.nl, 4)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
    expect((await host.nl.listRoutes({ family: 6, protocol: RTPROT_TWILL })).every((r) => r.nexthopId !== undefined)).toBe(true);
    expect(network.routing().routes.filter((r) => r.prefix.includes(':')).map((r) => `${r.prefix} ${r.nextHops.join()} ${r.installed}`).sort())
      .toEqual(['fd10:0:0:2::/64 fd00:18::2 true', 'fd10:0:0:3::/64 fd00:18::3 true']);
    // A lease's IPv6 entry gone: its IPv6 route goes, its IPv4 one stays.
    await network.sync([...dual(2), v4Lease(3)]);
    expect(await routesOf(host.nl, 6)).toEqual(['fd10:0:0:2::/64 via fd00:18::2']);
    expect(await routesOf(host.nl, 4)).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3']);
  });

  it('refuses ::/0, the outside, its own IPv6 subnet and what no lease holds, counted per peer and reason; an off-link IPv6 next hop is not installed', async () => {
    const host = await dualHost();
    const { network, driver } = await started(host);
    await network.sync(dual(2));
    driver.give('198.18.0.254', [
      path('::/0', 'fd00:18::fe'), path('2001:db8::/64', 'fd00:18::fe'), path('fd10:0:0:1::/64', 'fd00:18::fe'),
      path('fd10:0:0:77::/64', 'fd00:18::fe'), path('fd10:0:0:2::/64', 'fd99::2'), path('0.0.0.0/0', '198.18.0.254'),
    ]);
    await waitFor(() => network.routing().routes.length === 6, { what: 'the route status' });
    expect(network.routing().rejected.map((r) => `${r.peer} ${r.reason} ${r.count}`).sort()).toEqual([
      '198.18.0.254 default_route 2', '198.18.0.254 no_lease 1', '198.18.0.254 outside_cluster 1', '198.18.0.254 own_subnet 1']);
    expect(network.routing().routes.find((r) => r.prefix === 'fd10:0:0:2::/64'))
      .toMatchObject({ installed: false, reason: expect.stringContaining('no usable next hop') as string });
    expect(await routesOf(host.nl, 6)).toEqual([]);
  });

  it('equal-cost IPv6 paths from two ToRs become one route through a nexthop group', async () => {
    const host = await dualHost();
    const { network, driver } = await started(host);
    await network.sync(dual(9));
    driver.give('fd00:18::fd', [path('fd10:0:0:9::/64', 'fd00:18::fd', { ebgp: true, asPathLength: 2 })]);
    driver.give('fd00:18::fe', [path('fd10:0:0:9::/64', 'fd00:18::fe', { ebgp: true, asPathLength: 2 })]);
    await waitFor(async () => (await routesOf(host.nl, 6)).join() === 'fd10:0:0:9::/64 via fd00:18::fd+fd00:18::fe', { what: 'the IPv6 ECMP group' });
  });

  it('after a restart keeps the routes of both families until the peers sent End-of-RIB', async () => {
    const host = await dualHost();
    const first = await started(host);
    await first.network.sync(dual(2));
    first.driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2'), path('fd10:0:0:2::/64', 'fd00:18::2')]);
    await waitFor(async () => (await routesOf(host.nl, 6)).length === 1 && (await routesOf(host.nl, 4)).length === 1, { what: 'routes' });
    const second = await started(host);
    expect(await second.network.sync(dual(2))).toMatchObject({ changes: 0 });
    expect(await routesOf(host.nl, 6)).toEqual(['fd10:0:0:2::/64 via fd00:18::2']);
    second.driver.give('198.18.0.2', [path('10.244.2.0/24', '198.18.0.2')]);
    second.driver.emit('end-of-rib', { peer: '198.18.0.2' });
    await waitFor(async () => (await routesOf(host.nl, 6)).length === 0, { what: 'the IPv6 route nobody sent again gone' });
    expect(await routesOf(host.nl, 4)).toEqual(['10.244.2.0/24 via 198.18.0.2']);
  });

  it('refuses to start without an IPv6 address for the IPv6 next hop', () => {
    const host = fakeHost();
    const ctx: BackendContext = { ...host.ctx, clusterNetworkV6: V6_NET };
    expect(() => new BgpNetwork(ctx, parseBgpOptions({}), new FakeBgpDriver().factory)).toThrow(/needs a global IPv6 address on eth0/);
  });
});

describe('bgp backend, IPv6-only', () => {
  it('needs --bgp-router-id: no IPv4 address to take the BGP identifier from', async () => {
    const host = await dualHost({ ipv4: false });
    expect(() => new BgpNetwork(host.ctx, parseBgpOptions({}), new FakeBgpDriver().factory)).toThrow(/--bgp-router-id.*required.*IPv6-only/);
    const withReflectors = await dualHost({ ipv4: false, routerId: '10.0.0.1' });
    expect(() => new BgpNetwork(withReflectors.ctx, parseBgpOptions({ RouteReflectors: ['198.18.0.9'] }), new FakeBgpDriver().factory)).toThrow(/RouteReflectors/);
  });

  it('runs its sessions over IPv6 to the hosts\' PublicIPv6, listens on its own, and announces the IPv6 subnet alone', async () => {
    const host = await dualHost({ ipv4: false, routerId: '10.0.0.1' });
    const { network, driver } = await started(host, OWN_V6_ONLY);
    expect(driver.announced).toEqual([{ prefix: 'fd10:0:0:1::/64', nextHop: 'fd00:18::1' }]);
    expect(driver.startOptions).toMatchObject({ families: ['ipv6'], routerId: '10.0.0.1', listen: { address: 'fd00:18::1', port: 179 }, localAddress: 'fd00:18::1', ownSubnet: undefined });
    await network.sync([v6Lease(2), v6Lease(3)]);
    expect(driver.sessions.map((s) => s.address)).toEqual(['fd00:18::2', 'fd00:18::3']);
    driver.give('fd00:18::2', [path('fd10:0:0:2::/64', 'fd00:18::2'), path('10.244.2.0/24', '198.18.0.2')]);
    await waitFor(async () => (await routesOf(host.nl, 6)).length === 1, { what: 'the IPv6 route' });
    expect(network.routing().rejected.map((r) => r.reason)).toEqual(['not_ipv6']);
  });

  it('external peers at IPv6 addresses (--bgp-peer, Peers, --bgp-listen [addr]:port)', () => {
    expect(parsePeerFlag('fd00:18::fe,asn=65000')).toMatchObject({ address: 'fd00:18::fe', asn: 65000 });
    expect(parseBgpOptions({ Peers: [{ Address: 'FD00:18::FE', ASN: 65000 }] }).peers[0]?.address).toBe('fd00:18::fe');
    expect(parseListenFlag('[fd00:18::1]:179')).toEqual({ address: 'fd00:18::1', port: 179 });
    expect(() => parseListenFlag('[198.18.0.1]:179')).toThrow(/--bgp-listen.*brackets/);
  });
});

describe('bgp import filter, per family', () => {
  const accept = importFilter({
    clusterNetwork: '10.244.0.0/16', ownSubnet: '10.244.1.0/24', clusterNetworkV6: V6_NET, ownSubnetV6: 'fd10:0:0:1::/64',
    leasedSubnets: ['10.244.2.0/24', 'fd10:0:0:2::/64'],
  });
  it('applies the same rules to both families', () => {
    const decide = (p: string): string => { const d = accept(p); return d.ok ? 'ok' : d.reason; };
    expect(['fd10:0:0:2::/64', 'fd10:0:0:2::/80', '::/0', '2001:db8::/64', 'fd10:0:0:1::/64', 'fd10:0:0:9::/64', '10.244.2.0/24', 'fd10:0:0:2::1/64']
      .map(decide)).toEqual(['ok', 'no_lease', 'default_route', 'outside_cluster', 'own_subnet', 'no_lease', 'ok', 'malformed']);
    expect(accept('FD10:0:0:2:0::/64')).toEqual({ ok: true, prefix: 'fd10:0:0:2::/64' });
  });
});

// ---- the speakers ------------------------------------------------------------------------

const H = { address: '198.18.0.1', asn: 64512 };
const M = { address: '198.18.0.2', asn: 64512 };
const dualOptions = (over: Partial<DriverOptions> = {}): DriverOptions => ({
  asn: H.asn, routerId: H.address, listen: { address: H.address, port: 179 }, localAddress: H.address, localAddressV6: 'fd00:18::1', holdTimeS: 90, restartTimeS: 120,
  families: ['ipv4', 'ipv6'], clusterNetwork: '10.244.0.0/16', ownSubnet: '10.244.1.0/24', clusterNetworkV6: V6_NET, ownSubnetV6: 'fd10:0:0:1::/64',
  reflector: false, maxPrefixes: 10_000, restarted: false, ...over,
});
const meshPeer = (address: string): DriverPeer => ({ address, asn: 64512, role: 'mesh', password: undefined, port: 179, multihop: undefined });

describe('the bgp backend\'s dual-stack sessions on Twill\'s speaker', () => {
  const speakers = useLinkedSpeakers();

  it('negotiates IPv4 and IPv6 unicast; accepts both cluster networks; one prefix limit for both families', () => {
    const config = speakerPeerConfig(meshPeer(M.address), dualOptions({ maxPrefixes: 7 }));
    expect(config).toMatchObject({ families: ['ipv4-unicast', 'ipv6-unicast'], localAddress: H.address });
    expect(config.import).toEqual({ accept: ['10.244.0.0/16,le=32', 'fd10::/48,le=128'], rejectPrefixes: ['10.244.1.0/24', 'fd10:0:0:1::/64'], maxPrefixes: 7, maxPrefixScope: 'peer' });
    expect(config.export).toEqual({ announce: ['10.244.1.0/24', 'fd10:0:0:1::/64'] });
    expect(speakerPeerConfig(meshPeer(M.address), dualOptions({ reflector: true })).export).toEqual({ announce: ['10.244.0.0/16,le=32', 'fd10::/48,le=128'] });
    // An IPv6 ToR of a dual-stack host: its session starts from the IPv6 address.
    expect(speakerPeerConfig(meshPeer('fd00:18::fe'), dualOptions()).localAddress).toBe('fd00:18::1');
    // IPv6-only: the speaker's default family for an IPv6 peer, nothing to say.
    expect(speakerPeerConfig(meshPeer('fd00:18::2'), dualOptions({ families: ['ipv6'], localAddress: 'fd00:18::1' })).families).toBeUndefined();
  });

  it('an IPv6 subnet crosses an IPv4 session with its IPv6 next hop (MP_REACH_NLRI), and the limit counts both families', async () => {
    const h = await Speaker.start({ local: { asn: H.asn, routerId: H.address }, listen: [{ host: H.address, port: 179 }], transport: speakers.net.transport });
    speakers.started.push(h);
    h.addPeer({ ...speakerPeerConfig(meshPeer(M.address), dualOptions({ maxPrefixes: 3 })), passive: true });
    const m = await Speaker.start({ local: { asn: M.asn, routerId: M.address }, transport: speakers.net.transport, import: { accept: ['0.0.0.0/0,le=32', '::/0,le=128'] } });
    speakers.started.push(m);
    m.addPeer({ address: H.address, asn: H.asn, localAddress: M.address, families: ['ipv4-unicast', 'ipv6-unicast'] });
    await settle();
    h.set([{ prefix: '10.244.1.0/24', nextHop: H.address }, { prefix: 'fd10:0:0:1::/64', nextHop: 'fd00:18::1' }]);
    m.set([{ prefix: '10.244.2.0/24', nextHop: M.address }, { prefix: 'fd10:0:0:2::/64', nextHop: 'fd00:18::2' }]);
    await settle();
    expect([...m.peerRoutes(H.address)].map((r) => `${r.family} ${r.prefix} ${r.nextHop}`).sort())
      .toEqual(['ipv4-unicast 10.244.1.0/24 198.18.0.1', 'ipv6-unicast fd10:0:0:1::/64 fd00:18::1']);
    expect([...h.peerRoutes(M.address)].map((r) => `${r.prefix} ${r.nextHop}`).sort()).toEqual(['10.244.2.0/24 198.18.0.2', 'fd10:0:0:2::/64 fd00:18::2']);
    // 2 accepted; two more (one per family) take the peer past 3 together, though neither family alone is.
    const downs: string[] = [];
    h.on('session', (ev) => { if (ev.down) downs.push(ev.down.reason); });
    m.set([{ prefix: '10.244.2.0/24', nextHop: M.address }, { prefix: 'fd10:0:0:2::/64', nextHop: 'fd00:18::2' }, { prefix: '10.244.3.0/24', nextHop: M.address }, { prefix: 'fd10:0:0:3::/64', nextHop: 'fd00:18::2' }]);
    await settle();
    expect(downs.join()).toMatch(/maximum of 3/);
  });
});

// ---- the gobgp driver --------------------------------------------------------------------

describe('gobgp driver, IPv6', () => {
  const opts = { routerId: '198.18.0.1', localAddress: '198.18.0.1', localAddressV6: 'fd00:18::1', holdTimeS: 9, restartTimeS: 120, maxPrefixes: 500, families: ['ipv4', 'ipv6'] as const };

  it('a dual-stack peer gets both unicast families, each with the prefix limit and graceful restart', () => {
    const m = peerMessage(opts, meshPeer('198.18.0.2'));
    expect(m.afi_safis?.map((a) => `${a.config?.family?.afi} ${a.prefix_limits?.max_prefixes} ${a.mp_graceful_restart?.config?.enabled}`))
      .toEqual(['AFI_IP 500 true', 'AFI_IP6 500 true']);
    expect(m.transport?.local_address).toBe('198.18.0.1');
    expect(peerMessage(opts, meshPeer('fd00:18::fe')).transport?.local_address).toBe('fd00:18::1');
    expect(peerMessage({ ...opts, families: ['ipv6'], localAddress: 'fd00:18::1' }, meshPeer('fd00:18::2')).afi_safis?.map((a) => a.config?.family?.afi)).toEqual(['AFI_IP6']);
  });

  it('an own IPv6 route is an AFI_IP6 path with its next hop in MP_REACH_NLRI; it reads back', () => {
    expect(() => ownRoute('fd10:0:0:1::/64', 'fd00:18::1')).toThrow(/IPv4 unicast only/);
    const route = ownRoute('FD10:0:0:1::/64', 'FD00:18::1', ['ipv4', 'ipv6']);
    expect(route).toEqual({ prefix: 'fd10:0:0:1::/64', nextHop: 'fd00:18::1' });
    expect(() => ownRoute('fd10:0:0:1::/64', '198.18.0.1', ['ipv4', 'ipv6'])).toThrow(/next hop must be of the prefix's family/);
    const p = ownPath(route);
    const nlri = { '@type': ANY.ipAddressPrefix, prefix: 'fd10:0:0:1::', prefix_len: 64 };
    expect(p).toEqual({
      family: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' }, nlri,
      pattrs: [{ '@type': ANY.origin, origin: 0 }, { '@type': ANY.mpReach, family: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' }, next_hops: ['fd00:18::1'], nlris: [nlri] }],
    });
    expect(ownRouteOf({ ...p, neighbor_ip: '<nil>' })).toEqual(route);
  });

  it('a learned IPv6 path takes MP_REACH_NLRI\'s global next hop; a family that is not the prefix\'s is no path', () => {
    const received: Path = {
      nlri: { '@type': ANY.ipAddressPrefix, prefix: 'fd10:0:0:2::', prefix_len: 64 },
      pattrs: [{ '@type': ANY.origin, origin: 0 }, { '@type': ANY.mpReach, next_hops: ['fd00:18::2', 'fe80::2'] }],
      family: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' }, source_asn: 64512, neighbor_ip: '198.18.0.2',
    };
    expect(learnedPath(received, 64512)).toEqual({ prefix: 'fd10:0:0:2::/64', nextHop: 'fd00:18::2', asPathLength: 0, localPref: 100, med: 0, origin: 0, ebgp: false });
    expect(learnedPath({ ...received, family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' } }, 64512)).toBeUndefined();
  });

  it('export: the IPv6 prefixes in a set of their own (gobgpd\'s sets hold one family), a statement for it', () => {
    const dualExport = { reflector: false, clusterNetwork: '10.244.0.0/16', clusterNetworkV6: V6_NET, families: ['ipv4', 'ipv6'] as const };
    expect(exportPrefixes(dualExport, ['10.244.1.0/24', 'fd10:0:0:1::/64'])).toEqual([
      { ip_prefix: '10.244.1.0/24', mask_length_min: 24, mask_length_max: 24 }, { ip_prefix: 'fd10:0:0:1::/64', mask_length_min: 64, mask_length_max: 64 }]);
    expect(exportPrefixes({ ...dualExport, reflector: true }, [])).toEqual([
      { ip_prefix: '10.244.0.0/16', mask_length_min: 16, mask_length_max: 32 }, { ip_prefix: 'fd10::/48', mask_length_min: 48, mask_length_max: 128 }]);
    expect(exportPolicy(dualExport).statements?.map((s) => `${s.name} ${s.conditions?.prefix_set?.name} ${s.conditions?.route_type}`))
      .toEqual(['twill-export twill-export ROUTE_TYPE_LOCAL', `${EXPORT_NAME_V6} ${EXPORT_NAME_V6} ROUTE_TYPE_LOCAL`]);
  });

  it('counts what the peer gave in both families; End-of-RIB once every family in use sent one', () => {
    const v4 = { afi: 'AFI_IP', safi: 'SAFI_UNICAST' };
    const v6 = { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' };
    const peer = (eor6: boolean, enabled6 = true): Parameters<typeof observe>[0] => ({
      conf: { neighbor_address: '198.18.0.2' }, state: { neighbor_address: '198.18.0.2', session_state: 'ESTABLISHED', admin_state: 'UP' },
      afi_safis: [
        { state: { family: v4, enabled: true, accepted: 2 }, mp_graceful_restart: { state: { end_of_rib_received: true } } },
        { state: { family: v6, enabled: enabled6, accepted: 3 }, mp_graceful_restart: { state: { end_of_rib_received: eor6 } } },
      ],
    });
    expect(observe(peer(false), 0)?.counters).toMatchObject({ received: 5, endOfRib: false });
    expect(observe(peer(true), 0)?.counters).toMatchObject({ endOfRib: true });
    // A peer that did not negotiate IPv6 sends no End-of-RIB for it.
    expect(observe(peer(false, false), 0)?.counters).toMatchObject({ endOfRib: true });
  });
});
