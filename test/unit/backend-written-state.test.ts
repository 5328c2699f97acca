import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runRepairLoop } from '../../src/backends/repair-loop.js';
import { syncRoutes } from '../../src/backends/route-sync.js';
import { repairDeletions, WrittenState } from '../../src/backends/written-state.js';
import { RT_TABLE_MAIN, RTPROT_TWILL, type KernelDeletion, type LinkMonitor, type Route, type RouteSpec } from '../../src/netlink/index.js';
import { FakeNetlink } from '../fakes/netlink.js';

// Event-driven drift repair (issue 18): what a sync wrote is kept by the key a deletion
// notification carries, and only those entries are written again.

const CLUSTER = '10.244.0.0/16';
const log = pino({ level: 'silent' });

function host(): { nl: FakeNetlink; via: (n: number) => RouteSpec } {
  const nl = new FakeNetlink();
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24').index;
  return { nl, via: (n) => ({ dst: `10.244.${n}.0/24`, gateway: `198.18.0.${n}`, oif: eth0 }) };
}

const routeDeleted = (dst: string, protocol = RTPROT_TWILL, table = RT_TABLE_MAIN): KernelDeletion =>
  ({ kind: 'route', route: { dst, protocol, table } as Route });

async function table(nl: FakeNetlink): Promise<string[]> {
  return (await nl.listRoutes({ family: 4 })).filter((r) => r.dst.startsWith('10.244.')).map((r) => `${r.dst} via ${r.gateway ?? '-'} proto ${r.protocol}${r.nexthopId === undefined ? '' : ` nh ${r.nexthopId}`}`).sort();
}

describe('WrittenState and repairDeletions', () => {
  it('writes a deleted route of Twill\'s again, through the nexthop it had, and nothing else', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    const before = await table(nl);
    await nl.deleteRoute({ dst: '10.244.2.0/24' });
    nl.clearWrites();
    const result = await repairDeletions(nl, written, [routeDeleted('10.244.2.0/24')]);
    expect(result).toEqual({ written: 1, failed: 0, entries: ['route 10.244.2.0/24'] });
    expect(await table(nl)).toEqual(before);
    expect(nl.writeLog()).toEqual([expect.stringMatching(/^route\.add 10\.244\.2\.0\/24/)]);
  });

  it('ignores deletions that are not of its entries: another protocol, another table, a route it removed itself', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2), via(3)], written);
    await syncRoutes(nl, CLUSTER, [via(2)], written); // 10.244.3.0/24 leaves: Twill's own removal
    const deletions = [routeDeleted('10.244.3.0/24'), routeDeleted('10.244.2.0/24', 4), routeDeleted('10.244.2.0/24', RTPROT_TWILL, 100)];
    for (const d of deletions) expect(written.holds(d)).toBe(false);
    nl.clearWrites();
    expect(await repairDeletions(nl, written, deletions)).toEqual({ written: 0, failed: 0, entries: [] });
    expect(nl.writeLog()).toEqual([]);
  });

  it('writes a deleted nexthop again with every route the kernel dropped with it', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    // Two routes through one gateway share one nexthop.
    await syncRoutes(nl, CLUSTER, [via(2), { ...via(2), dst: '10.244.9.0/24' }], written);
    const before = await table(nl);
    const [nexthop] = await nl.listNexthops();
    await nl.deleteNexthop(nexthop!.id); // the kernel drops both routes with it
    expect(await table(nl)).toEqual([]);
    const result = await repairDeletions(nl, written, [{ kind: 'nexthop', id: nexthop!.id }]);
    expect(result.failed).toBe(0);
    expect(result.written).toBe(3);
    expect(await table(nl)).toEqual(before);
  });

  it('refuses to write over a route somebody else put in the deleted one\'s place: the write fails and says so', async () => {
    const { nl, via } = host();
    const written = new WrittenState();
    await syncRoutes(nl, CLUSTER, [via(2)], written);
    await nl.deleteRoute({ dst: '10.244.2.0/24' });
    nl.kernel.routes.add({ ...via(2), gateway: '198.18.0.7', protocol: 4 });
    const result = await repairDeletions(nl, written, [routeDeleted('10.244.2.0/24')]);
    expect(result).toMatchObject({ written: 0, failed: 1 });
    expect(await table(nl)).toEqual(['10.244.2.0/24 via 198.18.0.7 proto 4']);
  });

  it('holds vxlan\'s neighbours and FDB entries by device and address, and writes a deleted one again', async () => {
    const { nl } = host();
    await nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472 });
    const dev = (await nl.requireLink('twill.1')).index;
    const written = new WrittenState();
    const neighbour = { index: dev, ip: '10.244.2.0', mac: '0a:00:00:00:00:02' };
    const fdb = { index: dev, mac: '0a:00:00:00:00:02', dst: '198.18.0.2' };
    written.recordOverlay([neighbour], [fdb]);
    const deletions: KernelDeletion[] = [
      { kind: 'neighbour', neighbour: { ...neighbour, state: 0x80, permanent: true } },
      { kind: 'fdb', entry: { ...fdb, permanent: true, self: true, masterIndex: undefined } },
      { kind: 'neighbour', neighbour: { index: dev + 1, ip: '10.244.2.0', mac: undefined, state: 0, permanent: false } }, // another device's
    ];
    expect(deletions.map((d) => written.holds(d))).toEqual([true, true, false]);
    const result = await repairDeletions(nl, written, deletions);
    expect(result).toEqual({ written: 2, failed: 0, entries: [`neighbour 10.244.2.0 on ${dev}`, `fdb 0a:00:00:00:00:02>198.18.0.2 on ${dev}`] });
    expect((await nl.listNeighbours(dev)).map((n) => `${n.ip} ${n.mac}`)).toEqual(['10.244.2.0 0a:00:00:00:00:02']);
    expect((await nl.listFdb(dev)).map((e) => `${e.mac} ${e.dst}`)).toEqual(['0a:00:00:00:00:02 198.18.0.2']);
  });
});

