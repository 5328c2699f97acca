import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { hostGwBackend } from '../../src/backends/host-gw/host-gw.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { Netlink, RTPROT_TWILL } from '../../src/netlink/index.js';
import { cleanup } from '../helpers/cleanup.js';
import { createCluster, type Cluster, type Host } from '../helpers/cluster.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

const CLUSTER_NETWORK = '10.244.0.0/16';
const RESYNC_MS = 200;

/** One host of the test cluster with its host-gw network, as the agent would hold it. */
interface Node {
  readonly host: Host;
  readonly network: Network;
  /** This host's lease, as the other hosts see it. */
  readonly lease: RemoteLease;
}

/** The context the agent builds: a netlink handle in the host, eth0 as the external interface. */
async function contextFor(host: Host, opts: { resyncIntervalMs?: number; publicIp?: string } = {}): Promise<BackendContext> {
  const nl = Netlink.open(host.netnsPath);
  host.onDestroy('close the backend\'s netlink handle', () => nl.close());
  const eth0 = await nl.requireLink('eth0');
  return {
    log: pino({ level: 'silent' }),
    netlink: nl,
    extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, address: host.underlayIp, publicIp: opts.publicIp ?? host.underlayIp },
    clusterNetwork: CLUSTER_NETWORK,
    stateDir: '/nonexistent/twill-state', // host-gw keeps no state
    resyncIntervalMs: opts.resyncIntervalMs ?? RESYNC_MS,
  };
}

/** A fresh cluster (gone after the test) with a started host-gw network on every host. */
async function hostGwCluster(hosts: number, opts: { resyncIntervalMs?: number } = {}): Promise<{ cluster: Cluster; nodes: Node[] }> {
  const cluster = await createCluster({ hosts });
  const nodes = await Promise.all(cluster.hosts.map(async (host): Promise<Node> => {
    const ctx = await contextFor(host, opts);
    const network = await hostGwBackend.register(ctx, hostGwBackend.parseOptions({}));
    const subnet = `10.244.${host.index + 1}.0/24`;
    await network.start({ subnet, publicIp: host.underlayIp });
    return { host, network, lease: { subnet, publicIp: host.underlayIp, backendType: 'host-gw', backendData: null } };
  }));
  return { cluster, nodes };
}

/** Each node syncs with every other node's lease, as the agent's lease watch would feed it. */
async function syncAll(nodes: readonly Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.network.sync(nodes.filter((o) => o !== n).map((o) => o.lease))));
}

/** Runs the network's loops until the end of the test (stopped before the namespaces go). */
function runUntilTestEnds(network: Network): AbortController {
  const ac = new AbortController();
  const running = network.run(ac.signal);
  cleanup.defer('stop host-gw run()', async () => {
    ac.abort();
    await running;
  });
  return ac;
}

/** Twill's routes in a host, as `ip -j route show proto 84` reports them. */
async function twillRoutes(host: Host): Promise<string[]> {
  const routes = await host.routes(['proto', String(RTPROT_TWILL)]);
  return routes.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).sort();
}

/** What host `i` should hold: a route to every other node's subnet via its underlay address. */
function expectedRoutes(nodes: readonly Node[], self: Node): string[] {
  return nodes.filter((n) => n !== self).map((n) => `${n.lease.subnet} via ${n.host.underlayIp} dev eth0`).sort();
}

