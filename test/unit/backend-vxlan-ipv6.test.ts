import { describe, expect, it } from 'vitest';
import type { BackendContext, RemoteLease } from '../../src/backends/backend.js';
import { onLinkMatcher } from '../../src/backends/on-link.js';
import { deviceMtu, deviceNameV6, parseVxlanOptions, vniOfDeviceName } from '../../src/backends/vxlan/config.js';
import { decodeLeaseData } from '../../src/backends/vxlan/lease-data.js';
import { deriveVtepMac } from '../../src/backends/vxlan/mac.js';
import { planPeers, type PlanInput } from '../../src/backends/vxlan/plan.js';
import { decideTakeover, flannelDeviceName, isFlannelDirectRoute, RTPROT_BOOT } from '../../src/backends/vxlan/takeover-plan.js';
import { adoptedVtepPath } from '../../src/backends/vxlan/vtep-state.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { RTPROT_TWILL, type Link, type Route } from '../../src/netlink/index.js';
import { fakeHost } from '../fakes/backend-context.js';
import type { FakeNetlink } from '../fakes/netlink.js';

// vxlan over IPv6 (issue 17): the pure plan for both families, the IPv6 device's name, MTU and
// lease data, the takeover of flannel-v6.<VNI>, and the Network on the in-memory kernel
// (test/netns/backend-vxlan-ipv6.test.ts carries traffic through real devices).

const macOf = (n: number, v6 = false): string => `02:00:00:00:${v6 ? '06' : '04'}:${n.toString(16).padStart(2, '0')}`;
const lease4 = (n: number, over: Partial<RemoteLease> = {}): RemoteLease =>
  ({ subnet: `10.244.${n}.0/24`, publicIp: `198.18.0.${n}`, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: macOf(n) }, ...over });
const lease6 = (n: number, over: Partial<RemoteLease> = {}): RemoteLease =>
  ({ subnet: `fd10:0:0:${n}::/64`, publicIp: `fd00:18::${n}`, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: macOf(n, true) }, ...over });

describe('vxlan IPv6 device: name, MTU, lease data', () => {
  it('names it twill-v6.<VNI> (flannel: flannel-v6.<VNI>), and twillctl uninstall knows it', () => {
    expect(deviceNameV6(1)).toBe('twill-v6.1');
    expect(vniOfDeviceName('twill-v6.1')).toBe(1);
    expect(vniOfDeviceName('twill-v6.16777215')).toBe(16777215);
    for (const name of ['twill-v6.0', 'twill-v6.', 'flannel-v6.1', 'twill-v4.1']) expect(vniOfDeviceName(name)).toBeUndefined();
    expect(flannelDeviceName(4, 6)).toBe('flannel-v6.4');
  });

  it('subtracts 70 for the IPv6 underlay (outer IPv6 header 40), 50 for IPv4; the MTU option wins for both', () => {
    expect(deviceMtu(parseVxlanOptions({}), 1500, 6)).toBe(1430);
    expect(deviceMtu(parseVxlanOptions({}), 9000, 6)).toBe(8930);
    expect(deviceMtu(parseVxlanOptions({}), 1500)).toBe(1450);
    expect(deviceMtu(parseVxlanOptions({ MTU: 1400 }), 1500, 6)).toBe(1400);
  });

  it('derives the IPv6 VTEP MAC from PublicIPv6 and VNI: stable, distinct from the IPv4 one', () => {
    expect(deriveVtepMac('fd00:18::1', 1)).toBe(deriveVtepMac('fd00:18:0::1', 1));
    expect(deriveVtepMac('fd00:18::1', 1)).not.toBe(deriveVtepMac('198.18.0.1', 1));
  });

  it('names BackendV6Data in the reasons of an unusable IPv6 entry', () => {
    expect(decodeLeaseData({ VNI: 1 }, 1, 6)).toEqual({ ok: false, reason: 'BackendV6Data has no VtepMAC' });
    expect(decodeLeaseData(null, 1, 6)).toMatchObject({ ok: false, reason: expect.stringMatching(/^BackendV6Data null is not an object/) });
    expect(decodeLeaseData({ VNI: 1, VtepMAC: '02:00:00:00:06:01' }, 1, 6)).toEqual({ ok: true, vtep: { vni: 1, mac: '02:00:00:00:06:01' } });
  });

  it('keeps the record of an adopted IPv6 MAC beside the IPv4 one', () => {
    expect(adoptedVtepPath('/run/twill', 1)).toBe('/run/twill/vxlan-1-vtep.json');
    expect(adoptedVtepPath('/run/twill', 1, 6)).toBe('/run/twill/vxlan-1-v6-vtep.json');
  });
});

