/**
 * LeaseWatcher over a real etcd (Debian's 3.4): expiry seen as a removal with the cached record,
 * malformed values, an etcd outage (killed for 20 s, restarted on the same data), a frozen etcd
 * (noticed by gRPC keepalive), a watch cut off by a fault proxy resuming from its revision, and
 * compaction while cut off (restart + resync).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { EtcdSubnetStore } from '../../src/store/subnet-store.js';
import type { StoreOptions } from '../../src/store/types.js';
import { bySubnet, flannelJson, freshPrefix, picture, rec, recordWatcher, sortedSubnets, openStore } from './store-fixtures.js';
import { startFaultProxy } from './store-proxy.js';

describe.skipIf(!isRoot || !etcdAvailable())('LeaseWatcher against etcd', () => {
  useCleanup();
  let etcd: Etcd;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  /** A store on the shared etcd, closed after the test. */
  const open = (prefix: string, extra: Partial<StoreOptions> = {}): EtcdSubnetStore => openStore(etcd.clientUrl, prefix, extra);

  it('a lease left to expire disappears, and the watcher reports its removal with the cached record', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const w = store.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();
    const a = (await store.createLease('10.244.7.0/24', rec('198.18.0.7'), 2))!;
    await waitFor(() => bySubnet(w.current(), '10.244.7.0/24') !== undefined, { what: 'watcher sees the new lease', timeoutMs: 5000 });
    const started = Date.now();
    const removal = await waitFor(() => seen.changes.find((c) => c.removed.length > 0), { what: 'removal on expiry', timeoutMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(6000);
    expect(removal.cause).toBe('event');
    expect(removal.removed).toHaveLength(1);
    expect(removal.removed[0]).toMatchObject({ subnet: '10.244.7.0/24', key: a.key, record: a.record });
    expect(removal.leases.size).toBe(0);
    expect(seen.log.filter((l) => l.startsWith('change'))).toEqual(['change:snapshot', 'change:event', 'change:event']);
  });

  it('skips malformed values with an event, keeps the last good value, and keeps watching', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.8.0-24`, flannelJson('198.18.0.8')]);
    const w = store.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();
    expect(sortedSubnets(w.current())).toEqual(['10.244.8.0/24']);

    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.9.0-24`, '{"PublicIP":"nope"}']);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.8.0-24`, 'garbage']);
    await waitFor(() => seen.malformed.length >= 2, { what: 'two malformed events' });
    expect(seen.malformed[0]).toMatchObject({ key: `${prefix}/subnets/10.244.9.0-24`, reason: expect.stringMatching(/PublicIP/) as string });
    expect(seen.malformed[1]).toMatchObject({ key: `${prefix}/subnets/10.244.8.0-24`, reason: expect.stringMatching(/not JSON/) as string });
    expect(bySubnet(w.current(), '10.244.8.0/24')?.record.publicIp).toBe('198.18.0.8');

    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.10.0-24`, flannelJson('198.18.0.10')]);
    await waitFor(() => bySubnet(w.current(), '10.244.10.0/24') !== undefined, { what: 'a valid put after the malformed ones' });
    expect(seen.changes.at(-1)!.added.map((l) => l.subnet)).toEqual(['10.244.10.0/24']);
    expect(seen.log).not.toContainEqual(expect.stringMatching(/^restart/));
  });

  it('keeps its state through a 20 s etcd outage, resumes from its revision and loses no event', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const sub = (n: number): string => `${prefix}/subnets/10.244.${n}.0-24`;
    await etcd.etcdctl(['put', sub(1), flannelJson('198.18.1.1')]);
    await etcd.etcdctl(['put', sub(2), flannelJson('198.18.1.2')]);
    const w = store.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();

    // Right before the outage: the watcher may or may not get this before etcd dies.
    await etcd.etcdctl(['put', sub(3), flannelJson('198.18.1.3')]);
    await etcd.kill('SIGKILL');
    const downAt = Date.now();
    await waitFor(() => seen.log.includes('disconnected'), { what: 'disconnected', timeoutMs: 5000 });

    // Down: calls fail fast and recoverably; the watcher keeps what it had.
    const err = await store.ping().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ESTORE_UNAVAILABLE', recoverable: true });
    expect(Date.now() - downAt).toBeLessThan(6000);
    const during = sortedSubnets(w.current());
    expect(during).toEqual(expect.arrayContaining(['10.244.1.0/24', '10.244.2.0/24']));
    await sleep(20_000 - (Date.now() - downAt));
    expect(sortedSubnets(w.current())).toEqual(during);
    expect(seen.changes.filter((c) => c.removed.length > 0)).toEqual([]);

    await etcd.restart();
    // Changes the moment etcd is back, before the watcher has reconnected (its backoff is up to 5 s).
    await etcd.etcdctl(['put', sub(4), flannelJson('198.18.1.4')]);
    await etcd.etcdctl(['del', sub(1)]);
    await etcd.etcdctl(['put', sub(2), flannelJson('198.18.1.2', '02:00:00:00:00:22')]);

    await waitFor(() => seen.log.includes('reconnected'), { what: 'reconnected', timeoutMs: 15_000 });
    await waitFor(() => bySubnet(w.current(), '10.244.4.0/24') !== undefined && bySubnet(w.current(), '10.244.1.0/24') === undefined, { what: 'changes made after the restart', timeoutMs: 5000 });
    const etcdNow = await store.listLeases();
    expect(picture(w.current().values())).toEqual(picture(etcdNow.leases));
    expect(sortedSubnets(w.current())).toEqual(['10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24']);
    expect(bySubnet(w.current(), '10.244.2.0/24')?.record.backendData).toMatchObject({ VtepMAC: '02:00:00:00:00:22' });
    // Delivered as ordinary events by the resumed watch: no re-list was needed.
    expect(seen.log.filter((l) => l.startsWith('restart') || l === 'change:resync')).toEqual([]);
    const removed = seen.changes.flatMap((c) => c.removed);
    expect(removed.map((l) => [l.subnet, l.record.publicIp])).toEqual([['10.244.1.0/24', '198.18.1.1']]);
  });

  it('notices a frozen etcd by gRPC keepalive (10 s + 5 s) and resumes when it thaws', async () => {
    // Without keepalive a frozen or partitioned etcd leaves the watch stream open and silent forever.
    const prefix = freshPrefix();
    const store = open(prefix);
    const w = store.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();
    await sleep(300); // let the watch stream open
    await etcd.kill('SIGSTOP');
    const frozenAt = Date.now();
    try {
      await waitFor(() => seen.log.includes('disconnected'), { what: 'disconnected by keepalive', timeoutMs: 25_000, intervalMs: 200 });
      expect(Date.now() - frozenAt).toBeGreaterThan(9000);
    } finally {
      await etcd.kill('SIGCONT');
    }
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.1.0-24`, flannelJson('198.18.4.1')]);
    await waitFor(() => bySubnet(w.current(), '10.244.1.0/24') !== undefined, { what: 'events after the thaw', timeoutMs: 10_000 });
    expect(seen.log).toEqual(['change:snapshot', 'disconnected', 'reconnected', 'change:event']);
  });

  it('resumes a cut-off watch from its last revision: what changed meanwhile arrives as events', async () => {
    // The outage above cannot guarantee the watcher reconnects only after the changes (etcd
    // restarts and the watcher is back within the same second). A proxy can: etcd stays up,
    // only the watcher's connection is cut while the changes are made.
    const prefix = freshPrefix();
    const proxy = await startFaultProxy(etcd.clientPort);
    const direct = open(prefix);
    const viaProxy = open(prefix, { endpoints: [proxy.url] });
    const a = (await direct.createLease('10.246.0.0/24', rec('198.18.3.1'), 60))!;
    const w = viaProxy.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();

    proxy.cut();
    await waitFor(() => seen.log.includes('disconnected'), { what: 'disconnected', timeoutMs: 5000 });
    await direct.deleteLease(a.subnet);
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => direct.createLease(`10.246.${i + 1}.0/24`, rec(`198.18.3.${i + 2}`), 60)));
    expect(created.every(Boolean)).toBe(true);
    expect(seen.changes).toHaveLength(1); // still only the snapshot
    proxy.restore();

    await waitFor(() => seen.log.includes('reconnected'), { what: 'reconnected', timeoutMs: 10_000 });
    await waitFor(() => w.current().size === 20 && bySubnet(w.current(), a.subnet) === undefined, { what: 'catch-up events', timeoutMs: 5000 });
    expect(seen.log.filter((l) => l.startsWith('restart') || l === 'change:resync')).toEqual([]);
    const events = seen.changes.slice(1);
    expect(events.every((c) => c.cause === 'event')).toBe(true);
    expect(events.flatMap((c) => c.added).map((l) => l.subnet).sort()).toEqual(created.map((l) => l!.subnet).sort());
    expect(events.flatMap((c) => c.removed)).toEqual([expect.objectContaining({ subnet: a.subnet, record: a.record })]);
    expect(picture(w.current().values())).toEqual(picture((await direct.listLeases()).leases));
    await proxy.close();
  });

  it('after compaction while cut off, it restarts and resyncs to exactly what etcd holds', async () => {
    const prefix = freshPrefix();
    const proxy = await startFaultProxy(etcd.clientPort);
    const direct = open(prefix);
    const viaProxy = open(prefix, { endpoints: [proxy.url] });
    const a = (await direct.createLease('10.244.11.0/24', rec('198.18.2.1'), 60))!;
    const b = (await direct.createLease('10.244.12.0/24', rec('198.18.2.2'), 60))!;
    const w = viaProxy.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();
    expect(sortedSubnets(w.current())).toEqual(['10.244.11.0/24', '10.244.12.0/24']);

    proxy.cut();
    await waitFor(() => seen.log.includes('disconnected'), { what: 'disconnected', timeoutMs: 5000 });
    // Behind its back: remove a, change b, add c, add and remove d; then compact it all away.
    await direct.deleteLease(a.subnet);
    expect(await direct.refreshLease(b, rec('198.18.2.2', '02:00:00:00:00:bb'), 60)).toBeDefined();
    await direct.createLease('10.244.13.0/24', rec('198.18.2.3'), 60);
    await direct.createLease('10.244.14.0/24', rec('198.18.2.4'), 60);
    await direct.deleteLease('10.244.14.0/24');
    const rev = (await direct.listLeases()).revision;
    await etcd.etcdctl(['compact', rev]);
    proxy.restore();

    const resync = await waitFor(() => seen.changes.find((c) => c.cause === 'resync'), { what: 'resync', timeoutMs: 15_000 });
    const restart = seen.log.find((l) => l.startsWith('restart:'));
    expect(restart).toMatch(/compacted/);
    expect(seen.log.indexOf(restart!)).toBeLessThan(seen.log.indexOf('change:resync'));
    expect(resync.added.map((l) => l.subnet)).toEqual(['10.244.13.0/24']);
    expect(resync.removed).toEqual([expect.objectContaining({ subnet: '10.244.11.0/24', record: a.record })]);
    expect(resync.updated.map((l) => l.subnet)).toEqual(['10.244.12.0/24']);
    const truth = await direct.listLeases();
    expect(picture(resync.leases.values())).toEqual(picture(truth.leases));
    expect(picture(w.current().values())).toEqual(picture(truth.leases));

    // And it watches again from the new revision.
    await direct.createLease('10.244.15.0/24', rec('198.18.2.5'), 60);
    await waitFor(() => bySubnet(w.current(), '10.244.15.0/24') !== undefined, { what: 'events after the resync' });
    await proxy.close();
  });

});
