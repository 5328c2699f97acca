import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EtcdSubnetStore, encodeLease, keyLayout, subnetToKeyName } from '../src/store/index.js';
import { enterNetns, Netlink, RTPROT_TWILL } from '../src/netlink/index.js';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { createCluster, type Cluster } from '../test/helpers/cluster.js';
import { startEtcd, type Etcd } from '../test/helpers/etcd.js';
import { countEntries, waitEntriesGone } from './twill-entries.js';
import { etcdBulk } from '../test/helpers/etcd-bulk.js';
import { exec } from '../test/helpers/exec.js';
import { AGENT_MAIN, type TestAgent } from '../test/helpers/twilld.js';
import { agentStarter } from './agents.js';
import { fibPrefixes, inNetns } from './fib-count.js';
import { measureDriftRepair } from './drift-repair.js';
import { waitFor } from '../test/helpers/wait.js';
import { runIpv6 } from './vxlan-ipv6.js';
import { median, newBurst, numberOption, percentile, processCpuMs, processRssMiB, remoteHosts, report, reportBurst, round, stringOption, type RemoteHost } from './report.js';

/**
 * `npm run bench -- vxlan [--leases N] [--joins N] [--burst-rounds N] [--idle-seconds S] [--settle-seconds S] [--repairs N]`
 * (`--ipv6`: the dual-stack figures, see vxlan-ipv6.ts)
 *
 * (a) N remote leases (default 5,000) put into etcd in one transaction (over gRPC, see
 *     test/helpers/etcd-bulk.ts) while the agent runs -> time until all 3N kernel entries
 *     (neighbour, FDB, route) exist, beside `ip -batch` + `bridge -batch` writing the same 3N
 *     entries in the same run; medians over the rounds, ratio Twill / iproute2 (target <= 1.0).
 *     Twill's routes go through nexthop objects (N more), so the burst is also timed from
 *     etcd's commit and against iproute2 writing those nexthops too. Also reported:
 *     an agent *starting* with the N leases in etcd, whose time includes Node's start, loading
 *     the etcd client and reading the N leases (target <= 1.5x iproute2): a restart, with the
 *     code cache an earlier run wrote (median of 3), and once without it (first start). Its end
 *     is seen in the FIB's prefix count of the agent's namespace, polled every 5 ms
 *     (fib-count.ts), as iproute2's is its exit.
 * (b) a lease put on host A -> the route present on host B: p50/p99 over `--joins` joins.
 * (d) the agent's RSS and idle CPU (averaged over `--idle-seconds`, default 60, after
 *     `--settle-seconds`, default 30, from its start) while it holds N leases, with its default
 *     resync interval; flannel's figure is not measurable here (no
 *     flanneld build), so the reference is zero: target < 0.5 % of a core, RSS < 120 MiB.
 * (e) a route, a neighbour and an FDB entry deleted by hand, `--repairs` times each (default
 *     50): time until the agent has written it again (drift-repair.ts; target p99 < 1 s).
 * (c), pod-to-pod throughput, is `npm run bench -- throughput`.
 *
 * BENCH_AGENT_LOG=debug runs the agents at debug level and prints their "backend synced" lines
 * (desired set, changes, milliseconds) after the burst.
 */
const PREFIX = '/coreos.com/network';
/** Written by a running agent beside its bundle (src/agent/twilld-entry.mjs). */
const CODE_CACHE = join(dirname(AGENT_MAIN), 'twilld.bundle.v8cache');
const ETCD_IP = '198.18.0.254';
const NETWORK = '10.0.0.0/8';

type FakeLease = RemoteHost;

/** The keys and values flannel and Twill write for `leases` (no TTL). */
function leaseEntries(leases: readonly FakeLease[]): [string, string][] {
  const { subnetsPrefix } = keyLayout(PREFIX);
  return leases.map((l) => [subnetsPrefix + subnetToKeyName(l.subnet), encodeLease({ publicIp: l.ip, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: l.mac } })]);
}

/**
 * iproute2 writing the same entries with a VXLAN device of its own (VNI 4242, beside twill.1).
 * `nexthops` false: flannel's entries, each route with its own gateway (what the issue counts:
 * 3N entries). `nexthops` true: what Twill writes, each route through a nexthop object (4N
 * objects; see src/netlink/nexthops.ts for why).
 */
