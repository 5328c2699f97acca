/**
 * `npm run bench -- bgp-backend [--routes N] [--rounds N] [--joins N] [--join-budget-s S] [--only install|joins]`:
 * the bgp backend (src/backends/bgp) in a real twilld, against BIRD in the same run (issue 16).
 *
 * (1) Install: one host runs twilld with the bgp backend (AS 65001, eBGP to its ToR in AS 65000
 *     through --bgp-peer) and N leases (default 10,000, the agent's per-peer max-prefix) are in
 *     etcd, written in one transaction before the agent starts. The ToR, a gobgpd on the shared
 *     segment, announces the N leased /24s with itself as next hop (on-link). A round is two
 *     measurements, one per receiver, in alternating order: a fresh gobgpd ToR (same namespace,
 *     address, AS and config) with that receiver as its only neighbour; once the session is
 *     Established the ToR is given the N prefixes (AddPathStream), and the clock runs from that
 *     call until the receiver's kernel holds all N routes: Twill's proto 84, or the reference
 *     BIRD's `proto bird` (BIRD 2 in its own namespace, AS 65002, its kernel protocol exporting
 *     what BGP learned). The ToR then stops, the session's end withdraws the table and the next
 *     measurement starts from an empty kernel; both receivers stay up for the whole run.
 *     Figures: medians over --rounds (default 3), ratio Twill / BIRD (target <= 1.0). Each
 *     receiver's intake is timed too, from the ToR's first UPDATE toward it on the wire
 *     (first-update.ts) to the same end: gobgpd's own time to take the table (250-430 ms of a
 *     700 ms round) drops out of it, and it carries the same target.
 * (2) The agent's VmRSS while it holds the N routes: right after each install (the largest is
 *     the figure; target < 200 MiB), 10 s after the last one (with V8's used heap then), and
 *     before any route.
 * (3) Joins through the ToRs: the two racks of test/helpers/bgp-racks.ts (BIRD and FRR ToRs,
 *     route reflectors with next-hop-self and graceful restart, eBGP between them), four agents.
 *     A join: a host leaves (agent stopped, lease deleted, its route gone from the others, its
 *     ToR waiting for it again), then comes back as a new host (Twill's routes and restart
 *     marker cleared) on a subnet no host held before in this run; measured from the joining
 *     agent's "subnet file written" (its log line's timestamp: the moment it becomes ready) to
 *     its route being present, with the expected gateway, on each of the three other hosts. The
 *     joining host alternates between rack A and rack B, and a join ends once the joined host
 *     routes every other host too. p50 and p99 over --joins (default 50; target p99 < 500 ms).
 *     Joins stop early when --join-budget-s (default 300) runs out; `joins` says how many ran.
 *     One join before them is reported on its own (first_join_ms): in the first seconds after
 *     the bed is up, the FRR ToR, holding the new route in its own kernel within 60 ms, passed it
 *     on to its two clients together 175 to 600 ms later; later joins 10 ms (and the first one as
 *     well once the bed had been idle for 3 s).
 *
 * The kernel is polled through /proc/<pid>/net/fib_triestat: one small read in the receiver's
 * namespace (a process of it gives the path), where dumping and parsing up to 10,000 routes every
 * few milliseconds would take CPU from the receivers on the same two cores. The exact count of the
 * protocol's routes is checked with a netlink dump once the prefix count is reached.
 *
 * BENCH_BGP_DEBUG=1 prints per join when each host got the route (and the sessions' log lines of
 * a slow join); with BENCH_AGENT_LOG=debug too, the agent's kernel syncs of each install round.
 * BENCH_AGENT_PROF=DIR writes the install agent's CPU profile (node --cpu-prof) into DIR;
 * BENCH_AGENT_NODE_ARGS adds Node flags to it (V8 heap settings, say).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_PREFIXES_PER_PEER } from '../src/backends/bgp/driver.js';
import { formatSubnetEnv } from '../src/core/subnet-env.js';
import { enterNetns, Netlink, RTPROT_TWILL } from '../src/netlink/index.js';
import { encodeLease, keyLayout, subnetToKeyName } from '../src/store/index.js';
import { startPeerDaemon, type PeerDaemon } from '../test/helpers/bgp-peers.js';
import { intToIpv4, ipv4ToInt } from '../test/helpers/bgp-peers-common.js';
import { RACK_PREFIX, rackAgentArgs, startRacks, type Racks } from '../test/helpers/bgp-racks.js';
import { cleanup, CleanupRegistry, tempDir } from '../test/helpers/cleanup.js';
import { etcdBulk } from '../test/helpers/etcd-bulk.js';
import { startEtcd, type Etcd } from '../test/helpers/etcd.js';
import { groupId } from '../test/helpers/names.js';
import { createTestNetns, type TestNetns } from '../test/helpers/netns.js';
import { startAgent, type TestAgent } from '../test/helpers/twilld.js';
import { waitFor } from '../test/helpers/wait.js';
import { fibPrefixes } from './fib-count.js';
import { watchFirstUpdate, type FirstUpdateWatch } from './first-update.js';
import { median, numberOption, percentile, processCpuMs, processRssMiB, report, round, stringOption, type Figure } from './report.js';

const BENCH = 'bgp-backend';
const PREFIX = '/coreos.com/network';
/** The install bed's segment, 198.18.64.0/18: room for the fake hosts' PublicIPs beside the three routers. */
const SEGMENT_LEN = 18;
const TOR = { ip: '198.18.64.1', asn: 65000 };
const AGENT = { ip: '198.18.64.2', asn: 65001 };
const BIRD = { ip: '198.18.64.3', asn: 65002 };
/** The N fake hosts' PublicIPs, on the segment from here up. */
const FAKE_HOSTS_FROM = '198.18.80.1';
/** The N leased subnets: 10.100.0.0/24 upward, which is what announceMany steps through from this base. */
const TABLE_BASE = '10.100.0.0/24';
const NETWORK = '10.0.0.0/8';
/** rtm_protocol of the routes BIRD's kernel protocol writes (iproute2's rt_protos: "12 bird"). */
const RTPROT_BIRD = 12;
/** Joins in the racks: the hosts that leave and join, h2 (rack A, BIRD ToR) and h4 (rack B, FRR ToR). */
const JOINERS = [1, 3] as const;
/** Joined subnets are 10.244.<JOIN_SUBNET_FROM + k>.0/24; the racks' first agents hold 10.244.1-4. */
const JOIN_SUBNET_FROM = 10;

