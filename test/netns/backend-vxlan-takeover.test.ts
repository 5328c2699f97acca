import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { backendContext } from '../helpers/backend-context.js';
import { tempDir } from '../helpers/cleanup.js';
import { createCluster, type Host } from '../helpers/cluster.js';
import { ipJson, type IpLinkJson, type IpRouteJson } from '../helpers/exec.js';
import { addFlannelDevice, addFlannelDirectRoute, addFlannelPeer, FLANNEL_DEVICE, startFakeFlanneld } from '../helpers/flannel-state.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// The vxlan backend taking over what flanneld left on a host, against the real kernel, through
// the backend's own API (register, start, sync) as the agent calls it. The whole migration with
// real agents, etcd and a ping-loss measurement: test/integration/flannel-migration.test.ts.

/** The agent's context for `host`, with its state in `stateDir` (where an adopted MAC is recorded). */
const hostContext = (host: Host, stateDir: string): Promise<BackendContext> => backendContext(host, { stateDir, resyncIntervalMs: 60_000 });

const linkOf = async (host: Host, dev: string): Promise<IpLinkJson | undefined> =>
  (await host.json<IpLinkJson[]>(['-d', 'addr', 'show'])).find((l) => l.ifname === dev);
/** Routes to pod subnets ("10.244.x.0/24"), without the pods' own host routes. */
const subnetRoutes = async (host: Host): Promise<string[]> => (await host.routes())
  .filter((r: IpRouteJson) => r.dst.startsWith('10.244.') && r.dst.includes('/'))
  .map((r) => `${r.dst} ${r.protocol ?? 'boot'} ${r.dev ?? '-'}`).sort();
const macOf = (network: Network): string => (network.leaseData as { VtepMAC: string }).VtepMAC;

