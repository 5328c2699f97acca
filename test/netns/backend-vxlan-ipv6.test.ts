/**
 * vxlan over IPv6 (issue 17): twill-v6.1 over the IPv6 underlay beside twill.1, with the same
 * scheme per peer (neighbour, FDB entry, onlink route) for each remote lease's IPv6 entry. Each
 * remote lease reaches the backend as one entry per family (the agent splits them): the IPv4
 * subnet via PublicIP with BackendData, the IPv6 subnet via PublicIPv6 with BackendV6Data.
 */
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { deriveVtepMac } from '../../src/backends/vxlan/mac.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { Netlink, RTPROT_TWILL } from '../../src/netlink/index.js';
import { runLoop as runLoopIn } from '../helpers/backend-context.js';
import { cleanup, CleanupRegistry, tempDir } from '../helpers/cleanup.js';
import { createCluster, type Cluster, type Host, type Pod } from '../helpers/cluster.js';
import { ipJson, type IpLinkJson } from '../helpers/exec.js';
import { addBridgePods, unreachablePairs } from '../helpers/dual-stack-pods.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const CLUSTER_NETWORK = '10.244.0.0/16';
const CLUSTER_NETWORK_V6 = 'fd10::/48';
const UNDERLAY_V6 = 'fd00:18::/64';
const RESYNC_MS = 200;
const DEV = 'twill.1';
const DEV6 = 'twill-v6.1';

interface IpNeigh { dst: string; lladdr?: string; state: string[] }
interface BridgeFdb { mac: string; dst?: string; flags: string[]; state?: string }
interface IpRoute { dst: string; gateway?: string; dev?: string; flags: string[] }

interface Node {
  readonly host: Host;
  ctx: BackendContext;
  network: Network;
  /** This host's lease as the others see it: one entry per family, lease data round-tripped through JSON. */
  leases: RemoteLease[];
  readonly subnet: string | undefined;
  readonly subnetV6: string;
  stop: (() => Promise<void>) | undefined;
}

const loops = new CleanupRegistry('vxlan IPv6 run() loops');
const runLoop = (node: Node): void => { runLoopIn(loops, node); };

async function contextFor(host: Host, opts: { ipv4: boolean; resyncIntervalMs?: number; stateDir: string }): Promise<BackendContext> {
  const nl = Netlink.open(host.netnsPath);
  host.onDestroy('close the backend\'s netlink handle', () => nl.close());
  const eth0 = await nl.requireLink('eth0');
  const v4 = opts.ipv4 ? host.underlayIp : undefined;
  return {
    log: pino({ level: process.env['TWILL_TEST_LOG'] ?? 'silent' }, pino.destination(2)),
    netlink: nl,
    extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, address: v4, publicIp: v4, ipv6Address: host.underlayIpv6, publicIpv6: host.underlayIpv6 },
    clusterNetwork: opts.ipv4 ? CLUSTER_NETWORK : undefined,
    clusterNetworkV6: CLUSTER_NETWORK_V6,
    stateDir: opts.stateDir,
    resyncIntervalMs: opts.resyncIntervalMs ?? RESYNC_MS,
  };
}

/** register + start, as the agent does before it syncs. */
async function startNetwork(ctx: BackendContext, node: Pick<Node, 'subnet' | 'subnetV6'>, options: Record<string, unknown> = {}): Promise<Network> {
  const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions(options));
  await network.start({ subnet: node.subnet, publicIp: ctx.extIface.publicIp, ipv6Subnet: node.subnetV6, publicIpv6: ctx.extIface.publicIpv6 });
  return network;
}

function leasesOf(node: Pick<Node, 'host' | 'subnet' | 'subnetV6'>, network: Network): RemoteLease[] {
  const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;
  const v6: RemoteLease = { subnet: node.subnetV6, publicIp: node.host.underlayIpv6!, backendType: 'vxlan', backendData: roundTrip(network.leaseDataV6) };
  if (node.subnet === undefined) return [v6];
  return [{ subnet: node.subnet, publicIp: node.host.underlayIp, backendType: 'vxlan', backendData: roundTrip(network.leaseData) }, v6];
}

