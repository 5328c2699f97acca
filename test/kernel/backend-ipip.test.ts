import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { ipipBackend } from '../../src/backends/ipip/ipip.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { backendContext, runLoop as runLoopIn, type BackendNode } from '../helpers/backend-context.js';
import { cleanup, CleanupRegistry } from '../helpers/cleanup.js';
import { createCluster, type Cluster, type Host } from '../helpers/cluster.js';
import type { IpLinkJson } from '../helpers/exec.js';
import { kernelHasIpip } from '../helpers/kernel-features.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// The ipip backend on a kernel that has IPIP: run with `npm run test:kernel -- test/kernel/backend-ipip.test.ts`
// (this machine's own kernel lacks it; the VM harness boots one that has it).
//
//   segment A 198.18.0.0/24: host a0 (.1), host a1 (.2), router (.254)
//   segment B 198.18.1.0/24: host b0 (.1), router (.254)
//
// a0 and a1 share an L2 segment; b0 is reached through the router, as a host in another rack.

const CLUSTER_NETWORK = '10.244.0.0/16';
const RESYNC_MS = 300;
const DEV = 'twill.ipip';

type Node = BackendNode;

const loops = new CleanupRegistry('ipip run() loops');

const runLoop = (node: Node): void => { runLoopIn(loops, node); };

async function startNetwork(ctx: BackendContext, subnet: string, options: Record<string, unknown> = {}): Promise<Network> {
  const network = await ipipBackend.register(ctx, ipipBackend.parseOptions(options));
  await network.start({ subnet, publicIp: ctx.extIface.publicIp });
  return network;
}

/** Twill's routes on a host as `ip -j route` words them: "<dst> via <gw> dev <dev> <flags>". */
async function twillRoutes(host: Host): Promise<string[]> {
  const routes = await host.routes(['proto', String(RTPROT_TWILL)]);
  return routes.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'} ${r.flags.join(',')}`.trimEnd()).sort();
}

const tunnelled = (peer: Node): string => `${peer.subnet} via ${peer.host.underlayIp} dev ${DEV} onlink`;
const direct = (peer: Node): string => `${peer.subnet} via ${peer.host.underlayIp} dev eth0`;

async function device(host: Host): Promise<IpLinkJson> {
  // -4: the kernel also gives an IPIP device an IPv6 link-local address; the /32 is what Twill adds.
  const [link] = await host.json<IpLinkJson[]>(['-4', '-d', 'addr', 'show', 'dev', DEV]);
  if (!link) throw new Error(`${DEV} missing in ${host.name}`);
  return link;
}

async function expectAllPodsReachable(nodes: readonly Node[], timeoutMs = 5000): Promise<void> {
  await Promise.all(nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) =>
    waitFor(() => a.pod.ping(b.pod.ip!), { timeoutMs, intervalMs: 100, what: `${a.pod.ip} -> ${b.pod.ip}` }))));
}

/** Joins `router` to a cluster's underlay bridge with `cidr` and routes the cluster's hosts to `other` through it. */
async function attachRouter(router: TestNetns, cluster: Cluster, ifname: string, cidr: string, other: string): Promise<void> {
  await connectNetns(router, cluster.underlay, { a: { ifname, cidr }, b: { ifname: `r-${ifname}` } });
  await cluster.underlay.netlink((nl) => nl.setMaster(`r-${ifname}`, cluster.bridge));
  const gateway = cidr.split('/')[0]!;
  for (const host of cluster.hosts) await host.exec('ip', ['route', 'add', other, 'via', gateway]);
}

