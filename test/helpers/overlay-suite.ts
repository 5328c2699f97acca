import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { etcdAvailable } from './etcd.js';
import { commandAvailable, exec, run } from './exec.js';
import { startAgent, type TestAgent } from './twilld.js';
import { attachMeshPod, leaseSubnet, pingAll, startMeshAgent, startMeshBed, type MeshBed, type MeshPod } from './pod-mesh.js';
import { isRoot, useCleanup } from './vitest.js';
import { waitFor } from './wait.js';

const PREFIX = '/coreos.com/network';
const registered = registerBuiltins().types();
const referencePlugins = commandAvailable('/usr/lib/cni/bridge');

interface IpRoute { dst: string; gateway?: string; dev: string; flags?: string[] }

export type OverlayBackend = 'vxlan' | 'host-gw' | 'ipip';

/**
 * The end-to-end suite every backend passes: 3 hosts, each with twilld, real etcd and 2 pods
 * wired by Debian's reference plugins. `beforeSuite` may refuse to run (a kernel without the
 * backend's module must fail loudly, not skip).
 */
export function overlaySuite(backend: OverlayBackend, beforeSuite?: () => Promise<void>): void {
  describe.skipIf(!isRoot || !etcdAvailable() || !referencePlugins || !registered.includes(backend))(`twilld with the ${backend} backend`, () => {
    useCleanup();
    let bed: MeshBed;
    const agents: TestAgent[] = [];
    const pods: MeshPod[] = [];

    const startOn = async (i: number): Promise<TestAgent> => (agents[i] = await startMeshAgent(bed, i));

    beforeAll(async () => {
      await beforeSuite?.();
      bed = await startMeshBed({ hosts: 3, label: `overlay-${backend}`, backend, prefix: PREFIX });
      for (let i = 0; i < 3; i++) await startOn(i);
      // Two pods per host, wired by Debian's reference bridge + host-local plugins from the subnet file.
      for (let i = 0; i < 3; i++) {
        for (let p = 0; p < 2; p++) pods.push(await attachMeshPod(bed, i, agents[i]!, { label: `h${i}p${p}`, dataDir: join(bed.dir, `host${i}`, 'ipam') }));
      }
    });

    afterAll(async () => {
      await Promise.all(agents.map((a) => a?.daemon.stop()));
    });

    it('connects every pod with every other pod across 3 hosts', async () => {
      expect(pods).toHaveLength(6);
      expect(await pingAll(pods)).toEqual([]);
    });

    it('programs exactly what the leases say', async () => {
      const subnets = agents.map(leaseSubnet);
      for (const [i, host] of bed.cluster.hosts.entries()) {
        const others = subnets.filter((_, j) => j !== i).sort();
        const routes = (await host.json<IpRoute[]>(['route', 'show', 'proto', '84'])).filter((r) => r.dst.startsWith('10.244.'));
        expect(routes.map((r) => r.dst).sort()).toEqual(others);
        if (backend === 'host-gw') {
          for (const r of routes) expect(r.dev).toBe('eth0');
          continue;
        }
        if (backend === 'ipip') {
          const peers = bed.cluster.hosts.map((h, j) => `${subnets[j]} via ${h.underlayIp} dev twill.ipip onlink`).filter((_, j) => j !== i);
          expect(routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.dev} ${(r.flags ?? []).join(',')}`).sort()).toEqual(peers.sort());
          const [link] = await host.json<{ mtu: number; linkinfo: { info_kind: string; info_data: { local: string } }; addr_info: { local: string; prefixlen: number }[] }[]>(['-4', '-d', 'addr', 'show', 'twill.ipip']);
          expect(link!.mtu).toBe(1480);
          expect(link!.linkinfo).toMatchObject({ info_kind: 'ipip', info_data: { local: host.underlayIp } });
          expect(link!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual([subnets[i]!.replace('.0/24', '.0/32')]);
          continue;
        }
        const [link] = await host.json<{ mtu: number; address: string; linkinfo: { info_data: { id: number; port: number; learning: boolean } } }[]>(['-d', 'link', 'show', 'twill.1']);
        expect(link!.mtu).toBe(1450);
        expect(link!.linkinfo.info_data).toMatchObject({ id: 1, port: 8472, learning: false });
        const macs = await Promise.all(bed.cluster.hosts.map(async (h) => (await h.json<{ address: string }[]>(['link', 'show', 'twill.1']))[0]!.address));
        const peers = bed.cluster.hosts.map((h, j) => ({ mac: macs[j]!, ip: h.underlayIp, subnet: subnets[j]! })).filter((_, j) => j !== i);
        const neigh = await host.json<{ dst: string; lladdr: string }[]>(['neigh', 'show', 'dev', 'twill.1', 'nud', 'permanent']);
        expect(neigh.map((n) => `${n.dst} ${n.lladdr}`).sort()).toEqual(peers.map((p) => `${p.subnet.replace('/24', '')} ${p.mac}`).sort());
        const fdb = JSON.parse(await exec('bridge', ['-n', host.name, '-j', 'fdb', 'show', 'dev', 'twill.1'])) as { mac: string; dst?: string }[];
        expect(fdb.filter((e) => e.dst !== undefined).map((e) => `${e.mac} ${e.dst}`).sort()).toEqual(peers.map((p) => `${p.mac} ${p.ip}`).sort());
      }
    });

    it('puts back a route deleted by hand within one resync', async () => {
      const host = bed.cluster.hosts[0]!;
      const victim = leaseSubnet(agents[1]!);
      const before = await host.json<IpRoute[]>(['route', 'show', victim]);
      expect(before).toHaveLength(1);
      await host.exec('ip', ['route', 'del', victim]);
      // --resync-interval 1s: one interval, plus the time to list and write.
      await waitFor(async () => JSON.stringify(await host.json<IpRoute[]>(['route', 'show', victim])) === JSON.stringify(before),
        { timeoutMs: 1500, intervalMs: 20, what: `the route to ${victim} back on host 0` });
    });

    it('keeps traffic flowing while an agent is SIGKILLed and restarted', async () => {
      const from = pods.find((p) => p.host === 1)!;
      const to = pods.find((p) => p.host === 0)!;
      const ping = run('ip', ['netns', 'exec', from.ns.name, 'ping', '-c', '60', '-i', '0.05', '-W', '1', to.ip], { allowFailure: true });
      await agents[0]!.daemon.kill('SIGKILL');
      await startOn(0);
      const result = await ping;
      expect(result.stdout).toMatch(/ 0% packet loss/);
    });

    it('installs its masquerading table with --ip-masq and removes it when started without', async () => {
      const host = bed.cluster.hosts[1]!;
      const tables = async (): Promise<string[]> => {
        const out = JSON.parse(await exec('ip', ['netns', 'exec', host.name, 'nft', '-j', 'list', 'tables'])) as { nftables: { table?: { family: string; name: string } }[] };
        return out.nftables.flatMap((e) => (e.table ? [`${e.table.family} ${e.table.name}`] : []));
      };
      await agents[1]!.daemon.stop();
      const masq = await startAgent(host, { etcd: bed.etcd.clientUrl, dir: join(bed.dir, 'host1'), args: ['--iface', 'eth0', '--ip-masq'] });
      agents[1] = masq;
      await masq.waitReady();
      expect(await tables()).toContain('ip twill');
      expect(masq.subnetEnv()!.FLANNEL_IPMASQ).toBe('true');
      await masq.daemon.stop();
      await startOn(1);
      await waitFor(async () => !(await tables()).includes('ip twill'), { timeoutMs: 5000, what: 'the twill table to be removed' });
      expect(await pingAll(pods)).toEqual([]);
    });

    it('removes a departed host\'s entries from the others within a second', async () => {
      const gone = leaseSubnet(agents[2]!);
      await agents[2]!.daemon.kill('SIGKILL');
      await bed.etcd.etcdctl(['del', `${PREFIX}/subnets/${gone.replace('/', '-')}`]);
      // From etcd's answer to the delete (etcdctl's own start, slow under the VM's emulated
      // CPUs, is not the agents' time).
      const deleted = Date.now();
      await waitFor(async () => {
        const r = await Promise.all([0, 1].map((i) => bed.cluster.hosts[i]!.json<IpRoute[]>(['route', 'show', gone])));
        return r.every((routes) => routes.length === 0);
      }, { timeoutMs: 1000, intervalMs: 20, what: `the route to ${gone} to vanish on hosts 0 and 1` });
      const tookMs = Date.now() - deleted;
      console.info(`${backend}: a departed host's route gone on the others ${tookMs} ms after its lease was deleted`);
      expect(tookMs).toBeLessThan(1000);
      if (backend === 'vxlan') {
        for (const i of [0, 1]) {
          const neigh = await bed.cluster.hosts[i]!.json<{ dst: string }[]>(['neigh', 'show', 'dev', 'twill.1', 'nud', 'permanent']);
          expect(neigh.map((n) => n.dst)).not.toContain(gone.replace('/24', ''));
        }
      }
    });
  });
}
