import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSubnetEnv } from '../src/core/subnet-env.js';
import { attachPod } from '../src/ctl/demo/reference-cni.js';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { createCluster, type Cluster } from '../test/helpers/cluster.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { exec } from '../test/helpers/exec.js';
import { createTestNetns, type TestNetns } from '../test/helpers/netns.js';
import { startAgent, type TestAgent } from '../test/helpers/twilld.js';
import { CNI_SHIM } from '../test/helpers/cni.js';
import { flannelPath, type FlannelBackend } from './flannel-path.js';
import { median, numberOption, report, round } from './report.js';

/**
 * `npm run bench -- throughput [--seconds N] [--rounds R]`
 *
 * iperf3 pod -> pod across two hosts, through each backend Twill programs (pods wired by Twill's
 * CNI plugin), beside iperf3 host -> host on the same underlay in the same run; rounds alternate
 * and medians are compared. Targets: vxlan >= 0.75 of the underlay (the encapsulation costs 50
 * bytes a packet and the kernel's VXLAN path), host-gw >= 0.95 (plain routing).
 *
 * Also in each round: the same pod -> pod over flannel's data path built by hand on a second
 * cluster (see flannel-path.ts), so the report separates what the kernel's pod path costs on this
 * machine from what Twill adds to it. The ipip backend's figures are `npm run bench -- ipip`.
 */
const PREFIX = '/coreos.com/network';
const ETCD_IP = '198.18.0.254';
const TARGETS: Record<string, string> = { vxlan: '>=0.75', 'host-gw': '>=0.95' };


/** One iperf3 TCP run from `client` to `serverIp` (served from `server`): Gbit/s received. */
export async function iperf(server: TestNetns, client: TestNetns, serverIp: string, seconds: number): Promise<number> {
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

async function setUp(backend: FlannelBackend): Promise<{ cluster: Cluster; pods: { ns: TestNetns; ip: string }[]; agents: TestAgent[] }> {
  const cluster = await createCluster({ hosts: 2 });
  await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
  const etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP });
  await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: backend } })]);
  const dir = tempDir(`bench-${backend}`);
  const agents: TestAgent[] = [];
  const pods: { ns: TestNetns; ip: string }[] = [];
  for (const [i, host] of cluster.hosts.entries()) {
    const hostDir = join(dir, `host${i}`);
    mkdirSync(hostDir, { recursive: true });
    // --ip-masq, as recommended: pod-to-pod traffic then keeps the pods' addresses.
    const agent = await startAgent(host, { etcd: etcd.clientUrl, dir: hostDir, args: ['--iface', 'eth0', '--ip-masq', '--log-level', 'warn'] });
    agents.push(agent);
    await agent.waitReady();
    const ns = await createTestNetns(`h${i}pod`);
    const { ip } = await attachPod({
      hostNetns: host.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0',
      subnetEnv: parseSubnetEnv(readFileSync(agent.subnetFile, 'utf8'), agent.subnetFile), dataDir: join(hostDir, 'ipam'), isDefaultGateway: true,
      twill: { shim: CNI_SHIM, socket: agent.cniSocket, subnetFile: agent.subnetFile },
    });
    pods.push({ ns, ip });
  }
  return { cluster, pods, agents };
}

/**
 * iperf3 pod -> pod through `backend` (Twill's agents and CNI plugin on one cluster), flannel's
 * path by hand on a second and host -> host on the first's underlay, `rounds` alternating rounds;
 * reports the medians under `bench` with metric names prefixed by the backend.
 */
export async function measureThroughput(bench: string, backend: FlannelBackend, opts: { seconds: number; rounds: number; targets: { underlay?: string; flannel?: string } }): Promise<void> {
  const { cluster, pods, agents } = await setUp(backend);
  try {
    const flannel = await flannelPath(backend, tempDir(`bench-flannel-${backend}`));
    const [a, b] = cluster.hosts;
    const podGbps: number[] = [];
    const flannelGbps: number[] = [];
    const hostGbps: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      podGbps.push(await iperf(pods[1]!.ns, pods[0]!.ns, pods[1]!.ip, opts.seconds));
      flannelGbps.push(await iperf(flannel.pods[1]!.ns, flannel.pods[0]!.ns, flannel.pods[1]!.ip, opts.seconds));
      hostGbps.push(await iperf(b!, a!, b!.underlayIp, opts.seconds));
      process.stderr.write(`${backend} round ${r + 1}: pod->pod ${podGbps[r]!.toFixed(2)} Gbit/s (flannel's path by hand ${flannelGbps[r]!.toFixed(2)}), host->host ${hostGbps[r]!.toFixed(2)} Gbit/s\n`);
    }
    const target = (t: string | undefined): { target?: string } => (t === undefined ? {} : { target: t });
    report({ bench, metric: `${backend}_pod_to_pod_gbps`, value: round(median(podGbps), 2), unit: 'Gbit/s' });
    report({ bench, metric: `${backend}_host_to_host_gbps`, value: round(median(hostGbps), 2), unit: 'Gbit/s' });
    report({ bench, metric: `${backend}_ratio_vs_underlay`, value: round(median(podGbps) / median(hostGbps)), unit: 'x', ...target(opts.targets.underlay) });
    report({ bench, metric: `${backend}_flannel_path_pod_to_pod_gbps`, value: round(median(flannelGbps), 2), unit: 'Gbit/s' });
    report({ bench, metric: `${backend}_flannel_path_ratio_vs_underlay`, value: round(median(flannelGbps) / median(hostGbps)), unit: 'x' });
    report({ bench, metric: `${backend}_ratio_vs_flannel_path`, value: round(median(podGbps) / median(flannelGbps)), unit: 'x', ...target(opts.targets.flannel) });
  } finally {
    await Promise.all(agents.map((x) => x.daemon.stop()));
    await cleanup.runAll();
  }
}

export async function run(args: string[]): Promise<void> {
  const seconds = numberOption(args, '--seconds', 5);
  const rounds = numberOption(args, '--rounds', 3);
  for (const backend of ['vxlan', 'host-gw'] as const) {
    await measureThroughput('throughput', backend, { seconds, rounds, targets: { underlay: TARGETS[backend]! } });
  }
}