/** A cluster of 3 hosts with a started vxlan network each: dual-stack, or IPv6-only (no IPv4 anywhere). */
async function vxlanCluster(ipv4: boolean): Promise<{ cluster: Cluster; nodes: Node[] }> {
  const cluster = await createCluster({ hosts: 3, underlayCidrV6: UNDERLAY_V6, underlayIpv4: ipv4 });
  const nodes = await Promise.all(cluster.hosts.map(async (host): Promise<Node> => {
    const i = host.index + 1;
    const node = { host, subnet: ipv4 ? `10.244.${i}.0/24` : undefined, subnetV6: `fd10:0:0:${i}::/64` };
    const ctx = await contextFor(host, { ipv4, stateDir: tempDir(`vxlan6-h${host.index}`) });
    const network = await startNetwork(ctx, node);
    return { ...node, ctx, network, leases: leasesOf(node, network), stop: undefined };
  }));
  return { cluster, nodes };
}

const othersOf = (nodes: readonly Node[], self: Node): RemoteLease[] => nodes.filter((n) => n !== self).flatMap((n) => n.leases);
const v6Of = (leases: readonly RemoteLease[]): RemoteLease[] => leases.filter((l) => l.subnet.includes(':'));
const macOf = (lease: RemoteLease): string => (lease.backendData as { VtepMAC: string }).VtepMAC;
const gatewayOf = (lease: RemoteLease): string => lease.subnet.replace(/\/\d+$/, '');

/** What the kernel holds on twill-v6.1 and Twill's IPv6 routes, in the words of `ip -j` and `bridge -j`. */
async function kernelStateV6(host: Host): Promise<{ neigh: string[]; fdb: string[]; routes: string[] }> {
  const neigh = await host.json<IpNeigh[]>(['-6', 'neigh', 'show', 'dev', DEV6]);
  const fdb = await ipJson<BridgeFdb[]>(host.name, ['fdb', 'show', 'dev', DEV6], 'bridge');
  const routes = await host.json<IpRoute[]>(['-6', 'route', 'show', 'proto', String(RTPROT_TWILL)]);
  return {
    neigh: neigh.map((n) => `${n.dst} lladdr ${n.lladdr ?? '-'} ${n.state.join(',')}`).sort(),
    fdb: fdb.map((e) => `${e.mac} dst ${e.dst ?? '-'} ${e.flags.join(',')} ${e.state ?? '-'}`).sort(),
    routes: routes.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'} ${r.flags.join(',')}`).sort(),
  };
}

/** Exactly what the IPv6 entries of `peers` imply: one neighbour, one FDB entry and one onlink route each. */
function expectedV6(peers: readonly RemoteLease[]): { neigh: string[]; fdb: string[]; routes: string[] } {
  const v6 = v6Of(peers);
  return {
    neigh: v6.map((l) => `${gatewayOf(l)} lladdr ${macOf(l)} PERMANENT`).sort(),
    fdb: v6.map((l) => `${macOf(l)} dst ${l.publicIp} self permanent`).sort(),
    routes: v6.map((l) => `${l.subnet} via ${gatewayOf(l)} dev ${DEV6} onlink`).sort(),
  };
}

/** Twill's IPv4 routes (twill.1's entries are backend-vxlan.test.ts's business; here: the IPv4 side is left alone). */
async function routesV4(host: Host): Promise<string[]> {
  return (await host.routes(['proto', String(RTPROT_TWILL)])).map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).sort();
}

async function waitConvergedV6(node: Node, peers: readonly RemoteLease[], timeoutMs: number, what: string): Promise<void> {
  const want = JSON.stringify(expectedV6(peers));
  await waitFor(async () => JSON.stringify(await kernelStateV6(node.host)) === want, { timeoutMs, intervalMs: 20, what });
}

async function linkDetails(host: Host, dev: string): Promise<IpLinkJson | undefined> {
  return (await host.json<IpLinkJson[]>(['-d', 'addr', 'show'])).find((l) => l.ifname === dev);
}

/** Two pods per host on cni0, with an address of each of the host's subnets. */
async function addPods(cluster: Cluster, nodes: readonly Node[]): Promise<Pod<Host>[]> {
  return (await Promise.all(nodes.map((n) => addBridgePods(cluster, n.host, { v4: n.subnet, v6: n.subnetV6 })))).flat();
}

async function txPackets(host: Host, dev: string): Promise<number> {
  const [link] = await host.json<{ stats64?: { tx?: { packets: number } } }[]>(['-s', 'link', 'show', 'dev', dev]);
  return link?.stats64?.tx?.packets ?? 0;
}

