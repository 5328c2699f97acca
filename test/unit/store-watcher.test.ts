/**
 * LeaseWatcher's rules, driven by a fake source (no etcd): snapshot, event application (unchanged
 * puts silent, removals carry the cached record, malformed puts keep the last good value),
 * restart with re-list, backoff and resync diff, close. The same rules against a real etcd are in
 * test/integration/store-etcd.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/errors.js';
import { keyLayout } from '../../src/store/keys.js';
import { encodeLease } from '../../src/store/lease-codec.js';
import { diffLeases } from '../../src/store/lease-set.js';
import { LeaseWatcher, type LeaseWatchSource, type WatchEvent, type WatchStreamHandlers } from '../../src/store/lease-watcher.js';
import type { LeaseListing, LeaseRecord, LeaseSetChange, MalformedLease, SubnetLease } from '../../src/store/types.js';

const layout = keyLayout();
const keyOf = (name: string): string => layout.subnetsPrefix + name;
const rec = (ip: string, mac = '02:00:00:00:00:01'): LeaseRecord => ({ publicIp: ip, publicIpv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });
const lease = (name: string, subnet: string, ip: string, rev: string, leaseId: string | undefined = '100'): SubnetLease =>
  ({ subnet, key: keyOf(name), record: rec(ip), etcdLeaseId: leaseId, expiresAt: undefined, modRevision: rev, createRevision: rev });
const put = (name: string, value: string | LeaseRecord, rev: string, leaseId = '100'): WatchEvent =>
  ({ type: 'put', kv: { key: keyOf(name), value: typeof value === 'string' ? value : encodeLease(value), lease: leaseId, modRevision: rev, createRevision: rev } });
/** The subnets a lease map holds (keyed by etcd key), sorted. */
const held = (m: ReadonlyMap<string, SubnetLease>): string[] => [...m.values()].map((l) => l.subnet).sort();
const del = (name: string, rev: string): WatchEvent => ({ type: 'delete', key: keyOf(name), modRevision: rev });

interface FakeStream { from: string; handlers: WatchStreamHandlers; closed: boolean }

class FakeSource implements LeaseWatchSource {
  readonly layout = layout;
  readonly streams: FakeStream[] = [];
  /** What the next list() calls return (an Error is thrown); the last one repeats. */
  results: (LeaseListing | Error)[] = [];
  lists = 0;

  list(): Promise<LeaseListing> {
    this.lists++;
    const next = this.results.length > 1 ? this.results.shift()! : this.results[0]!;
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }

  watch(from: string, handlers: WatchStreamHandlers): { close(): Promise<void> } {
    const s: FakeStream = { from, handlers, closed: false };
    this.streams.push(s);
    return { close: () => { s.closed = true; return Promise.resolve(); } };
  }

  get stream(): FakeStream { return this.streams.at(-1)!; }
}

function record(w: LeaseWatcher): { changes: LeaseSetChange[]; malformed: MalformedLease[]; other: string[] } {
  const out = { changes: [] as LeaseSetChange[], malformed: [] as MalformedLease[], other: [] as string[] };
  w.on('change', (c) => out.changes.push(c));
  w.on('malformed', (m) => out.malformed.push(m));
  w.on('disconnected', (e) => out.other.push(`disconnected ${e.code}`));
  w.on('reconnected', () => out.other.push('reconnected'));
  w.on('restart', (reason, e) => out.other.push(`restart ${e.code} ${reason}`));
  w.on('listFailed', (f) => out.other.push(`listFailed ${f.attempt} ${f.error.code}`));
  return out;
}

const subnets = (ls: readonly SubnetLease[]): string[] => ls.map((l) => l.subnet);
const fast = { backoff: { initialMs: 1, maxMs: 4 } };

