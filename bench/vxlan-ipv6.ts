import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BackendContext, Network, RemoteLease } from '../src/backends/backend.js';
import { vxlanBackend } from '../src/backends/vxlan/vxlan.js';
import { Netlink, RTPROT_TWILL } from '../src/netlink/index.js';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { createCluster, type Host } from '../test/helpers/cluster.js';
import { exec } from '../test/helpers/exec.js';
import type { TestNetns } from '../test/helpers/netns.js';
import { median, numberOption, remoteHosts, report, round, type RemoteHost } from './report.js';

/**
 * `npm run bench -- vxlan --ipv6 [--leases N] [--rounds R] [--seconds S]`
 *
 * (a) N dual-stack leases (default 5,000), i.e. 2N remote entries (an IPv4 one and an IPv6 one
 *     each), synced into a dual-stack vxlan network -> all 6N kernel entries (neighbour, FDB
 *     entry, route per entry, on twill.1 and twill-v6.1; Twill's routes through nexthop objects,
 *     2N more), beside iproute2 (`ip -batch`, `bridge -batch`) writing the same entries of both
 *     families on devices of its own in a fresh namespace: medians over R rounds, ratio Twill /
 *     iproute2 (target <= 1.0), against iproute2 with and without the nexthop objects. Measured
 *     at the backend (register, start, sync, as the agent calls it), without etcd and the agent:
 *     the IPv4 figures through the whole agent are `npm run bench -- vxlan`.
 * (b) pod -> pod TCP throughput (iperf3, S seconds) over IPv4 and over IPv6 between two hosts of
 *     a dual-stack vxlan network, and the IPv6 / IPv4 ratio (the outer IPv6 header costs 20
 *     bytes more a packet, and the pods' MTU is the IPv6 device's 1430).
 */
const CLUSTER_NETWORK = '10.0.0.0/8';
const CLUSTER_NETWORK_V6 = 'fd10::/16';
const UNDERLAY_V6 = 'fd00:18::/64';