describe('vxlan plan over both families (pure)', () => {
  const input = (leases: RemoteLease[], over: Partial<PlanInput> = {}): PlanInput => ({
    leases,
    vni: 1,
    clusterNetwork: '10.244.0.0/16',
    clusterNetworkV6: 'fd10::/48',
    localPublicIp: '198.18.0.1',
    localPublicIpv6: 'fd00:18::1',
    localMac: macOf(1),
    localMacV6: macOf(1, true),
    directRouting: false,
    onLink: () => true,
    vxlanIndex: 7,
    vxlanIndexV6: 8,
    extIndex: 2,
    ...over,
  });

  it('puts each IPv6 entry on twill-v6.N: neighbour of the subnet\'s network address, FDB to PublicIPv6, onlink route', () => {
    const plan = planPeers(input([lease6(3), lease4(3), lease6(2)]));
    expect(plan.skipped).toEqual([]);
    expect(plan.peers).toEqual([
      expect.objectContaining({ subnet: '10.244.3.0/24', neighbour: { index: 7, ip: '10.244.3.0', mac: macOf(3) } }),
      {
        subnet: 'fd10:0:0:2::/64',
        direct: false,
        neighbour: { index: 8, ip: 'fd10:0:0:2::', mac: macOf(2, true) },
        fdb: { index: 8, mac: macOf(2, true), dst: 'fd00:18::2' },
        route: { dst: 'fd10:0:0:2::/64', gateway: 'fd10:0:0:2::', oif: 8, onlink: true },
      },
      expect.objectContaining({ subnet: 'fd10:0:0:3::/64', fdb: { index: 8, mac: macOf(3, true), dst: 'fd00:18::3' } }),
    ]);
  });

  it('routes an on-link PublicIPv6 directly with DirectRouting and encapsulates an off-link one', () => {
    const plan = planPeers(input([lease6(2), lease6(3, { publicIp: 'fd00:19::3' })], {
      directRouting: true,
      onLink: onLinkMatcher(['198.18.0.1/24', 'fd00:18::1/64', 'fe80::1/64']),
    }));
    expect(plan.peers).toEqual([
      { subnet: 'fd10:0:0:2::/64', direct: true, neighbour: undefined, fdb: undefined, route: { dst: 'fd10:0:0:2::/64', gateway: 'fd00:18::2', oif: 2 } },
      expect.objectContaining({ subnet: 'fd10:0:0:3::/64', direct: false, fdb: { index: 8, mac: macOf(3, true), dst: 'fd00:19::3' } }),
    ]);
  });

  it('skips unusable IPv6 entries with a reason, per family (MACs are per device)', () => {
    const plan = planPeers(input([
      lease6(2),
      lease6(3, { backendData: { VNI: 2, VtepMAC: macOf(3, true) } }),
      lease6(4, { publicIp: '198.18.0.4' }),
      lease6(5, { publicIp: 'fd00:18::1' }),
      lease6(6, { backendData: { VNI: 1, VtepMAC: macOf(1, true) } }),
      lease6(7, { backendData: { VNI: 1, VtepMAC: macOf(2, true) } }),
      lease6(8, { subnet: 'fd99:0:0:8::/64' }),
      // The IPv4 device's MAC on the IPv6 device of another node is no clash: another FDB.
      lease6(9, { backendData: { VNI: 1, VtepMAC: macOf(2) } }),
      lease4(2),
    ]));
    expect(plan.peers.map((p) => p.subnet)).toEqual(['10.244.2.0/24', 'fd10:0:0:2::/64', 'fd10:0:0:9::/64']);
    expect(Object.fromEntries(plan.skipped.map((s) => [s.subnet, s.reason]))).toEqual({
      'fd10:0:0:3::/64': 'BackendV6Data VNI 2 differs from this network\'s VNI 1',
      'fd10:0:0:4::/64': 'PublicIPv6 198.18.0.4 is not IPv6',
      'fd10:0:0:5::/64': 'PublicIPv6 fd00:18::1 is this node\'s own',
      'fd10:0:0:6::/64': `VtepMAC ${macOf(1, true)} is this node's own`,
      'fd10:0:0:7::/64': `VtepMAC ${macOf(2, true)} is also claimed by fd10:0:0:2::/64 (PublicIPv6 fd00:18::2)`,
      'fd99:0:0:8::/64': 'the subnet is outside the cluster network fd10::/48',
    });
  });

  it('IPv6-only: no IPv4 device, every IPv4 entry refused; IPv4-only: every IPv6 entry refused', () => {
    const v6only = planPeers(input([lease4(2), lease6(2)], { clusterNetwork: undefined, localPublicIp: undefined, localMac: undefined, vxlanIndex: undefined }));
    expect(v6only.peers.map((p) => p.subnet)).toEqual(['fd10:0:0:2::/64']);
    expect(v6only.skipped).toEqual([{ subnet: '10.244.2.0/24', reason: 'the network config does not enable IPv4' }]);
    const v4only = planPeers(input([lease4(2), lease6(2)], { clusterNetworkV6: undefined, localPublicIpv6: undefined, localMacV6: undefined, vxlanIndexV6: undefined }));
    expect(v4only.peers.map((p) => p.subnet)).toEqual(['10.244.2.0/24']);
    expect(v4only.skipped).toEqual([{ subnet: 'fd10:0:0:2::/64', reason: 'the network config does not enable IPv6' }]);
  });
});