function log(text: string): void {
  process.stderr.write(`${BENCH}: ${text}\n`);
}

/** A figure with the samples behind it, on the same JSON line. */
function reportWithSamples(figure: Figure, samples: readonly number[], digits = 0): void {
  const line: Figure & { samples: number[] } = { ...figure, samples: samples.map((s) => round(s, digits)) };
  report(line);
}

async function routesOfProtocol(ns: TestNetns, protocol: number): Promise<number> {
  return ns.netlink(async (nl) => (await nl.listRoutes({ family: 4, protocol })).length);
}

// ---- (1) and (2): installing N learned routes -------------------------------------------------

/** One receiving host of the install measurement: Twill's agent or the reference BIRD. */
interface Receiver {
  readonly name: 'twill' | 'bird';
  readonly ns: TestNetns;
  readonly ip: string;
  readonly asn: number;
  /** rtm_protocol of the routes it installs. */
  readonly protocol: number;
  /** A process in its namespace (the receiver itself), for /proc/<pid>/net. */
  readonly pid: () => number;
}

interface InstallBed {
  readonly torNs: TestNetns;
  readonly agent: TestAgent;
  readonly receivers: { readonly twill: Receiver; readonly bird: Receiver };
}

interface InstallSample {
  /** AddPathStream called -> all N routes in the receiver's kernel. */
  readonly ms: number;
  /** The ToR's first UPDATE to the receiver on the wire -> all N routes in its kernel (first-update.ts). */
  readonly intakeMs: number;
  /** The receiver's CPU time (user and system) meanwhile: on two cores it is taken from the ToR too. */
  readonly cpuMs: number;
  /** How long gobgpd took to take the N paths (the call's answer), for context. */
  readonly fedMs: number;
}

