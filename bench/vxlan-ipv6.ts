import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BackendContext, Network, RemoteLease } from '../src/backends/backend.js';
import { vxlanBackend } from '../src/backends/vxlan/vxlan.js';
import { enterNetns, Netlink, RTPROT_TWILL } from '../src/netlink/index.js';
import { encodeLease, keyLayout, subnetToKeyName } from '../src/store/index.js';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { createCluster, type Cluster, type Host } from '../test/helpers/cluster.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { etcdBulk } from '../test/helpers/etcd-bulk.js';
import { exec } from '../test/helpers/exec.js';
import type { TestNetns } from '../test/helpers/netns.js';
import type { TestAgent } from '../test/helpers/twilld.js';
import { agentStarter } from './agents.js';
import { countEntries, waitEntriesGone } from './twill-entries.js';
import { waitFor } from '../test/helpers/wait.js';
import { median, newBurst, numberOption, remoteHosts, report, reportBurst, round, stringOption, type RemoteHost } from './report.js';
import { iperf } from './throughput.js';

/**
 * `npm run bench -- vxlan --ipv6 [--leases N] [--burst-rounds R] [--rounds R] [--seconds S]`
 *
 * (a) End to end, as `npm run bench -- vxlan` measures IPv4: real etcd on the underlay, twilld on
 *     both hosts of a dual-stack cluster (IPv4 + IPv6 underlay, network config with EnableIPv6),
 *     host A's agent then stopped, and N dual-stack leases (default 5,000) put into etcd in one
 *     transaction while host B's agent runs: keys `10.X.Y.0-24&fd10:0:0:Z::-64`, records with
 *     PublicIP, PublicIPv6, BackendData and BackendV6Data. Timed from the put to all 6N kernel
 *     entries on host B (neighbour, FDB entry and route of each family, on twill.1 and
 *     twill-v6.1; Twill's routes through nexthop objects, 2N more), beside iproute2 (`ip -batch`,
 *     `bridge -batch`) writing the same 6N entries in a fresh namespace: medians over R rounds
 *     (--burst-rounds, default --rounds), ratio Twill / iproute2 (target <= 1.0), also from
 *     etcd's commit and against iproute2 writing the nexthop objects too.
 * (a') Secondary: the vxlan backend's sync() called directly (no etcd, no agent) with the same
 *     2N remote entries, in another fresh namespace, against the same iproute2 medians.
 * (b) pod -> pod TCP throughput (iperf3, S seconds, R rounds) over IPv4 and over IPv6 between the
 *     two agents' hosts, and the IPv6 / IPv4 ratio (the outer IPv6 header costs 20 bytes more a
 *     packet, and the pods' MTU is the IPv6 device's 1430).
 *
 * BENCH_AGENT_LOG=debug runs the agents at debug level and prints their "backend synced" lines
 * after each burst; BENCH_LOG=debug logs the backend of (a').
 */
const PREFIX = '/coreos.com/network';
const ETCD_IP = '198.18.0.254';
// remoteHosts() leases 10.100.0.0/24 upward: the IPv4 bench's NETWORK holds them (10.244.0.0/16 would not).
const NETWORK = '10.0.0.0/8';
// 65,536 /64s; the agents lease among the first free ones, the burst's start at fd10:0:0:1000::.
const IPV6_NETWORK = 'fd10::/48';
const UNDERLAY_V6 = 'fd00:18::/64';
const NETWORK_CONFIG = { Network: NETWORK, EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'vxlan' } };

/**
 * The IPv6 twin of remoteHosts(): subnets fd10:0:0:<1000 + i>::/64 (inside IPV6_NETWORK, clear of
 * the agents' own), VTEPs fd00:18::1:<i> on the IPv6 underlay (never reached: the kernel takes any
 * FDB dst), MACs apart from the IPv4 ones.
 */