describe.skipIf(!isRoot)('vxlan backend: taking over flanneld\'s host', () => {
  useCleanup();

  it('refuses while flanneld runs in the host\'s namespace, naming the pid, and ignores one in another namespace', async () => {
    const cluster = await createCluster({ hosts: 1 });
    const host = cluster.hosts[0]!;
    const dir = tempDir('takeover-refuse');
    await addFlannelDevice(host, { localIp: host.underlayIp, subnet: '10.244.21.0/24' });
    const flanneld = await startFakeFlanneld(host, dir);
    const ctx = await hostContext(host, dir);
    await expect(vxlanBackend.register(ctx, vxlanBackend.parseOptions({}))).rejects.toMatchObject({
      code: 'EFLANNELD_RUNNING',
      message: expect.stringContaining(`flanneld (pid ${flanneld.pid}) is running in this network namespace and owns flannel.1`),
    });
    expect(await linkOf(host, FLANNEL_DEVICE)).toBeDefined();
    expect(await linkOf(host, 'twill.1')).toBeUndefined();

    await flanneld.stop();
    const elsewhere = await createTestNetns('other');
    const otherDir = join(dir, 'other');
    mkdirSync(otherDir);
    await startFakeFlanneld(elsewhere, otherDir);
    const network = await vxlanBackend.register(ctx, vxlanBackend.parseOptions({}));
    expect(macOf(network)).toBe((await linkOf(host, FLANNEL_DEVICE))!.address);
  });

  it('keeps flannel\'s device until the first sync, then swaps it for twill.1 with its MAC and removes only flannel\'s routes', async () => {
    const cluster = await createCluster({ hosts: 2 });
    const [flannelHost, twillHost] = cluster.hosts as [Host, Host];
    const dir = tempDir('takeover-swap');
    // Host 1 runs Twill's backend; host 0 holds flanneld's state for it, plus a DirectRouting
    // route flanneld wrote for a (stopped) peer, and two routes of an operator's that look alike.
    const twill = await vxlanBackend.register(await hostContext(twillHost, join(dir, 'h1')), vxlanBackend.parseOptions({}));
    await twill.start({ subnet: '10.244.22.0/24', publicIp: twillHost.underlayIp });
    const flannelMac = await addFlannelDevice(flannelHost, { localIp: flannelHost.underlayIp, subnet: '10.244.21.0/24' });
    await addFlannelPeer(flannelHost, { subnet: '10.244.22.0/24', vtepMac: macOf(twill), publicIp: twillHost.underlayIp });
    await addFlannelDirectRoute(flannelHost, { subnet: '10.244.50.0/24', publicIp: twillHost.underlayIp });
    await flannelHost.exec('ip', ['route', 'add', '10.244.60.0/24', 'via', twillHost.underlayIp, 'dev', 'eth0', 'metric', '100']);
    await flannelHost.exec('ip', ['route', 'add', '10.244.70.0/24', 'via', twillHost.underlayIp, 'dev', 'eth0', 'proto', 'static']);
    const lease = (subnet: string, host: Host, mac: string): RemoteLease => ({ subnet, publicIp: host.underlayIp, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });
    await twill.sync([lease('10.244.21.0/24', flannelHost, flannelMac)]);
    const pods = await Promise.all([
      cluster.addPod(flannelHost, { ip: '10.244.21.2/32', gateway: '10.244.21.0', hostRoute: true }),
      cluster.addPod(twillHost, { ip: '10.244.22.2/32', gateway: '10.244.22.0', hostRoute: true }),
    ]);
    expect(await pods[0].ping('10.244.22.2', { count: 2 })).toBe(true);
    expect(await subnetRoutes(flannelHost)).toEqual([
      '10.244.22.0/24 boot flannel.1', '10.244.50.0/24 boot eth0', '10.244.60.0/24 boot eth0', '10.244.70.0/24 static eth0',
    ]);

    const stateDir = join(dir, 'h0');
    const network = await vxlanBackend.register(await hostContext(flannelHost, stateDir), vxlanBackend.parseOptions({}));
    expect(network.leaseData).toEqual({ VNI: 1, VtepMAC: flannelMac });
    await network.start({ subnet: '10.244.21.0/24', publicIp: flannelHost.underlayIp });
    // Until the first sync flanneld's state is untouched and carries the traffic.
    expect(await linkOf(flannelHost, FLANNEL_DEVICE)).toBeDefined();
    expect(await linkOf(flannelHost, 'twill.1')).toBeUndefined();
    expect(await pods[1].ping('10.244.21.2')).toBe(true);

    const report = await network.sync([lease('10.244.22.0/24', twillHost, macOf(twill))]);
    expect(report.skipped).toEqual([]);
    expect(await linkOf(flannelHost, FLANNEL_DEVICE)).toBeUndefined();
    const dev = (await linkOf(flannelHost, 'twill.1'))!;
    expect(dev.address).toBe(flannelMac);
    expect(dev.linkinfo?.info_data).toMatchObject({ id: 1, port: 8472, learning: false });
    expect(dev.addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.244.21.0/32');
    // flanneld's onlink route went with its device, its DirectRouting route was deleted; the
    // operator's routes (a metric, another protocol) stay.
    expect(await subnetRoutes(flannelHost)).toEqual(['10.244.22.0/24 84 twill.1', '10.244.60.0/24 boot eth0', '10.244.70.0/24 static eth0']);
    const neigh = await flannelHost.json<{ dst: string; lladdr: string }[]>(['neigh', 'show', 'dev', 'twill.1', 'nud', 'permanent']);
    expect(neigh.map((n) => `${n.dst} ${n.lladdr}`)).toEqual([`10.244.22.0 ${macOf(twill)}`]);
    const fdb = await ipJson<{ mac: string; dst?: string }[]>(flannelHost.name, ['fdb', 'show', 'dev', 'twill.1'], 'bridge');
    expect(fdb.filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`)).toEqual([`${macOf(twill)} ${twillHost.underlayIp}`]);
    await waitFor(() => pods[1].ping('10.244.21.2'), { timeoutMs: 5000, what: 'the pod behind the taken-over host to answer' });
    expect(await pods[0].ping('10.244.22.2')).toBe(true);

    // A restart finds no flannel device, and keeps the adopted MAC from its record.
    const again = await vxlanBackend.register(await hostContext(flannelHost, stateDir), vxlanBackend.parseOptions({}));
    expect(macOf(again)).toBe(flannelMac);
    expect((await linkOf(flannelHost, 'twill.1'))!.address).toBe(flannelMac);
  });

  it('with DirectRouting, replaces flanneld\'s direct route to a peer by Twill\'s (Twill never overwrites another protocol\'s route)', async () => {
    const cluster = await createCluster({ hosts: 2 });
    const [flannelHost, peer] = cluster.hosts as [Host, Host];
    const flannelMac = await addFlannelDevice(flannelHost, { localIp: flannelHost.underlayIp, subnet: '10.244.21.0/24' });
    await addFlannelDirectRoute(flannelHost, { subnet: '10.244.22.0/24', publicIp: peer.underlayIp });
    expect(await subnetRoutes(flannelHost)).toEqual(['10.244.22.0/24 boot eth0']);

    const options = vxlanBackend.parseOptions({ DirectRouting: true });
    const network = await vxlanBackend.register(await hostContext(flannelHost, tempDir('takeover-direct')), options);
    await network.start({ subnet: '10.244.21.0/24', publicIp: flannelHost.underlayIp });
    const report = await network.sync([{ subnet: '10.244.22.0/24', publicIp: peer.underlayIp, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:aa:00:00:00:02' } }]);
    expect(report.skipped).toEqual([]);
    expect(await subnetRoutes(flannelHost)).toEqual(['10.244.22.0/24 84 eth0']);
    expect((await linkOf(flannelHost, 'twill.1'))?.address).toBe(flannelMac);
    expect(await linkOf(flannelHost, FLANNEL_DEVICE)).toBeUndefined();
  });
});
