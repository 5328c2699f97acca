import { describe, expect, it } from 'vitest';
import { syncRoutes } from '../../src/backends/route-sync.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces } from './scratch.js';

interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string; flags: string[] }

describe.skipIf(!canUseNetns)('declarative route sync', () => {
  const scratch = useScratchNamespaces();

  it('converges on the desired routes, touching only Twill routes inside the cluster network', async () => {
    const s = await scratch('rsync');
    await s.nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
    await s.nl.setUp('eth0');
    await s.nl.addAddress('eth0', '198.18.0.1/24');
    const eth0 = (await s.nl.requireLink('eth0')).index;
    const via = (n: number) => ({ dst: `10.244.${n}.0/24`, gateway: `198.18.0.${n}`, oif: eth0 });

    // Foreign routes: not Twill's protocol, or outside the cluster network. They must survive.
    await s.nl.replaceRoute({ ...via(50), protocol: 4 });
    await s.nl.replaceRoute({ dst: '10.99.0.0/16', gateway: '198.18.0.9', oif: eth0 });
    // A stale Twill route (a host gone while the agent was down) and one pointing elsewhere.
    await s.nl.replaceRoute(via(7));
    await s.nl.replaceRoute({ ...via(2), gateway: '198.18.0.99' });

    const first = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)]);
    expect(first).toEqual({ replaced: 2, deleted: 1, failed: [] });
    const ours = await s.ipJson<IpRoute[]>('route', 'show', 'proto', String(RTPROT_TWILL));
    expect(ours.map((r) => `${r.dst} via ${r.gateway}`).sort()).toEqual(['10.244.2.0/24 via 198.18.0.2', '10.244.3.0/24 via 198.18.0.3', '10.99.0.0/16 via 198.18.0.9']);
    expect((await s.ipJson<IpRoute[]>('route', 'show', '10.244.50.0/24'))[0]?.gateway).toBe('198.18.0.50');

    // Converged: a second sync writes nothing.
    expect(await syncRoutes(s.nl, '10.244.0.0/16', [via(2), via(3)])).toEqual({ replaced: 0, deleted: 0, failed: [] });

    // A route that cannot be installed is reported, the rest still converges.
    const bad = await syncRoutes(s.nl, '10.244.0.0/16', [via(2), { dst: '10.244.4.0/24', gateway: '192.0.2.1' }]);
    expect(bad.deleted).toBe(1);
    expect(bad.failed).toEqual([expect.objectContaining({ dst: '10.244.4.0/24' })]);
    expect((bad.failed[0]!.error as { code?: string }).code).toBe('ENETUNREACH');
  });
});