function remoteHostsV6(n: number): RemoteHost[] {
  return Array.from({ length: n }, (_, i) => {
    const z = (0x1000 + i).toString(16);
    return { subnet: `fd10:0:0:${z}::/64`, gw: `fd10:0:0:${z}::`, mac: `0a:00:06:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `fd00:18::1:${i.toString(16)}` };
  });
}

/** The keys and values of N dual-stack leases, as flannel writes them (no TTL). */
function leaseEntries(v4: readonly RemoteHost[], v6: readonly RemoteHost[]): [string, string][] {
  const { subnetsPrefix } = keyLayout(PREFIX);
  return v4.map((h, i) => {
    const h6 = v6[i]!;
    return [subnetsPrefix + subnetToKeyName(h.subnet, h6.subnet), encodeLease({
      publicIp: h.ip, publicIpv6: h6.ip, backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: h.mac }, backendV6Data: { VNI: 1, VtepMAC: h6.mac },
    })];
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
    clusterNetwork: NETWORK,
    clusterNetworkV6: IPV6_NETWORK,
    stateDir: tempDir(`bench-vxlan6-h${host.index}`),
    resyncIntervalMs: 3_600_000,
  };
}

/** The vxlan backend's dual-stack network on `host`, started with 10.1.0.0/24 and fd10:0:0:1::/64. */
async function startNetwork(host: Host): Promise<Network> {
  const network = await vxlanBackend.register(await dualStackContext(host), vxlanBackend.parseOptions({}));
  await network.start({ subnet: '10.1.0.0/24', publicIp: host.underlayIp, ipv6Subnet: 'fd10:0:0:1::/64', publicIpv6: host.underlayIpv6 });
  return network;
}

/** Throws unless each family holds at least `want` routes, neighbours and FDB entries. */
async function checkEntries(nl: Netlink, want: number, when: string): Promise<void> {
  const v4 = await countEntries(nl, 'twill.1', 4);
  const v6 = await countEntries(nl, 'twill-v6.1', 6);
  if ([...v4, ...v6].some((c) => c < want)) {
    throw new Error(`${when}: IPv4 ${v4[0]} routes, ${v4[1]} neighbours, ${v4[2]} FDB entries; IPv6 ${v6[0]} routes, ${v6[1]} neighbours, ${v6[2]} FDB entries (want ${want} each)`);
  }
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


/** A pod on the agent's host, on a bridge cni0 holding the first address of each of the agent's subnets. */
async function addPod(cluster: Cluster, host: Host, agent: TestAgent): Promise<{ pod: TestNetns; ip: string; ipv6: string }> {
  const env = agent.subnetEnv()!;
  // FLANNEL_SUBNET "10.0.5.1/24", FLANNEL_IPV6_SUBNET "fd10:0:0:7::1/64": the bridge's addresses.
  const [v4, v6, mtu] = [env.FLANNEL_SUBNET!, env.FLANNEL_IPV6_SUBNET!, Number(env.FLANNEL_MTU)];
  const ip = v4.replace(/\.1\/24$/, '.2');
  const ipv6 = v6.replace(/::1\/64$/, '::2');
  await host.netlink(async (nl) => {
    await nl.createBridge({ name: 'cni0', mtu });
    await nl.addAddress('cni0', v4);
    await nl.addAddress('cni0', v6, { noDad: true });
    await nl.setUp('cni0');
  });
  const pod = await cluster.addPod(host, { ip: `${ip}/24`, gateway: v4.split('/')[0], ipv6: `${ipv6}/64`, gatewayV6: v6.split('/')[0], bridge: 'cni0', mtu });
  return { pod, ip, ipv6 };
}

export async function runIpv6(args: string[]): Promise<void> {
  const n = numberOption(args, '--leases', 5000);
  const rounds = numberOption(args, '--rounds', 3);
  const burstRounds = numberOption(args, '--burst-rounds', rounds);
  const seconds = numberOption(args, '--seconds', 5);
  const profileDir = stringOption(args, '--profile');
  const v4 = remoteHosts(n, '0a:00:04:00');
  const v6 = remoteHostsV6(n);
  const entries = leaseEntries(v4, v6);
  const agents: TestAgent[] = [];
  try {
    // The agents' cluster, and fresh namespaces of their own: host 0 for iproute2, host 1 for (a').
    const cluster = await createCluster({ hosts: 2, underlayCidrV6: UNDERLAY_V6 });
    const side = await createCluster({ hosts: 2, underlayCidrV6: UNDERLAY_V6 });
    const [refHost, syncHost] = side.hosts as [Host, Host];
    await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
    // Room for one transaction of N puts (the default is 128 operations and 1.5 MiB).
    const etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP, extraArgs: [`--max-txn-ops=${n + 10}`, '--max-request-bytes=67108864'] });
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify(NETWORK_CONFIG)]);
    const dir = tempDir('bench-vxlan6');
    // etcd listens on the underlay; this process's bulk etcd client must live there too.
    const leave = enterNetns(cluster.underlay.netnsPath);
    cleanup.defer('leave the underlay namespace', leave);
    const start = agentStarter(cluster, etcd.clientUrl, dir, agents, profileDir);
    await Promise.all([start(0), start(1)].map(async (a) => (await a).waitReady()));
    const [h0, h1] = cluster.hosts as [Host, Host];
    const nlB = Netlink.open(h1.netnsPath);
    cleanup.defer('close netlink', () => nlB.close());
    // Each agent routes the other's subnets (one of each family) before the pods talk.
    await waitFor(async () => (await countEntries(nlB, 'twill.1', 4))[0] >= 1 && (await countEntries(nlB, 'twill-v6.1', 6))[0] >= 1,
      { timeoutMs: 20_000, intervalMs: 50, what: 'host A\'s routes on host B' });

    // (b) throughput, pod -> pod through both agents, over each family.
    const [a, b] = [await addPod(cluster, h0, agents[0]!), await addPod(cluster, h1, agents[1]!)];
    const gbps = { 4: [] as number[], 6: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      gbps[4].push(await iperf(b.pod, a.pod, b.ip, seconds));
      gbps[6].push(await iperf(b.pod, a.pod, b.ipv6, seconds));
      process.stderr.write(`throughput round ${r + 1}: pod->pod IPv4 ${gbps[4][r]!.toFixed(2)} Gbit/s, IPv6 ${gbps[6][r]!.toFixed(2)} Gbit/s\n`);
    }
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv4_gbps', value: round(median(gbps[4]), 2), unit: 'Gbit/s' });
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv6_gbps', value: round(median(gbps[6]), 2), unit: 'Gbit/s' });
    report({ bench: 'vxlan-ipv6', metric: 'pod_to_pod_ipv6_ratio_vs_ipv4', value: round(median(gbps[6]) / median(gbps[4])), unit: 'x' });

    // (a) N dual-stack leases put into etcd (one transaction) while host B's agent runs: from the
    // put to all 6N kernel entries on host B; then the N leases deleted again (and their entries
    // gone). Host A's agent is stopped, as in the IPv4 bench: on one machine it would compete with
    // host B's for the CPU and the kernel's RTNL lock; its lease stays (one entry of each kind and
    // family, hence n + 1).
    await agents[0]!.daemon.stop();
    const bulk = etcdBulk(etcd.clientUrl);
    cleanup.defer('close the bulk etcd client', () => bulk.close());
    await bulk.warmUp('/bench-warm-up/', n);
    const routeCount = async (family: 4 | 6): Promise<number> => (await nlB.listRoutes({ family, protocol: RTPROT_TWILL })).length;
    const burst = newBurst();
    for (let r = 0; r < burstRounds; r++) {
      const burstStart = performance.now();
      await bulk.putAll(entries);
      const committed = performance.now();
      // A family once complete is not listed again (each dump of 5,000 routes costs the CPU the agent needs).
      const done = { 4: false, 6: false };
      await waitFor(async () => {
        for (const family of [4, 6] as const) done[family] ||= (await routeCount(family)) >= n + 1;
        return done[4] && done[6];
      }, { timeoutMs: 120_000, intervalMs: 25, what: `${n + 1} routes of each family` });
      const burstEnd = performance.now();
      await checkEntries(nlB, n + 1, 'after the burst');
      burst.put.push(committed - burstStart);
      burst.total.push(burstEnd - burstStart);
      burst.afterCommit.push(burstEnd - committed);
      burst.ref.push(await iproute2Reference(refHost, v4, v6, dir, false));
      burst.refNh.push(await iproute2Reference(refHost, v4, v6, dir, true));
      if (process.env.BENCH_AGENT_LOG) process.stderr.write(agents[1]!.daemon.output().split('\n').filter((l) => /synced|changed/.test(l)).slice(-8).join('\n') + '\n');
      process.stderr.write(`burst round ${r + 1}: etcd txn ${Math.round(burst.put[r]!)} ms, all ${6 * n} entries after ${Math.round(burst.total[r]!)} ms ` +
        `(${Math.round(burst.afterCommit[r]!)} ms after the commit); iproute2 ${Math.round(burst.ref[r]!)} ms, with nexthops ${Math.round(burst.refNh[r]!)} ms\n`);
      await bulk.deleteAll(entries.map(([key]) => key));
      await waitEntriesGone(nlB, [{ device: 'twill.1', family: 4 }, { device: 'twill-v6.1', family: 6 }], 1);
    }
    const refMs = median(burst.ref);
    const refNh = median(burst.refNh);
    report({ bench: 'vxlan-ipv6', metric: 'dual_stack_leases', value: n, unit: 'count' });
    report({ bench: 'vxlan-ipv6', metric: 'kernel_entries', value: 6 * n, unit: 'count' });
    reportBurst('vxlan-ipv6', burst);

    // (a') the backend's sync() alone, in a fresh namespace, against the same iproute2 medians.
    const network = await startNetwork(syncHost);
    const nlSync = Netlink.open(syncHost.netnsPath);
    cleanup.defer('close netlink (sync host)', () => nlSync.close());
    const desired = [...v4, ...v6].map(toLease);
    const times = { sync: [] as number[], remove: [] as number[] };
    for (let r = 0; r < burstRounds; r++) {
      const t = performance.now();
      const synced = await network.sync(desired);
      times.sync.push(performance.now() - t);
      if (synced.skipped.length > 0) throw new Error(`${synced.skipped.length} entries skipped, e.g. ${JSON.stringify(synced.skipped[0])}`);
      await checkEntries(nlSync, n, 'after the sync');
      const t2 = performance.now();
      await network.sync([]);
      times.remove.push(performance.now() - t2);
      process.stderr.write(`sync round ${r + 1}: backend sync() ${Math.round(times.sync[r]!)} ms for ${6 * n} entries (removal ${Math.round(times.remove[r]!)} ms)\n`);
    }
    const syncMs = median(times.sync);
    report({ bench: 'vxlan-ipv6', metric: 'twill_sync_ms', value: round(syncMs, 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'twill_remove_ms', value: round(median(times.remove), 1), unit: 'ms' });
    report({ bench: 'vxlan-ipv6', metric: 'ratio_vs_iproute2', value: round(syncMs / refMs), unit: 'x' });
    report({ bench: 'vxlan-ipv6', metric: 'ratio_vs_iproute2_nexthops', value: round(syncMs / refNh), unit: 'x' });
  } finally {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
    await cleanup.runAll();
  }
}
