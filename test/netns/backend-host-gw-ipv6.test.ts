/**
 * host-gw over IPv6 (issue 17): dual-stack and IPv6-only clusters of host namespaces on one L2
 * segment with an IPv4 and an IPv6 underlay. Each remote lease reaches the backend as one entry
 * per family (the agent splits them); IPv6 subnets are routed via the remote PublicIPv6.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { hostGwBackend } from '../../src/backends/host-gw/host-gw.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { Netlink, RTPROT_TWILL } from '../../src/netlink/index.js';
import { cleanup } from '../helpers/cleanup.js';
import { createCluster, type Cluster, type Host, type Pod } from '../helpers/cluster.js';
import { addBridgePods, unreachablePairs } from '../helpers/dual-stack-pods.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const CLUSTER_NETWORK = '10.244.0.0/16';
const CLUSTER_NETWORK_V6 = 'fd10::/48';
const UNDERLAY_V6 = 'fd00:18::/64';
const RESYNC_MS = 200;

interface Node {
  readonly host: Host;
  readonly network: Network;
  /** This host's lease as the agent hands it to the others: one entry per family. */
  readonly leases: readonly RemoteLease[];
  readonly subnet: string | undefined;
  readonly subnetV6: string;
}

async function contextFor(host: Host, opts: { ipv4: boolean; publicIpv6?: string }): Promise<BackendContext> {
  const nl = Netlink.open(host.netnsPath);
  host.onDestroy('close the backend\'s netlink handle', () => nl.close());
  const eth0 = await nl.requireLink('eth0');
  const v4 = opts.ipv4 ? host.underlayIp : undefined;
  return {
    log: pino({ level: 'silent' }),
    netlink: nl,
    extIface: {
      name: 'eth0', index: eth0.index, mtu: eth0.mtu, address: v4, publicIp: v4,
      ipv6Address: host.underlayIpv6, publicIpv6: opts.publicIpv6 ?? host.underlayIpv6,
    },
    clusterNetwork: opts.ipv4 ? CLUSTER_NETWORK : undefined,
    clusterNetworkV6: CLUSTER_NETWORK_V6,
    stateDir: '/nonexistent/twill-state',
    resyncIntervalMs: RESYNC_MS,
  };
}

/** A cluster of `hosts` with a started host-gw network each: dual-stack, or IPv6-only (no IPv4 anywhere). */
async function hostGwCluster(hosts: number, ipv4: boolean): Promise<{ cluster: Cluster; nodes: Node[] }> {
  const cluster = await createCluster({ hosts, underlayCidrV6: UNDERLAY_V6, underlayIpv4: ipv4 });
  const nodes = await Promise.all(cluster.hosts.map(async (host): Promise<Node> => {
    const network = await hostGwBackend.register(await contextFor(host, { ipv4 }), {});
    const subnet = ipv4 ? `10.244.${host.index + 1}.0/24` : undefined;
    const subnetV6 = `fd10:0:0:${host.index + 1}::/64`;
    await network.start({ subnet, publicIp: ipv4 ? host.underlayIp : undefined, ipv6Subnet: subnetV6, publicIpv6: host.underlayIpv6 });
    const leases: RemoteLease[] = [{ subnet: subnetV6, publicIp: host.underlayIpv6!, backendType: 'host-gw', backendData: null }];
    if (subnet !== undefined) leases.unshift({ subnet, publicIp: host.underlayIp, backendType: 'host-gw', backendData: null });
    return { host, network, leases, subnet, subnetV6 };
  }));
  return { cluster, nodes };
}

const othersOf = (nodes: readonly Node[], self: Node): RemoteLease[] => nodes.filter((n) => n !== self).flatMap((n) => n.leases);

async function syncAll(nodes: readonly Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.network.sync(othersOf(nodes, n))));
}

/** Twill's routes of both families, as `ip -j [-6] route show proto 84` reports them. */
async function twillRoutes(host: Host): Promise<string[]> {
  const routes = [...await host.routes(['proto', String(RTPROT_TWILL)]), ...await host.json<{ dst: string; gateway?: string; dev?: string }[]>(['-6', 'route', 'show', 'proto', String(RTPROT_TWILL)])];
  return routes.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).sort();
}

function expectedRoutes(nodes: readonly Node[], self: Node): string[] {
  return nodes.filter((n) => n !== self).flatMap((n) => [
    ...(n.subnet === undefined ? [] : [`${n.subnet} via ${n.host.underlayIp} dev eth0`]),
    `${n.subnetV6} via ${n.host.underlayIpv6!} dev eth0`,
  ]).sort();
}

/** Two pods per host on cni0, with an address of each of the host's subnets. */
async function addPods(cluster: Cluster, nodes: readonly Node[]): Promise<Pod<Host>[]> {
  return (await Promise.all(nodes.map((n) => addBridgePods(cluster, n.host, { v4: n.subnet, v6: n.subnetV6 })))).flat();
}