async function iproute2Reference(cluster: Cluster, leases: readonly FakeLease[], dir: string, nexthops: boolean): Promise<number> {
  const host = cluster.hosts[1]!;
  await exec('ip', ['-n', host.name, 'link', 'add', 'ref.1', 'type', 'vxlan', 'id', '4242', 'dstport', '8472', 'nolearning', 'dev', 'eth0']);
  await exec('ip', ['-n', host.name, 'link', 'set', 'ref.1', 'up']);
  const neigh = join(dir, 'neigh');
  const fdb = join(dir, 'fdb');
  const routes = join(dir, 'routes');
  writeFileSync(neigh, leases.map((l) => `neigh replace ${l.gw} lladdr ${l.mac} dev ref.1 nud permanent\n`).join(''));
  writeFileSync(fdb, leases.map((l) => `fdb append ${l.mac} dev ref.1 dst ${l.ip}\n`).join(''));
  // ip -batch takes nexthop and route commands in one file, in order.
  writeFileSync(routes, leases.map((l, i) => (nexthops
    ? `nexthop replace id ${i + 1} via ${l.gw} dev ref.1 onlink proto ${RTPROT_TWILL}\nroute replace ${l.subnet} nhid ${i + 1} proto ${RTPROT_TWILL}\n`
    : `route replace ${l.subnet} via ${l.gw} dev ref.1 onlink proto ${RTPROT_TWILL}\n`)).join(''));
  const t = performance.now();
  await exec('ip', ['-n', host.name, '-batch', neigh]);
  await exec('bridge', ['-n', host.name, '-batch', fdb]);
  await exec('ip', ['-n', host.name, '-batch', routes]);
  const elapsed = performance.now() - t;
  await exec('ip', ['-n', host.name, 'link', 'del', 'ref.1']);
  return elapsed;
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--ipv6')) return runIpv6(args); // dual-stack: vxlan-ipv6.ts
  const n = numberOption(args, '--leases', 5000);
  const joins = numberOption(args, '--joins', 100);
  const burstRounds = numberOption(args, '--burst-rounds', 3);
  const idleSeconds = numberOption(args, '--idle-seconds', 60);
  const settleSeconds = numberOption(args, '--settle-seconds', 30);
  const repairs = numberOption(args, '--repairs', 50);
  const profileDir = stringOption(args, '--profile');
  const leases = remoteHosts(n, '0a:00:00:00');
  const agents: TestAgent[] = [];
  try {
    const cluster = await createCluster({ hosts: 2 });
    await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
    // Room for one transaction of N puts (the default is 128 operations and 1.5 MiB).
    const etcd: Etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP, extraArgs: [`--max-txn-ops=${n + 10}`, '--max-request-bytes=67108864'] });
    const dir = tempDir('bench-vxlan');
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'vxlan' } })]);
    // etcd listens on the underlay; this process's own etcd client must live there too.
    const leave = enterNetns(cluster.underlay.netnsPath);
    cleanup.defer('leave the underlay namespace', leave);
    const store = EtcdSubnetStore.connect({ endpoints: [etcd.clientUrl], prefix: PREFIX });
    cleanup.defer('close store', () => store.close());
    const start = agentStarter(cluster, etcd.clientUrl, dir, agents, profileDir);

    // (b) join latency, with both agents up and few leases.
    await Promise.all([start(0), start(1)].map(async (a) => (await a).waitReady()));
    const nlB = Netlink.open(cluster.hosts[1]!.netnsPath);
    cleanup.defer('close netlink', () => nlB.close());
    const latencies: number[] = [];
    for (let i = 0; i < joins; i++) {
      const subnet = `10.250.${i}.0/24`;
      const t = performance.now();
      await store.createLease(subnet, { publicIp: '198.18.0.1', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:00:00:00:ff:01' } }, 600);
      await waitFor(async () => (await nlB.listRoutes({ family: 4, protocol: RTPROT_TWILL })).some((r) => r.dst === subnet), { timeoutMs: 5000, intervalMs: 1, what: `route ${subnet}` });
      latencies.push(performance.now() - t);
      await store.deleteLease(subnet);
    }
    report({ bench: 'vxlan', metric: 'join_to_route_p50_ms', value: round(percentile(latencies, 50), 1), unit: 'ms' });
    report({ bench: 'vxlan', metric: 'join_to_route_p99_ms', value: round(percentile(latencies, 99), 1), unit: 'ms', target: '<100' });

    // (a) N leases put into etcd (one transaction) while the agent runs: from the put to all 3N
    // kernel entries on host B; then the N leases deleted again (and their entries gone), for
    // `--burst-rounds` rounds, each beside iproute2 writing the same entries. The first round
    // meets an agent whose bulk path V8 has not compiled yet; it is reported on its own too.
    // Host A's agent would program the same 15,000 entries at the same moment: on one machine the
    // two compete for the CPU and the kernel's global RTNL lock, which real hosts do not share.
    await agents[0]!.daemon.stop();
    const bulk = etcdBulk(etcd.clientUrl);
    cleanup.defer('close the bulk etcd client', () => bulk.close());
    await bulk.warmUp('/bench-warm-up/', n);
    const entries = leaseEntries(leases);
    const twillRoutes = async (): Promise<number> => (await nlB.listRoutes({ family: 4, protocol: RTPROT_TWILL })).length;
    const burst = newBurst();
    for (let r = 0; r < burstRounds; r++) {
      const burstStart = performance.now();
      await bulk.putAll(entries);
      const committed = performance.now();
      await waitFor(async () => (await twillRoutes()) >= n + 1, { timeoutMs: 120_000, intervalMs: 25, what: `${n + 1} routes` });
      const burstEnd = performance.now();
      const [br, bne, bf] = await countEntries(nlB, 'twill.1');
      if (br < n + 1 || bne < n + 1 || bf < n + 1) throw new Error(`after the burst: ${br} routes, ${bne} neighbours, ${bf} FDB entries`);
      burst.put.push(committed - burstStart);
      burst.total.push(burstEnd - burstStart);
      burst.afterCommit.push(burstEnd - committed);
      burst.ref.push(await iproute2Reference(cluster, leases, dir, false));
      burst.refNh.push(await iproute2Reference(cluster, leases, dir, true));
      if (process.env.BENCH_AGENT_LOG) process.stderr.write(agents[1]!.daemon.output().split('\n').filter((l) => /synced|changed/.test(l)).slice(-8).join('\n') + '\n');
      process.stderr.write(`burst round ${r + 1}: etcd txn ${Math.round(burst.put[r]!)} ms, all ${3 * n} entries after ${Math.round(burst.total[r]!)} ms (${Math.round(burst.afterCommit[r]!)} ms after the commit); iproute2 ${Math.round(burst.ref[r]!)} ms, with nexthops ${Math.round(burst.refNh[r]!)} ms\n`);
      await bulk.deleteAll(entries.map(([key]) => key));
      // Only host A's lease is left (its agent is stopped, its lease stays until its TTL).
      await waitEntriesGone(nlB, [{ device: 'twill.1', family: 4 }], 1);
    }
    report({ bench: 'vxlan', metric: 'leases', value: n, unit: 'count' });
    reportBurst('vxlan', burst);
    // How cost grows with size: compare this figure across --leases 1000, 5000, 20000.
    report({ bench: 'vxlan', metric: 'burst_per_lease_us', value: round((median(burst.total) / n) * 1000, 1), unit: 'us' });

    // The N leases back in etcd, for what follows.
    await bulk.putAll(entries);
    await waitFor(async () => (await twillRoutes()) >= n + 1, { timeoutMs: 120_000, intervalMs: 25, what: `${n + 1} routes` });

    // (a') an agent starting with the N leases in etcd, its kernel clean: a restart, so with the
    // code cache the agent running since the start wrote when it stopped
    // (src/agent/twilld-entry.mjs); then once more without it, as the first start after an install.
    await agents[1]!.daemon.stop();
    await waitFor(() => existsSync(CODE_CACHE), { timeoutMs: 10_000, what: `the agent's code cache ${CODE_CACHE}` });
    await exec('ip', ['-n', cluster.hosts[1]!.name, 'link', 'del', 'twill.1']);
    const twillTimes: number[] = [];
    const refTimes: number[] = [];
    for (let round_ = 0; round_ < 4; round_++) {
      if (round_ === 3) renameSync(CODE_CACHE, `${CODE_CACHE}.aside`);
      const t = performance.now();
      const { pid } = (await start(1)).daemon;
      // Routes go in last, so count only them, through the agent's namespace's FIB (fib-count.ts;
      // it is there as soon as `ip netns exec` has entered it, long before node has started), then
      // confirm all three kinds once. A dump of up to 5,000 routes every 50 ms took CPU from the
      // agent and added its interval to the figure, where iproute2's is timed to its exit.
      await waitFor(() => inNetns(pid, cluster.hosts[1]!.netnsPath), { timeoutMs: 5_000, intervalMs: 1, what: 'the agent in its namespace' });
      const baseline = fibPrefixes(pid);
      await waitFor(() => fibPrefixes(pid) >= baseline + n + 1, { timeoutMs: 60_000, intervalMs: 5, what: `${n + 1} routes` });
      twillTimes.push(performance.now() - t);
      const [r, ne, f] = await countEntries(nlB, 'twill.1');
      if (r < n + 1 || ne < n + 1 || f < n + 1) throw new Error(`after the routes: ${r} routes, ${ne} neighbours, ${f} FDB entries`);
      process.stderr.write(agents[1]!.daemon.output().split('\n').filter((l) => /lease acquired|subnet file written|twilld starting/.test(l)).map((l) => `  ${l.slice(0, 160)}\n`).join(''));
      await agents[1]!.daemon.stop();
      await exec('ip', ['-n', cluster.hosts[1]!.name, 'link', 'del', 'twill.1']);
      refTimes.push(await iproute2Reference(cluster, leases, dir, false));
      process.stderr.write(`round ${round_ + 1}${round_ === 3 ? ' (no code cache)' : ''}: twill ${Math.round(twillTimes[round_]!)} ms (agent start to ${3 * n} entries), iproute2 ${Math.round(refTimes[round_]!)} ms\n`);
    }
    renameSync(`${CODE_CACHE}.aside`, CODE_CACHE);
    const [noCache, noCacheRef] = [twillTimes.pop()!, refTimes.pop()!];
    report({ bench: 'vxlan', metric: 'twill_start_to_entries_ms', value: round(median(twillTimes), 1), unit: 'ms' });
    report({ bench: 'vxlan', metric: 'iproute2_batch_ms', value: round(median(refTimes), 1), unit: 'ms' });
    report({ bench: 'vxlan', metric: 'cold_start_ratio_vs_iproute2', value: round(median(twillTimes) / median(refTimes)), unit: 'x', target: '<=1.5' });
    report({ bench: 'vxlan', metric: 'cold_start_no_code_cache_ratio_vs_iproute2', value: round(noCache / noCacheRef), unit: 'x' });

    // (d) the agent holding N leases: memory and idle CPU.
    const agent = await start(1);
    await agent.waitReady(60_000);
    await waitFor(async () => (await countEntries(nlB, 'twill.1'))[0] >= n + 1, { timeoutMs: 60_000, what: 'entries' });
    const pid = agent.daemon.pid;
    // Idle means steady state: the start's own garbage collection and V8's heap shrinking
    // (its memory reducer) settle first.
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    const before = processCpuMs(pid);
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const idle = (processCpuMs(pid) - before) / 1000 / idleSeconds;
    report({ bench: 'vxlan', metric: 'agent_rss', value: round(processRssMiB(pid, 'VmRSS'), 1), unit: 'MiB', target: '<120' });
    report({ bench: 'vxlan', metric: 'agent_peak_rss', value: round(processRssMiB(pid, 'VmHWM'), 1), unit: 'MiB' });
    report({ bench: 'vxlan', metric: 'agent_idle_cpu', value: round(idle * 100, 2), unit: '%', target: '<0.5' });

    // (e) entries deleted by hand, written again by the agent.
    if (repairs > 0) await measureDriftRepair('vxlan', nlB, 'twill.1', leases, repairs);
  } finally {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
    await cleanup.runAll();
  }
}
