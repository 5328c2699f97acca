import { describe, expect, it } from 'vitest';
import { applyRouteChanges } from '../../src/backends/route-changes.js';
import { syncRoutes } from '../../src/backends/route-sync.js';
import { repairDeletions, WrittenState } from '../../src/backends/written-state.js';
import { RT_TABLE_MAIN, type Route, type RouteSpec } from '../../src/netlink/index.js';
import { FakeNetlink } from '../fakes/netlink.js';

// A burst of changes written against what the last sync wrote (issue 16's bgp install of a
// table in many UPDATEs): no dump of the kernel, only the changed destinations, and never over a
// route of another owner.

const CLUSTER = '10.244.0.0/16';

function host(opts: { nexthops?: boolean } = {}): { nl: FakeNetlink; via: (n: number, gw?: number) => RouteSpec } {
  const nl = new FakeNetlink(opts);
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24').index;
  return { nl, via: (n, gw = n) => ({ dst: `10.244.${n}.0/24`, gateway: `198.18.0.${gw}`, oif: eth0 }) };
}

async function table(nl: FakeNetlink): Promise<string[]> {
  const gateways = new Map((await nl.listNexthops().catch(() => [])).map((n) => [n.id, n.gateway]));
  return (await nl.listRoutes({ family: 4 })).filter((r) => r.dst.startsWith('10.244.'))
    .map((r) => `${r.dst} via ${r.gateway ?? gateways.get(r.nexthopId ?? -1) ?? '-'} proto ${r.protocol}`).sort();
}

/** Every listing fails from now on: a call that needs one cannot pass. */
function forbidListings(nl: FakeNetlink): () => void {
  const lifts = [nl.fail('route.list', 'EIO'), nl.fail('nexthop.list', 'EIO')];
  return () => lifts.forEach((lift) => lift());
}

describe('applyRouteChanges', () => {
  it('writes only the changed destinations, through the nexthop the last sync made, without listing the kernel', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    nl.clearWrites();
    const allow = forbidListings(nl);
    const result = await applyRouteChanges(nl, written, new Map([
      ['10.244.2.0/24', via(2)], // unchanged
      ['10.244.4.0/24', via(4, 2)], // new, through the gateway of 10.244.2.0/24
      ['10.244.3.0/24', undefined], // withdrawn
      ['10.244.5.0/24', undefined], // never had a route
    ]));
    allow();
    expect(result).toEqual({ replaced: 1, deleted: 1, failed: [], refused: [], nexthopsUnused: true });
    expect(nl.writeLog().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['route.add 10.244.4.0/24', 'route.delete 10.244.3.0/24']);
    expect(await table(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2 proto 84', '10.244.4.0/24 via 198.18.0.2 proto 84']);
    // The record follows: a second identical call writes nothing, and the next full sync agrees.
    nl.clearWrites();
    expect(await applyRouteChanges(nl, written, new Map([['10.244.4.0/24', via(4, 2)]]))).toMatchObject({ replaced: 0, deleted: 0 });
    expect(nl.writeLog()).toEqual([]);
    const full = await syncRoutes(nl, CLUSTER, [via(2), via(4, 2)], written);
    expect([full.replaced, full.deleted, full.nexthops]).toEqual([0, 0, 1]); // only the unused nexthop of 198.18.0.3 goes
  });

  it('writes nothing and says so (undefined) when a route needs a nexthop the last sync did not make', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2)], written);
    nl.clearWrites();
    expect(await applyRouteChanges(nl, written, new Map([['10.244.3.0/24', via(3, 2)], ['10.244.9.0/24', via(9)]]))).toBeUndefined();
    expect(nl.writeLog()).toEqual([]);
  });

  it('moves a route to another recorded nexthop in place (replace), keeping it Twill\'s', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    nl.clearWrites();
    expect(await applyRouteChanges(nl, written, new Map([['10.244.2.0/24', via(2, 3)]]))).toMatchObject({ replaced: 1, nexthopsUnused: false });
    expect(nl.writeLog().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['route.replace 10.244.2.0/24']);
    expect(await table(nl)).toEqual(['10.244.2.0/24 via 198.18.0.3 proto 84', '10.244.3.0/24 via 198.18.0.3 proto 84']);
  });

  it('never writes over a route of another owner: a new destination it holds is refused (exclusive add)', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2)], written);
    nl.kernel.routes.add({ ...via(4, 7), protocol: 4 });
    const result = await applyRouteChanges(nl, written, new Map([['10.244.4.0/24', via(4, 2)]]));
    expect(result?.refused).toEqual([{ subnet: '10.244.4.0/24', reason: expect.stringContaining('another owner') as string, code: 'foreign_route' }]);
    expect(result?.replaced).toBe(0);
    expect(written.route('10.244.4.0/24')).toBeUndefined();
    expect(await table(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2 proto 84', '10.244.4.0/24 via 198.18.0.7 proto 4']);
  });

  it('a route another owner put in place of Twill\'s (the kernel\'s notification) is forgotten, so no later change replaces it', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    // `ip route replace 10.244.3.0/24 via 198.18.0.7 proto static`: RTM_NEWROUTE, no RTM_DELROUTE.
    await nl.deleteRoute({ dst: '10.244.3.0/24' });
    nl.kernel.routes.add({ ...via(3, 7), protocol: 4 });
    const taken = { kind: 'foreign-route' as const, route: { dst: '10.244.3.0/24', protocol: 4, table: RT_TABLE_MAIN } as Route };
    expect(written.holds(taken)).toBe(true);
    nl.clearWrites();
    // Not written again: counted as failed, so the reconciler's full resync refuses it with its reason.
    expect(await repairDeletions(nl, written, [taken])).toEqual({ written: 0, failed: 1, entries: [] });
    expect(nl.writeLog()).toEqual([]);
    expect(written.holds(taken)).toBe(false);
    const result = await applyRouteChanges(nl, written, new Map([['10.244.3.0/24', via(3, 2)]]));
    expect(result?.refused.map((r) => r.subnet)).toEqual(['10.244.3.0/24']);
    expect(await table(nl)).toContain('10.244.3.0/24 via 198.18.0.7 proto 4');
  });

  it('a write the kernel refuses is reported and forgotten; the removal of a route already gone counts as done', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    nl.fail('route.add', 'ENOMEM', { times: 1 });
    await nl.deleteRoute({ dst: '10.244.3.0/24' }); // gone before its notification was handled
    const result = await applyRouteChanges(nl, written, new Map([['10.244.4.0/24', via(4, 2)], ['10.244.3.0/24', undefined]]));
    expect(result?.failed.map((f) => `${f.dst} ${f.write} ${f.error.message}`)).toEqual([expect.stringMatching(/^10\.244\.4\.0\/24 true .*ENOMEM/)]);
    expect(result?.deleted).toBe(0);
    expect(written.route('10.244.4.0/24')).toBeUndefined();
    expect(written.route('10.244.3.0/24')).toBeUndefined();
  });

  it('on a kernel without nexthop objects, writes plain routes', async () => {
    const { nl, via } = host({ nexthops: false });
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2)], written);
    expect(await applyRouteChanges(nl, written, new Map([['10.244.9.0/24', via(9)]]))).toMatchObject({ replaced: 1 });
    expect(await table(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2 proto 84', '10.244.9.0/24 via 198.18.0.9 proto 84']);
  });
});
