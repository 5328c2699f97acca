/**
 * Event-driven drift repair (issue 18): with a full resync far beyond the test (10 min), an entry
 * of Twill's deleted by hand - route, neighbour, FDB entry, nexthop, of either family - is written
 * again because the kernel said it was deleted. What is not Twill's to restore stays as it is: a
 * route somebody else put in the deleted route's place, and the entries of a lease that left.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Network, RemoteLease } from '../../src/backends/backend.js';
import { hostGwBackend } from '../../src/backends/host-gw/host-gw.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { backendContext, runLoop } from '../helpers/backend-context.js';
import { cleanup, CleanupRegistry } from '../helpers/cleanup.js';
import { createCluster, type Host } from '../helpers/cluster.js';
import { ipJson } from '../helpers/exec.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const NEVER_MS = 600_000;
const DEV = 'twill.1';
/** Far below the 10 min resync: only a notification can bring an entry back this soon. */
const REPAIR_WITHIN_MS = 3000;

interface Node { host: Host; network: Network; lease: RemoteLease; stop: (() => Promise<void>) | undefined }

const loops = new CleanupRegistry('drift-events run() loops');
const gatewayOf = (lease: RemoteLease): string => lease.subnet.replace(/\/\d+$/, '');
const macOf = (lease: RemoteLease): string => (lease.backendData as { VtepMAC: string }).VtepMAC;

async function twillRoutes(host: Host, family: 4 | 6 = 4): Promise<string[]> {
  const routes = await host.json<{ dst: string; gateway?: string; dev?: string; nhid?: number }[]>([`-${family}`, 'route', 'show', 'proto', String(RTPROT_TWILL)]);
  return routes.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).sort();
}

async function overlayState(host: Host): Promise<{ routes: string[]; neigh: string[]; fdb: string[] }> {
  const neigh = await host.json<{ dst: string; lladdr?: string }[]>(['neigh', 'show', 'dev', DEV, 'nud', 'permanent']);
  const fdb = await ipJson<{ mac: string; dst?: string }[]>(host.name, ['fdb', 'show', 'dev', DEV], 'bridge');
  return {
    routes: await twillRoutes(host),
    neigh: neigh.map((n) => `${n.dst} ${n.lladdr ?? '-'}`).sort(),
    fdb: fdb.filter((e) => e.dst !== undefined).map((e) => `${e.mac} ${e.dst ?? '-'}`).sort(),
  };
}