describe.skipIf(!isRoot)('host-gw backend', () => {
  useCleanup();

  it('is registered as "host-gw", takes no options and refuses to run behind NAT', async () => {
    expect(registerBuiltins().get('host-gw')).toBe(hostGwBackend);
    expect(hostGwBackend.parseOptions({})).toEqual({});
    expect(() => hostGwBackend.parseOptions({ DirectRouting: true }))
      .toThrow(/host-gw backend option "DirectRouting": is not an option of the host-gw backend \(it takes no options\)/);

    const cluster = await createCluster({ hosts: 1 });
    const natted = await contextFor(cluster.hosts[0]!, { publicIp: '198.18.5.3' });
    const err = await hostGwBackend.register(natted, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe('invalid --public-ip "198.18.5.3": differs from eth0\'s address 198.18.0.1: the host-gw backend '
      + 'routes pod subnets via each host\'s own address, so it cannot work through NAT (use vxlan, or drop --public-ip)');

    const network = await hostGwBackend.register(await contextFor(cluster.hosts[0]!), {});
    expect(network.leaseData).toBeNull();
    expect(network.mtu).toBe(1500); // no encapsulation: the interface's own MTU
  });

  it('routes every remote subnet via its host\'s underlay address on eth0, and nothing else', async () => {
    const { nodes } = await hostGwCluster(3);
    const reports = await Promise.all(nodes.map((n) => n.network.sync(nodes.filter((o) => o !== n).map((o) => o.lease))));
    expect(reports).toEqual(nodes.map(() => ({ changes: 2, skipped: [] })));
    for (const node of nodes) expect(await twillRoutes(node.host)).toEqual(expectedRoutes(nodes, node));
    // e.g. host 0: 10.244.2.0/24 via 198.18.0.2 dev eth0, 10.244.3.0/24 via 198.18.0.3 dev eth0
    expect(await twillRoutes(nodes[0]!.host)).toEqual(['10.244.2.0/24 via 198.18.0.2 dev eth0', '10.244.3.0/24 via 198.18.0.3 dev eth0']);

    // Declarative and idempotent: the same set again writes nothing.
    const again = await nodes[0]!.network.sync([nodes[1]!.lease, nodes[2]!.lease]);
    expect(again).toEqual({ changes: 0, skipped: [] });
  });

  it('connects pods on three hosts (bridge cni0): every pod pings every other pod', async () => {
    const { cluster, nodes } = await hostGwCluster(3);
    await syncAll(nodes);
    const pods = await Promise.all(nodes.map(async (n, i) => {
      await n.host.netlink(async (nl) => {
        await nl.createBridge({ name: 'cni0' });
        await nl.addAddress('cni0', `10.244.${i + 1}.1/24`);
        await nl.setUp('cni0');
      });
      return cluster.addPod(n.host, { ip: `10.244.${i + 1}.2/24`, gateway: `10.244.${i + 1}.1`, bridge: 'cni0' });
    }));
    const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));
    const results = await Promise.all(pairs.map(async ({ from, to }) => ({
      path: `${from.ip} -> ${to.ip}`,
      ok: await waitFor(() => from.ping(to.ip!), { timeoutMs: 5000, what: `${from.ip} reaching ${to.ip}` }).then(() => true, () => false),
    })));
    expect(results.filter((r) => !r.ok).map((r) => r.path)).toEqual([]);
    expect(results).toHaveLength(6);
  });

  it('skips a remote that is not on a connected network of eth0 (and other unusable leases), with the reason; never fatal', async () => {
    const { nodes } = await hostGwCluster(2);
    const [a, b] = nodes as [Node, Node];
    const offLink: RemoteLease = { subnet: '10.244.9.0/24', publicIp: '198.19.9.9', backendType: 'host-gw', backendData: null };
    const vxlan: RemoteLease = { subnet: '10.244.8.0/24', publicIp: '198.18.0.2', backendType: 'vxlan', backendData: {} };
    const outside: RemoteLease = { subnet: '10.99.0.0/24', publicIp: '198.18.0.2', backendType: 'host-gw', backendData: null };
    const self: RemoteLease = { subnet: '10.244.7.0/24', publicIp: a.host.underlayIp, backendType: 'host-gw', backendData: null };

    const report = await a.network.sync([offLink, b.lease, vxlan, outside, self]);
    expect(report.changes).toBe(1);
    expect(report.skipped).toEqual([
      // In subnet order (lease-checks.ts: the same on every node).
      { subnet: '10.99.0.0/24', reason: 'the subnet is outside the cluster network 10.244.0.0/16' },
      { subnet: '10.244.7.0/24', reason: 'PublicIP 198.18.0.1 is this node\'s own' },
      { subnet: '10.244.8.0/24', reason: 'BackendType is "vxlan", not "host-gw"' },
      { subnet: '10.244.9.0/24', reason: '198.19.9.9 is not on a directly connected network of eth0: host-gw needs every host on one L2 segment' },
    ]);
    expect(await twillRoutes(a.host)).toEqual(['10.244.2.0/24 via 198.18.0.2 dev eth0']);
  });

  it('resync repairs drift: restores a deleted route, removes a bogus Twill route, leaves other routes alone', async () => {
    const { nodes } = await hostGwCluster(3);
    await syncAll(nodes);
    const [a] = nodes as [Node];
    runUntilTestEnds(a.network);
    const want = expectedRoutes(nodes, a);

    // No check that it is gone: with a 200 ms resync the repair can come before the check would.
    await a.host.exec('ip', ['route', 'del', '10.244.2.0/24']);
    const started = Date.now();
    await waitFor(async () => JSON.stringify(await twillRoutes(a.host)) === JSON.stringify(want), { timeoutMs: 10 * RESYNC_MS, what: 'deleted route restored' });
    expect(Date.now() - started).toBeLessThan(10 * RESYNC_MS);

    // Twill owns proto 84 inside the cluster network: a stray one there goes. A proto 84 route
    // outside it, and a foreign (proto boot) route inside it, are not Twill's and stay.
    await a.host.exec('ip', ['route', 'add', '10.244.99.0/24', 'via', '198.18.0.3', 'proto', '84']);
    await a.host.exec('ip', ['route', 'add', '10.99.0.0/24', 'via', '198.18.0.3', 'proto', '84']);
    await a.host.exec('ip', ['route', 'add', '10.244.98.0/24', 'via', '198.18.0.2', 'proto', 'boot']);
    await waitFor(async () => !(await twillRoutes(a.host)).some((r) => r.startsWith('10.244.99.0/24')), { timeoutMs: 10 * RESYNC_MS, what: 'bogus route removed' });
    await sleep(2 * RESYNC_MS); // a few more resyncs: still nothing else touched
    expect(await twillRoutes(a.host)).toEqual([...want, '10.99.0.0/24 via 198.18.0.3 dev eth0'].sort());
    expect((await a.host.routes(['proto', 'boot'])).map((r) => r.dst)).toContain('10.244.98.0/24');
  });

  it('puts the routes back at once when eth0 goes down and up (link event, not the periodic resync)', async () => {
    // A resync interval far longer than the test: only the link notification can bring them back.
    const { nodes } = await hostGwCluster(3, { resyncIntervalMs: 600_000 });
    await syncAll(nodes);
    const [a] = nodes as [Node];
    runUntilTestEnds(a.network);
    await sleep(50); // let run() subscribe to link notifications

    await a.host.exec('ip', ['link', 'set', 'eth0', 'down']);
    expect(await twillRoutes(a.host)).toEqual([]); // the kernel flushed every route via eth0
    const up = Date.now();
    await a.host.exec('ip', ['link', 'set', 'eth0', 'up']);
    await waitFor(async () => JSON.stringify(await twillRoutes(a.host)) === JSON.stringify(expectedRoutes(nodes, a)), { timeoutMs: 3000, what: 'routes back after eth0 up' });
    expect(Date.now() - up).toBeLessThan(3000);
    expect(await a.host.ping(nodes[1]!.host.underlayIp)).toBe(true);
  });

  it('removes the route of a remote whose lease went away', async () => {
    const { nodes } = await hostGwCluster(3);
    await syncAll(nodes);
    const [a, b] = nodes as [Node, Node];
    runUntilTestEnds(a.network);
    expect(await a.network.sync([b.lease])).toEqual({ changes: 1, skipped: [] });
    expect(await twillRoutes(a.host)).toEqual([`${b.lease.subnet} via ${b.host.underlayIp} dev eth0`]);
    await sleep(3 * RESYNC_MS); // the resync applies the new set, not an old one
    expect(await twillRoutes(a.host)).toEqual([`${b.lease.subnet} via ${b.host.underlayIp} dev eth0`]);
    expect(await a.network.sync([])).toEqual({ changes: 1, skipped: [] });
    expect(await twillRoutes(a.host)).toEqual([]);
  });

  it('keeps the routes when run() stops, and a restarted agent keeps them until its first sync', async () => {
    const { nodes } = await hostGwCluster(3);
    await syncAll(nodes);
    const [a] = nodes as [Node];
    const want = expectedRoutes(nodes, a);
    const first = new AbortController();
    const running = a.network.run(first.signal);
    await sleep(2 * RESYNC_MS);
    first.abort();
    await running;
    expect(await twillRoutes(a.host)).toEqual(want);

    // A new network for the same host (the agent restarted): its resyncs must not act on an
    // empty desired set before the leases arrive, or every route would go.
    const restarted = await hostGwBackend.register(await contextFor(a.host), {});
    await restarted.start({ subnet: a.lease.subnet, publicIp: a.host.underlayIp });
    runUntilTestEnds(restarted);
    await sleep(4 * RESYNC_MS);
    expect(await twillRoutes(a.host)).toEqual(want);
  });
});