describe.skipIf(!isRoot)('host-gw backend over IPv6', () => {
  useCleanup();

  it('dual-stack: routes IPv4 subnets via PublicIP and IPv6 subnets via PublicIPv6; 3 hosts x 2 pods ping each other over both', async () => {
    expect(hostGwBackend.supportsIpv6).toBe(true);
    const { cluster, nodes } = await hostGwCluster(3, true);
    const reports = await Promise.all(nodes.map((n) => n.network.sync(othersOf(nodes, n))));
    expect(reports).toEqual(nodes.map(() => ({ changes: 4, skipped: [] })));
    expect(await twillRoutes(nodes[0]!.host)).toEqual([
      '10.244.2.0/24 via 198.18.0.2 dev eth0', '10.244.3.0/24 via 198.18.0.3 dev eth0',
      'fd10:0:0:2::/64 via fd00:18::2 dev eth0', 'fd10:0:0:3::/64 via fd00:18::3 dev eth0',
    ]);
    for (const n of nodes) expect(await twillRoutes(n.host)).toEqual(expectedRoutes(nodes, n));
    expect(await nodes[0]!.network.sync(othersOf(nodes, nodes[0]!))).toEqual({ changes: 0, skipped: [] });

    const pods = await addPods(cluster, nodes);
    expect(await unreachablePairs(pods, 4)).toEqual([]);
    expect(await unreachablePairs(pods, 6)).toEqual([]);
  });

  it('IPv6-only: hosts without IPv4 route every IPv6 subnet and pods ping over IPv6; an IPv4 entry is refused with the reason', async () => {
    const { cluster, nodes } = await hostGwCluster(3, false);
    await syncAll(nodes);
    for (const n of nodes) expect(await twillRoutes(n.host)).toEqual(expectedRoutes(nodes, n));
    expect((await nodes[0]!.host.routes([])).filter((r) => r.dst.startsWith('10.'))).toEqual([]);
    const stray: RemoteLease = { subnet: '10.244.9.0/24', publicIp: '198.18.0.9', backendType: 'host-gw', backendData: null };
    const report = await nodes[0]!.network.sync([...othersOf(nodes, nodes[0]!), stray]);
    expect(report.skipped).toEqual([{ subnet: '10.244.9.0/24', reason: 'the network config does not enable IPv4' }]);

    const pods = await addPods(cluster, nodes);
    expect(await unreachablePairs(pods, 6)).toEqual([]);
  });

  it('IPv6 entries: skipped off-link, outside the network or with an IPv4 PublicIPv6; drift repaired; a departed host\'s IPv6 route removed', async () => {
    const { nodes } = await hostGwCluster(3, true);
    const [a, b, c] = nodes as [Node, Node, Node];
    const bad: RemoteLease[] = [
      { subnet: 'fd10:0:0:9::/64', publicIp: '2001:db8::9', backendType: 'host-gw', backendData: null },
      { subnet: 'fd99:0:0:9::/64', publicIp: 'fd00:18::2', backendType: 'host-gw', backendData: null },
      { subnet: 'fd10:0:0:8::/64', publicIp: '198.18.0.2', backendType: 'host-gw', backendData: null },
    ];
    const report = await a.network.sync([...othersOf(nodes, a), ...bad]);
    expect(report.skipped).toEqual([
      { subnet: 'fd10:0:0:8::/64', reason: 'PublicIPv6 198.18.0.2 is not IPv6' },
      { subnet: 'fd10:0:0:9::/64', reason: '2001:db8::9 is not on a directly connected network of eth0: host-gw needs every host on one L2 segment' },
      { subnet: 'fd99:0:0:9::/64', reason: 'the subnet is outside the cluster network fd10::/48' },
    ]);
    const want = expectedRoutes(nodes, a);
    expect(await twillRoutes(a.host)).toEqual(want);

    // Drift: a hand-deleted IPv6 route comes back; a stray IPv6 route of Twill's protocol goes.
    const ac = new AbortController();
    const running = a.network.run(ac.signal);
    cleanup.defer('stop host-gw run()', async () => { ac.abort(); await running; });
    await a.host.exec('ip', ['-6', 'route', 'del', b.subnetV6]);
    await a.host.exec('ip', ['-6', 'route', 'add', 'fd10:0:0:99::/64', 'via', 'fd00:18::3', 'dev', 'eth0', 'proto', '84']);
    await waitFor(async () => JSON.stringify(await twillRoutes(a.host)) === JSON.stringify(want), { timeoutMs: 10 * RESYNC_MS, what: 'IPv6 drift repaired' });

    // Host c leaves: both of its routes go, b's stay.
    expect(await a.network.sync(b.leases)).toEqual({ changes: 2, skipped: [] });
    expect(await twillRoutes(a.host)).toEqual(expectedRoutes([a, b], a));
    expect(c.leases).toHaveLength(2);
  });

  it('refuses a --public-ipv6 that is not the interface\'s IPv6 address (host-gw cannot route through NAT)', async () => {
    const cluster = await createCluster({ hosts: 1, underlayCidrV6: UNDERLAY_V6 });
    const ctx = await contextFor(cluster.hosts[0]!, { ipv4: true, publicIpv6: '2001:db8::77' });
    const err = await hostGwBackend.register(ctx, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^invalid --public-ipv6 "2001:db8::77": differs from eth0's IPv6 address fd00:18::1/);
  });
});