describe.skipIf(!isRoot)('event-driven drift repair: vxlan', () => {
  useCleanup();
  let nodes: Node[];
  let converged: { routes: string[]; neigh: string[]; fdb: string[] };
  const peersOf = (self: Node): RemoteLease[] => nodes.filter((n) => n !== self).map((n) => n.lease);
  const waitRepaired = async (what: string): Promise<void> => { await waitFor(async () => JSON.stringify(await overlayState(nodes[0]!.host)) === JSON.stringify(converged),
    { timeoutMs: REPAIR_WITHIN_MS, intervalMs: 20, what }); };

  beforeAll(async () => {
    const cluster = await createCluster({ hosts: 3 });
    cleanup.defer('stop the run() loops', () => loops.runAll());
    nodes = await Promise.all(cluster.hosts.map(async (host): Promise<Node> => {
      const ctx = await backendContext(host, { resyncIntervalMs: NEVER_MS });
      const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
      const subnet = `10.244.${host.index + 1}.0/24`;
      await network.start({ subnet, publicIp: host.underlayIp });
      return { host, network, stop: undefined, lease: { subnet, publicIp: host.underlayIp, backendType: 'vxlan', backendData: JSON.parse(JSON.stringify(network.leaseData)) } };
    }));
    for (const n of nodes) expect((await n.network.sync(peersOf(n))).skipped).toEqual([]);
    for (const n of nodes) runLoop(loops, n);
    converged = await overlayState(nodes[0]!.host);
    expect(converged.routes).toHaveLength(2);
    expect(converged.neigh).toHaveLength(2);
    expect(converged.fdb).toHaveLength(2);
  });

  it('writes a deleted route, neighbour and FDB entry again at once, each on its own', async () => {
    const [n0, n1, n2] = nodes as [Node, Node, Node];
    await n0.host.exec('ip', ['route', 'del', n1.lease.subnet]);
    await waitRepaired('route written again');
    await n0.host.exec('ip', ['neigh', 'del', gatewayOf(n2.lease), 'dev', DEV]);
    await waitRepaired('neighbour written again');
    await n0.host.exec('bridge', ['fdb', 'del', macOf(n1.lease), 'dev', DEV, 'dst', n1.host.underlayIp, 'self']);
    await waitRepaired('FDB entry written again');
  });

  it('writes a deleted nexthop and the route the kernel dropped with it again', async () => {
    const [n0, n1] = nodes as [Node, Node, Node];
    const [route] = await n0.host.json<{ nhid?: number }[]>(['route', 'show', n1.lease.subnet]);
    expect(route?.nhid).toBeDefined();
    await n0.host.exec('ip', ['nexthop', 'del', 'id', String(route!.nhid)]);
    await waitRepaired('nexthop and its route written again');
    const [after] = await n0.host.json<{ nhid?: number }[]>(['route', 'show', n1.lease.subnet]);
    expect(after?.nhid).toBe(route!.nhid);
  });

  it('repairs several deletions at once (every route of Twill\'s, deleted in one ip -batch)', async () => {
    const n0 = nodes[0]!;
    await n0.host.exec('ip', ['-batch', '-'], { input: peersOf(n0).map((l) => `route del ${l.subnet}\n`).join('') });
    await waitRepaired('deleted routes written again');
  });

  it('leaves a route somebody else took over, and does not undo a lease that left', async () => {
    const [n0, n1, n2] = nodes as [Node, Node, Node];
    await n0.host.exec('ip', ['route', 'replace', n1.lease.subnet, 'via', n2.host.underlayIp, 'dev', 'eth0', 'proto', 'static']);
    // The notifications were read (and the static route left alone) once the other peer's deleted route is back.
    await n0.host.exec('ip', ['route', 'del', n2.lease.subnet]);
    await waitFor(async () => (await twillRoutes(n0.host)).some((r) => r.startsWith(n2.lease.subnet)), { timeoutMs: REPAIR_WITHIN_MS, what: 'the other route back' });
    const [foreign] = await n0.host.json<{ protocol: string; gateway?: string }[]>(['route', 'show', n1.lease.subnet]);
    expect(foreign).toMatchObject({ protocol: 'static', gateway: n2.host.underlayIp });
    await n0.host.exec('ip', ['route', 'del', n1.lease.subnet, 'proto', 'static']);

    // n2's lease leaves: its entries go and stay gone (the deletions are Twill's own).
    await n0.network.sync([n1.lease]);
    await waitFor(async () => (await twillRoutes(n0.host)).some((r) => r.startsWith(n1.lease.subnet)), { timeoutMs: REPAIR_WITHIN_MS, what: 'n1 route back' });
    const left = await overlayState(n0.host);
    expect(left.routes.map((r) => r.split(' ')[0])).toEqual([n1.lease.subnet]);
    expect(left.neigh).toEqual([`${gatewayOf(n1.lease)} ${macOf(n1.lease)}`]);
    expect(left.fdb).toEqual([`${macOf(n1.lease)} ${n1.host.underlayIp}`]);
  });
});

describe.skipIf(!isRoot)('event-driven drift repair: host-gw over IPv6', () => {
  useCleanup();

  it('writes a deleted IPv6 route again at once', async () => {
    const cluster = await createCluster({ hosts: 2, underlayCidrV6: 'fd00:18::/64' });
    const hostLoops = new CleanupRegistry('host-gw run() loops');
    cleanup.defer('stop the host-gw run() loops', () => hostLoops.runAll());
    const nodes = await Promise.all(cluster.hosts.map(async (host) => {
      const base = await backendContext(host, { resyncIntervalMs: NEVER_MS });
      const ctx = { ...base, clusterNetworkV6: 'fd10::/48', extIface: { ...base.extIface, ipv6Address: host.underlayIpv6, publicIpv6: host.underlayIpv6 } };
      const network = await hostGwBackend.register(ctx, {});
      const subnet = `10.244.${host.index + 1}.0/24`;
      const subnetV6 = `fd10:0:0:${host.index + 1}::/64`;
      await network.start({ subnet, publicIp: host.underlayIp, ipv6Subnet: subnetV6, publicIpv6: host.underlayIpv6 });
      const leases: RemoteLease[] = [
        { subnet, publicIp: host.underlayIp, backendType: 'host-gw', backendData: null },
        { subnet: subnetV6, publicIp: host.underlayIpv6!, backendType: 'host-gw', backendData: null },
      ];
      return { host, network, leases, stop: undefined as (() => Promise<void>) | undefined };
    }));
    const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
    expect((await a.network.sync(b.leases)).skipped).toEqual([]);
    runLoop(hostLoops, a);
    const want = await twillRoutes(a.host, 6);
    expect(want).toEqual([`fd10:0:0:2::/64 via ${b.host.underlayIpv6} dev eth0`]);
    await a.host.exec('ip', ['-6', 'route', 'del', 'fd10:0:0:2::/64']);
    await waitFor(async () => JSON.stringify(await twillRoutes(a.host, 6)) === JSON.stringify(want), { timeoutMs: REPAIR_WITHIN_MS, intervalMs: 20, what: 'IPv6 route written again' });
    expect(await twillRoutes(a.host, 4)).toEqual([`10.244.2.0/24 via ${b.host.underlayIp} dev eth0`]);
  });
});
