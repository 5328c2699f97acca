/**
 * twilld end to end on a dual-stack network (issue 17): 3 hosts on an IPv4 + IPv6 underlay, real
 * etcd, a dual-stack network config, and 2 pods per host with an address of each family on the
 * host's bridge. Every pod reaches every other over IPv4 and IPv6; IPv6 entries are repaired,
 * kept across an agent restart and removed with a departed host, like IPv4 ones. Also an
 * IPv6-only network (EnableIPv4 false).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable } from '../helpers/etcd.js';
import { run } from '../helpers/exec.js';
import { addBridgePods, unreachablePairs } from '../helpers/dual-stack-pods.js';
import type { Host, Pod } from '../helpers/cluster.js';
import { startMeshAgent, startMeshBed, type MeshBed } from '../helpers/pod-mesh.js';
import type { TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const PREFIX = '/coreos.com/network';
const UNDERLAY_V6 = 'fd00:18::/64';
const IPV6_NETWORK = 'fd10::/48';

interface IpRoute { dst: string; gateway?: string; dev?: string; flags?: string[] }

/** This host's subnets from its subnet file: the network addresses of FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET. */
function subnetsOf(agent: TestAgent): { v4: string | undefined; v6: string } {
  const env = agent.subnetEnv()!;
  return {
    v4: env.FLANNEL_SUBNET?.replace(/\.1\/(\d+)$/, '.0/$1'),
    v6: env.FLANNEL_IPV6_SUBNET!.replace(/::1\/(\d+)$/, '::/$1'),
  };
}

/** `ip -j [-6] route show proto 84` inside the cluster's networks, "dst via gw dev d". */
async function twillRoutes(host: Host, family: 4 | 6): Promise<string[]> {
  const routes = await host.json<IpRoute[]>([family === 6 ? '-6' : '-4', 'route', 'show', 'proto', '84']);
  return routes.filter((r) => r.dst.startsWith(family === 6 ? 'fd10:' : '10.244.')).map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).sort();
}

/** Two pods on cni0 with addresses of the host's subnets, as its subnet file names them. */
function addPods(bed: MeshBed, i: number, agent: TestAgent): Promise<Pod<Host>[]> {
  return addBridgePods(bed.cluster, bed.cluster.hosts[i]!, subnetsOf(agent));
}

