import { describe, expect, it } from 'vitest';
import { NetlinkError, RTPROT_TWILL } from '../../src/netlink/index.js';
import { canUseNetns, useScratchNamespaces, type Scratch } from './scratch.js';

function subnet(i: number): string {
  return `10.${100 + (i >> 8)}.${i & 255}.0/24`;
}

describe.skipIf(!canUseNetns)('pipelined netlink requests', () => {
  const scratch = useScratchNamespaces();

  /** A namespace with an addressed eth0 and twill.1 up; returns twill.1's index. */
  async function vxlanHost(tag: string): Promise<{ s: Scratch; vx: number }> {
    const s = await scratch(tag);
    // A host always has an underlay address; without one the main table does not exist yet and the
    // kernel calls every onlink gateway invalid (inet_addr_type_table() finds no table).
    await s.nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
    await s.nl.setUp('eth0');
    await s.nl.addAddress('eth0', '198.18.0.1/24');
    await s.nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472 });
    await s.nl.setUp('twill.1');
    return { s, vx: (await s.nl.requireLink('twill.1')).index };
  }

  it('programs thousands of entries in flight at once and matches each reply to its request', async () => {
    const { s, vx } = await vxlanHost('pipe');
    const n = 3000;
    // Every 7th route has an unreachable, non-onlink gateway and must fail on its own.
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => (i % 7 === 3
      ? s.nl.replaceRoute({ dst: subnet(i), gateway: '192.0.2.77' })
      : s.nl.replaceRoute({ dst: subnet(i), gateway: '10.0.0.1', oif: vx, onlink: true }))));
    results.forEach((r, i) => {
      if (i % 7 === 3) {
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as NetlinkError;
        expect(err).toBeInstanceOf(NetlinkError);
        expect(err.target).toBe(subnet(i));
        expect(err.code).toBe('ENETUNREACH');
      } else {
        expect(r.status).toBe('fulfilled');
      }
    });
    const installed = (await s.ipJson<{ dst: string }[]>('route', 'show', 'proto', String(RTPROT_TWILL))).map((r) => r.dst).sort();
    const expected = Array.from({ length: n }, (_, i) => i).filter((i) => i % 7 !== 3).map(subnet).sort();
    expect(installed).toEqual(expected);

    // Mixed kinds of requests in flight together, including dumps.
    const [routes, links] = await Promise.all([
      s.nl.listRoutes({ protocol: RTPROT_TWILL }),
      s.nl.listLinks(),
      ...expected.slice(0, 1000).map((dst) => s.nl.deleteRoute({ dst, oif: vx })),
    ]);
    expect(links.map((l) => l.name)).toContain('twill.1');
    // The dump raced with the deletes: it saw somewhere between all and none of them.
    expect(routes.length).toBeGreaterThanOrEqual(expected.length - 1000);
    expect(routes.length).toBeLessThanOrEqual(expected.length);
    expect(await s.nl.listRoutes({ protocol: RTPROT_TWILL })).toHaveLength(expected.length - 1000);
  });

  it('sends a batch with one promise for all, and hands back each failure with its token: refused, or not even encodable', async () => {
    const { s, vx } = await vxlanHost('batch');
    const n = 2000;
    const batch = s.nl.batch<number>();
    for (let i = 0; i < n; i++) {
      if (i % 9 === 4) batch.replaceRoute({ dst: subnet(i), gateway: '192.0.2.77' }, i);
      else if (i === 10) batch.replaceRoute({ dst: '10.1.2.3/24', gateway: '10.0.0.1', oif: vx, onlink: true }, i); // host bits: not encodable
      else {
        batch.replaceNeighbour({ index: vx, ip: subnet(i).replace('/24', ''), mac: '0a:00:00:00:00:01' }, i);
        batch.replaceRoute({ dst: subnet(i), gateway: subnet(i).replace('/24', ''), oif: vx, onlink: true }, i);
      }
    }
    expect(await s.nl.batch().commit()).toEqual([]);
    const failures = await batch.commit();
    const refused = failures.filter((f) => f.error instanceof NetlinkError);
    expect(refused.map((f) => f.token).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i % 9 === 4));
    expect(refused.every((f) => (f.error as NetlinkError).code === 'ENETUNREACH' && (f.error as NetlinkError).target === subnet(f.token))).toBe(true);
    expect(failures.filter((f) => !(f.error instanceof NetlinkError))).toEqual([{ token: 10, error: expect.objectContaining({ message: expect.stringContaining('host bits') as unknown }) }]);
    const installed = await s.nl.listRoutes({ protocol: RTPROT_TWILL });
    expect(installed).toHaveLength(n - refused.length - 1);
    // The neighbours of the valid entries went in with them.
    expect((await s.nl.listNeighbours(vx)).filter((x) => x.permanent)).toHaveLength(n - refused.length - 1);
  });

  it('interleaves a batch bigger than the in-flight limit with single requests, each failure on its own request', async () => {
    const { s, vx } = await vxlanHost('bulk');
    // 9,000 requests: more than the 4,096 in flight at once and many datagrams, so the batch goes
    // out in runs between the single requests issued meanwhile.
    const n = 9000;
    const batch = s.nl.batch<number>();
    for (let i = 0; i < n; i++) {
      if (i % 997 === 5) batch.replaceRoute({ dst: subnet(i), gateway: '192.0.2.77' }, i);
      else batch.replaceRoute({ dst: subnet(i), gateway: '10.0.0.1', oif: vx, onlink: true }, i);
    }
    const committed = batch.commit();
    const singles = Promise.allSettled(Array.from({ length: 200 }, (_, j) => (j % 50 === 7
      ? s.nl.replaceRoute({ dst: `10.250.${j}.0/24`, gateway: '192.0.2.77' })
      : s.nl.replaceRoute({ dst: `10.250.${j}.0/24`, gateway: '10.0.0.1', oif: vx, onlink: true }))));
    const failures = await committed;
    const refusedTokens = Array.from({ length: n }, (_, i) => i).filter((i) => i % 997 === 5);
    expect(failures.map((f) => f.token).sort((a, b) => a - b)).toEqual(refusedTokens);
    for (const f of failures) {
      expect(f.error).toBeInstanceOf(NetlinkError);
      expect((f.error as NetlinkError).target).toBe(subnet(f.token));
      expect((f.error as NetlinkError).code).toBe('ENETUNREACH');
    }
    const singleResults = await singles;
    singleResults.forEach((r, j) => expect(r.status).toBe(j % 50 === 7 ? 'rejected' : 'fulfilled'));
    const installed = await s.nl.listRoutes({ protocol: RTPROT_TWILL });
    expect(installed).toHaveLength(n - refusedTokens.length + singleResults.filter((r) => r.status === 'fulfilled').length);
  });

  it('fails every unanswered request of a batch when the channel closes under it', async () => {
    const { s, vx } = await vxlanHost('closing');
    const batch = s.nl.batch<number>();
    for (let i = 0; i < 5000; i++) batch.replaceRoute({ dst: subnet(i), gateway: '10.0.0.1', oif: vx, onlink: true }, i);
    const committed = batch.commit();
    // Closed before the first datagram leaves (requests are sent from a microtask).
    s.nl.close();
    const failures = await committed;
    expect(failures).toHaveLength(5000);
    expect(failures.every((f) => /closed/.test(f.error.message))).toBe(true);
    expect(await s.ipJson('route', 'show', 'proto', String(RTPROT_TWILL))).toEqual([]);
  });
});
