import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable } from '../helpers/etcd.js';
import { commandAvailable, exec } from '../helpers/exec.js';
import { attachMeshPod, leaseSubnet, pingAll, startMeshAgent, startMeshBed, type MeshBed, type MeshPod } from '../helpers/pod-mesh.js';
import { CTL_MAIN } from '../helpers/twill-speaker.js';
import type { TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// The bgp backend in its default mode, an iBGP full mesh among the hosts (no router): 4 hosts on
// one segment with twilld and a pod each, then a fifth host joins and one leaves. Routes are
// plain proto-84 routes via each host's address; no tunnel device exists.

const PREFIX = '/coreos.com/network';
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');

interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string }
interface PeerJson { address: string; asn: number; role: string; state: string; received: number; accepted: number; sent: number }

describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins)('bgp backend: full mesh of 4 hosts, then a fifth joins and one leaves', () => {
  useCleanup();
  let bed: MeshBed;
  const agents: TestAgent[] = [];
  const pods: MeshPod[] = [];

  const startOn = async (i: number): Promise<TestAgent> => (agents[i] = await startMeshAgent(bed, i));

  /** Twill's routes on host `i` inside the cluster network: "dst via gw dev". */
  const routesOn = async (i: number): Promise<string[]> => (await bed.cluster.hosts[i]!.json<IpRoute[]>(['route', 'show', 'proto', '84']))
    .filter((r) => r.dst.startsWith('10.244.')).map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev}`).sort();

  /** What host `i` should route: every other running host's subnet via its underlay address. */
  const expectedOn = (i: number, running: readonly number[]): string[] => running.filter((j) => j !== i)
    .map((j) => `${leaseSubnet(agents[j]!)} via ${bed.cluster.hosts[j]!.underlayIp} dev eth0`).sort();

  const allConverged = async (running: readonly number[]): Promise<boolean> => {
    for (const i of running) if (JSON.stringify(await routesOn(i)) !== JSON.stringify(expectedOn(i, running))) return false;
    return true;
  };

  beforeAll(async () => {
    bed = await startMeshBed({ hosts: 5, label: 'bgp-mesh', backend: 'bgp', prefix: PREFIX });
    for (let i = 0; i < 4; i++) await startOn(i);
    for (let i = 0; i < 4; i++) pods.push(await attachMeshPod(bed, i, agents[i]!, { label: `h${i}p0`, dataDir: join(bed.dir, `host${i}`, 'ipam') }));
    await waitFor(() => allConverged([0, 1, 2, 3]), { timeoutMs: 30_000, what: 'every host routing every other host\'s subnet' });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
  });

  it('connects every pod with every other pod, over plain routes and no tunnel device', async () => {
    expect(await pingAll(pods)).toEqual([]);
    for (let i = 0; i < 4; i++) {
      expect(await routesOn(i)).toEqual(expectedOn(i, [0, 1, 2, 3]));
      const kinds = (await bed.cluster.hosts[i]!.json<{ ifname: string; linkinfo?: { info_kind?: string } }[]>(['-d', 'link', 'show']))
        .map((l) => l.linkinfo?.info_kind).filter((k) => k === 'vxlan' || k === 'ipip');
      expect(kinds).toEqual([]);
      // No encapsulation: pods get the underlay's MTU.
      expect(agents[i]!.subnetEnv()!.FLANNEL_MTU).toBe('1500');
    }
  });

  it('twillctl bgp peers shows an established iBGP session to every other host; /metrics agrees', async () => {
    const out = await exec('ip', ['netns', 'exec', bed.cluster.hosts[0]!.name, 'node', CTL_MAIN, '--healthz-addr', '127.0.0.1:9101', 'bgp', 'peers', '-o', 'json']);
    const answer = JSON.parse(out) as { asn: number; speaker: string; peers: PeerJson[] };
    expect(answer).toMatchObject({ asn: 64512, speaker: 'builtin' });
    expect(answer.peers.map((p) => `${p.address} ${p.asn} ${p.role} ${p.state} ${p.accepted}`)).toEqual(
      [1, 2, 3].map((j) => `${bed.cluster.hosts[j]!.underlayIp} 64512 mesh established 1`));
    expect(await agents[0]!.metric('twill_bgp_session_up', `peer="${bed.cluster.hosts[1]!.underlayIp}"`)).toBe(1);
    expect(await agents[0]!.metric('twill_bgp_prefixes_received', `peer="${bed.cluster.hosts[1]!.underlayIp}"`)).toBe(1);
    const routes = JSON.parse(await exec('ip', ['netns', 'exec', bed.cluster.hosts[0]!.name, 'node', CTL_MAIN, 'bgp', 'routes', '-o', 'json'])) as { routes: { prefix: string; installed: boolean }[] };
    expect(routes.routes.filter((r) => r.installed).map((r) => r.prefix).sort()).toEqual([1, 2, 3].map((j) => leaseSubnet(agents[j]!)).sort());
  });

  it('a fifth host joins: within a second of it being ready, every host routes its subnet and it routes theirs', async () => {
    await startOn(4);
    const ready = Date.now();
    await waitFor(() => allConverged([0, 1, 2, 3, 4]), { timeoutMs: 5000, intervalMs: 20, what: 'routes to and from host 4' });
    const tookMs = Date.now() - ready;
    console.info(`bgp mesh: host 4's routes everywhere ${tookMs} ms after it was ready`);
    expect(tookMs).toBeLessThan(1000);
    pods.push(await attachMeshPod(bed, 4, agents[4]!, { label: 'h4p0', dataDir: join(bed.dir, 'host4', 'ipam') }));
    expect(await pingAll(pods)).toEqual([]);
  });

  it('a host leaves (its lease deleted): its routes are gone everywhere within a second', async () => {
    const gone = leaseSubnet(agents[4]!);
    await agents[4]!.daemon.kill('SIGKILL');
    await bed.etcd.etcdctl(['del', `${PREFIX}/subnets/${gone.replace('/', '-')}`]);
    const deleted = Date.now();
    await waitFor(() => allConverged([0, 1, 2, 3]), { timeoutMs: 5000, intervalMs: 20, what: `the route to ${gone} to vanish` });
    const tookMs = Date.now() - deleted;
    console.info(`bgp mesh: a departed host's route gone on the others ${tookMs} ms after its lease was deleted`);
    expect(tookMs).toBeLessThan(1000);
    expect(await pingAll(pods.filter((p) => p.host !== 4))).toEqual([]);
  });

  it('puts back a route deleted by hand within one resync', async () => {
    const host = bed.cluster.hosts[0]!;
    const victim = leaseSubnet(agents[1]!);
    const before = await routesOn(0);
    // `ip route del` fails when the route is missing, so this checks the deletion without racing the resync.
    await host.exec('ip', ['route', 'del', victim]);
    await waitFor(async () => JSON.stringify(await routesOn(0)) === JSON.stringify(before), { timeoutMs: 1500, intervalMs: 20, what: `the route to ${victim} back` });
  });

  it('a host that left while an agent was down: its route goes when that agent starts, the others stay in place', async () => {
    const gone = leaseSubnet(agents[3]!);
    await agents[0]!.daemon.stop();
    await agents[3]!.daemon.kill('SIGKILL');
    await bed.etcd.etcdctl(['del', `${PREFIX}/subnets/${gone.replace('/', '-')}`]);
    // Host 0's kernel still routes to host 3 while its agent is down.
    expect((await routesOn(0)).some((r) => r.startsWith(`${gone} `))).toBe(true);
    await startOn(0);
    await waitFor(() => allConverged([0, 1, 2]), { timeoutMs: 5000, intervalMs: 20, what: `host 0 without the route to ${gone}` });
    expect(await pingAll(pods.filter((p) => p.host < 3))).toEqual([]);
  });
});