describe.skipIf(!isRoot)('vxlan backend over IPv6: dual-stack', () => {
  useCleanup();
  let cluster: Cluster;
  let nodes: Node[];
  let pods: Pod<Host>[];

  beforeAll(async () => {
    ({ cluster, nodes } = await vxlanCluster(true));
    cleanup.defer('stop the vxlan run() loops', () => loops.runAll());
    pods = await addPods(cluster, nodes);
  });

  it('creates twill-v6.1 beside twill.1: VNI 1, port 8472, learning off, local = eth0\'s IPv6, MTU 1500-70, derived MAC, the IPv6 subnet\'s /128; publishes BackendV6Data', async () => {
    expect(vxlanBackend.supportsIpv6).toBe(true);
    for (const node of nodes) {
      const [v4, v6] = [await linkDetails(node.host, DEV), await linkDetails(node.host, DEV6)];
      expect(v6?.mtu).toBe(1430);
      expect(v4?.mtu).toBe(1450);
      expect(node.network.mtu).toBe(1430); // the pods' packets of both families must fit
      expect(v6?.flags).toContain('UP');
      expect(v6?.linkinfo?.info_kind).toBe('vxlan');
      expect(v6?.linkinfo?.info_data).toMatchObject({ id: 1, port: 8472, learning: false, local6: node.host.underlayIpv6, link: 'eth0' });
      const mac6 = deriveVtepMac(node.host.underlayIpv6!, 1);
      expect(v6?.address).toBe(mac6);
      expect(node.network.leaseDataV6).toEqual({ VNI: 1, VtepMAC: mac6 });
      expect(node.network.leaseData).toEqual({ VNI: 1, VtepMAC: v4?.address });
      expect(v6?.addr_info?.filter((a) => a.local.startsWith('fd10:')).map((a) => `${a.local}/${a.prefixlen}`)).toEqual([node.subnetV6.replace('/64', '/128')]);
    }
    expect(new Set(nodes.flatMap((n) => n.leases.map(macOf))).size).toBe(6);
    // Exactly what `ip -j -d link show twill-v6.1` says.
    const [shown] = await nodes[0]!.host.json<IpLinkJson[]>(['-d', 'link', 'show', DEV6]);
    expect([shown?.mtu, shown?.linkinfo?.info_data]).toEqual([1430, expect.objectContaining({ id: 1, local6: 'fd00:18::1', port: 8472 })]);
  });

  it('programs one neighbour, FDB entry and onlink route per peer and family; a second sync changes nothing', async () => {
    const first = await Promise.all(nodes.map((n) => n.network.sync(othersOf(nodes, n))));
    expect(first).toEqual(nodes.map(() => ({ changes: 12, skipped: [] })));
    for (const node of nodes) {
      expect(await kernelStateV6(node.host)).toEqual(expectedV6(othersOf(nodes, node)));
      expect(await routesV4(node.host)).toEqual(othersOf(nodes, node).filter((l) => !l.subnet.includes(':')).map((l) => `${l.subnet} via ${gatewayOf(l)} dev ${DEV}`).sort());
    }
    const n0 = nodes[0]!;
    expect(await kernelStateV6(n0.host)).toEqual({
      neigh: [`fd10:0:0:2:: lladdr ${deriveVtepMac('fd00:18::2', 1)} PERMANENT`, `fd10:0:0:3:: lladdr ${deriveVtepMac('fd00:18::3', 1)} PERMANENT`],
      fdb: [`${deriveVtepMac('fd00:18::2', 1)} dst fd00:18::2 self permanent`, `${deriveVtepMac('fd00:18::3', 1)} dst fd00:18::3 self permanent`].sort(),
      routes: [`fd10:0:0:2::/64 via fd10:0:0:2:: dev ${DEV6} onlink`, `fd10:0:0:3::/64 via fd10:0:0:3:: dev ${DEV6} onlink`],
    });
    const again = await Promise.all(nodes.map((n) => n.network.sync(othersOf(nodes, n))));
    expect(again).toEqual(nodes.map(() => ({ changes: 0, skipped: [] })));
  });

  it('3 hosts x 2 pods: every pod pings every pod of the other hosts over IPv4 and over IPv6, through the tunnels', async () => {
    const before = await Promise.all(nodes.map((n) => txPackets(n.host, DEV6)));
    expect(await unreachablePairs(pods, 4)).toEqual([]);
    expect(await unreachablePairs(pods, 6)).toEqual([]);
    const after = await Promise.all(nodes.map((n) => txPackets(n.host, DEV6)));
    after.forEach((tx, i) => expect(tx).toBeGreaterThan(before[i]!)); // IPv6 went out of twill-v6.1, encapsulated
  });

  it('run(): an IPv6 neighbour, FDB entry and route deleted by hand come back within one resync', async () => {
    for (const n of nodes) runLoop(n);
    const [n0, n1, n2] = nodes as [Node, Node, Node];
    const [l1, l2] = [v6Of(n1.leases)[0]!, v6Of(n2.leases)[0]!];
    await n0.host.exec('ip', ['-6', 'route', 'del', l1.subnet]);
    await n0.host.exec('ip', ['-6', 'neigh', 'del', gatewayOf(l2), 'dev', DEV6]);
    await n0.host.exec('bridge', ['fdb', 'del', macOf(l1), 'dev', DEV6, 'dst', l1.publicIp, 'self']);
    await waitConvergedV6(n0, othersOf(nodes, n0), 2 * RESYNC_MS + 1000, 'IPv6 drift repaired');
    expect(await unreachablePairs(pods, 6)).toEqual([]);
  });

  it('run(): a deleted twill-v6.1 is recreated at once with every entry replayed (twill.1 untouched), and pods talk IPv6 again', async () => {
    const n1 = nodes[1]!;
    const [before, v4Before] = [await linkDetails(n1.host, DEV6), await linkDetails(n1.host, DEV)];
    await n1.host.exec('ip', ['link', 'del', DEV6]);
    await waitConvergedV6(n1, othersOf(nodes, n1), 3000, 'twill-v6.1 recreated and replayed');
    const after = await linkDetails(n1.host, DEV6);
    expect(after?.ifindex).not.toBe(before?.ifindex);
    expect(after?.address).toBe(before?.address); // same MAC: peers' entries stay valid
    expect(after?.mtu).toBe(1430);
    expect(after?.addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).toContain('fd10:0:0:2::/128');
    expect((await linkDetails(n1.host, DEV))?.ifindex).toBe(v4Before?.ifindex);
    expect(await unreachablePairs(pods, 6)).toEqual([]);
    expect(await unreachablePairs(pods, 4)).toEqual([]);
  });

  it('a restarted agent keeps both devices, their MACs and every entry; the new instance adopts them', async () => {
    const n0 = nodes[0]!;
    const before = await linkDetails(n0.host, DEV6);
    await n0.stop!();
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(othersOf(nodes, n0))); // nothing removed on abort
    const ctx = await contextFor(n0.host, { ipv4: true, stateDir: n0.ctx.stateDir, resyncIntervalMs: 60_000 });
    n0.network = await startNetwork(ctx, n0);
    expect(leasesOf(n0, n0.network)).toEqual(n0.leases);
    expect((await linkDetails(n0.host, DEV6))?.ifindex).toBe(before?.ifindex);
    expect(await n0.network.sync(othersOf(nodes, n0))).toEqual({ changes: 0, skipped: [] });
    runLoop(n0);
    // Deleted again: only the link notification can bring it back within the test (60 s resync).
    await n0.host.exec('ip', ['link', 'del', DEV6]);
    await waitConvergedV6(n0, othersOf(nodes, n0), 3000, 'twill-v6.1 recreated from the link event');
    expect(await unreachablePairs(pods, 6)).toEqual([]);
  });

  it('a departed host\'s IPv6 neighbour, FDB entry and route go (its IPv4 ones with its IPv4 entry), and come back with it', async () => {
    const [n0, n1, n2] = nodes as [Node, Node, Node];
    const [v4of2, v6of2] = n2.leases as [RemoteLease, RemoteLease];
    // Its IPv6 entry alone leaves: exactly its three IPv6 entries go; IPv4 is untouched.
    expect(await n0.network.sync([...n1.leases, v4of2])).toEqual({ changes: 3, skipped: [] });
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(n1.leases));
    expect(await routesV4(n0.host)).toEqual([`10.244.2.0/24 via 10.244.2.0 dev ${DEV}`, `10.244.3.0/24 via 10.244.3.0 dev ${DEV}`]);
    // The whole host leaves.
    expect(await n0.network.sync(n1.leases)).toEqual({ changes: 3, skipped: [] });
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(n1.leases));
    expect(await routesV4(n0.host)).toEqual([`10.244.2.0/24 via 10.244.2.0 dev ${DEV}`]);
    expect(await n0.network.sync([...n1.leases, v4of2, v6of2])).toEqual({ changes: 6, skipped: [] });
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(othersOf(nodes, n0)));
  });

  it('skips an IPv6 entry with unusable BackendV6Data, with a reason, and programs the others', async () => {
    const n0 = nodes[0]!;
    const bad: RemoteLease[] = [
      { subnet: 'fd10:0:0:50::/64', publicIp: 'fd00:18::50', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'nope' } },
      { subnet: 'fd10:0:0:51::/64', publicIp: 'fd00:18::51', backendType: 'vxlan', backendData: { VNI: 2, VtepMAC: '02:00:00:00:00:51' } },
      { subnet: 'fd10:0:0:52::/64', publicIp: '198.18.0.52', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:52' } },
    ];
    const report = await n0.network.sync([...bad, ...othersOf(nodes, n0)]);
    expect(report).toEqual({
      changes: 0,
      skipped: [
        { subnet: 'fd10:0:0:50::/64', reason: 'BackendV6Data VtepMAC "nope" is not a MAC address' },
        { subnet: 'fd10:0:0:51::/64', reason: 'BackendV6Data VNI 2 differs from this network\'s VNI 1' },
        { subnet: 'fd10:0:0:52::/64', reason: 'PublicIPv6 198.18.0.52 is not IPv6' },
      ],
    });
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(othersOf(nodes, n0)));
  });

  it('DirectRouting: a peer whose PublicIPv6 is on-link gets a plain route via it on eth0; an off-link one is encapsulated', async () => {
    const n0 = nodes[0]!;
    const normal = n0.network;
    await n0.stop!();
    const direct = await startNetwork(await contextFor(n0.host, { ipv4: true, stateDir: n0.ctx.stateDir, resyncIntervalMs: 60_000 }), n0, { DirectRouting: true });
    const far: RemoteLease = { subnet: 'fd10:0:0:99::/64', publicIp: 'fd00:19::99', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:99' } };
    const peers = [...othersOf(nodes, n0), far];
    // Four routes replaced (both families), eight neighbours and FDB entries removed, far's three entries written.
    expect(await direct.sync(peers)).toEqual({ changes: 4 + 8 + 3, skipped: [] });
    expect(await kernelStateV6(n0.host)).toEqual({
      neigh: ['fd10:0:0:99:: lladdr 02:00:00:00:00:99 PERMANENT'],
      fdb: ['02:00:00:00:00:99 dst fd00:19::99 self permanent'],
      routes: ['fd10:0:0:2::/64 via fd00:18::2 dev eth0 ', 'fd10:0:0:3::/64 via fd00:18::3 dev eth0 ', `fd10:0:0:99::/64 via fd10:0:0:99:: dev ${DEV6} onlink`],
    });
    expect(await unreachablePairs(pods, 6)).toEqual([]); // out directly, back through the peers' tunnels

    n0.network = normal;
    expect(await normal.sync(othersOf(nodes, n0))).toEqual({ changes: 4 + 8 + 3, skipped: [] });
    expect(await kernelStateV6(n0.host)).toEqual(expectedV6(othersOf(nodes, n0)));
    runLoop(n0);
  });

  it('an IPv4-only network deletes the twill-v6.1 a dual-stack run left (it is Twill\'s), and keeps twill.1 and its entries', async () => {
    const n2 = nodes[2]!;
    await n2.stop!();
    const v4Before = await linkDetails(n2.host, DEV);
    const ctx = await contextFor(n2.host, { ipv4: true, stateDir: n2.ctx.stateDir });
    const v4only: BackendContext = { ...ctx, clusterNetworkV6: undefined };
    const network = await vxlanBackend.register(v4only, vxlanBackend.parseOptions({}));
    await network.start({ subnet: n2.subnet, publicIp: n2.host.underlayIp });
    expect(await linkDetails(n2.host, DEV6)).toBeUndefined();
    expect(network.leaseDataV6).toBeUndefined();
    expect([network.mtu, network.leaseData]).toEqual([1450, n2.leases[0]!.backendData]);
    expect((await linkDetails(n2.host, DEV))?.ifindex).toBe(v4Before?.ifindex);
    expect(await n2.host.json<unknown[]>(['-6', 'route', 'show', 'proto', String(RTPROT_TWILL)])).toEqual([]);
    expect(await network.sync(othersOf(nodes, n2))).toEqual({
      changes: 0,
      skipped: othersOf(nodes, n2).filter((l) => l.subnet.includes(':')).map((l) => ({ subnet: l.subnet, reason: 'the network config does not enable IPv6' })),
    });
  });
});

