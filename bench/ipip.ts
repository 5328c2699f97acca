import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { enterNetns, Netlink, RTPROT_TWILL } from '../src/netlink/index.js';
import { encodeLease, keyLayout, subnetToKeyName } from '../src/store/index.js';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { createCluster, type Host } from '../test/helpers/cluster.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { etcdBulk } from '../test/helpers/etcd-bulk.js';
import { kernelHasIpip } from '../test/helpers/kernel-features.js';
import { startAgent, type TestAgent } from '../test/helpers/twilld.js';
import { waitFor } from '../test/helpers/wait.js';
import { waitEntriesGone } from './twill-entries.js';
import { median, numberOption, remoteHosts, report, round, stringOption, type RemoteHost } from './report.js';
import { measureThroughput } from './throughput.js';

/**
 * `npm run bench -- ipip [--only throughput|burst] [--leases N] [--burst-rounds R] [--seconds S] [--rounds R]`
 *
 * (a) iperf3 pod -> pod across two hosts through twill.ipip, beside host -> host on the same
 *     underlay and beside flannel's ipip data path built by hand (flannel-path.ts), in the same
 *     run; target Twill / flannel's path >= 1.0.
 * (b) N remote ipip leases (default 5,000) put into etcd in one transaction while the agent
 *     runs -> time until all N routes are in the kernel, beside `ip -batch` writing the same N
 *     routes through an IPIP device of its own (plain, as flanneld writes them, and through
 *     nexthop objects, as Twill writes them); medians over 5 rounds, target ratio <= 1.0.
 *
 * A kernel without IPIP (this build machine's) runs the benchmark inside the 6.1 VM of
 * `npm run test:kernel` (test/vm/README.md): emulated CPUs, so compare ratios, not absolute figures.
 */
const PREFIX = '/coreos.com/network';
const ETCD_IP = '198.18.0.254';
const NETWORK = '10.0.0.0/8';

export async function run(args: string[]): Promise<void> {
  if (!process.env.TWILL_IN_VM && !await kernelHasIpip()) {
    await cleanup.runAll();
    process.stderr.write('bench ipip: this kernel has no IPIP; running the benchmark in the 6.1 VM (test/vm)\n');
    process.exitCode = await inVm(['ipip', ...args]);
    return;
  }
  const only = stringOption(args, '--only');
  if (only !== undefined && only !== 'throughput' && only !== 'burst') throw new Error(`--only takes throughput or burst, not "${only}"`);
  if (only !== 'burst') {
    await measureThroughput('ipip', 'ipip', { seconds: numberOption(args, '--seconds', 5), rounds: numberOption(args, '--rounds', 3), targets: { flannel: '>=1.0' } });
  }
  // Five rounds: under the VM's emulation V8 needs the first two or three to warm up the agent.
  if (only !== 'throughput') await burst(numberOption(args, '--leases', 5000), numberOption(args, '--burst-rounds', 5));
}