describe('runRepairLoop with deletions', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  function fakeMonitor(): LinkMonitor & { opened: unknown } {
    const m = Object.assign(new EventEmitter(), { opened: undefined as unknown, close() { /* nothing to close */ } });
    return m as unknown as LinkMonitor & { opened: unknown };
  }

  it('asks for deletions, hands over only the backend\'s, batches those that arrive during a repair, and runs no full repair for them', async () => {
    const monitor = fakeMonitor();
    const batches: string[][] = [];
    const full: string[] = [];
    let release!: () => void;
    const ac = new AbortController();
    const loop = runRepairLoop(ac.signal, {
      watchLinks: (options) => { monitor.opened = options; return monitor; }, extIndex: 2, intervalMs: 300_000, log,
      repair: (why) => { full.push(why); return Promise.resolve(); },
      repairDeleted: async (ds) => {
        batches.push(ds.map((d) => (d.kind === 'route' ? d.route.dst : d.kind)));
        if (batches.length === 1) await new Promise<void>((r) => { release = r; });
      },
      ownsDeleted: (d) => d.kind !== 'route' || d.route.protocol === RTPROT_TWILL,
    });
    expect(monitor.opened).toEqual({ deletions: true });
    monitor.emit('deleted', routeDeleted('10.244.2.0/24'));
    await vi.advanceTimersByTimeAsync(0);
    monitor.emit('deleted', routeDeleted('10.244.3.0/24'));
    monitor.emit('deleted', routeDeleted('10.244.4.0/24', 4)); // not the backend's
    monitor.emit('deleted', { kind: 'nexthop', id: 7 });
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toEqual([['10.244.2.0/24'], ['10.244.3.0/24', 'nexthop']]);
    expect(full).toEqual([]);
    monitor.emit('error', new Error('ENOBUFS'));
    await vi.advanceTimersByTimeAsync(0);
    expect(full).toEqual(['kernel notifications lost (ENOBUFS)']);
    ac.abort();
    await loop;
  });
});