describe('taking over flannel-v6.<VNI>', () => {
  const link = (over: Partial<Link> = {}): Link => ({
    index: 10, name: 'flannel-v6.1', kind: 'vxlan', mtu: 1450, mac: '7e:2b:4c:11:22:66', up: true, masterIndex: undefined, linkIndex: 2,
    linkNetnsId: undefined, ipip: undefined, operUp: true, hairpin: undefined,
    vxlan: { vni: 1, port: 8472, localIp: 'fd00:18::1', underlayIndex: 2, learning: false, gbp: false },
    ...over,
  });

  it('takes over flannel-v6.1 for the IPv6 device and keeps its MAC; flannel.1 is the IPv4 device\'s', () => {
    const input = { vni: 1, port: 8472, localIp: 'fd00:18::1', flanneldPids: [], family: 6 as const };
    expect(decideTakeover({ ...input, links: [link()] })).toMatchObject({ action: 'take-over', device: { name: 'flannel-v6.1' }, adoptMac: '7e:2b:4c:11:22:66' });
    expect(decideTakeover({ ...input, links: [link({ name: 'flannel.1' })] })).toEqual({ action: 'none' });
    expect(decideTakeover({ ...input, links: [link()], family: 4, localIp: '198.18.0.1' })).toEqual({ action: 'none' });
  });

  it('recognises flanneld\'s IPv6 DirectRouting route (the kernel\'s default metric 1024 included)', () => {
    const ctx = { clusterNetwork: 'fd10::/48', extIndex: 2, onLink: onLinkMatcher(['fd00:18::1/64']) };
    const flannels: Route = {
      family: 6, dst: 'fd10:0:0:9::/64', gateway: 'fd00:18::9', oif: 2, table: 254, protocol: RTPROT_BOOT, scope: 0, type: 1,
      onlink: false, metric: 1024, prefsrc: undefined, nexthopId: undefined,
    };
    expect(isFlannelDirectRoute(flannels, ctx)).toBe(true);
    expect(isFlannelDirectRoute({ ...flannels, metric: 100 }, ctx)).toBe(false);
    expect(isFlannelDirectRoute({ ...flannels, protocol: RTPROT_TWILL }, ctx)).toBe(false);
    expect(isFlannelDirectRoute({ ...flannels, dst: 'fd10::/48' }, ctx)).toBe(false);
    expect(isFlannelDirectRoute({ ...flannels, family: 4, dst: '10.244.9.0/24', gateway: '198.18.0.9' }, ctx)).toBe(false);
  });
});

/** A fake host with eth0 198.18.0.1/24 and fd00:18::1/64; `ipv4` false: no IPv4 anywhere. */
function dualHost(ipv4 = true, mtu = 1500): { nl: FakeNetlink; ctx: BackendContext } {
  const { nl, ctx, eth0 } = fakeHost({ mtu, ...(!ipv4 && { address: 'fd00:18::1/64' }) });
  if (ipv4) nl.kernel.links.addAddress(eth0.index, 'fd00:18::1/64', 'address.add', false);
  const ext = ipv4 ? ctx.extIface : { ...ctx.extIface, address: undefined, publicIp: undefined };
  return {
    nl,
    ctx: { ...ctx, extIface: { ...ext, ipv6Address: 'fd00:18::1', publicIpv6: 'fd00:18::1' }, clusterNetwork: ipv4 ? '10.244.0.0/16' : undefined, clusterNetworkV6: 'fd10::/48' },
  };
}

async function entriesOf(nl: FakeNetlink, dev: string): Promise<string[]> {
  const link = await nl.requireLink(dev);
  const routes = await nl.listRoutes({ family: 6, protocol: RTPROT_TWILL });
  return [
    ...(await nl.listNeighbours(link.index)).filter((n) => n.permanent).map((n) => `neigh ${n.ip} ${n.mac ?? '-'}`),
    ...(await nl.listFdb(link.index)).map((e) => `fdb ${e.mac} dst ${e.dst ?? '-'}`),
    ...routes.filter((r) => r.oif === link.index).map((r) => `route ${r.dst} via ${r.gateway ?? '-'}${r.onlink ? ' onlink' : ''}`),
  ].sort();
}