/** The IPv6 twin of remoteHosts(): subnets fd10:0:<k>::/64, VTEPs in fd00:19::/64 (never reached: the kernel takes any FDB dst). */
function remoteHostsV6(n: number): RemoteHost[] {
  return Array.from({ length: n }, (_, i) => {
    const k = (i + 1).toString(16);
    return { subnet: `fd10:0:${k}::/64`, gw: `fd10:0:${k}::`, mac: `0a:00:06:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `fd00:19::${k}` };
  });
}

const toLease = (h: RemoteHost): RemoteLease => ({ subnet: h.subnet, publicIp: h.ip, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: h.mac } });

async function dualStackContext(host: Host): Promise<BackendContext> {
  const nl = Netlink.open(host.netnsPath);
  host.onDestroy('close the bench\'s netlink handle', () => nl.close());
  const eth0 = await nl.requireLink('eth0');
  return {
    log: pino({ level: process.env.BENCH_LOG ?? 'silent' }, pino.destination(2)),
    netlink: nl,
    extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, address: host.underlayIp, publicIp: host.underlayIp, ipv6Address: host.underlayIpv6, publicIpv6: host.underlayIpv6 },
    clusterNetwork: CLUSTER_NETWORK,
    clusterNetworkV6: CLUSTER_NETWORK_V6,
    stateDir: tempDir(`bench-vxlan6-h${host.index}`),
    resyncIntervalMs: 3_600_000,
  };
}

/** The host's dual-stack network, started with 10.<i+1>.0.0/24 and fd10:ffff:<i+1>::/64. */
async function startNetwork(host: Host): Promise<{ network: Network; leases: RemoteLease[] }> {
  const ctx = await dualStackContext(host);
  const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
  const i = host.index + 1;
  const [subnet, ipv6Subnet] = [`10.${i}.0.0/24`, `fd10:ffff:${i}::/64`];
  await network.start({ subnet, publicIp: host.underlayIp, ipv6Subnet, publicIpv6: host.underlayIpv6 });
  return {
    network,
    leases: [
      { subnet, publicIp: host.underlayIp, backendType: 'vxlan', backendData: network.leaseData },
      { subnet: ipv6Subnet, publicIp: host.underlayIpv6!, backendType: 'vxlan', backendData: network.leaseDataV6 },
    ],
  };
}

/** [routes, permanent neighbours, FDB entries with a dst] of both families on twill.1 and twill-v6.1. */
async function countEntries(nl: Netlink): Promise<[number, number, number]> {
  let [routes, neigh, fdb] = [0, 0, 0];
  for (const [family, dev] of [[4, 'twill.1'], [6, 'twill-v6.1']] as const) {
    const link = await nl.requireLink(dev);
    routes += (await nl.listRoutes({ family, protocol: RTPROT_TWILL })).filter((r) => r.oif === link.index).length;
    neigh += (await nl.listNeighbours(link.index)).filter((n) => n.permanent).length;
    fdb += (await nl.listFdb(link.index)).filter((e) => e.dst !== undefined).length;
  }
  return [routes, neigh, fdb];
}

/**
 * iproute2 writing the same entries of both families in `ns` (a fresh host namespace), on VXLAN
 * devices of its own (VNI 4242, one over each underlay). `nexthops`: each route through a
 * nexthop object, as Twill writes them.
 */
async function iproute2Reference(ns: Host, v4: readonly RemoteHost[], v6: readonly RemoteHost[], dir: string, nexthops: boolean): Promise<number> {
  const ip = (args: string[]): Promise<string> => exec('ip', ['-n', ns.name, ...args]);
  await ip(['link', 'add', 'ref.1', 'type', 'vxlan', 'id', '4242', 'dstport', '8472', 'nolearning', 'local', ns.underlayIp, 'dev', 'eth0']);
  await ip(['link', 'add', 'ref6.1', 'type', 'vxlan', 'id', '4242', 'dstport', '8472', 'nolearning', 'local', ns.underlayIpv6!, 'dev', 'eth0']);
  await ip(['link', 'set', 'ref.1', 'up']);
  await ip(['link', 'set', 'ref6.1', 'up']);
  const all = [...v4.map((h) => ({ h, dev: 'ref.1' })), ...v6.map((h) => ({ h, dev: 'ref6.1' }))];
  const [neigh, fdb, routes] = [join(dir, 'neigh'), join(dir, 'fdb'), join(dir, 'routes')];
  writeFileSync(neigh, all.map(({ h, dev }) => `neigh replace ${h.gw} lladdr ${h.mac} dev ${dev} nud permanent\n`).join(''));
  writeFileSync(fdb, all.map(({ h, dev }) => `fdb append ${h.mac} dev ${dev} dst ${h.ip}\n`).join(''));
  writeFileSync(routes, all.map(({ h, dev }, i) => (nexthops
    ? `nexthop replace id ${i + 1} via ${h.gw} dev ${dev} onlink proto ${RTPROT_TWILL}\nroute replace ${h.subnet} nhid ${i + 1} proto ${RTPROT_TWILL}\n`
    : `route replace ${h.subnet} via ${h.gw} dev ${dev} onlink proto ${RTPROT_TWILL}\n`)).join(''));
  const t = performance.now();
  await ip(['-batch', neigh]);
  await exec('bridge', ['-n', ns.name, '-batch', fdb]);
  await ip(['-batch', routes]);
  const elapsed = performance.now() - t;
  await ip(['link', 'del', 'ref.1']);
  await ip(['link', 'del', 'ref6.1']);
  return elapsed;
}

/** One iperf3 TCP run from `client` to `serverIp` (served from `server`): Gbit/s received. */
async function iperf(server: TestNetns, client: TestNetns, serverIp: string, seconds: number): Promise<number> {
  const daemon = await server.spawn('iperf3', ['-s', '-1', '-B', serverIp]);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const out = JSON.parse(await exec('ip', ['netns', 'exec', client.name, 'iperf3', '-c', serverIp, '-t', String(seconds), '-J'])) as {
      end: { sum_received: { bits_per_second: number } };
    };
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    await daemon.stop();
  }
}

export async function runIpv6(args: string[]): Promise<void> {
  const n = numberOption(args, '--leases', 5000);
  const rounds = numberOption(args, '--rounds', 3);
  const seconds = numberOption(args, '--seconds', 5);
  const v4 = remoteHosts(n, '0a:00:04:00');
  const v6 = remoteHostsV6(n);
  const desired = [...v4, ...v6].map(toLease);
  try {
    // Hosts 0 and 1 run Twill; host 2 is iproute2's fresh namespace.
    const cluster = await createCluster({ hosts: 3, underlayCidrV6: UNDERLAY_V6 });
    const [h0, h1, ref] = cluster.hosts as [Host, Host, Host];
    const [a, b] = [await startNetwork(h0), await startNetwork(h1)];

    // (b) throughput, pod -> pod, over each family.
    const pods: TestNetns[] = [];
    for (const [i, host] of [h0, h1].entries()) {
      const k = i + 1;
      await host.netlink(async (nl) => {
        await nl.createBridge({ name: 'cni0', mtu: a.network.mtu });
        await nl.addAddress('cni0', `10.${k}.0.1/24`);
        await nl.addAddress('cni0', `fd10:ffff:${k}::1/64`, { noDad: true });
        await nl.setUp('cni0');
      });
      pods.push(await cluster.addPod(host, { ip: `10.${k}.0.2/24`, gateway: `10.${k}.0.1`, ipv6: `fd10:ffff:${k}::2/64`, gatewayV6: `fd10:ffff:${k}::1`, bridge: 'cni0', mtu: a.network.mtu }));
    }
    await a.network.sync(b.leases);
    await b.network.sync(a.leases);
    const gbps = { 4: [] as number[], 6: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      gbps[4].push(await iperf(pods[1]!, pods[0]!, '10.2.0.2', seconds));
      gbps[6].push(await iperf(pods[1]!, pods[0]!, 'fd10:ffff:2::2', seconds));
      process.stderr.write(`throughput round ${r + 1}: pod->pod IPv4 ${gbps[4][r]!.toFixed(2)} Gbit/s, IPv6 ${gbps[6][r]!.toFixed(2)} Gbit/s\n`);
    }
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv4_gbps', value: round(median(gbps[4]), 2), unit: 'Gbit/s' });
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv6_gbps', value: round(median(gbps[6]), 2), unit: 'Gbit/s' });
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv6_ratio_vs_ipv4', value: round(median(gbps[6]) / median(gbps[4])), unit: 'x' });

    // (a) N dual-stack leases on host 1: 2N entries -> 6N kernel entries, beside iproute2.
    const nl = Netlink.open(h1.netnsPath);
    cleanup.defer('close netlink', () => nl.close());
    const dir = tempDir('bench-vxlan6');
    const times = { twill: [] as number[], remove: [] as number[], ref: [] as number[], refNh: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      const synced = await b.network.sync(desired);
      times.twill.push(performance.now() - t);
      if (synced.skipped.length > 0) throw new Error(`${synced.skipped.length} entries skipped, e.g. ${JSON.stringify(synced.skipped[0])}`);
      const [routes, neigh, fdb] = await countEntries(nl);
      if (routes !== 2 * n || neigh !== 2 * n || fdb !== 2 * n) throw new Error(`after the sync: ${routes} routes, ${neigh} neighbours, ${fdb} FDB entries (want ${2 * n} each)`);
      const t2 = performance.now();
      await b.network.sync([]);
      times.remove.push(performance.now() - t2);
      times.ref.push(await iproute2Reference(ref, v4, v6, dir, false));
      times.refNh.push(await iproute2Reference(ref, v4, v6, dir, true));
      process.stderr.write(`round ${r + 1}: twill ${Math.round(times.twill[r]!)} ms for ${6 * n} entries of both families (removal ${Math.round(times.remove[r]!)} ms); ` +
        `iproute2 ${Math.round(times.ref[r]!)} ms, with nexthops ${Math.round(times.refNh[r]!)} ms\n`);
    }
    const [twill, refMs, refNh] = [median(times.twill), median(times.ref), median(times.refNh)];
    report({ bench: 'vxlan-ipv6', metric: 'dual_stack_leases', value: n, unit: 'count' });
    report({ bench: 'vxlan-ipv6', metric: 'kernel_entries', value: 6 * n, unit: 'count' });
    report({ bench: 'vxlan-ipv6', metric: 'twill_sync_ms', value: round(twill, 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'twill_remove_ms', value: round(median(times.remove), 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'iproute2_batch_ms', value: round(refMs, 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'ratio_vs_iproute2', value: round(twill / refMs), unit: 'x', target: '<=1.0' });
    report({ bench: 'vxlan-ipv6', metric: 'iproute2_nexthops_batch_ms', value: round(refNh, 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'ratio_vs_iproute2_nexthops', value: round(twill / refNh), unit: 'x' });
  } finally {
    await cleanup.runAll();
  }
}
