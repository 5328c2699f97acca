import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSubnetEnv } from '../../src/core/subnet-env.js';
import { attachPod } from '../../src/ctl/demo/reference-cni.js';
import { bgpDaemonsAvailable } from '../helpers/bgp-peers.js';
import { rackAgentArgs, startRacks, type RackHost, type Racks } from '../helpers/bgp-racks.js';
import { etcdAvailable } from '../helpers/etcd.js';
import { commandAvailable, run } from '../helpers/exec.js';
import { createTestNetns } from '../helpers/netns.js';
import { pingAll, type MeshPod } from '../helpers/pod-mesh.js';
import { startAgent, type TestAgent } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// The bgp backend behind real top-of-rack routers (test/helpers/bgp-racks.ts): rack A under a
// BIRD 2 ToR, rack B under an FRR 8.4 ToR, eBGP between them, every host peering only with its
// ToR. Pods ping across racks through the routers, with no tunnel anywhere.

const daemons = bgpDaemonsAvailable();
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');
const BOGONS = ['0.0.0.0/0', '10.99.0.0/24', '10.244.250.0/24'];

interface IpRoute { dst: string; gateway?: string; dev: string }

for (const rackB of ['builtin', 'gobgp'] as const) {
describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins || !daemons.bird || !daemons.frr || (rackB === 'gobgp' && !daemons.gobgp))(
  `bgp backend: two racks behind a BIRD and an FRR top-of-rack router, rack B on the ${rackB} speaker`, () => {
  useCleanup();
  let racks: Racks;
  const agents: TestAgent[] = [];
  const pods: MeshPod[] = [];
  const subnets: string[] = [];

  /** Rack B's gobgpd per host: started once, beside every agent that host runs (it outlives agent restarts). */
  const gobgpds = new Map<number, string>();
  const gobgpApi = async (i: number): Promise<string> => {
    let api = gobgpds.get(i);
    if (api === undefined) {
      const h = racks.hosts[i]!;
      api = `unix://${join(h.dir, 'gobgpd.sock')}`;
      await h.ns.spawn('gobgpd', ['--api-hosts', api, '--pprof-disable', '--log-plain', '--log-level', 'info'], { label: `gobgpd-h${i + 1}` });
      gobgpds.set(i, api);
    }
    return api;
  };

  const startOn = async (i: number): Promise<TestAgent> => {
    const h = racks.hosts[i]!;
    const speaker = h.rack === 1 && rackB === 'gobgp' ? ['--bgp-speaker', 'gobgp', '--gobgp-api', await gobgpApi(i)] : [];
    const agent = await startAgent(h.ns, { etcd: racks.etcd.clientUrl, dir: h.dir, args: [...rackAgentArgs(h), ...speaker] });
    agents[i] = agent;
    await agent.waitReady();
    subnets[i] = agent.subnetEnv()!.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24');
    return agent;
  };

  const routesOn = async (h: RackHost): Promise<string[]> => (await h.ns.json<IpRoute[]>(['route', 'show', 'proto', '84']))
    .filter((r) => r.dst.startsWith('10.244.')).map((r) => `${r.dst} via ${r.gateway ?? '-'}`).sort();

  /** Host i routes every other host's subnet: its rack mates' directly, the other rack's via its ToR. */
  const expectedOn = (i: number, hosts: readonly number[]): string[] => hosts.filter((j) => j !== i).map((j) => {
    const me = racks.hosts[i]!;
    const other = racks.hosts[j]!;
    return `${subnets[j]} via ${other.rack === me.rack ? other.ip : me.tor}`;
  }).sort();

  const converged = async (hosts: readonly number[]): Promise<boolean> => {
    for (const i of hosts) if (JSON.stringify(await routesOn(racks.hosts[i]!)) !== JSON.stringify(expectedOn(i, hosts))) return false;
    return true;
  };

  const torPrefixes = async (r: 0 | 1): Promise<string[]> => (await racks.torDaemons[r].learned()).map((l) => l.prefix).filter((p) => p.startsWith('10.244.') && !BOGONS.includes(p)).sort();

  beforeAll(async () => {
    racks = await startRacks({ label: `bgp-racks-${rackB}`, backend: { Mesh: false, HoldTime: 9 }, torAnnounce: BOGONS });
    for (let i = 0; i < 4; i++) await startOn(i);
    for (const [i, h] of racks.hosts.entries()) {
      const ns = await createTestNetns(`h${i + 1}p0`);
      const { ip } = await attachPod({
        hostNetns: h.ns.name, podNetnsPath: ns.netnsPath, containerId: ns.name, ifname: 'eth0',
        subnetEnv: parseSubnetEnv(readFileSync(agents[i]!.subnetFile, 'utf8'), agents[i]!.subnetFile), dataDir: join(h.dir, 'ipam'), isDefaultGateway: true,
      });
      pods.push({ ns, host: i, ip: ip.split('/')[0]! });
    }
    await waitFor(() => converged([0, 1, 2, 3]), { timeoutMs: 60_000, intervalMs: 200, what: 'every host routing every other host\'s subnet' });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a?.daemon.stop()));
  });

  it('every pod reaches every pod across the racks, over proto-84 routes via the ToR and no tunnel device', async () => {
    expect(await pingAll(pods)).toEqual([]);
    for (const [i, h] of racks.hosts.entries()) {
      expect(await routesOn(h)).toEqual(expectedOn(i, [0, 1, 2, 3]));
      const kinds = (await h.ns.json<{ linkinfo?: { info_kind?: string } }[]>(['-d', 'link', 'show'])).map((l) => l.linkinfo?.info_kind);
      expect(kinds.filter((k) => k === 'vxlan' || k === 'ipip')).toEqual([]);
    }
  });

  it('both ToRs hold all four subnets: birdc show route and vtysh show ip bgp', async () => {
    const all = [...subnets].sort();
    expect(await torPrefixes(0)).toEqual(all);
    expect(await torPrefixes(1)).toEqual(all);
    // learned() reads `birdc show route all` and `vtysh show bgp ipv4 unicast json`; the ToRs also forward by them.
    for (const [r, proto] of [[0, 'bird'], [1, 'bgp']] as const) {
      const kernel = (await racks.tors[r].json<IpRoute[]>(['route', 'show', 'proto', proto])).map((x) => x.dst).filter((d) => d.startsWith('10.244.') && !BOGONS.includes(d)).sort();
      expect(kernel, `ToR ${r}'s kernel`).toEqual(all);
    }
  });

  it('a ToR announcing a default route, a prefix outside the cluster network and an unleased subnet: none installed, each counted', async () => {
    for (const h of racks.hosts.filter((x) => x.rack === 0)) {
      const dsts = (await h.ns.json<IpRoute[]>(['route', 'show'])).map((r) => r.dst);
      expect(dsts).not.toContain('10.99.0.0/24');
      expect(dsts).not.toContain('10.244.250.0/24');
      expect((await h.ns.json<IpRoute[]>(['route', 'show', 'proto', '84'])).map((r) => r.dst)).not.toContain('default');
    }
    const tor = racks.hosts[0]!.tor;
    for (const reason of ['default_route', 'outside_cluster', 'no_lease']) {
      expect(await agents[0]!.metric('twill_bgp_prefixes_rejected_total', `peer="${tor}",reason="${reason}"`), reason).toBeGreaterThanOrEqual(1);
    }
  });

  it('an agent SIGKILLed: the others\' pods keep talking; its ToR keeps its route (graceful restart) until it is back', async () => {
    const victim = 3;
    const others = pods.filter((p) => p.host !== victim);
    const ping = run('ip', ['netns', 'exec', pods[0]!.ns.name, 'ping', '-c', '40', '-i', '0.05', '-W', '1', pods[2]!.ip], { allowFailure: true });
    await agents[victim]!.daemon.kill('SIGKILL');
    expect((await ping).stdout).toMatch(/ 0% packet loss/);
    expect(await pingAll(others)).toEqual([]);
    // RFC 4724: the ToR keeps the restarting host's route, marked stale, so its pods stay reachable.
    expect(await torPrefixes(1)).toContain(subnets[victim]);
    expect(await pingAll(pods)).toEqual([]);
    await startOn(victim);
    await waitFor(() => converged([0, 1, 2, 3]), { timeoutMs: 20_000, what: 'routes after the restart' });
  });

  it('across a SIGTERM restart of its agent, a pod on the host loses no ping to the other rack', async () => {
    const from = pods[0]!;
    const to = pods[3]!;
    const ping = run('ip', ['netns', 'exec', from.ns.name, 'ping', '-c', '60', '-i', '0.05', '-W', '1', to.ip], { allowFailure: true });
    await agents[0]!.daemon.stop();
    await startOn(0);
    expect((await ping).stdout).toMatch(/ 0% packet loss/);
    await waitFor(() => converged([0, 1, 2, 3]), { timeoutMs: 20_000, what: 'routes after the restart' });
    expect(await pingAll(pods)).toEqual([]);
  });

  it('a host that dies (it goes silent, then its agent is killed): its prefix leaves both ToRs within the hold time; back, it returns', async () => {
    const victim = 2; // rack B, under the FRR ToR
    const gone = subnets[victim]!;
    // A crashed host says nothing: no FIN, no NOTIFICATION. The ToR's hold timer (HoldTime 9 s)
    // ends the session with a NOTIFICATION, which is no graceful restart (RFC 4724 §4.2, RFC 8538
    // without the N bit): the ToR withdraws the host's route. (An agent that only restarts closes
    // its TCP connection instead, and the ToR keeps the route: the SIGKILL test above.)
    await racks.hosts[victim]!.ns.exec('ip', ['link', 'set', 'eth0', 'down']);
    const cut = Date.now();
    await agents[victim]!.daemon.kill('SIGKILL');
    await waitFor(async () => !(await torPrefixes(1)).includes(gone) && !(await torPrefixes(0)).includes(gone),
      { timeoutMs: 20_000, intervalMs: 200, what: `${gone} withdrawn from both ToRs` });
    const tookMs = Date.now() - cut;
    console.info(`bgp racks: a dead host's prefix left both ToRs ${tookMs} ms after it went silent (hold time 9 s)`);
    expect(tookMs).toBeLessThan(9000 + 2000);
    expect(await pingAll(pods.filter((p) => p.host !== victim))).toEqual([]);
    await racks.hosts[victim]!.ns.exec('ip', ['link', 'set', 'eth0', 'up']);
    await racks.hosts[victim]!.ns.exec('ip', ['route', 'replace', 'default', 'via', racks.hosts[victim]!.tor]);
    await startOn(victim);
    await waitFor(() => converged([0, 1, 2, 3]), { timeoutMs: 30_000, what: 'routes after the host came back' });
    expect(await pingAll(pods)).toEqual([]);
  });

  it('a ToR restarted: sessions and routes come back without restarting any agent', async () => {
    await racks.torDaemons[1].kill();
    await racks.torDaemons[1].restart();
    await waitFor(async () => (await torPrefixes(1)).length === 4 && await converged([0, 1, 2, 3]), { timeoutMs: 60_000, intervalMs: 250, what: 'ToR B\'s routes back' }).catch(async (err: unknown) => {
      console.error('DIAG torB', await torPrefixes(1), 'torA', await torPrefixes(0));
      for (const [i, h] of racks.hosts.entries()) console.error('DIAG', i, await routesOn(h), expectedOn(i, [0, 1, 2, 3]), (await agents[i]!.http('/bgp/peers')).body, agents[i]!.daemon.running ? '' : agents[i]!.daemon.output().slice(-3000));
      throw err;
    });
    expect(await pingAll(pods)).toEqual([]);
  });
});
}