describe('vxlan network over IPv6 on the fake kernel', () => {
  it('dual-stack: twill.1 and twill-v6.1 (local fd00:18::1, MTU 1430), BackendData and BackendV6Data, the pods\' MTU the smaller', async () => {
    const { nl, ctx } = dualHost();
    const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
    const mac6 = deriveVtepMac('fd00:18::1', 1);
    expect(await nl.requireLink('twill-v6.1')).toMatchObject({ kind: 'vxlan', mtu: 1430, mac: mac6, up: true, vxlan: { vni: 1, port: 8472, localIp: 'fd00:18::1', learning: false } });
    expect(await nl.requireLink('twill.1')).toMatchObject({ mtu: 1450, vxlan: { localIp: '198.18.0.1' } });
    expect([network.mtu, network.leaseData, network.leaseDataV6]).toEqual([1430, { VNI: 1, VtepMAC: deriveVtepMac('198.18.0.1', 1) }, { VNI: 1, VtepMAC: mac6 }]);
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1', ipv6Subnet: 'fd10:0:0:1::/64', publicIpv6: 'fd00:18::1' });
    expect((await nl.listAddresses('twill-v6.1')).map((a) => a.cidr)).toEqual(['fd10:0:0:1::/128']);
    expect((await nl.listAddresses('twill.1')).map((a) => a.cidr)).toEqual(['10.244.1.0/32']);

    expect(await network.sync([lease4(2), lease6(2), lease6(3)])).toEqual({ changes: 9, skipped: [] });
    expect(await entriesOf(nl, 'twill-v6.1')).toEqual([
      `fdb ${macOf(2, true)} dst fd00:18::2`, `fdb ${macOf(3, true)} dst fd00:18::3`,
      `neigh fd10:0:0:2:: ${macOf(2, true)}`, `neigh fd10:0:0:3:: ${macOf(3, true)}`,
      'route fd10:0:0:2::/64 via fd10:0:0:2:: onlink', 'route fd10:0:0:3::/64 via fd10:0:0:3:: onlink',
    ]);
    expect(await network.sync([lease4(2), lease6(2), lease6(3)])).toEqual({ changes: 0, skipped: [] });
    // Host 3 leaves: its three IPv6 entries go, nothing of IPv4.
    expect(await network.sync([lease4(2), lease6(2)])).toEqual({ changes: 3, skipped: [] });
    expect(await entriesOf(nl, 'twill-v6.1')).toHaveLength(3);
    expect((await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).map((r) => r.dst)).toEqual(['10.244.2.0/24']);
  });

  it('IPv6-only: twill-v6.1 alone, no BackendData (flannel omits it), a leftover twill.1 deleted', async () => {
    const { nl, ctx } = dualHost(false);
    await nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472, learning: false });
    const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
    expect(network.leaseData).toBeUndefined();
    expect(network.leaseDataV6).toEqual({ VNI: 1, VtepMAC: deriveVtepMac('fd00:18::1', 1) });
    expect(await nl.getLink('twill.1')).toBeUndefined();
    await network.start({ subnet: undefined, publicIp: undefined, ipv6Subnet: 'fd10:0:0:1::/64', publicIpv6: 'fd00:18::1' });
    expect(await network.sync([lease6(2), lease4(2)])).toEqual({ changes: 3, skipped: [{ subnet: '10.244.2.0/24', reason: 'the network config does not enable IPv4' }] });
  });

  it('IPv4-only: a twill-v6.1 left by a dual-stack run is deleted; BackendV6Data absent', async () => {
    const { nl, ctx } = dualHost();
    await (await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}))).start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1', ipv6Subnet: 'fd10:0:0:1::/64' });
    expect(await nl.getLink('twill-v6.1')).toBeDefined();
    const network = await vxlanBackend.register({ ...ctx, clusterNetworkV6: undefined }, vxlanBackend.parseOptions({}));
    expect(await nl.getLink('twill-v6.1')).toBeUndefined();
    expect([network.mtu, network.leaseDataV6]).toEqual([1450, undefined]);
  });

  it('refuses an IPv6 network without an IPv6 address on the interface, and an IPv6 device MTU below 1280', async () => {
    const { ctx } = dualHost();
    await expect(vxlanBackend.register({ ...ctx, extIface: { ...ctx.extIface, ipv6Address: undefined, publicIpv6: undefined } }, vxlanBackend.parseOptions({})))
      .rejects.toThrow(/has no global IPv6 address, and the network config enables IPv6/);
    await expect(vxlanBackend.register(dualHost(true, 1340).ctx, vxlanBackend.parseOptions({}))).rejects.toThrow(/below IPv6's minimum 1280/);
  });
});