/** The ToR's segment: a bridge in its namespace, one veth per host, as bgp-racks.ts builds a rack. */
async function attachToSegment(torNs: TestNetns, ns: TestNetns, port: string, ip: string): Promise<void> {
  await torNs.netlink(async (nl) => {
    await nl.createVeth({ name: port, peerName: 'eth0', peerNetnsPath: ns.netnsPath, mtu: 1500 });
    await nl.setMaster(port, 'seg');
    await nl.setUp(port);
  });
  await ns.netlink(async (nl) => {
    await nl.addAddress('eth0', `${ip}/${SEGMENT_LEN}`);
    await nl.setUp('eth0');
  });
}

/** The N leases, flannel's layout: the i-th /24 from TABLE_BASE held by the i-th fake host. */
function tableLeases(count: number): [string, string][] {
  const { subnetsPrefix } = keyLayout(PREFIX);
  const base = ipv4ToInt(TABLE_BASE.split('/')[0]!);
  const host = ipv4ToInt(FAKE_HOSTS_FROM);
  return Array.from({ length: count }, (_, i) => [
    subnetsPrefix + subnetToKeyName(`${intToIpv4(base + i * 256)}/24`),
    encodeLease({ publicIp: intToIpv4(host + i), backendType: 'bgp', backendData: null }),
  ]);
}

/** Writes the N leases in one transaction, from inside the ToR's namespace where etcd listens. */
async function writeLeases(torNs: TestNetns, etcd: Etcd, count: number): Promise<void> {
  // The gRPC client opens its connection from this thread's namespace; nothing else runs meanwhile.
  const leave = enterNetns(torNs.netnsPath);
  try {
    const bulk = etcdBulk(etcd.clientUrl);
    try {
      await bulk.putAll(tableLeases(count));
    } finally {
      bulk.close();
    }
  } finally {
    leave();
  }
}

