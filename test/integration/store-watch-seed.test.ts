/**
 * A lease watch seeded with the listing the lease acquisition read (issue 18: a start reads every
 * lease once): the first snapshot is that listing, not a second read, and the watch starts right
 * after its revision, so what was written between the listing and the watch still arrives.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';
import { freshPrefix, openStore, rec, sortedSubnets } from './store-fixtures.js';

describe.skipIf(!isRoot || !etcdAvailable())('a seeded lease watch against etcd', () => {
  useCleanup();
  let etcd: Etcd;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  it('takes the seed as its snapshot and receives everything written after the seed\'s revision', async () => {
    const store = openStore(etcd.clientUrl, freshPrefix());
    await store.createLease('10.244.1.0/24', rec('198.18.0.1'), 60);
    const seed = await store.listLeases({ expiry: false });
    // Written after the listing and before the watch starts (the acquisition's own lease, say).
    await store.createLease('10.244.2.0/24', rec('198.18.0.2'), 60);
    // A seed that is not what etcd holds shows that the snapshot was not read again: drop the
    // first lease from it. (A real seed is never edited; this only makes a second read visible.)
    const edited = { ...seed, leases: [] };
    const w = store.watchLeases(edited);
    const first = await w.ready();
    expect([...first.values()].map((l) => l.subnet)).toEqual([]);
    await waitFor(() => sortedSubnets(w.current()).includes('10.244.2.0/24'), { timeoutMs: 5000, what: 'the lease written after the seed' });
    await store.createLease('10.244.3.0/24', rec('198.18.0.3'), 60);
    await waitFor(() => sortedSubnets(w.current()).includes('10.244.3.0/24'), { timeoutMs: 5000, what: 'a later lease' });
    expect(sortedSubnets(w.current())).toEqual(['10.244.2.0/24', '10.244.3.0/24']);
    await w.close();

    // Unseeded, the watch reads etcd: all three.
    const plain = store.watchLeases();
    expect(sortedSubnets(await plain.ready())).toEqual(['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']);
    await plain.close();
  });
});