describe('LeaseWatcher', () => {
  it('starts with a snapshot, reports malformed entries, and watches from the next revision', async () => {
    const src = new FakeSource();
    src.results = [{ leases: [lease('10.244.1.0-24', '10.244.1.0/24', '198.18.0.1', '5')], malformed: [{ key: keyOf('junk'), reason: 'bad' }], revision: '9' }];
    const w = new LeaseWatcher(src, fast);
    const seen = record(w);
    const snap = await w.ready();
    expect([...snap.keys()]).toEqual([keyOf('10.244.1.0-24')]);
    expect(seen.changes).toHaveLength(1);
    expect(seen.changes[0]).toMatchObject({ cause: 'snapshot', removed: [], updated: [] });
    expect(subnets(seen.changes[0]!.added)).toEqual(['10.244.1.0/24']);
    expect(seen.malformed).toEqual([{ key: keyOf('junk'), reason: 'bad' }]);
    expect(src.stream.from).toBe('10');
    await w.close();
    expect(src.stream.closed).toBe(true);
  });

  it('applies events: adds, silent same-value puts, updates, removals with the cached record', async () => {
    const src = new FakeSource();
    src.results = [{ leases: [lease('10.244.1.0-24', '10.244.1.0/24', '198.18.0.1', '5')], malformed: [], revision: '9' }];
    const w = new LeaseWatcher(src, fast);
    const seen = record(w);
    await w.ready();
    const h = src.stream.handlers;

    h.onEvents([put('10.244.2.0-24', rec('198.18.0.2'), '10')]);
    expect(seen.changes.at(-1)).toMatchObject({ cause: 'event', removed: [], updated: [] });
    expect(subnets(seen.changes.at(-1)!.added)).toEqual(['10.244.2.0/24']);
    expect(held(seen.changes.at(-1)!.leases)).toEqual(['10.244.1.0/24', '10.244.2.0/24']);

    // Same value, new etcd lease (a restarted agent took its subnet back): nothing to report,
    // but the cached modRevision and lease ID move on (a later CAS needs them).
    const before = seen.changes.length;
    h.onEvents([put('10.244.1.0-24', rec('198.18.0.1'), '11', '200')]);
    expect(seen.changes).toHaveLength(before);
    expect(w.current().get(keyOf('10.244.1.0-24'))).toMatchObject({ modRevision: '11', etcdLeaseId: '200' });

    h.onEvents([put('10.244.1.0-24', rec('198.18.0.1', '02:00:00:00:00:99'), '12')]);
    expect(subnets(seen.changes.at(-1)!.updated)).toEqual(['10.244.1.0/24']);

    h.onEvents([del('10.244.2.0-24', '13')]);
    const removal = seen.changes.at(-1)!;
    expect(removal.removed).toHaveLength(1);
    expect(removal.removed[0]!.record.publicIp).toBe('198.18.0.2');
    expect(removal.leases.has(keyOf('10.244.2.0-24'))).toBe(false);

    // A batch is reported by its net effect: put + delete of a new subnet is no change.
    const n = seen.changes.length;
    h.onEvents([put('10.244.3.0-24', rec('198.18.0.3'), '14'), del('10.244.3.0-24', '15')]);
    expect(seen.changes).toHaveLength(n);
    await w.close();
  });

  it('skips malformed puts, keeping the last good value, and ignores deletes of unknown keys', async () => {
    const src = new FakeSource();
    src.results = [{ leases: [lease('10.244.1.0-24', '10.244.1.0/24', '198.18.0.1', '5')], malformed: [], revision: '9' }];
    const w = new LeaseWatcher(src, fast);
    const seen = record(w);
    await w.ready();
    const h = src.stream.handlers;
    const n = seen.changes.length;
    h.onEvents([put('10.244.1.0-24', 'garbage', '10'), put('not-a-subnet', rec('198.18.0.9'), '11'), del('10.244.9.0-24', '12'), del('junk', '13')]);
    expect(seen.changes).toHaveLength(n);
    expect(seen.malformed.map((m) => m.key)).toEqual([keyOf('10.244.1.0-24'), keyOf('not-a-subnet')]);
    expect(seen.malformed[0]!.reason).toMatch(/not JSON/);
    expect(w.current().get(keyOf('10.244.1.0-24'))?.record.publicIp).toBe('198.18.0.1');
    // Later valid events still arrive.
    h.onEvents([put('10.244.4.0-24', rec('198.18.0.4'), '14')]);
    expect(subnets(seen.changes.at(-1)!.added)).toEqual(['10.244.4.0/24']);
    // A dual-stack key of the same subnet is a lease of its own (which of the two is routed is
    // decided above the store), and deleting one key leaves the other.
    h.onEvents([put('10.244.4.0-24&fc00::-64', rec('198.18.0.5'), '15')]);
    expect(held(w.current())).toEqual(['10.244.1.0/24', '10.244.4.0/24', '10.244.4.0/24']);
    h.onEvents([del('10.244.4.0-24&fc00::-64', '16')]);
    expect([...w.current().keys()].sort()).toEqual([keyOf('10.244.1.0-24'), keyOf('10.244.4.0-24')]);
    await w.close();
  });

  it('passes disconnects and reconnects through', async () => {
    const src = new FakeSource();
    src.results = [{ leases: [], malformed: [], revision: '1' }];
    const w = new LeaseWatcher(src, fast);
    const seen = record(w);
    await w.ready();
    src.stream.handlers.onDisconnected(new StoreError('ESTORE_UNAVAILABLE', 'down', { op: 'watchLeases' }));
    src.stream.handlers.onReconnected();
    expect(seen.other).toEqual(['disconnected ESTORE_UNAVAILABLE', 'reconnected']);
    expect(src.lists).toBe(1);
    await w.close();
  });

  it('restarts after a failed stream: re-lists with backoff until it works, then reports a resync diff', async () => {
    const src = new FakeSource();
    const a = lease('10.244.1.0-24', '10.244.1.0/24', '198.18.0.1', '5');
    const b = lease('10.244.2.0-24', '10.244.2.0/24', '198.18.0.2', '6');
    src.results = [{ leases: [a, b], malformed: [], revision: '9' }];
    const w = new LeaseWatcher(src, fast);
    const seen = record(w);
    await w.ready();
    const first = src.stream;

    const down = new StoreError('ESTORE_UNAVAILABLE', 'down', { op: 'watchLeases' });
    const c = lease('10.244.3.0-24', '10.244.3.0/24', '198.18.0.3', '20');
    const b2: SubnetLease = { ...b, record: rec('198.18.0.2', '02:00:00:00:00:22'), modRevision: '21' };
    src.results = [down, down, { leases: [b2, c], malformed: [], revision: '30' }];
    const resynced = new Promise<LeaseSetChange>((resolve) => w.on('change', (ch) => { if (ch.cause === 'resync') resolve(ch); }));
    first.handlers.onFailed(new StoreError('ESTORE_COMPACTED', 'watch canceled by etcd (compacted)', { op: 'watchLeases' }));
    const change = await resynced;

    expect(seen.other).toEqual(['restart ESTORE_COMPACTED watch canceled by etcd (compacted)', 'listFailed 1 ESTORE_UNAVAILABLE', 'listFailed 2 ESTORE_UNAVAILABLE']);
    expect(first.closed).toBe(true);
    expect(src.stream).not.toBe(first);
    expect(src.stream.from).toBe('31');
    expect(subnets(change.added)).toEqual(['10.244.3.0/24']);
    expect(subnets(change.updated)).toEqual(['10.244.2.0/24']);
    expect(change.removed).toEqual([a]);
    expect(held(change.leases)).toEqual(['10.244.2.0/24', '10.244.3.0/24']);

    // The old stream is dead to the watcher.
    const n = seen.changes.length;
    first.handlers.onEvents([put('10.244.7.0-24', rec('198.18.0.7'), '32')]);
    expect(seen.changes).toHaveLength(n);
    await w.close();
  });

  it('emits nothing after close, and rejects ready() when closed before the first snapshot', async () => {
    const src = new FakeSource();
    src.results = [new StoreError('ESTORE_UNAVAILABLE', 'down', { op: 'watchLeases' })];
    let closedCalls = 0;
    const w = new LeaseWatcher(src, { ...fast, onClose: () => closedCalls++ });
    const seen = record(w);
    await new Promise((r) => setTimeout(r, 30));
    expect(seen.other.length).toBeGreaterThan(1);
    await w.close();
    await w.close();
    expect(closedCalls).toBe(1);
    await expect(w.ready()).rejects.toMatchObject({ code: 'ESTORE_CLOSED' });
    const lists = src.lists;
    const events = seen.other.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(src.lists).toBe(lists);
    expect(seen.other).toHaveLength(events);
  });
});

describe('diffLeases', () => {
  it('reports added, removed (old record) and changed, sorted, ignoring same-value rewrites', () => {
    const a = lease('10.244.1.0-24', '10.244.1.0/24', '198.18.0.1', '5');
    const b = lease('10.244.2.0-24', '10.244.2.0/24', '198.18.0.2', '6');
    const c = lease('10.244.3.0-24', '10.244.3.0/24', '198.18.0.3', '7');
    const before = new Map([[a.key, a], [b.key, b]]);
    const after = new Map([[c.key, c], [a.key, { ...a, modRevision: '9', etcdLeaseId: '7' }], [b.key, { ...b, record: rec('198.18.0.22') }]]);
    const d = diffLeases(before, after);
    expect(subnets(d.added)).toEqual(['10.244.3.0/24']);
    expect(subnets(d.updated)).toEqual(['10.244.2.0/24']);
    expect(d.removed).toEqual([]);
    expect(diffLeases(after, new Map()).removed.map((l) => l.record.publicIp)).toEqual(['198.18.0.1', '198.18.0.22', '198.18.0.3']);
  });
});