async function startInstallBed(registry: CleanupRegistry, count: number): Promise<InstallBed> {
  const group = groupId();
  const [torNs, agentNs, birdNs] = await Promise.all(['tor', 'agent', 'bird'].map((l) => createTestNetns(`bgpb-${l}`, { group, registry }))) as [TestNetns, TestNetns, TestNetns];
  await torNs.netlink(async (nl) => {
    await nl.createBridge({ name: 'seg', mtu: 1500 });
    await nl.addAddress('seg', `${TOR.ip}/${SEGMENT_LEN}`);
    await nl.setUp('seg');
  });
  await attachToSegment(torNs, agentNs, 'p-agent', AGENT.ip);
  await attachToSegment(torNs, birdNs, 'p-bird', BIRD.ip);
  // Room for one transaction of N puts (the default is 128 operations and 1.5 MiB).
  const etcd = await startEtcd({ netns: torNs.name, host: TOR.ip, registry, extraArgs: [`--max-txn-ops=${count + 10}`, '--max-request-bytes=67108864'] });
  await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'bgp', Mesh: false } })]);
  // The leases first: the agent then takes a subnet outside the table and starts with them all.
  await writeLeases(torNs, etcd, count);
  const dir = tempDir('bench-bgp-backend', registry);
  mkdirSync(join(dir, 'agent'));
  const agent = await startAgent(agentNs, {
    etcd: etcd.clientUrl, dir: join(dir, 'agent'),
    nodeArgs: [
      ...(process.env.BENCH_AGENT_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_AGENT_PROF}`] : []),
      ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    ],
    args: ['--iface', 'eth0', '--bgp-asn', String(AGENT.asn), '--bgp-peer', `${TOR.ip},asn=${TOR.asn}`, '--log-level', process.env.BENCH_AGENT_LOG ?? 'info'],
  });
  await agent.waitReady(60_000);
  const bird = await startPeerDaemon({
    kind: 'bird', netns: birdNs, asn: BIRD.asn, routerId: BIRD.ip, label: 'bench-bird-receiver', installRoutes: true,
    neighbors: [{ address: TOR.ip, asn: TOR.asn }],
  });
  return {
    torNs, agent,
    receivers: {
      twill: { name: 'twill', ns: agentNs, ip: AGENT.ip, asn: AGENT.asn, protocol: RTPROT_TWILL, pid: () => agent.daemon.pid },
      bird: { name: 'bird', ns: birdNs, ip: BIRD.ip, asn: BIRD.asn, protocol: RTPROT_BIRD, pid: () => bird.pid },
    },
  };
}

/**
 * A fresh gobgpd ToR with `r` as its only neighbour: one receiver at a time, since on two cores
 * two receivers installing at once would measure each other (and gobgpd feeds two peers slower
 * than one, bgp-peers.ts). Passive: gobgpd's own connection attempts wait 5-10 s.
 */
function startTor(torNs: TestNetns, r: Receiver): Promise<PeerDaemon> {
  return startPeerDaemon({
    kind: 'gobgp', netns: torNs, asn: TOR.asn, routerId: TOR.ip, listenAddress: TOR.ip, label: `bench-tor-${r.name}`,
    neighbors: [{ address: r.ip, asn: r.asn, passive: true, holdTime: 90 }],
  });
}

/** `whileHeld` runs once the routes are in, before the ToR stops (and withdraws them). */
async function timeInstall(torNs: TestNetns, r: Receiver, count: number, whileHeld?: () => Promise<void>): Promise<InstallSample> {
  const tor = await startTor(torNs, r);
  let sample: InstallSample;
  let wire: FirstUpdateWatch | undefined;
  try {
    await tor.waitEstablished(r.ip, 60_000);
    wire = await watchFirstUpdate(torNs, 'seg', TOR.ip, r.ip);
    const baseline = fibPrefixes(r.pid());
    const cpu = processCpuMs(r.pid());
    const t0 = performance.now();
    const fed = tor.announceMany(count, TABLE_BASE).then(() => performance.now() - t0);
    fed.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    await waitFor(() => fibPrefixes(r.pid()) >= baseline + count, { timeoutMs: 300_000, intervalMs: 5, what: `${count} routes in ${r.name}'s kernel` });
    const end = Date.now();
    sample = { ms: performance.now() - t0, intakeMs: end - await wire.time(), cpuMs: processCpuMs(r.pid()) - cpu, fedMs: await fed };
    const installed = await routesOfProtocol(r.ns, r.protocol);
    if (installed !== count) throw new Error(`${r.name}: ${installed} routes of protocol ${r.protocol} in its kernel, expected ${count}`);
    await whileHeld?.();
  } finally {
    await wire?.stop();
    await tor.stop();
  }
  // The session ended without graceful restart (gobgpd offered none): the receiver withdraws all.
  await waitFor(async () => (await routesOfProtocol(r.ns, r.protocol)) === 0, { timeoutMs: 120_000, intervalMs: 50, what: `${r.name}'s routes gone after the ToR stopped` });
  return sample;
}

/**
 * The agent's own account of the ToR session after an install: what it received and accepted,
 * and whether max-prefix tripped (it must not at exactly DEFAULT_MAX_PREFIXES_PER_PEER).
 */
async function checkAgentAccepted(agent: TestAgent, count: number): Promise<void> {
  const { status, body } = await agent.http('/bgp/peers');
  const peer = status === 200 ? (JSON.parse(body) as { peers: { address: string; received: number; accepted: number; lastError?: string }[] }).peers.find((p) => p.address === TOR.ip) : undefined;
  const tripped = agent.daemon.output().includes('prefixes: session reset');
  log(`agent's view of the ToR: ${JSON.stringify(peer)}; max-prefix tripped: ${tripped}`);
  if (tripped || peer?.accepted !== count) throw new Error(`the agent did not accept exactly ${count} prefixes from the ToR (max-prefix ${DEFAULT_MAX_PREFIXES_PER_PEER}): ${JSON.stringify(peer)}`);
}

/** The agent's memory (MiB): VmRSS before any route, right after each of its installs, and later. */
interface AgentMemory {
  before: number;
  afterInstall: number[];
  /** VmRSS LATER_MS after the last install, the routes still held. */
  later: number;
  /** V8's used heap then (prom-client's nodejs_heap_size_used_bytes): what of the RSS is live JS data. */
  heapUsed: number;
}

/** How long the agent holds the routes after the last install before its memory is read again. */
const LATER_MS = 10_000;

/**
 * One round: both receivers in turn. Twill's RSS is read while it holds the routes; in the first
 * round the agent's own count of accepted prefixes is checked, in the last one its settled RSS.
 */
async function installRound(bed: InstallBed, count: number, r: number, rounds: number, times: Record<'twill' | 'bird', InstallSample[]>, mem: AgentMemory): Promise<void> {
  // Alternate the order: the machine is shared, and what runs second meets a warmer cache.
  const order = r % 2 === 0 ? (['twill', 'bird'] as const) : (['bird', 'twill'] as const);
  const rss = (): number => processRssMiB(bed.agent.daemon.pid, 'VmRSS');
  const line: string[] = [];
  for (const who of order) {
    const held = who === 'bird' ? undefined : async (): Promise<void> => {
      mem.afterInstall.push(rss());
      if (r === 0) await checkAgentAccepted(bed.agent, count);
      if (r === rounds - 1) {
        await new Promise((done) => setTimeout(done, LATER_MS));
        mem.later = rss();
        mem.heapUsed = ((await bed.agent.metric('nodejs_heap_size_used_bytes')) ?? NaN) / 2 ** 20;
      }
    };
    const s = await timeInstall(bed.torNs, bed.receivers[who], count, held);
    times[who].push(s);
    line.push(`${who} ${round(s.ms, 0)} ms (intake ${round(s.intakeMs, 0)} ms, ${s.cpuMs} ms of CPU; gobgpd took the table in ${round(s.fedMs, 0)} ms)`);
  }
  log(`round ${r + 1}/${rounds}: ${line.join(', ')}; agent RSS right after its install ${round(mem.afterInstall.at(-1)!, 1)} MiB`);
  // With BENCH_AGENT_LOG=debug: the agent's kernel syncs during the round (how many, how big).
  if (process.env.BENCH_BGP_DEBUG) log(bed.agent.daemon.output().split('\n').filter((l) => /routes installed|session state/.test(l)).slice(-30).join('\n'));
}

async function installBench(count: number, rounds: number): Promise<void> {
  const registry = new CleanupRegistry('bgp-backend install');
  cleanup.defer('bgp-backend install bed', () => registry.runAll(), { timeoutMs: 60_000 });
  try {
    const bed = await startInstallBed(registry, count);
    const times = { twill: [] as InstallSample[], bird: [] as InstallSample[] };
    const mem: AgentMemory = { before: processRssMiB(bed.agent.daemon.pid, 'VmRSS'), afterInstall: [], later: 0, heapUsed: 0 };
    for (let r = 0; r < rounds; r++) await installRound(bed, count, r, rounds, times, mem);
    reportInstall(count, times, mem, processRssMiB(bed.agent.daemon.pid, 'VmHWM'));
  } finally {
    await registry.runAll();
  }
}

function reportInstall(count: number, times: Record<'twill' | 'bird', InstallSample[]>, mem: AgentMemory, peakRss: number): void {
  const label = count % 1000 === 0 ? `${count / 1000}k` : String(count);
  const of = (key: 'ms' | 'intakeMs' | 'cpuMs'): Record<'twill' | 'bird', number[]> => ({ twill: times.twill.map((s) => s[key]), bird: times.bird.map((s) => s[key]) });
  const [ms, intake, cpu] = [of('ms'), of('intakeMs'), of('cpuMs')];
  report({ bench: BENCH, metric: 'routes', value: count, unit: 'count' });
  report({ bench: BENCH, metric: 'install_rounds', value: times.twill.length, unit: 'count' });
  reportWithSamples({ bench: BENCH, metric: `twill_install_${label}_ms`, value: round(median(ms.twill), 0), unit: 'ms' }, ms.twill);
  reportWithSamples({ bench: BENCH, metric: `bird_install_${label}_ms`, value: round(median(ms.bird), 0), unit: 'ms' }, ms.bird);
  report({ bench: BENCH, metric: 'ratio_vs_bird', value: round(median(ms.twill) / median(ms.bird)), unit: 'x', target: '<=1.0' });
  reportWithSamples({ bench: BENCH, metric: `twill_intake_${label}_ms`, value: round(median(intake.twill), 0), unit: 'ms' }, intake.twill);
  reportWithSamples({ bench: BENCH, metric: `bird_intake_${label}_ms`, value: round(median(intake.bird), 0), unit: 'ms' }, intake.bird);
  report({ bench: BENCH, metric: 'intake_ratio_vs_bird', value: round(median(intake.twill) / median(intake.bird)), unit: 'x', target: '<=1.0' });
  reportWithSamples({ bench: BENCH, metric: `twill_cpu_${label}_ms`, value: median(cpu.twill), unit: 'ms' }, cpu.twill);
  reportWithSamples({ bench: BENCH, metric: `bird_cpu_${label}_ms`, value: median(cpu.bird), unit: 'ms' }, cpu.bird);
  // The largest reading: right after an install V8 has not collected the garbage of decoding the table yet.
  reportWithSamples({ bench: BENCH, metric: `agent_rss_${label}_mib`, value: round(Math.max(...mem.afterInstall), 1), unit: 'MiB', target: '<200' }, mem.afterInstall, 1);
  report({ bench: BENCH, metric: `agent_rss_${label}_10s_later_mib`, value: round(mem.later, 1), unit: 'MiB' });
  report({ bench: BENCH, metric: `agent_heap_used_${label}_10s_later_mib`, value: round(mem.heapUsed, 1), unit: 'MiB' });
  report({ bench: BENCH, metric: 'agent_rss_before_routes_mib', value: round(mem.before, 1), unit: 'MiB' });
  report({ bench: BENCH, metric: 'agent_peak_rss_mib', value: round(peakRss, 1), unit: 'MiB' });
}

// ---- (3): host joins through the ToRs ---------------------------------------------------------

interface JoinBed {
  readonly racks: Racks;
  readonly agents: (TestAgent | undefined)[];
  /** Each host's current subnet ("10.244.3.0/24"). */
  readonly subnets: string[];
  readonly netlinks: Netlink[];
}

/** The subnet file a host's agent reads its previous subnet from: the one it will lease. */
function writeSubnetHint(dir: string, subnet: string): void {
  const gateway = subnet.replace(/\.0\/24$/, '.1/24');
  writeFileSync(join(dir, 'subnet.env'), formatSubnetEnv({ network: '10.244.0.0/16', subnet: gateway, mtu: 1500, ipMasq: false }));
}

/**
 * Removes what a stopped agent left in its host's kernel (a SIGTERM keeps its routes, for a
 * restart): its routes, then its nexthop objects, groups before their members.
 * (`ip route flush proto 84` fails with EINVAL on routes through nexthop objects.)
 */
async function clearTwillRoutes(nl: Netlink): Promise<void> {
  for (const r of await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })) await nl.deleteRoute({ dst: r.dst, protocol: RTPROT_TWILL });
  const nexthops = (await nl.listNexthops()).filter((n) => n.protocol === RTPROT_TWILL).sort((a, b) => Number(b.group) - Number(a.group));
  for (const n of nexthops) await nl.deleteNexthop(n.id);
}