describe.skipIf(!isRoot)('vxlan backend over IPv6: IPv6-only', () => {
  useCleanup();

  it('hosts without IPv4 get twill-v6.1 only, publish no BackendData, and their pods ping each other over IPv6', async () => {
    const { cluster, nodes } = await vxlanCluster(false);
    for (const n of nodes) {
      expect(n.network.leaseData).toBeUndefined();
      expect(n.network.leaseDataV6).toEqual({ VNI: 1, VtepMAC: deriveVtepMac(n.host.underlayIpv6!, 1) });
      expect(n.network.mtu).toBe(1430);
      expect(await linkDetails(n.host, DEV)).toBeUndefined();
      expect(n.leases).toHaveLength(1);
    }
    const reports = await Promise.all(nodes.map((n) => n.network.sync(othersOf(nodes, n))));
    expect(reports).toEqual(nodes.map(() => ({ changes: 6, skipped: [] })));
    for (const n of nodes) expect(await kernelStateV6(n.host)).toEqual(expectedV6(othersOf(nodes, n)));
    const pods = await addPods(cluster, nodes);
    expect(await unreachablePairs(pods, 6)).toEqual([]);
  });
});

describe.skipIf(!isRoot)('vxlan backend over IPv6: taking over flannel-v6.1', () => {
  useCleanup();

  it('adopts flannel-v6.1\'s MAC for BackendV6Data, keeps it until the first sync, then swaps it for twill-v6.1 and removes flannel\'s IPv6 DirectRouting route', async () => {
    const cluster = await createCluster({ hosts: 1, underlayCidrV6: UNDERLAY_V6 });
    const host = cluster.hosts[0]!;
    const flannelMac = '7e:2b:4c:11:22:66';
    await host.exec('ip', ['link', 'add', 'flannel-v6.1', 'address', flannelMac, 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'local', 'fd00:18::1', 'dev', 'eth0', 'nolearning']);
    await host.exec('ip', ['link', 'set', 'flannel-v6.1', 'up']);
    await host.exec('ip', ['-6', 'route', 'add', 'fd10:0:0:3::/64', 'via', 'fd00:18::3', 'dev', 'eth0']); // flanneld's DirectRouting, proto boot
    const stateDir = tempDir('vxlan6-takeover');
    const node = { host, subnet: '10.244.1.0/24', subnetV6: 'fd10:0:0:1::/64' };
    const network = await startNetwork(await contextFor(host, { ipv4: true, stateDir }), node);
    expect(network.leaseDataV6).toEqual({ VNI: 1, VtepMAC: flannelMac });
    expect(await linkDetails(host, 'flannel-v6.1')).toBeDefined(); // still carries the traffic
    expect(await linkDetails(host, DEV6)).toBeUndefined();
    expect(await linkDetails(host, DEV)).toBeDefined();

    const peer = { subnet: 'fd10:0:0:2::/64', publicIp: 'fd00:19::2', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:06:02' } };
    expect((await network.sync([peer])).skipped).toEqual([]);
    expect(await linkDetails(host, 'flannel-v6.1')).toBeUndefined();
    expect((await linkDetails(host, DEV6))?.address).toBe(flannelMac);
    expect(await host.json<unknown[]>(['-6', 'route', 'show', 'fd10:0:0:3::/64'])).toEqual([]);
    expect(await kernelStateV6(host)).toEqual(expectedV6([peer]));
    // A restart publishes the adopted MAC again (the record in the state directory).
    const again = await startNetwork(await contextFor(host, { ipv4: true, stateDir }), node);
    expect(again.leaseDataV6).toEqual({ VNI: 1, VtepMAC: flannelMac });
  });
});
