/**
 * EtcdSubnetStore against a real etcd (Debian's 3.4): flannel's schema as etcdctl sees it, the
 * create race, compare-and-swap, reservations, renewal and loss, call timeouts, 100 competing
 * stores, TLS with client certificates, password auth. The watcher is in store-watch.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/cleanup.js';
import { etcdAvailable, makeTestPki, startEtcd, type Etcd } from '../helpers/etcd.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep } from '../helpers/wait.js';
import { StoreError } from '../../src/store/errors.js';
import { EtcdSubnetStore } from '../../src/store/subnet-store.js';
import type { StoreOptions, SubnetLease } from '../../src/store/types.js';
import { flannelJson, freshPrefix, hex, picture, rec, openStore } from './store-fixtures.js';

describe.skipIf(!isRoot || !etcdAvailable())('EtcdSubnetStore against etcd', () => {
  useCleanup();
  let etcd: Etcd;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  /** A store on the shared etcd, closed after the test. */
  const open = (prefix: string, extra: Partial<StoreOptions> = {}): EtcdSubnetStore => openStore(etcd.clientUrl, prefix, extra);

  /** etcd's lease IDs, in etcd3's decimal form (etcdctl prints zero-padded hex). */
  async function leaseIds(): Promise<Set<string>> {
    const out = await etcd.etcdctl(['lease', 'list']);
    return new Set(out.split('\n').slice(1).map((l) => l.trim()).filter(Boolean).map((h) => BigInt(`0x${h}`).toString()));
  }

  it('reads and writes the network config as raw text', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    await store.ping();
    expect(await store.getNetworkConfig()).toBeUndefined();
    const text = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
    await store.putNetworkConfig(text);
    expect(await store.getNetworkConfig()).toBe(text);
    expect(await etcd.etcdctl(['get', `${prefix}/config`, '--print-value-only'])).toBe(`${text}\n`);
  });

  it('creates a lease once: flannel-shaped JSON bound to an etcd lease; the loser gets undefined and its lease is revoked', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const before = await leaseIds();
    const a = await store.createLease('10.244.3.0/24', rec('198.18.0.1'), 60);
    const b = await store.createLease('10.244.3.0/24', rec('198.18.0.2'), 60);
    expect(b).toBeUndefined();
    expect(a).toMatchObject({ subnet: '10.244.3.0/24', key: `${prefix}/subnets/10.244.3.0-24`, record: { publicIp: '198.18.0.1', publicIpv6: null } });
    expect(a!.etcdLeaseId).toMatch(/^\d+$/);
    expect(a!.expiresAt! - Date.now()).toBeGreaterThan(55_000);

    const got = await etcd.etcdctl(['get', '--prefix', `${prefix}/subnets`]);
    expect(got).toBe(`${prefix}/subnets/10.244.3.0-24\n${flannelJson('198.18.0.1')}\n`);
    const ttl = await etcd.etcdctl(['lease', 'timetolive', hex(a!.etcdLeaseId), '--keys']);
    expect(ttl).toMatch(/granted with TTL\(60s\)/);
    expect(ttl).toContain(`attached keys([${prefix}/subnets/10.244.3.0-24])`);
    // The loser's granted lease did not linger.
    const added = [...await leaseIds()].filter((id) => !before.has(id));
    expect(added).toEqual([a!.etcdLeaseId]);
  });

  it('lists leases, reservations and malformed keys at one revision, with expiry', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const leased = await store.createLease('10.244.1.0/24', rec('198.18.0.1'), 60);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.2.0-24`, flannelJson('198.18.0.2')]);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.5.52.0-24&fc00::-64`, '{"PublicIP":"198.18.0.3","PublicIPv6":"fc00::1","BackendType":"vxlan","BackendV6Data":{}}']);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.9.0-24`, 'not json']);
    await etcd.etcdctl(['put', `${prefix}/subnets/garbage`, flannelJson('198.18.0.4')]);
    await etcd.etcdctl(['put', `${prefix}/subnetsX`, 'outside the prefix']);

    const listing = await store.listLeases();
    expect(listing.leases.map((l) => l.subnet)).toEqual(['10.244.1.0/24', '10.244.2.0/24', '10.5.52.0/24']);
    const [one, reserved, dual] = listing.leases;
    expect(one).toMatchObject({ etcdLeaseId: leased!.etcdLeaseId, modRevision: leased!.modRevision });
    expect(Math.abs(one!.expiresAt! - (Date.now() + 60_000))).toBeLessThan(2500);
    expect(reserved).toMatchObject({ etcdLeaseId: undefined, expiresAt: undefined, record: { publicIp: '198.18.0.2' } });
    expect(dual!.record).toEqual({ publicIp: '198.18.0.3', publicIpv6: 'fc00::1', backendType: 'vxlan', backendV6Data: {} });
    expect(dual!.ipv6Subnet).toBe('fc00::/64');
    expect(listing.malformed.map((m) => m.key).sort()).toEqual([`${prefix}/subnets/10.244.9.0-24`, `${prefix}/subnets/garbage`]);
    expect(listing.malformed.find((m) => m.key.endsWith('10.244.9.0-24'))!.reason).toMatch(/not JSON/);
    const header = JSON.parse(await etcd.etcdctl(['get', `${prefix}/config`, '-w', 'json'])) as { header: { revision: number } };
    expect(listing.revision).toBe(String(header.header.revision));
  });

  it('refreshLease: compare-and-swap onto a new etcd lease; a stale copy loses; a reservation stays a reservation', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const a = (await store.createLease('10.244.4.0/24', rec('198.18.0.1'), 60))!;
    const b = await store.refreshLease(a, rec('198.18.0.1', '02:00:00:00:00:02'), 60);
    expect(b).toBeDefined();
    expect(b!.etcdLeaseId).not.toBe(a.etcdLeaseId);
    expect(BigInt(b!.modRevision)).toBeGreaterThan(BigInt(a.modRevision));
    expect(await etcd.etcdctl(['lease', 'timetolive', hex(b!.etcdLeaseId), '--keys'])).toContain(`attached keys([${a.key}])`);
    // The old lease is left alone (it might belong to someone else); it just owns nothing now.
    expect(await etcd.etcdctl(['lease', 'timetolive', hex(a.etcdLeaseId), '--keys'])).toMatch(/granted with TTL\(60s\).*attached keys\(\[\]\)/);

    expect(await store.refreshLease(a, rec('198.18.0.9'), 60)).toBeUndefined();
    expect(await etcd.etcdctl(['get', a.key, '--print-value-only'])).toBe(`${flannelJson('198.18.0.1', '02:00:00:00:00:02')}\n`);

    // A reservation: a key without a lease, put by an operator.
    const rkey = `${prefix}/subnets/10.244.5.0-24`;
    await etcd.etcdctl(['put', rkey, flannelJson('198.18.0.5')]);
    const r = (await store.listLeases()).leases.find((l) => l.key === rkey)!;
    expect(r.etcdLeaseId).toBeUndefined();
    const r2 = await store.refreshLease(r, rec('198.18.0.5', '02:00:00:00:00:05'), 60);
    expect(r2).toMatchObject({ etcdLeaseId: undefined, expiresAt: undefined, record: { backendData: { VtepMAC: '02:00:00:00:00:05' } } });
    const kv = JSON.parse(await etcd.etcdctl(['get', rkey, '-w', 'json'])) as { kvs: { lease?: number; value: string }[] };
    expect(kv.kvs[0]!.lease ?? 0).toBe(0);
    expect(Buffer.from(kv.kvs[0]!.value, 'base64').toString()).toBe(flannelJson('198.18.0.5', '02:00:00:00:00:05'));
    expect(await store.renewLease(r2!)).toBe(r2);
  });

  it('renewLease extends the expiry; once the lease is revoked it fails with ESTORE_LEASE_LOST', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const a = (await store.createLease('10.244.6.0/24', rec('198.18.0.1'), 10))!;
    await sleep(1200);
    const renewed = await store.renewLease(a);
    expect(renewed.expiresAt! - a.expiresAt!).toBeGreaterThanOrEqual(1000);
    expect(renewed.etcdLeaseId).toBe(a.etcdLeaseId);
    expect(await etcd.etcdctl(['lease', 'timetolive', hex(a.etcdLeaseId)])).toMatch(/remaining\((9|10)s\)/);

    await etcd.etcdctl(['lease', 'revoke', hex(a.etcdLeaseId)]);
    const err = await store.renewLease(renewed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'ESTORE_LEASE_LOST', recoverable: false });
    expect(await etcd.etcdctl(['get', a.key, '--print-value-only'])).toBe('');
  });

  it('a frozen etcd surfaces as ESTORE_UNAVAILABLE after the call timeout, not a hang', async () => {
    const store = open(freshPrefix(), { callTimeoutMs: 1000 });
    const lease = (await store.createLease('10.244.1.0/24', rec('198.18.0.1'), 60))!;
    await etcd.kill('SIGSTOP');
    try {
      // Unary calls, the TimeToLive fan-out and the keep-alive stream all honour the deadline.
      const calls: [string, () => Promise<unknown>][] = [
        ['ping', () => store.ping()],
        ['listLeases', () => store.listLeases()],
        ['renewLease', () => store.renewLease(lease)],
        ['createLease', () => store.createLease('10.244.2.0/24', rec('198.18.0.2'), 60)],
      ];
      const results = await Promise.all(calls.map(async ([name, call]) => {
        const started = Date.now();
        const err = await call().then(() => undefined, (e: unknown) => e);
        return { name, err, ms: Date.now() - started };
      }));
      for (const r of results) {
        expect(r.err, r.name).toMatchObject({ code: 'ESTORE_UNAVAILABLE', recoverable: true });
        expect(r.ms, r.name).toBeLessThan(2500);
      }
    } finally {
      await etcd.kill('SIGCONT');
    }
    await store.ping();
    expect((await store.renewLease(lease)).expiresAt).toBeGreaterThan(lease.expiresAt!);
  });

  it('100 stores racing for 16 subnets: exactly 16 win, no duplicates, no stray etcd leases', async () => {
    const prefix = freshPrefix();
    const subnets = Array.from({ length: 16 }, (_, i) => `10.245.${i}.0/24`);
    const stores = Array.from({ length: 100 }, () => open(prefix));
    const before = await leaseIds();
    const results = await Promise.all(stores.map((s, i) => s.createLease(subnets[i % 16]!, rec(`198.19.0.${i + 1}`), 60)));
    const winners = results.filter((r): r is SubnetLease => r !== undefined);
    expect(winners).toHaveLength(16);
    expect(new Set(winners.map((l) => l.subnet)).size).toBe(16);
    const listing = await stores[0]!.listLeases();
    expect(picture(listing.leases)).toEqual(picture(winners));
    const added = [...await leaseIds()].filter((id) => !before.has(id)).sort();
    expect(added).toEqual(winners.map((l) => l.etcdLeaseId).sort());
    await Promise.all(stores.map((s) => s.close()));
  });

  it('speaks TLS with client certificates, and says clearly when the CA is wrong', async () => {
    const pki = await makeTestPki(tempDir('pki'));
    const other = await makeTestPki(tempDir('pki-other'), { caName: 'some-other-ca' });
    const tlsEtcd = await startEtcd({ tls: pki.etcdTls({ clientCertAuth: true }) });
    const prefix = freshPrefix();
    const connect = (tls: StoreOptions['tls']): EtcdSubnetStore => {
      const s = EtcdSubnetStore.connect({ endpoints: [tlsEtcd.clientUrl], prefix, tls });
      cleanup.defer('close store', () => s.close());
      return s;
    };

    const good = connect({ caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile });
    await good.ping();
    expect(await good.createLease('10.244.1.0/24', rec('198.18.0.1'), 60)).toBeDefined();
    expect(await tlsEtcd.etcdctl(['get', '--prefix', `${prefix}/subnets`, '--keys-only'])).toContain('10.244.1.0-24');

    const wrongCa = connect({ caFile: other.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile });
    let started = Date.now();
    const e1 = await wrongCa.ping().catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(e1).toBeInstanceOf(StoreError);
    expect(e1).toMatchObject({ code: 'ESTORE_TLS', recoverable: false, message: expect.stringMatching(/TLS handshake .*wrong CA/) as string });

    const noCert = connect({ caFile: pki.caFile });
    started = Date.now();
    const e2 = await noCert.ping().catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(e2).toMatchObject({ code: 'ESTORE_TLS', message: expect.stringMatching(/rejected the client certificate/) as string });

    expect(() => EtcdSubnetStore.connect({ endpoints: [tlsEtcd.clientUrl], prefix, tls: { caFile: '/nonexistent/ca.crt' } }))
      .toThrow(/cannot read the TLS CA file/);
    await tlsEtcd.stop();
  });

  it('authenticates with username and password; a wrong password is ESTORE_AUTH', async () => {
    const authEtcd = await startEtcd();
    await authEtcd.etcdctl(['user', 'add', 'root', '--new-user-password=s3cret']);
    await authEtcd.etcdctl(['auth', 'enable']);
    const prefix = freshPrefix();
    const ok = EtcdSubnetStore.connect({ endpoints: [authEtcd.clientUrl], prefix, username: 'root', password: 's3cret' });
    const bad = EtcdSubnetStore.connect({ endpoints: [authEtcd.clientUrl], prefix, username: 'root', password: 'wrong' });
    const anon = EtcdSubnetStore.connect({ endpoints: [authEtcd.clientUrl], prefix });
    cleanup.defer('close stores', () => Promise.all([ok.close(), bad.close(), anon.close()]).then(() => undefined));
    await ok.putNetworkConfig('{"Network":"10.244.0.0/16"}');
    expect(await ok.getNetworkConfig()).toBe('{"Network":"10.244.0.0/16"}');
    await expect(bad.ping()).rejects.toMatchObject({ code: 'ESTORE_AUTH', recoverable: false });
    await expect(anon.getNetworkConfig()).rejects.toMatchObject({ code: 'ESTORE_AUTH' });
    await authEtcd.stop();
  });

  it('fails calls after close with ESTORE_CLOSED', async () => {
    const store = EtcdSubnetStore.connect({ endpoints: [etcd.clientUrl], prefix: freshPrefix() });
    const w = store.watchLeases();
    await w.ready();
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ code: 'ESTORE_CLOSED' });
    expect(() => store.watchLeases()).toThrow(StoreError);
  });
});