/** The agent's "subnet file written" log time (ms since the epoch): the moment it is ready. */
async function subnetWrittenAt(agent: TestAgent): Promise<number> {
  const line = await waitFor(() => agent.daemon.output().split('\n').find((l) => l.includes('"msg":"subnet file written"')),
    { timeoutMs: 30_000, intervalMs: 2, what: 'the joining agent\'s "subnet file written"' });
  return (JSON.parse(line) as { time: number }).time;
}

/**
 * Starts host i's agent as a new host on `subnet`: no routes of Twill's in its kernel, no
 * restart marker, a subnet file naming the subnet. The file only picks which free subnet the
 * lease is created for (the same create as a random pick, acquireLease step 1): one no router
 * has seen in this run, so no ToR can hold a stale path for it from an earlier join (graceful
 * restart keeps a stopped agent's routes at its ToR for up to 120 s).
 */
async function startFresh(bed: JoinBed, i: number, subnet: string): Promise<TestAgent> {
  const h = bed.racks.hosts[i]!;
  await clearTwillRoutes(bed.netlinks[i]!);
  rmSync(join(h.dir, 'bgp-boot-id'), { force: true });
  writeSubnetHint(h.dir, subnet);
  const agent = await startAgent(h.ns, { etcd: bed.racks.etcd.clientUrl, dir: h.dir, args: [...rackAgentArgs(h), '--log-level', process.env.BENCH_AGENT_LOG ?? 'info'] });
  bed.agents[i] = agent;
  bed.subnets[i] = subnet;
  return agent;
}

