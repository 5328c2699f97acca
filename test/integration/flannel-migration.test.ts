import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSubnetEnv, type SubnetEnv } from '../../src/core/subnet-env.js';
import { attachPod } from '../../src/ctl/demo/reference-cni.js';
import { tempDir } from '../helpers/cleanup.js';
import { createCluster, type Cluster, type Host } from '../helpers/cluster.js';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { commandAvailable, exec, type RunResult } from '../helpers/exec.js';
import {
  addFlannelDevice, addFlannelPeer, FLANNEL_DEVICE, flannelLeaseKey, flannelLeaseRecord, networkAddress, randomVtepMac, startFakeFlanneld,
} from '../helpers/flannel-state.js';
import { createTestNetns } from '../helpers/netns.js';
import { repoRoot, startAgent, type TestAgent } from '../helpers/twilld.js';
import { pingAll, type MeshPod } from '../helpers/pod-mesh.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// Issue 13, item 17: a host that ran flanneld (vxlan) moves to Twill in one step (stop flanneld,
// start twilld), beside live Twill peers, and back again with `twillctl uninstall`.
//
// Host 0 holds flanneld's state exactly as flanneld leaves it when it stops or panics
// (test/helpers/flannel-state.ts): flannel.1 with its MAC in the lease, per peer a neighbour, an
// FDB entry and an onlink route (proto boot), its lease in etcd. Hosts 1 and 2 run twilld. On the
// old code twilld on host 0 stopped with EVXLAN_CONFLICT (flannel.1 holds VNI 1 on port 8472).

const PREFIX = '/coreos.com/network';
const NETWORK = '10.244.0.0/16';
const ETCD_IP = '198.18.0.254';
const FLANNEL_SUBNET = '10.244.21.0/24';
const PING_INTERVAL_S = 0.05;
const CTL = resolve(repoRoot(), 'dist/src/ctl/main.js');
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');

interface Lease { PublicIP: string; BackendType: string; BackendData: { VNI: number; VtepMAC: string } }
interface IpRoute { dst: string; dev?: string; protocol?: string; nhid?: number }
interface IpNeigh { dst: string; dev: string; lladdr?: string }
interface BridgeFdb { mac: string; ifname?: string; dst?: string }


/**
 * What a `ping -D -i <interval>` printed: the replies' sequence numbers and times, how many
 * packets were lost in between (the last probe, in flight when ping was stopped, does not count),
 * and the longest silence between two replies.
 */
function pingLoss(output: string): { replies: number; lost: number; lostSeconds: number; longestGapSeconds: number } {
  const replies = [...output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm)].map((m) => ({ t: Number(m[1]), seq: Number(m[2]) }));
  if (replies.length === 0) return { replies: 0, lost: Infinity, lostSeconds: Infinity, longestGapSeconds: Infinity };
  const seqs = new Set(replies.map((r) => r.seq));
  const last = Math.max(...seqs);
  let lost = 0;
  for (let s = 1; s <= last; s++) if (!seqs.has(s)) lost++;
  let longestGapSeconds = 0;
  for (let i = 1; i < replies.length; i++) longestGapSeconds = Math.max(longestGapSeconds, replies[i]!.t - replies[i - 1]!.t);
  return { replies: replies.length, lost, lostSeconds: lost * PING_INTERVAL_S, longestGapSeconds };
}

describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins)('moving a flannel host to Twill and back', () => {
  useCleanup();
  let cluster: Cluster;
  let etcd: Etcd;
  let dir: string;
  let flannelHost: Host;
  let flannelMac: string;
  const agents: (TestAgent | undefined)[] = [];
  const pods: MeshPod[] = [];

  const agentDir = (i: number): string => join(dir, `host${i}`);
  const startOn = async (i: number, args: string[] = []): Promise<TestAgent> => {
    mkdirSync(agentDir(i), { recursive: true });
    const agent = await startAgent(cluster.hosts[i]!, { etcd: etcd.clientUrl, dir: agentDir(i), args: ['--iface', 'eth0', '--resync-interval', '1s', ...args] });
    agents[i] = agent;
    await agent.waitReady();
    return agent;
  };
  const leases = async (): Promise<Map<string, Lease>> => {
    const out = await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`]);
    const lines = out.trim().split('\n');
    const map = new Map<string, Lease>();
    for (let i = 0; i + 1 < lines.length; i += 2) map.set(lines[i]!.slice(`${PREFIX}/subnets/`.length).replace('-', '/'), JSON.parse(lines[i + 1]!) as Lease);
    return map;
  };
  const addPod = async (i: number, env: SubnetEnv): Promise<void> => {
    const ns = await createTestNetns(`h${i}pod`);
    const { ip } = await attachPod({
      hostNetns: cluster.hosts[i]!.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0',
      subnetEnv: env, dataDir: join(agentDir(i), 'ipam'), isDefaultGateway: true,
    });
    pods.push({ ns, host: i, ip: ip.split('/')[0]! });
  };
  const ctl = (host: Host, args: string[]): Promise<RunResult> =>
    host.run('node', [CTL, '--etcd-endpoints', etcd.clientUrl, '--subnet-file', join(agentDir(host.index), 'subnet.env'), ...args], { allowFailure: true });
  /** Host i's permanent neighbours, FDB entries with a destination, and routes inside the cluster network. */
  const overlayState = async (host: Host): Promise<{ neigh: string[]; fdb: string[]; routes: string[] }> => {
    const neigh = await host.json<IpNeigh[]>(['neigh', 'show', 'nud', 'permanent']);
    const fdb = JSON.parse(await exec('bridge', ['-n', host.name, '-j', 'fdb', 'show'])) as BridgeFdb[];
    const routes = await host.json<IpRoute[]>(['route', 'show']);
    return {
      neigh: neigh.map((n) => `${n.dst} ${n.lladdr ?? '-'} ${n.dev}`).sort(),
      fdb: fdb.filter((e) => e.dst !== undefined).map((e) => `${e.mac} ${e.dst!} ${e.ifname ?? '-'}`).sort(),
      routes: routes.filter((r) => r.dst.startsWith('10.244.')).map((r) => `${r.dst} ${r.protocol ?? 'boot'} ${r.dev ?? `nhid ${r.nhid}`}`).sort(),
    };
  };
  const tables = async (host: Host): Promise<string[]> => {
    const out = JSON.parse(await host.exec('nft', ['-j', 'list', 'tables'])) as { nftables: { table?: { family: string; name: string } }[] };
    return out.nftables.flatMap((e) => (e.table ? [`${e.table.family} ${e.table.name}`] : []));
  };

  beforeAll(async () => {
    cluster = await createCluster({ hosts: 3 });
    flannelHost = cluster.hosts[0]!;
    await cluster.underlay.netlink(async (nl) => nl.addAddress('br0', `${ETCD_IP}/24`));
    etcd = await startEtcd({ netns: cluster.underlay.name, host: ETCD_IP });
    dir = tempDir('flannel-migration');
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'vxlan' } })]);

    // flanneld's lease (under an etcd lease of 24 h, as flanneld's) and its device on host 0.
    flannelMac = randomVtepMac();
    const leaseId = /lease ([0-9a-f]+) granted/.exec(await etcd.etcdctl(['lease', 'grant', '86400']))![1]!;
    await etcd.etcdctl(['put', '--lease', leaseId, flannelLeaseKey(PREFIX, FLANNEL_SUBNET), flannelLeaseRecord(flannelHost.underlayIp, flannelMac)]);
    await addFlannelDevice(flannelHost, { localIp: flannelHost.underlayIp, subnet: FLANNEL_SUBNET, mac: flannelMac });

    // Twill peers on hosts 1 and 2; host 0 gets flanneld's entries for their leases.
    for (const i of [1, 2]) await startOn(i);
    for (const [subnet, lease] of await leases()) {
      if (subnet === FLANNEL_SUBNET) continue;
      await addFlannelPeer(flannelHost, { subnet, vtepMac: lease.BackendData.VtepMAC, publicIp: lease.PublicIP });
    }

    // One pod per host; host 0's from flanneld's subnet.env values (with --ip-masq, as kube-flannel runs).
    await addPod(0, { network: NETWORK, subnet: `${networkAddress(FLANNEL_SUBNET).replace(/0$/, '1')}/24`, mtu: 1450, ipMasq: true });
    for (const i of [1, 2]) await addPod(i, parseSubnetEnv(readFileSync(agents[i]!.subnetFile, 'utf8'), agents[i]!.subnetFile));
  });

  it('starts from a working mixed cluster: pods on flannel\'s host and on Twill\'s hosts reach each other', async () => {
    expect(await flannelHost.link(FLANNEL_DEVICE)).toBeDefined();
    expect(await pingAll(pods)).toEqual([]);
  });

  it('refuses to take over while flanneld runs in the host\'s namespace, and changes nothing', async () => {
    const before = await overlayState(flannelHost);
    const flanneld = await startFakeFlanneld(flannelHost, dir);
    mkdirSync(agentDir(0), { recursive: true });
    const agent = await startAgent(flannelHost, { etcd: etcd.clientUrl, dir: agentDir(0), args: ['--iface', 'eth0'] });
    const exit = await agent.daemon.exited;
    await flanneld.stop();
    expect(exit.code).toBe(1);
    expect(agent.daemon.output()).toContain(`flanneld (pid ${flanneld.pid}) is running in this network namespace and owns flannel.1`);
    expect(await overlayState(flannelHost)).toEqual(before);
    expect((await leases()).get(FLANNEL_SUBNET)?.BackendData.VtepMAC).toBe(flannelMac);
  });

  it('takes the host over when twilld starts: under 2 s of ping loss, flannel\'s lease, subnet and MAC kept, nothing of flannel\'s left', async () => {
    const from = pods.find((p) => p.host === 1)!;
    const to = pods.find((p) => p.host === 0)!;
    const ping = await from.ns.spawn('ping', ['-D', '-n', '-i', String(PING_INTERVAL_S), '-W', '1', to.ip], { stopSignal: 'SIGINT', label: 'ping-takeover' });
    await waitFor(() => pingLoss(ping.output()).replies >= 10, { timeoutMs: 5000, what: 'ping to answer before the takeover' });

    const agent = await startOn(0, ['--ip-masq']);
    await waitFor(async () => (await flannelHost.link(FLANNEL_DEVICE)) === undefined && (await flannelHost.routes(['proto', '84'])).length === 2,
      { timeoutMs: 10_000, what: 'flannel.1 replaced by twill.1 with routes to both peers' });
    // Two more seconds of replies after the swap, so a gap that ends late is measured whole.
    const seen = pingLoss(ping.output()).replies;
    await waitFor(() => pingLoss(ping.output()).replies >= seen + 2 / PING_INTERVAL_S, { timeoutMs: 10_000, what: 'ping to answer after the takeover' });
    await ping.stop();
    const loss = pingLoss(ping.output());
    process.stderr.write(`flannel takeover: ${loss.lost} of ${loss.replies + loss.lost} pings lost (${loss.lostSeconds.toFixed(2)} s at ${PING_INTERVAL_S} s), ` +
      `longest gap between replies ${loss.longestGapSeconds.toFixed(3)} s\n`);
    expect(loss.lostSeconds).toBeLessThan(2);
    expect(loss.longestGapSeconds).toBeLessThan(2);
    expect(agent.daemon.output()).toContain(`took this host over from flanneld: deleted flannel.1 (MAC ${flannelMac}) with its 2 neighbours, 2 FDB entries and 2 routes and 0 DirectRouting routes`);

    // The lease: the same key, this host's PublicIP, flannel's MAC; no second lease for this host.
    const all = await leases();
    expect(all.get(FLANNEL_SUBNET)).toMatchObject({ PublicIP: flannelHost.underlayIp, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: flannelMac } });
    expect([...all.values()].filter((l) => l.PublicIP === flannelHost.underlayIp)).toHaveLength(1);
    expect(agent.subnetEnv()!.FLANNEL_SUBNET).toBe('10.244.21.1/24');

    // twill.1 with flannel's MAC; nothing of flannel's: no device, and every permanent
    // neighbour, FDB entry and cluster route is Twill's (or the kernel's for cni0).
    expect(await flannelHost.link(FLANNEL_DEVICE)).toBeUndefined();
    expect((await flannelHost.link('twill.1'))?.address).toBe(flannelMac);
    const peers = [...all].filter(([subnet]) => subnet !== FLANNEL_SUBNET);
    expect(await overlayState(flannelHost)).toEqual({
      neigh: peers.map(([subnet, l]) => `${networkAddress(subnet)} ${l.BackendData.VtepMAC} twill.1`).sort(),
      fdb: peers.map(([, l]) => `${l.BackendData.VtepMAC} ${l.PublicIP} twill.1`).sort(),
      routes: [`${FLANNEL_SUBNET} kernel cni0`, ...peers.map(([subnet]) => `${subnet} 84 twill.1`)].sort(),
    });
    expect(await pingAll(pods)).toEqual([]);
  });

  it('keeps flannel\'s MAC when twilld restarts', async () => {
    await agents[0]!.daemon.stop();
    await startOn(0, ['--ip-masq']);
    await waitFor(async () => (await flannelHost.routes(['proto', '84'])).length === 2, { timeoutMs: 5000, what: 'routes after the restart' });
    expect((await flannelHost.link('twill.1'))?.address).toBe(flannelMac);
    expect((await leases()).get(FLANNEL_SUBNET)?.BackendData.VtepMAC).toBe(flannelMac);
    expect(await pingAll(pods)).toEqual([]);
  });

  it('goes back with twillctl uninstall: refused while twilld runs, then only Twill\'s state goes, and flanneld\'s can be built again', async () => {
    const agent = agents[0]!;
    const refused = await ctl(flannelHost, ['uninstall']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`refusing to uninstall: twilld (pid ${agent.daemon.pid}) is running in this network namespace`);
    expect(await flannelHost.link('twill.1')).toBeDefined();

    await agent.daemon.stop();
    await flannelHost.exec('nft', ['add', 'table', 'ip', 'twill-cni']); // as the CNI plugin's ipMasq would have made it
    const peersBefore = await Promise.all([1, 2].map((i) => overlayState(cluster.hosts[i]!)));
    const nexthops = JSON.parse(await flannelHost.exec('ip', ['-j', 'nexthop', 'show', 'proto', '84'])) as { id: number }[];
    expect(nexthops.length).toBeGreaterThan(0);
    expect(await tables(flannelHost)).toEqual(expect.arrayContaining(['ip twill', 'ip twill-cni']));

    const done = await ctl(flannelHost, ['uninstall']);
    expect(done).toMatchObject({ code: 0, stderr: '' });
    expect(done.stdout).toContain('removed device twill.1 (vxlan, VNI 1, port 8472)');
    expect(done.stdout).toContain('removed nftables table ip twill\nremoved nftables table ip twill-cni\n');
    for (const subnet of (await leases()).keys()) {
      if (subnet !== FLANNEL_SUBNET) expect(done.stdout).toContain(`removed route ${subnet} via ${networkAddress(subnet)} (protocol 84)\n`);
    }
    for (const n of nexthops) expect(done.stdout).toMatch(new RegExp(`^removed nexthop ${n.id} `, 'm'));
    expect(done.stdout).toContain(`removed file ${join(agentDir(0), 'vxlan-1-vtep.json')} (VTEP MAC adopted from flanneld)`);
    expect(done.stdout).toContain('kept this host\'s lease in etcd');

    expect(await flannelHost.link('twill.1')).toBeUndefined();
    expect(await flannelHost.routes(['proto', '84'])).toEqual([]);
    expect(JSON.parse(await flannelHost.exec('ip', ['-j', 'nexthop', 'show', 'proto', '84']))).toEqual([]);
    expect((await tables(flannelHost)).filter((t) => t.startsWith('ip twill'))).toEqual([]);
    expect(await Promise.all([1, 2].map((i) => overlayState(cluster.hosts[i]!)))).toEqual(peersBefore);
    expect((await leases()).get(FLANNEL_SUBNET)?.BackendData.VtepMAC).toBe(flannelMac);

    const again = await ctl(flannelHost, ['uninstall']);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing of Twill\'s left in this network namespace') });

    // flanneld's state fits again (VNI 1 on 8472 is free), and with it the pods talk as before.
    await addFlannelDevice(flannelHost, { localIp: flannelHost.underlayIp, subnet: FLANNEL_SUBNET, mac: flannelMac });
    for (const [subnet, lease] of await leases()) {
      if (subnet !== FLANNEL_SUBNET) await addFlannelPeer(flannelHost, { subnet, vtepMac: lease.BackendData.VtepMAC, publicIp: lease.PublicIP });
    }
    await waitFor(async () => (await pingAll(pods)).length === 0, { timeoutMs: 10_000, what: 'every pod to reach every pod over flannel\'s state again' });

    // --delete-lease: refused without a subnet file to name the lease, and for a file naming
    // another host's lease; with this host's file the lease goes, and flanneld's device is still
    // not Twill's to touch.
    const noFile = await ctl(flannelHost, ['--subnet-file', join(dir, 'absent', 'subnet.env'), 'uninstall', '--delete-lease']);
    expect(noFile.code).toBe(1);
    expect(noFile.stdout).toMatch(/^FAILED lease: --delete-lease: cannot tell this host's lease: .*absent\/subnet\.env/m);
    const peerSubnet = [...(await leases()).keys()].find((subnet) => subnet !== FLANNEL_SUBNET)!;
    const stale = join(dir, 'stale', 'subnet.env');
    mkdirSync(dirname(stale));
    writeFileSync(stale, `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=${peerSubnet.replace('.0/', '.1/')}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`);
    const notMine = await ctl(flannelHost, ['--subnet-file', stale, 'uninstall', '--delete-lease']);
    expect(notMine.code).toBe(1);
    expect(notMine.stdout).toContain(`FAILED lease: --delete-lease: the lease ${peerSubnet} (named by ${stale}) carries PublicIP 198.18.0.`);
    expect([...(await leases()).keys()]).toEqual(expect.arrayContaining([FLANNEL_SUBNET, peerSubnet]));
    const withLease = await ctl(flannelHost, ['uninstall', '--delete-lease']);
    expect(withLease).toMatchObject({ code: 0, stdout: `removed lease ${FLANNEL_SUBNET} in etcd\n` });
    expect((await leases()).has(FLANNEL_SUBNET)).toBe(false);
    expect((await flannelHost.link(FLANNEL_DEVICE))?.address).toBe(flannelMac);
  });
});