function dualStackSuite(backend: 'host-gw' | 'vxlan' | 'bgp', ipv4: boolean): void {
  const name = `twilld, ${backend}, ${ipv4 ? 'dual-stack' : 'IPv6-only'}`;
  describe.skipIf(!isRoot || !etcdAvailable())(name, () => {
    useCleanup();
    let bed: MeshBed;
    const agents: TestAgent[] = [];
    const pods: Pod<Host>[] = [];
    const args = ['--iface', 'eth0', '--resync-interval', '1s'];
    // An IPv6-only host has no IPv4 address for the 32-bit BGP identifier: give one.
    const argsOf = (i: number): string[] => (backend === 'bgp' && !ipv4 ? [...args, '--bgp-router-id', `192.0.2.${i + 1}`] : args);

    beforeAll(async () => {
      const config = {
        ...(ipv4 ? { Network: '10.244.0.0/16' } : { EnableIPv4: false }),
        EnableIPv6: true, IPv6Network: IPV6_NETWORK, Backend: { Type: backend },
      };
      bed = await startMeshBed({ hosts: 3, label: `dual-${backend}`, backend, prefix: PREFIX, config, underlayCidrV6: UNDERLAY_V6 });
      for (let i = 0; i < 3; i++) agents[i] = await startMeshAgent(bed, i, argsOf(i));
      for (let i = 0; i < 3; i++) pods.push(...await addPods(bed, i, agents[i]!));
    });

    afterAll(async () => {
      await Promise.all(agents.map((a) => a?.daemon.stop()));
    });

    /** What host `i` should route over `family`: every other host's subnet of that family. */
    const expectedSubnets = (i: number, family: 4 | 6): string[] =>
      agents.filter((_, j) => j !== i).map((a) => (family === 6 ? subnetsOf(a).v6 : subnetsOf(a).v4!)).sort();

    it('leases a subnet of each enabled family, writes both to subnet.env, and routes every pod to every pod over each', async () => {
      for (const a of agents) {
        const env = a.subnetEnv()!;
        expect(env.FLANNEL_IPV6_NETWORK).toBe(IPV6_NETWORK);
        expect(env.FLANNEL_IPV6_SUBNET).toMatch(/^fd10:0:0:[0-9a-f]+::1\/64$/);
        expect(env.FLANNEL_NETWORK === undefined).toBe(!ipv4);
      }
      for (const [i, host] of bed.cluster.hosts.entries()) {
        expect((await twillRoutes(host, 6)).map((r) => r.split(' ')[0])).toEqual(expectedSubnets(i, 6));
        expect((await twillRoutes(host, 4)).map((r) => r.split(' ')[0])).toEqual(ipv4 ? expectedSubnets(i, 4) : []);
      }
      expect(pods).toHaveLength(6);
      if (ipv4) expect(await unreachablePairs(pods, 4)).toEqual([]);
      expect(await unreachablePairs(pods, 6)).toEqual([]);
    });

    it('puts back an IPv6 route deleted by hand', async () => {
      const host = bed.cluster.hosts[0]!;
      const before = await twillRoutes(host, 6);
      // `ip route del` fails when the route is missing: the deletion itself is checked.
      await host.exec('ip', ['-6', 'route', 'del', subnetsOf(agents[1]!).v6]);
      await waitFor(async () => JSON.stringify(await twillRoutes(host, 6)) === JSON.stringify(before), { timeoutMs: 3000, intervalMs: 50, what: 'the IPv6 route back' });
    });

    it('keeps IPv6 traffic flowing while an agent is SIGKILLed and restarted, with the same subnets', async () => {
      const subnets = subnetsOf(agents[0]!);
      const from = pods.find((p) => p.host === bed.cluster.hosts[1])!;
      const to = pods.find((p) => p.host === bed.cluster.hosts[0])!;
      // 40 echoes 50 ms apart across the kill and the restart; a restart that dropped routes loses some.
      const pinging = run('ip', ['netns', 'exec', from.name, 'ping', '-6', '-c', '40', '-i', '0.05', '-W', '1', to.ipv6!], { allowFailure: true });
      await agents[0]!.daemon.kill('SIGKILL');
      agents[0] = await startMeshAgent(bed, 0, argsOf(0));
      const result = await pinging;
      expect(result.stdout).toMatch(/40 packets transmitted, 40 received/);
      expect(subnetsOf(agents[0])).toEqual(subnets);
    });

    it('removes a departed host\'s IPv6 entries from the others', async () => {
      const gone = subnetsOf(agents[2]!);
      await agents[2]!.daemon.stop();
      // flannel's MakeSubnetKey: both subnets in one key, "0.0.0.0-0" for the IPv4 part of an IPv6-only lease.
      const key = `${PREFIX}/subnets/${gone.v4 === undefined ? '0.0.0.0-0' : gone.v4.replace('/', '-')}&${gone.v6.replace('/', '-')}`;
      expect(await bed.etcd.etcdctl(['del', key])).toMatch(/^1/);
      for (const i of [0, 1]) {
        await waitFor(async () => !(await twillRoutes(bed.cluster.hosts[i]!, 6)).some((r) => r.startsWith(gone.v6)), { timeoutMs: 3000, what: `${gone.v6} gone on host ${i}` });
      }
      expect((await twillRoutes(bed.cluster.hosts[0]!, 6)).map((r) => r.split(' ')[0])).toEqual([subnetsOf(agents[1]!).v6]);
      if (ipv4) expect(await unreachablePairs(pods.filter((p) => p.host !== bed.cluster.hosts[2]), 4)).toEqual([]);
      expect(await unreachablePairs(pods.filter((p) => p.host !== bed.cluster.hosts[2]), 6)).toEqual([]);
    });
  });
}

for (const backend of ['host-gw', 'vxlan', 'bgp'] as const) {
  dualStackSuite(backend, true);
  dualStackSuite(backend, false);
}