/** The route host `at` should have for host `of`'s subnet: a rack mate directly, the other rack via its own ToR. */
function expectedGateway(racks: Racks, at: number, of: number): string {
  const me = racks.hosts[at]!;
  const other = racks.hosts[of]!;
  return other.rack === me.rack ? other.ip : me.tor;
}

async function hasRoute(nl: Netlink, subnet: string, gateway: string): Promise<boolean> {
  return (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).some((r) => r.dst === subnet && r.gateway === gateway);
}

/**
 * Polls every other host until each routes host j's subnet; returns when each first did (ms
 * since the epoch, by host index), the last of them being the join's end.
 */
async function routedEverywhereAt(bed: JoinBed, j: number): Promise<Map<number, number>> {
  const subnet = bed.subnets[j]!;
  const seen = new Map<number, number>();
  const others = bed.racks.hosts.map((_, i) => i).filter((i) => i !== j);
  await waitFor(async () => {
    for (const i of others) {
      if (!seen.has(i) && await hasRoute(bed.netlinks[i]!, subnet, expectedGateway(bed.racks, i, j))) seen.set(i, Date.now());
    }
    return seen.size === others.length;
  }, { timeoutMs: 60_000, intervalMs: 2, what: `${subnet} routed on every other host` });
  return seen;
}