/** The same benchmark inside the VM, through the harness; resolves to its exit status. */
function inVm(benchArgs: string[]): Promise<number> {
  const child = spawn(process.execPath, ['scripts/test-kernel.mjs', '--vm-bench', ...benchArgs],
    { stdio: 'inherit', env: { ...process.env, TWILL_IN_VM: '1' } });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

/** iproute2 writing `leases`' routes onlink through ref.ipip, an IPIP device of its own beside twill.ipip. */
async function iproute2Reference(host: Host, leases: readonly RemoteHost[], dir: string, nexthops: boolean): Promise<number> {
  // Another local address than twill.ipip's: the kernel keeps one tunnel per local and remote address.
  await host.exec('ip', ['link', 'add', 'ref.ipip', 'type', 'ipip', 'local', '198.18.0.99', 'dev', 'eth0']);
  await host.exec('ip', ['link', 'set', 'ref.ipip', 'up']);
  const file = join(dir, `routes-${nexthops ? 'nh' : 'plain'}`);
  writeFileSync(file, leases.map((l, i) => (nexthops
    ? `nexthop replace id ${i + 1} via ${l.ip} dev ref.ipip onlink proto ${RTPROT_TWILL}\nroute replace ${l.subnet} nhid ${i + 1} proto ${RTPROT_TWILL}\n`
    : `route replace ${l.subnet} via ${l.ip} dev ref.ipip onlink proto ${RTPROT_TWILL}\n`)).join(''));
  const t = performance.now();
  await host.exec('ip', ['-batch', file]);
  const elapsed = performance.now() - t;
  await host.exec('ip', ['link', 'del', 'ref.ipip']);
  return elapsed;
}

async function burst(n: number, rounds: number): Promise<void> {
  const agents: TestAgent[] = [];
  try {
    const cluster = await createCluster({ hosts: 1 });
    const host = cluster.hosts[0]!;
    await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
    // Room for one transaction of N puts (the default is 128 operations and 1.5 MiB).
    const etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP, extraArgs: [`--max-txn-ops=${n + 10}`, '--max-request-bytes=67108864'] });
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'ipip' } })]);
    const dir = tempDir('bench-ipip');
    mkdirSync(join(dir, 'host'), { recursive: true });
    const agent = await startAgent(host, { etcd: etcd.clientUrl, dir: join(dir, 'host'), args: ['--iface', 'eth0', '--log-level', 'warn'] });
    agents.push(agent);
    await agent.waitReady(60_000);
    const nl = Netlink.open(host.netnsPath);
    cleanup.defer('close netlink', () => nl.close());
    const twillRoutes = async (): Promise<number> => (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).length;

    const leases = remoteHosts(n);
    const { subnetsPrefix } = keyLayout(PREFIX);
    const entries: [string, string][] = leases.map((l) => [subnetsPrefix + subnetToKeyName(l.subnet), encodeLease({ publicIp: l.ip, backendType: 'ipip', backendData: null })]);
    // etcd listens on the underlay: the bulk client must connect from there.
    const leave = enterNetns(cluster.underlay.netnsPath);
    cleanup.defer('leave the underlay namespace', leave);
    const bulk = etcdBulk(etcd.clientUrl);
    cleanup.defer('close the bulk etcd client', () => bulk.close());
    await bulk.warmUp('/bench-warm-up/', n);
    const total: number[] = [];
    const afterCommit: number[] = [];
    const ref: number[] = [];
    const refNh: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      await bulk.putAll(entries);
      const committed = performance.now();
      await waitFor(async () => (await twillRoutes()) >= n, { timeoutMs: 300_000, intervalMs: 25, what: `${n} routes` });
      const end = performance.now();
      total.push(end - start);
      afterCommit.push(end - committed);
      ref.push(await iproute2Reference(host, leases, dir, false));
      refNh.push(await iproute2Reference(host, leases, dir, true));
      process.stderr.write(`ipip burst round ${r + 1}: ${n} routes ${Math.round(total[r]!)} ms after the put (${Math.round(afterCommit[r]!)} ms after the commit); ip -batch ${Math.round(ref[r]!)} ms, with nexthops ${Math.round(refNh[r]!)} ms\n`);
      await bulk.deleteAll(entries.map(([key]) => key));
      // The nexthops go after the routes: the next round begins once they are gone too.
      await waitEntriesGone(nl, [{ device: 'twill.ipip', family: 4 }], 0);
    }
    report({ bench: 'ipip', metric: 'leases', value: n, unit: 'count' });
    report({ bench: 'ipip', metric: 'burst_put_to_routes_ms', value: round(median(total), 1), unit: 'ms' });
    report({ bench: 'ipip', metric: 'burst_commit_to_routes_ms', value: round(median(afterCommit), 1), unit: 'ms' });
    report({ bench: 'ipip', metric: 'burst_iproute2_batch_ms', value: round(median(ref), 1), unit: 'ms' });
    report({ bench: 'ipip', metric: 'burst_iproute2_nexthops_batch_ms', value: round(median(refNh), 1), unit: 'ms' });
    report({ bench: 'ipip', metric: 'burst_ratio_vs_iproute2', value: round(median(total) / median(ref)), unit: 'x', target: '<=1.0' });
    report({ bench: 'ipip', metric: 'burst_commit_ratio_vs_iproute2_nexthops', value: round(median(afterCommit) / median(refNh)), unit: 'x' });
  } finally {
    await Promise.all(agents.map((a) => a.daemon.stop()));
    await cleanup.runAll();
  }
}
