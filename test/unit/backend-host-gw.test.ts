import { afterEach, describe, expect, it } from 'vitest';
import type { Network, RemoteLease } from '../../src/backends/backend.js';
import { hostGwBackend } from '../../src/backends/host-gw/host-gw.js';
import { planRoutes } from '../../src/backends/host-gw/plan.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { fakeHost } from '../fakes/backend-context.js';
import type { FakeNetlink } from '../fakes/netlink.js';
import { waitFor } from '../helpers/wait.js';

// The host-gw backend on the in-memory kernel: its plan, and its Network through register(), as
// the agent drives it (test/netns/backend-host-gw.test.ts runs it on real hosts, with pings).

const lease = (n: number, publicIp = `198.18.0.${n}`, backendType = 'host-gw'): RemoteLease =>
  ({ subnet: `10.244.${n}.0/24`, publicIp, backendType, backendData: null });

/** Twill's routes: "dst via gw dev ifindex". */
async function twillRoutes(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.oif ?? '-'}`).sort();
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => { for (const stop of stops.splice(0)) await stop(); });

/** network.run() until the end of the test. */
function running(network: Network): void {
  const ac = new AbortController();
  const done = network.run(ac.signal);
  stops.push(async () => { ac.abort(); await done; });
}

describe('host-gw plan', () => {
  const ext = { name: 'eth0', index: 2, address: '198.18.0.1' };
  const plan = (leases: RemoteLease[]): ReturnType<typeof planRoutes> => planRoutes({ leases, ext, connected: ['198.18.0.1/24'], clusterNetwork: '10.244.0.0/16' });

  it('routes each remote subnet via its host on the external interface', () => {
    expect(plan([lease(2), lease(3)])).toEqual({
      routes: [{ dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 2 }, { dst: '10.244.3.0/24', gateway: '198.18.0.3', oif: 2 }], skipped: [],
    });
  });

  it('skips, with the reason and in subnet order, a host off the segment, a lease outside the network, of another type, or claiming this host\'s address', () => {
    const result = plan([lease(2), lease(3, '198.18.1.3'), { ...lease(4), subnet: '10.99.4.0/24' }, lease(5, '198.18.0.5', 'vxlan'), lease(6, '198.18.0.1')]);
    expect(result.routes.map((r) => r.dst)).toEqual(['10.244.2.0/24']);
    expect(result.skipped).toEqual([
      { subnet: '10.99.4.0/24', reason: 'the subnet is outside the cluster network 10.244.0.0/16' },
      { subnet: '10.244.3.0/24', reason: '198.18.1.3 is not on a directly connected network of eth0: host-gw needs every host on one L2 segment' },
      { subnet: '10.244.5.0/24', reason: 'BackendType is "vxlan", not "host-gw"' },
      { subnet: '10.244.6.0/24', reason: 'PublicIP 198.18.0.1 is this node\'s own' },
    ]);
  });
});

describe('host-gw network on the fake kernel', () => {
  it('refuses to register behind NAT; otherwise has the interface\'s MTU and no lease data', async () => {
    await expect(hostGwBackend.register(fakeHost({ publicIp: '198.18.5.3' }).ctx, {})).rejects.toBeInstanceOf(InvalidArgumentError);
    const network = await hostGwBackend.register(fakeHost({ mtu: 9000 }).ctx, {});
    expect([network.mtu, network.leaseData]).toEqual([9000, null]);
  });

  it('sync programs exactly the leases\' routes, removes a departed host\'s, and a converged sync writes nothing', async () => {
    const { nl, ctx, eth0 } = fakeHost();
    const network = await hostGwBackend.register(ctx, {});
    expect(await network.sync([lease(2), lease(3), lease(4, '198.18.9.4')])).toEqual({
      changes: 2, skipped: [{ subnet: '10.244.4.0/24', reason: expect.stringContaining('not on a directly connected network') as string }],
    });
    expect(await twillRoutes(nl)).toEqual([`10.244.2.0/24 via 198.18.0.2 dev ${eth0.index}`, `10.244.3.0/24 via 198.18.0.3 dev ${eth0.index}`]);
    nl.clearWrites();
    expect((await network.sync([lease(2), lease(3)])).changes).toBe(0);
    expect(nl.writeLog()).toEqual([]);
    expect((await network.sync([lease(2)])).changes).toBe(1);
    expect(await twillRoutes(nl)).toEqual([`10.244.2.0/24 via 198.18.0.2 dev ${eth0.index}`]);
  });

  it('resync puts back a route deleted behind its back', async () => {
    const { nl, ctx, eth0 } = fakeHost({ resyncIntervalMs: 20 });
    const network = await hostGwBackend.register(ctx, {});
    await network.sync([lease(2), lease(3)]);
    running(network);
    nl.kernel.routes.delete({ dst: '10.244.3.0/24' });
    expect(await twillRoutes(nl)).toHaveLength(1);
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'the route restored', timeoutMs: 2000 });
    expect(await twillRoutes(nl)).toContain(`10.244.3.0/24 via 198.18.0.3 dev ${eth0.index}`);
  });

  it('puts the routes back as soon as eth0 comes up again (the kernel flushed them), without waiting for the resync', async () => {
    const { nl, ctx } = fakeHost(); // resync every hour: only the link event can repair in time
    const network = await hostGwBackend.register(ctx, {});
    await network.sync([lease(2), lease(3)]);
    running(network);
    await waitFor(() => nl.openWatches === 1, { what: 'the link watch' });
    nl.kernel.links.setLink('eth0', { up: false }, 'link.set');
    expect(await twillRoutes(nl)).toEqual([]);
    nl.kernel.links.setLink('eth0', { up: true }, 'link.set');
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'routes back after eth0 up', timeoutMs: 2000 });
  });

  it('skips a lease whose route the kernel refuses (write_failed) and applies the rest; a failed removal fails the sync', async () => {
    const { nl, ctx, eth0 } = fakeHost();
    const network = await hostGwBackend.register(ctx, {});
    nl.fail('route.add', 'EPERM', { when: (r) => r.dst === '10.244.3.0/24', times: 1 });
    const report = await network.sync([lease(2), lease(3), lease(4)]);
    expect(report.changes).toBe(2);
    expect(report.skipped).toEqual([{ subnet: '10.244.3.0/24', code: 'write_failed', reason: expect.stringMatching(/^the kernel refused the route: route\.add 10\.244\.3\.0\/24 failed: EPERM/) as string }]);
    expect(await twillRoutes(nl)).toEqual([`10.244.2.0/24 via 198.18.0.2 dev ${eth0.index}`, `10.244.4.0/24 via 198.18.0.4 dev ${eth0.index}`]);

    nl.fail('route.delete', 'EBUSY', { when: (r) => r.dst === '10.244.4.0/24' });
    await expect(network.sync([lease(2), lease(3)])).rejects.toThrow(/host-gw: removing 1 stale route\(s\) failed \(1 changes applied\): 10\.244\.4\.0\/24: route\.delete 10\.244\.4\.0\/24 failed: EBUSY/);
    // Everything else was applied: the refused route of the first sync is in place now.
    expect(await twillRoutes(nl)).toEqual([2, 3, 4].map((n) => `10.244.${n}.0/24 via 198.18.0.${n} dev ${eth0.index}`));
  });
});