/**
 * Whether host i routes every other host's subnet. A join ends only once the joined host does:
 * FRR sent a newly joined host its table only seconds after the session came up, and the next
 * join must not find a host still waiting for its first table (it took up to 350 ms longer).
 */
async function routesEveryOther(bed: JoinBed, i: number): Promise<boolean> {
  for (const j of bed.racks.hosts.keys()) {
    if (j !== i && !(await hasRoute(bed.netlinks[i]!, bed.subnets[j]!, expectedGateway(bed.racks, i, j)))) return false;
  }
  return true;
}

/**
 * Host j leaves: agent stopped (SIGTERM), its lease deleted, its route gone from every other
 * host; then its ToR is back to waiting for it (BGP state Active or Connect), as a ToR waits for
 * a configured host that has not come up yet. Right after the session's end BIRD sits out its
 * "error wait time" in Idle (1 s, growing to 5 s on repeated drops): a join then would meet a
 * state that only recycling the same host so quickly brings about.
 */
async function leave(bed: JoinBed, j: number): Promise<void> {
  await bed.agents[j]!.daemon.stop();
  const subnet = bed.subnets[j]!;
  await bed.racks.etcd.etcdctl(['del', keyLayout(RACK_PREFIX).subnetsPrefix + subnetToKeyName(subnet)]);
  const others = bed.racks.hosts.map((_, i) => i).filter((i) => i !== j);
  await waitFor(async () => {
    for (const i of others) if ((await bed.netlinks[i]!.listRoutes({ family: 4, protocol: RTPROT_TWILL })).some((r) => r.dst === subnet)) return false;
    return true;
  }, { timeoutMs: 30_000, intervalMs: 20, what: `${subnet} gone from the other hosts` });
  const h = bed.racks.hosts[j]!;
  const tor = bed.racks.torDaemons[h.rack];
  await waitFor(async () => ['active', 'connect'].includes(await tor.sessionState(h.ip)), { timeoutMs: 30_000, intervalMs: 20, what: `ToR ${h.rack} waiting for h${j + 1} again` });
}

async function startJoinBed(): Promise<JoinBed> {
  const racks = await startRacks({ label: 'bench-bgp-joins', backend: { Mesh: false, HoldTime: 9 } });
  const netlinks = racks.hosts.map((h) => Netlink.open(h.ns.netnsPath));
  cleanup.defer('close the join bed\'s netlink handles', () => netlinks.forEach((nl) => nl.close()));
  const bed: JoinBed = { racks, agents: [], subnets: [], netlinks };
  await Promise.all(racks.hosts.map(async (_, i) => (await startFresh(bed, i, `10.244.${i + 1}.0/24`)).waitReady(60_000)));
  for (const i of racks.hosts.keys()) await waitFor(() => routesEveryOther(bed, i), { timeoutMs: 60_000, what: `h${i + 1} routing every other host` });
  return bed;
}

/**
 * BENCH_BGP_DEBUG=1: when each other host got the route and, for a slow join, what the joining
 * agent and its ToR logged about their session.
 */