describe.skipIf(!isRoot)('ipip backend', () => {
  useCleanup();
  let nodes: Node[];

  beforeAll(async () => {
    if (!await kernelHasIpip()) throw new Error('this kernel has no IPIP: run this file with `npm run test:kernel` (test/vm)');
    const segmentA = await createCluster({ hosts: 2, underlayCidr: '198.18.0.0/24' });
    const segmentB = await createCluster({ hosts: 1, underlayCidr: '198.18.1.0/24' });
    const router = await createTestNetns('router');
    router.writeSysctl('net/ipv4/ip_forward', 1);
    await attachRouter(router, segmentA, 'a0', '198.18.0.254/24', '198.18.1.0/24');
    await attachRouter(router, segmentB, 'b0', '198.18.1.254/24', '198.18.0.0/24');
    cleanup.defer('stop the ipip run() loops', () => loops.runAll());
    const hosts = [...segmentA.hosts, ...segmentB.hosts];
    nodes = await Promise.all(hosts.map(async (host, k): Promise<Node> => {
      const i = k + 1;
      await host.netlink(async (nl) => {
        await nl.createBridge({ name: 'cni0' });
        await nl.addAddress('cni0', `10.244.${i}.1/24`);
        await nl.setUp('cni0');
      });
      const cluster = k < 2 ? segmentA : segmentB;
      const pod = await cluster.addPod(host, { ip: `10.244.${i}.2/24`, gateway: `10.244.${i}.1`, bridge: 'cni0' });
      const ctx = await backendContext(host, { clusterNetwork: CLUSTER_NETWORK, resyncIntervalMs: RESYNC_MS });
      const subnet = `10.244.${i}.0/24`;
      const network = await startNetwork(ctx, subnet);
      return { host, ctx, subnet, pod, network, lease: { subnet, publicIp: host.underlayIp, backendType: 'ipip', backendData: null }, stop: undefined };
    }));
  });

  const peersOf = (self: Node): RemoteLease[] => nodes.filter((n) => n !== self).map((n) => n.lease);
  const syncAll = async (): Promise<void> => {
    for (const r of await Promise.all(nodes.map((n) => n.network.sync(peersOf(n))))) expect(r.skipped).toEqual([]);
  };

  it('creates twill.ipip as flannel would: local = eth0\'s address, MTU 1500-20, the subnet\'s /32, up; no lease data', async () => {
    for (const n of nodes) {
      const link = await device(n.host);
      expect(link.linkinfo?.info_kind).toBe('ipip');
      expect(link.linkinfo?.info_data).toMatchObject({ local: n.host.underlayIp, remote: 'any' });
      expect(link.mtu).toBe(1480);
      expect(link.flags).toContain('UP');
      expect(link.addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${n.subnet.replace('/24', '')}/32`]);
      expect(n.network.mtu).toBe(1480);
      expect(n.network.leaseData).toBeNull();
    }
  });

  it('routes every peer through the tunnel with nexthop objects of protocol 84; a second sync changes nothing', async () => {
    await syncAll();
    for (const n of nodes) {
      expect(await twillRoutes(n.host)).toEqual(nodes.filter((p) => p !== n).map(tunnelled).sort());
      const nexthops = await n.host.json<{ id: number; gateway: string; dev: string; protocol: string }[]>(['nexthop', 'show', 'proto', String(RTPROT_TWILL)]);
      expect(nexthops.map((h) => `${h.gateway} ${h.dev}`).sort()).toEqual(nodes.filter((p) => p !== n).map((p) => `${p.host.underlayIp} ${DEV}`).sort());
      expect(await n.network.sync(peersOf(n))).toEqual({ changes: 0, skipped: [] });
    }
  });

  it('carries pod traffic between every pair of hosts, across the router too, encapsulated', async () => {
    const [a0] = nodes as [Node, Node, Node];
    const before = await tunnelPackets(a0.host);
    await expectAllPodsReachable(nodes);
    expect(await tunnelPackets(a0.host)).toBeGreaterThan(before);
  });

  it('DirectRouting: the peer on the same segment gets a plain route via eth0; the one behind the router goes through the tunnel', async () => {
    const [a0, a1, b0] = nodes as [Node, Node, Node];
    const plain = nodes.map((n) => n.network);
    for (const n of nodes) n.network = await startNetwork(n.ctx, n.subnet, { DirectRouting: true });
    await syncAll();
    expect(await twillRoutes(a0.host)).toEqual([direct(a1), tunnelled(b0)].sort());
    expect(await twillRoutes(a1.host)).toEqual([direct(a0), tunnelled(b0)].sort());
    expect(await twillRoutes(b0.host)).toEqual([tunnelled(a0), tunnelled(a1)].sort());
    await expectAllPodsReachable(nodes);
    // Back to the tunnel for everyone.
    nodes.forEach((n, k) => { n.network = plain[k]!; });
    await syncAll();
    for (const n of nodes) expect(await twillRoutes(n.host)).toEqual(nodes.filter((p) => p !== n).map(tunnelled).sort());
  });

  it('run(): a route deleted by hand comes back within one resync; a deleted twill.ipip is recreated at once with address and routes', async () => {
    const [a0, a1, b0] = nodes as [Node, Node, Node];
    runLoop(a0);
    onTestFinished(() => a0.stop?.());
    const want = [tunnelled(a1), tunnelled(b0)].sort();
    // `ip route del` fails when the route is missing, so the deletion itself is checked; looking at the
    // table afterwards would race the 300 ms resync that may already have put it back.
    await a0.host.exec('ip', ['route', 'del', a1.subnet]);
    await waitFor(async () => JSON.stringify(await twillRoutes(a0.host)) === JSON.stringify(want), { timeoutMs: RESYNC_MS * 2 + 500, intervalMs: 20, what: 'the deleted route back' });

    await a0.host.exec('ip', ['link', 'del', DEV]);
    await waitFor(async () => JSON.stringify(await twillRoutes(a0.host)) === JSON.stringify(want), { timeoutMs: 3000, intervalMs: 20, what: `${DEV} and its routes back` });
    expect((await device(a0.host)).addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.244.1.0/32']);
    await expectAllPodsReachable(nodes);
  });

  it('removes a peer\'s route when its lease leaves the desired set, and leaves tunl0 and other IPIP devices alone', async () => {
    const [a0, a1, b0] = nodes as [Node, Node, Node];
    // A tunnel of somebody else's, and the kernel's fallback device that loading ipip creates.
    await a0.host.exec('ip', ['link', 'add', 'other0', 'type', 'ipip', 'local', '198.18.0.1', 'remote', '198.18.9.9']);
    await a0.host.exec('ip', ['link', 'set', 'other0', 'up']);
    await a0.host.exec('ip', ['route', 'add', '10.99.0.0/24', 'dev', 'other0']);
    const foreign = async (): Promise<unknown> => ({
      links: (await a0.host.json<IpLinkJson[]>(['-d', 'link', 'show'])).filter((l) => l.ifname === 'other0' || l.ifname === 'tunl0')
        .map((l) => ({ name: l.ifname, flags: l.flags, mtu: l.mtu, data: l.linkinfo?.info_data })),
      routes: await a0.host.routes(['dev', 'other0']),
    });
    const untouched = await foreign();
    expect(JSON.stringify(untouched)).toContain('tunl0');

    expect(await a0.network.sync([b0.lease])).toEqual({ changes: 1, skipped: [] });
    expect(await twillRoutes(a0.host)).toEqual([tunnelled(b0)]);
    runLoop(a0);
    onTestFinished(() => a0.stop?.());
    expect(await a0.network.sync([a1.lease, b0.lease])).toEqual({ changes: 1, skipped: [] });
    await a0.stop!();
    expect(await foreign()).toEqual(untouched);
    await a0.host.exec('ip', ['link', 'del', 'other0']);
  });
});

describe.skipIf(!isRoot)('ipip backend on a fresh host', () => {
  useCleanup();

  it('sits beside flanneld\'s flannel.ipip (same local address, no underlay device) without touching it; names a tunnel that does collide', async () => {
    if (!await kernelHasIpip()) throw new Error('this kernel has no IPIP: run this file with `npm run test:kernel` (test/vm)');
    const cluster = await createCluster({ hosts: 1 });
    const host = cluster.hosts[0]!;
    const ctx = await backendContext(host, { clusterNetwork: CLUSTER_NETWORK });
    const flannelDevice = async (): Promise<unknown> => {
      const [link] = await host.json<IpLinkJson[]>(['-d', 'link', 'show', 'dev', 'flannel.ipip']);
      return { index: link?.ifindex, mtu: link?.mtu, flags: link?.flags, data: link?.linkinfo?.info_data };
    };
    // flanneld creates flannel.ipip with a local address and no underlay device; the kernel keys
    // an IPIP tunnel by local address, remote address and underlay device, and twill.ipip is bound
    // to eth0, so both can exist while a host moves from flannel to Twill.
    await host.exec('ip', ['link', 'add', 'flannel.ipip', 'mtu', '1480', 'type', 'ipip', 'local', host.underlayIp]);
    const before = await flannelDevice();
    const network = await startNetwork(ctx, '10.244.7.0/24', { MTU: 1400 });
    expect((await device(host)).mtu).toBe(1400);
    expect(network.mtu).toBe(1400);
    expect(await flannelDevice()).toEqual(before);
    await host.exec('ip', ['link', 'del', DEV]);

    // A tunnel bound to eth0 with the same local address does collide: the error names it and it stays.
    await host.exec('ip', ['link', 'add', 'other.ipip', 'type', 'ipip', 'local', host.underlayIp, 'dev', 'eth0']);
    await expect(ipipBackend.register(ctx, ipipBackend.parseOptions({})))
      .rejects.toThrow(/cannot create twill\.ipip: other\.ipip already is an IPIP tunnel from 198\.18\.0\.1 on the same interface.*ip link delete other\.ipip/);
    expect((await host.json<IpLinkJson[]>(['link', 'show'])).map((l) => l.ifname)).toEqual(expect.arrayContaining(['other.ipip', 'flannel.ipip']));
    expect((await host.json<IpLinkJson[]>(['link', 'show'])).map((l) => l.ifname)).not.toContain(DEV);
  });
});

/** Packets twill.ipip has sent (`ip -s link`). */
async function tunnelPackets(host: Host): Promise<number> {
  const [link] = await host.json<{ stats64?: { tx: { packets: number } } }[]>(['-s', 'link', 'show', 'dev', DEV]);
  return link?.stats64?.tx.packets ?? 0;
}
