import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Host, Pod } from '../helpers/cluster.js';
import { etcdAvailable } from '../helpers/etcd.js';
import { exec } from '../helpers/exec.js';
import { pingAll, startMeshAgent, startMeshBed, type MeshBed, type MeshPod } from '../helpers/pod-mesh.js';
import { CTL_MAIN, startTwillSpeaker, type TwillSpeaker } from '../helpers/twill-speaker.js';
import type { TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';
import { addBridgePods } from '../helpers/dual-stack-pods.js';

// The bgp backend in a dual-stack cluster (issue 17): 3 hosts on one segment with an IPv4 and an
// IPv6 underlay, an iBGP full mesh over IPv4 that carries both families (the IPv6 subnets in
// MP_REACH_NLRI with each host's PublicIPv6 as next hop), 2 pods per host. A ToR (Twill's own
// speaker, `twillctl bgp serve`, on the underlay bridge) peers with every host over eBGP and
// announces ::/0, a prefix outside IPv6Network and one inside it that no host leased: every host
// refuses all three and counts them.
//
// Run twice: every host on Twill's own speaker, and with host 1 on a gobgpd beside its agent
// (Speaker "gobgp"), which then speaks IPv6 unicast with the others' speakers and the ToR.
//
// The pods are wired here, not by the CNI plugin: a bridge per host holding the first address of
// each of the host's subnets, each pod a veth on it with an address of both subnets (flannel's
// cni0 as the bridge plugin makes it).

const PREFIX = '/coreos.com/network';
const UNDERLAY_V6 = 'fd00:18::/64';
const IPV6_NETWORK = 'fd10::/48';
const TOR = { ip: '198.18.0.253', ipv6: 'fd00:18::fd', asn: 65000 };
/** Inside IPv6Network, and no host's lease (hosts lease /64s from the start of fd10::/48). */
const UNLEASED = 'fd10:0:0:ff00::/64';

interface IpRoute { dst: string; gateway?: string; dev: string; nexthops?: { gateway: string }[] }
interface RoutesJson { routes: { prefix: string; installed: boolean; reason?: string }[]; rejected: { peer: string; reason: string; count: number }[] }

describe.skipIf(!isRoot || !etcdAvailable()).each([
  { speakers: 'builtin', gobgpHost: undefined },
  { speakers: 'builtin, host 1 gobgp', gobgpHost: 1 },
])('bgp backend: dual-stack mesh of 3 hosts, IPv6 over MP-BGP ($speakers)', ({ gobgpHost }) => {
  useCleanup();
  let bed: MeshBed;
  let tor: TwillSpeaker;
  const agents: TestAgent[] = [];
  const subnets: { v4: string; v6: string }[] = [];
  const pods: Pod<Host>[] = [];

  const hosts = (): readonly Host[] => bed.cluster.hosts;

  /** Twill's IPv6 routes on host `i`: "dst via gw dev". */
  const v6RoutesOn = async (i: number): Promise<string[]> => (await hosts()[i]!.json<IpRoute[]>(['-6', 'route', 'show', 'proto', '84']))
    .map((r) => `${r.dst} via ${r.gateway ?? r.nexthops?.map((n) => n.gateway).join('+') ?? '-'} dev ${r.dev}`).sort();
  const v4RoutesOn = async (i: number): Promise<string[]> => (await hosts()[i]!.json<IpRoute[]>(['-4', 'route', 'show', 'proto', '84']))
    .map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev}`).sort();
  const expectedV6 = (i: number): string[] => [0, 1, 2].filter((j) => j !== i).map((j) => `${subnets[j]!.v6} via ${hosts()[j]!.underlayIpv6!} dev eth0`).sort();
  const expectedV4 = (i: number): string[] => [0, 1, 2].filter((j) => j !== i).map((j) => `${subnets[j]!.v4} via ${hosts()[j]!.underlayIp} dev eth0`).sort();
  const converged = async (): Promise<boolean> => {
    for (const i of [0, 1, 2]) {
      if (JSON.stringify(await v6RoutesOn(i)) !== JSON.stringify(expectedV6(i))) return false;
      if (JSON.stringify(await v4RoutesOn(i)) !== JSON.stringify(expectedV4(i))) return false;
    }
    return true;
  };
  const ctl = async (i: number, args: readonly string[]): Promise<string> => exec('ip', ['netns', 'exec', hosts()[i]!.name, 'node', CTL_MAIN, ...args]);

  beforeAll(async () => {
    bed = await startMeshBed({
      hosts: 3, label: 'bgp-ipv6', backend: 'bgp', prefix: PREFIX, underlayCidrV6: UNDERLAY_V6,
      config: { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: 'bgp' } },
    });
    // The ToR on the underlay bridge, next to etcd.
    const underlay = bed.cluster.underlay;
    underlay.writeSysctl('net.ipv6.conf.br0.accept_dad', 0);
    await underlay.netlink(async (nl) => {
      await nl.addAddress('br0', `${TOR.ip}/24`);
      await nl.addAddress('br0', `${TOR.ipv6}/64`);
    });
    tor = await startTwillSpeaker(underlay, [
      '--asn', String(TOR.asn), '--router-id', TOR.ip, '--listen', `${TOR.ip}:179`,
      ...hosts().map((h) => ['--peer', `${h.underlayIp},asn=64512,passive,local=${TOR.ip},families=ipv4+ipv6`]).flat(),
      '--announce', `::/0,nexthop=${TOR.ipv6}`, '--announce', `fd99::/64,nexthop=${TOR.ipv6}`, '--announce', `${UNLEASED},nexthop=${TOR.ipv6}`,
    ], 'tor');
    for (let i = 0; i < 3; i++) {
      const speaker: string[] = [];
      if (i === gobgpHost) {
        const api = `unix://${join(bed.dir, `gobgpd-h${i}.sock`)}`;
        await hosts()[i]!.spawn('gobgpd', ['--api-hosts', api, '--pprof-disable', '--log-plain', '--log-level', 'info'], { label: `gobgpd-h${i}` });
        speaker.push('--bgp-speaker', 'gobgp', '--gobgp-api', api);
      }
      agents[i] = await startMeshAgent(bed, i, ['--iface', 'eth0', '--resync-interval', '1s', '--bgp-peer', `${TOR.ip},asn=${TOR.asn}`, ...speaker]);
      const env = agents[i]!.subnetEnv()!;
      const v4 = env.FLANNEL_SUBNET!;
      const v6 = env.FLANNEL_IPV6_SUBNET!;
      subnets[i] = { v4: v4.replace(/\.1\/(\d+)$/, '.0/$1'), v6: v6.replace(/::1\/(\d+)$/, '::/$1') };
      pods.push(...await addBridgePods(bed.cluster, hosts()[i]!, subnets[i]!));
    }
    await waitFor(converged, { timeoutMs: 30_000, what: 'every host routing the other hosts\' subnets, both families' });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
    await tor?.stop();
  });

  it('routes each host\'s IPv6 subnet via its PublicIPv6 (proto 84), beside the IPv4 ones via its PublicIP', async () => {
    for (const i of [0, 1, 2]) {
      expect(await v6RoutesOn(i)).toEqual(expectedV6(i));
      expect(await v4RoutesOn(i)).toEqual(expectedV4(i));
    }
  });

  it('connects every pod with every other over IPv4 and over IPv6', async () => {
    const v4: MeshPod[] = pods.map((p) => ({ ns: p, host: p.host.index, ip: p.ip! }));
    const v6: MeshPod[] = pods.map((p) => ({ ns: p, host: p.host.index, ip: p.ipv6! }));
    expect(await pingAll(v4)).toEqual([]);
    expect(await pingAll(v6)).toEqual([]);
  });

  it('one session per host over IPv4; twillctl bgp routes lists the IPv6 prefixes', async () => {
    const peers = JSON.parse(await ctl(0, ['bgp', 'peers', '-o', 'json'])) as { peers: { address: string; state: string; accepted: number }[] };
    expect(peers.peers.map((p) => `${p.address} ${p.state}`)).toEqual(
      [...[1, 2].map((j) => `${hosts()[j]!.underlayIp} established`), `${TOR.ip} established`].sort());
    const routes = JSON.parse(await ctl(0, ['bgp', 'routes', '-o', 'json'])) as RoutesJson;
    expect(routes.routes.filter((r) => r.installed).map((r) => r.prefix).sort()).toEqual([1, 2].flatMap((j) => [subnets[j]!.v4, subnets[j]!.v6]).sort());
  });

  it('refuses ::/0, a prefix outside IPv6Network and one no host leased, and counts each', async () => {
    for (const i of [0, 1, 2]) {
      await waitFor(async () => (JSON.parse(await ctl(i, ['bgp', 'routes', '-o', 'json'])) as RoutesJson).rejected.length >= 3, { timeoutMs: 10_000, what: `host ${i}'s refusals` });
      const routes = JSON.parse(await ctl(i, ['bgp', 'routes', '-o', 'json'])) as RoutesJson;
      // Counted per refusal: gobgpd may hand the driver the same path again (a new best path
      // elsewhere in its table), which is refused and counted again, so at least once each.
      const fromTor = routes.rejected.filter((r) => r.peer === TOR.ip);
      expect(fromTor.map((r) => r.reason).sort()).toEqual(['default_route', 'no_lease', 'outside_cluster']);
      for (const r of fromTor) expect(r.count, `${r.reason} on host ${i}`).toBeGreaterThanOrEqual(1);
      expect(routes.routes.find((r) => r.prefix === UNLEASED)).toMatchObject({ installed: false, reason: expect.stringContaining('no_lease') as string });
      const all = await hosts()[i]!.json<IpRoute[]>(['-6', 'route', 'show']);
      expect(all.map((r) => r.dst)).not.toContain(UNLEASED);
      expect(all.map((r) => r.dst)).not.toContain('fd99::/64');
      expect(all.filter((r) => r.dst === 'default')).toEqual([]);
    }
    expect(await agents[0]!.metric('twill_bgp_prefixes_rejected_total', `peer="${TOR.ip}",reason="no_lease"`)).toBe(1);
  });

  it('a host that leaves takes its IPv6 route with it everywhere', async () => {
    const gone = subnets[2]!;
    await agents[2]!.daemon.kill('SIGKILL');
    // A dual-stack lease is one key holding both subnets (store/keys.ts).
    await bed.etcd.etcdctl(['del', `${PREFIX}/subnets/${gone.v4.replace('/', '-')}&${gone.v6.replace('/', '-')}`]);
    for (const i of [0, 1]) {
      await waitFor(async () => !(await v6RoutesOn(i)).some((r) => r.startsWith(`${gone.v6} `)), { timeoutMs: 5000, what: `host ${i} without ${gone.v6}` });
    }
    expect(await pingAll(pods.filter((p) => p.host.index < 2).map((p) => ({ ns: p, host: p.host.index, ip: p.ipv6! })))).toEqual([]);
  });
});