function debugJoin(bed: JoinBed, j: number, agent: TestAgent, readyAt: number, seen: ReadonlyMap<number, number>): void {
  log(`h${j + 1} ${bed.subnets[j]}: ${[...seen].map(([i, t]) => `h${i + 1} +${t - readyAt} ms`).join(', ')}`);
  if (Math.max(...seen.values()) - readyAt < 150) return;
  const h = bed.racks.hosts[j]!;
  const lines = [
    ...agent.daemon.output().split('\n').filter((l) => /session state|subnet file written|speaker started/.test(l)).map((l) => `joiner ${l}`),
    ...bed.racks.torDaemons[h.rack].output().split('\n').filter((l) => l.includes(h.ip) || l.includes(h.ip.replaceAll('.', '_'))).slice(-15).map((l) => `tor ${l}`),
  ];
  log(lines.map((l) => `  ${l.slice(0, 300)}`).join('\n'));
}

/** One join of host j on `subnet`: ms from its readiness to its route on every other host. */
async function timeJoin(bed: JoinBed, j: number, subnet: string): Promise<number> {
  await leave(bed, j);
  const agent = await startFresh(bed, j, subnet);
  const readyAt = await subnetWrittenAt(agent);
  const seen = await routedEverywhereAt(bed, j);
  const routedAt = Math.max(...seen.values());
  if (process.env.BENCH_BGP_DEBUG) debugJoin(bed, j, agent, readyAt, seen);
  const leased = agent.subnetEnv()?.FLANNEL_SUBNET;
  if (leased !== subnet.replace(/\.0\/24$/, '.1/24')) throw new Error(`the joining agent leased ${leased}, not ${subnet}`);
  await agent.waitReady(30_000);
  await waitFor(() => routesEveryOther(bed, j), { timeoutMs: 60_000, intervalMs: 20, what: `h${j + 1} routing every other host` });
  return routedAt - readyAt;
}

async function joinBench(joins: number, budgetMs: number): Promise<void> {
  if (joins > 255 - JOIN_SUBNET_FROM) throw new Error(`--joins ${joins}: at most ${255 - JOIN_SUBNET_FROM} (each join takes a subnet of 10.244.0.0/16 no host held before)`);
  const bed = await startJoinBed();
  const started = Date.now();
  const latencies: number[] = [];
  let first = NaN;
  try {
    // The routers' start-up (see the header): this join waits for it by a condition, its own end.
    first = await timeJoin(bed, JOINERS[0], `10.244.${JOIN_SUBNET_FROM}.0/24`);
    for (let k = 1; k <= joins; k++) {
      if (Date.now() - started > budgetMs) {
        log(`join budget of ${budgetMs / 1000} s used up after ${k - 1} joins: stopping there`);
        break;
      }
      const j = JOINERS[k % JOINERS.length]!;
      latencies.push(await timeJoin(bed, j, `10.244.${JOIN_SUBNET_FROM + k}.0/24`));
      if (k % 10 === 0) log(`${k} joins, last ${latencies.at(-1)} ms, ${Math.round((Date.now() - started) / 1000)} s so far`);
    }
  } finally {
    await Promise.all(bed.agents.flatMap((a) => (a ? [a.daemon.stop()] : [])));
  }
  report({ bench: BENCH, metric: 'first_join_ms', value: first, unit: 'ms' });
  report({ bench: BENCH, metric: 'joins', value: latencies.length, unit: 'count' });
  report({ bench: BENCH, metric: 'join_to_routes_p50_ms', value: round(percentile(latencies, 50), 1), unit: 'ms' });
  reportWithSamples({ bench: BENCH, metric: 'join_to_routes_p99_ms', value: round(percentile(latencies, 99), 1), unit: 'ms', target: '<500' }, latencies);
}

export async function run(args: string[]): Promise<void> {
  const count = numberOption(args, '--routes', DEFAULT_MAX_PREFIXES_PER_PEER);
  const rounds = numberOption(args, '--rounds', 3);
  const joins = numberOption(args, '--joins', 50);
  const budgetMs = numberOption(args, '--join-budget-s', 300) * 1000;
  const only = stringOption(args, '--only');
  // More than the agent's per-peer max-prefix would reset the ToR's session, by design.
  if (count > DEFAULT_MAX_PREFIXES_PER_PEER) throw new Error(`--routes ${count}: the agent takes at most ${DEFAULT_MAX_PREFIXES_PER_PEER} prefixes per peer`);
  try {
    if (only !== 'joins') await installBench(count, rounds);
    if (only !== 'install') await joinBench(joins, budgetMs);
  } finally {
    await cleanup.runAll();
  }
}
