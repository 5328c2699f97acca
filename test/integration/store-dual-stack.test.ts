/**
 * Dual-stack leases against a real etcd (issue 17 item 1): flannel's key and JSON as etcdctl sees
 * them, both subnets taken in one transaction, no two keys sharing a subnet of either family (also
 * under a race), renewal, reuse after a restart, IPv6-only leases, and flannel-written dual-stack
 * leases read by an IPv4-only Twill's listing, watch and acquisition without errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { acquireLease, SubnetExhaustedError } from '../../src/agent/lease-acquire.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { parseNetworkConfig } from '../../src/ipam/network-config.js';
import { FLANNEL_SUBNET_REGEX, NO_IPV4_SUBNET } from '../../src/store/index.js';
import type { EtcdSubnetStore } from '../../src/store/subnet-store.js';
import type { LeaseRecord, StoreOptions } from '../../src/store/types.js';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';
import { bySubnet, freshPrefix, hex, openStore, recordWatcher } from './store-fixtures.js';

const registry = registerBuiltins();
const config = (raw: Record<string, unknown>) => parseNetworkConfig({ Backend: { Type: 'alloc' }, ...raw }, registry.parseOptions);
const DUAL = { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' };

/** A dual-stack vxlan record, as flannel writes one. */
const rec6 = (ip: string, ipv6: string): LeaseRecord => ({
  publicIp: ip, publicIpv6: ipv6, backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' }, backendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:00:61' },
});
const json6 = (ip: string, ipv6: string): string =>
  `{"PublicIP":"${ip}","PublicIPv6":"${ipv6}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:61"}}`;

describe.skipIf(!isRoot || !etcdAvailable())('dual-stack leases against etcd', () => {
  useCleanup();
  let etcd: Etcd;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  const open = (prefix: string, extra: Partial<StoreOptions> = {}): EtcdSubnetStore => openStore(etcd.clientUrl, prefix, extra);
  const revision = async (prefix: string): Promise<number> =>
    (JSON.parse(await etcd.etcdctl(['get', `${prefix}/config`, '-w', 'json'])) as { header: { revision: number } }).header.revision;
  /** {key: value} of every key under subnets/, as etcdctl prints them. */
  const keys = async (prefix: string): Promise<Record<string, string>> => {
    const lines = (await etcd.etcdctl(['get', '--prefix', `${prefix}/subnets/`])).split('\n').filter(Boolean);
    return Object.fromEntries(Array.from({ length: lines.length / 2 }, (_, i) => [lines[2 * i]!.slice(`${prefix}/subnets/`.length), lines[2 * i + 1]!]));
  };

  it("takes both subnets in one transaction, under flannel's one key, with flannel's JSON", async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const listing = await store.listLeases({ expiry: false });
    const before = await revision(prefix);
    const lease = await store.createLease('10.244.3.0/24', rec6('198.18.0.1', 'fd00::1'), 60, { ipv6Subnet: 'fc00:0:0:3::/64', freeAsOf: listing.revision });
    // One write: the transaction that created the key (the lease grant does not count as a revision).
    expect(await revision(prefix)).toBe(before + 1);
    expect(lease).toMatchObject({ subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64', key: `${prefix}/subnets/10.244.3.0-24&fc00:0:0:3::-64` });
    expect(await keys(prefix)).toEqual({ '10.244.3.0-24&fc00:0:0:3::-64': json6('198.18.0.1', 'fd00::1') });
    // flannel's subnetRegex reads the full key, as ParseSubnetKey does.
    expect(FLANNEL_SUBNET_REGEX.exec(lease!.key)!.slice(1)).toEqual(['10.244.3.0', '24', 'fc00:0:0:3::', '64']);
    expect(await etcd.etcdctl(['lease', 'timetolive', hex(lease!.etcdLeaseId), '--keys'])).toContain(`attached keys([${lease!.key}])`);
    expect(await store.listLeases()).toMatchObject({ leases: [{ subnet: '10.244.3.0/24', ipv6Subnet: 'fc00:0:0:3::/64', record: rec6('198.18.0.1', 'fd00::1') }], malformed: [] });
  });

  it('never lets two keys share a subnet of either family, whatever the key looks like', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const stale = (await store.listLeases({ expiry: false })).revision;
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.3.0-24&fc00:0:0:3::-64`, json6('198.18.0.3', 'fd00::3')]);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.5.0-24`, '{"PublicIP":"198.18.0.5","PublicIPv6":null,"BackendType":"vxlan"}']);
    const now = (await store.listLeases({ expiry: false })).revision;
    const before = await etcd.etcdctl(['lease', 'list']);
    // The IPv4 subnet of a dual-stack key, from an IPv4-only lease and from another dual-stack one.
    expect(await store.createLease('10.244.3.0/24', rec6('198.18.0.9', 'fd00::9'), 60)).toBeUndefined();
    expect(await store.createLease('10.244.3.0/24', rec6('198.18.0.9', 'fd00::9'), 60, { ipv6Subnet: 'fc00:0:0:9::/64', freeAsOf: now })).toBeUndefined();
    // The IPv4 subnet of a plain key, from a dual-stack lease.
    expect(await store.createLease('10.244.5.0/24', rec6('198.18.0.9', 'fd00::9'), 60, { ipv6Subnet: 'fc00:0:0:9::/64', freeAsOf: now })).toBeUndefined();
    // An IPv6 subnet picked from a listing older than the key that holds it.
    expect(await store.createLease('10.244.9.0/24', rec6('198.18.0.9', 'fd00::9'), 60, { ipv6Subnet: 'fc00:0:0:3::/64', freeAsOf: stale })).toBeUndefined();
    // Every loser's etcd lease was revoked; nothing was written.
    expect(await etcd.etcdctl(['lease', 'list'])).toBe(before);
    expect(Object.keys(await keys(prefix)).sort()).toEqual(['10.244.3.0-24&fc00:0:0:3::-64', '10.244.5.0-24']);
    // The acquirer never picks a held IPv6 subnet: with only fc00:0:0:3:: leasable, there is none.
    const one = config({ ...DUAL, IPv6SubnetMin: 'fc00:0:0:3::', IPv6SubnetMax: 'fc00:0:0:3::' });
    await expect(acquireLease({ store, config: one, record: rec6('198.18.0.9', 'fd00::9'), ttlSeconds: 60 }))
      .rejects.toThrow('no free IPv6 subnet: all 1 subnets fc00:0:0:3::/64..fc00:0:0:3::/64 of fc00::/48 are leased or reserved');
    await expect(acquireLease({ store, config: one, record: rec6('198.18.0.9', 'fd00::9'), ttlSeconds: 60 })).rejects.toBeInstanceOf(SubnetExhaustedError);
  });

  it('30 agents racing for 4 IPv6 subnets: 4 win distinct subnets of both families, the rest report IPv6 exhaustion', async () => {
    const prefix = freshPrefix();
    const cfg = config({ ...DUAL, IPv6Network: 'fc00::/60', IPv6SubnetMin: 'fc00:0:0:1::', IPv6SubnetMax: 'fc00:0:0:4::' });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) =>
      acquireLease({ store: open(prefix), config: cfg, record: rec6(`198.18.1.${i + 1}`, `fd00::1:${i + 1}`), ttlSeconds: 60 })));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    expect(won).toHaveLength(4);
    expect(new Set(won.map((l) => l.ipv6Subnet)).size).toBe(4);
    expect(new Set(won.map((l) => l.subnet)).size).toBe(4);
    for (const err of lost) expect(err.message).toMatch(/^no free IPv6 subnet: all 4 subnets fc00:0:0:1::\/64..fc00:0:0:4::\/64 of fc00::\/60/);
    expect(Object.keys(await keys(prefix)).sort()).toEqual(won.map((l) => l.key.slice(`${prefix}/subnets/`.length)).sort());
  });

  it('renews, and comes back to the same key after a restart: by PublicIP, by PublicIPv6, by the subnet file', async () => {
    const prefix = freshPrefix();
    const cfg = config(DUAL);
    const first = await acquireLease({ store: open(prefix), config: cfg, record: rec6('198.18.0.1', 'fd00::1'), ttlSeconds: 60 });
    expect(first).toMatchObject({ how: 'new', lease: { ipv6Subnet: expect.stringMatching(/^fc00:0:0:[0-9a-f]+::\/64$/) as string } });
    const renewed = await open(prefix).renewLease(first.lease);
    expect(renewed.key).toBe(first.lease.key);

    const byIp = await acquireLease({ store: open(prefix), config: cfg, record: rec6('198.18.0.1', 'fd00::1'), ttlSeconds: 60 });
    expect(byIp).toMatchObject({ how: 'reused', lease: { key: first.lease.key } });
    expect(byIp.notice).toMatch(/carries this host's PublicIP 198\.18\.0\.1; no subnet file names a subnet/);
    // A new IPv4 address, the same IPv6 one: found by PublicIPv6 (flannel would match PublicIP only).
    const byIpv6 = await acquireLease({ store: open(prefix), config: cfg, record: rec6('198.18.0.2', 'fd00::1'), ttlSeconds: 60 });
    expect(byIpv6).toMatchObject({ how: 'reused', lease: { key: first.lease.key, record: { publicIp: '198.18.0.2' } } });
    expect(byIpv6.notice).toMatch(/carries this host's PublicIPv6 fd00::1/);
    // Down past its lease, with both addresses new: the subnet file's FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET.
    await etcd.etcdctl(['lease', 'revoke', hex(byIpv6.lease.etcdLeaseId)]);
    expect(await keys(prefix)).toEqual({});
    const byFile = await acquireLease({
      store: open(prefix), config: cfg, record: rec6('198.18.0.3', 'fd00::3'), ttlSeconds: 60,
      previousSubnet: first.lease.subnet, previousIpv6Subnet: first.lease.ipv6Subnet,
    });
    expect(byFile).toMatchObject({ how: 'previous', lease: { key: first.lease.key } });
    expect(Object.keys(await keys(prefix))).toEqual([first.lease.key.slice(`${prefix}/subnets/`.length)]);
    expect(JSON.parse((await keys(prefix))[first.lease.key.slice(`${prefix}/subnets/`.length)]!)).toMatchObject({ PublicIP: '198.18.0.3', PublicIPv6: 'fd00::3' });

    // The config turns IPv4-only: the dual-stack lease no longer fits (flannel: isIPv6SubnetConfigCompat), and is given up.
    const dropped: string[] = [];
    const v4 = await acquireLease({
      store: open(prefix), config: config({ Network: '10.244.0.0/16' }), record: { publicIp: '198.18.0.3', backendType: 'vxlan', backendData: null }, ttlSeconds: 60,
      previousSubnet: first.lease.subnet, onDropped: (l) => dropped.push(l.key),
    });
    expect(dropped).toEqual([first.lease.key]);
    expect(v4).toMatchObject({ how: 'previous', lease: { subnet: first.lease.subnet, key: `${prefix}/subnets/${first.lease.subnet.replace('/', '-')}` } });
    expect(v4.lease.ipv6Subnet).toBeUndefined();
  });

  it('IPv6-only leases: "0.0.0.0-0&<IPv6>" keys side by side, PublicIP 0.0.0.0, found again by PublicIPv6', async () => {
    const prefix = freshPrefix();
    const cfg = config({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' });
    const record = (ipv6: string): LeaseRecord => ({ publicIp: '0.0.0.0', publicIpv6: ipv6, backendType: 'vxlan', backendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:00:61' } });
    const a = await acquireLease({ store: open(prefix), config: cfg, record: record('fd00::1'), ttlSeconds: 60, random: () => 0 });
    const b = await acquireLease({ store: open(prefix), config: cfg, record: record('fd00::2'), ttlSeconds: 60, random: () => 0 });
    expect(a.lease).toMatchObject({ subnet: NO_IPV4_SUBNET, ipv6Subnet: 'fc00:0:0:1::/64', key: `${prefix}/subnets/0.0.0.0-0&fc00:0:0:1::-64` });
    expect(b.lease).toMatchObject({ subnet: NO_IPV4_SUBNET, ipv6Subnet: 'fc00:0:0:2::/64' });
    expect(await keys(prefix)).toEqual({
      '0.0.0.0-0&fc00:0:0:1::-64': '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:61"}}',
      '0.0.0.0-0&fc00:0:0:2::-64': '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::2","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:61"}}',
    });
    // Not by the shared PublicIP 0.0.0.0 (flannel's would match any IPv6-only lease), by PublicIPv6.
    const again = await acquireLease({ store: open(prefix), config: cfg, record: record('fd00::2'), ttlSeconds: 60 });
    expect(again).toMatchObject({ how: 'reused', lease: { key: b.lease.key } });
  });

  it('an IPv4-only Twill reads flannel-written dual-stack leases: listing, watch and acquisition, without errors', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const w = store.watchLeases();
    const seen = recordWatcher(w);
    await w.ready();
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.0.0-24&fc00:0:0:7::-64`, json6('198.18.0.7', 'fd00::7')]);
    await waitFor(() => bySubnet(w.current(), '10.244.0.0/24') !== undefined, { what: 'the watcher to see the flannel lease' });
    expect(bySubnet(w.current(), '10.244.0.0/24')).toMatchObject({ ipv6Subnet: 'fc00:0:0:7::/64', record: rec6('198.18.0.7', 'fd00::7') });
    // flannel renews its lease with a new VTEP MAC for IPv6: an update; then it goes: a removal with the last record.
    const moved = json6('198.18.0.7', 'fd00::7').replace('02:00:00:00:00:61', '02:00:00:00:00:62');
    await etcd.etcdctl(['put', `${prefix}/subnets/10.244.0.0-24&fc00:0:0:7::-64`, moved]);
    await waitFor(() => seen.changes.some((c) => c.updated.length > 0), { what: 'the update' });
    expect(seen.changes.find((c) => c.updated.length > 0)!.updated[0]!.record.backendV6Data).toEqual({ VNI: 1, VtepMAC: '02:00:00:00:00:62' });

    // An IPv4-only config with two /24s: the flannel lease's IPv4 subnet is taken, the other is ours.
    const v4 = config({ Network: '10.244.0.0/23', SubnetLen: 24, SubnetMin: '10.244.0.0' });
    const mine = await acquireLease({ store, config: v4, record: { publicIp: '198.18.0.1', backendType: 'vxlan', backendData: null }, ttlSeconds: 60 });
    expect(mine.lease).toMatchObject({ subnet: '10.244.1.0/24', key: `${prefix}/subnets/10.244.1.0-24` });
    expect(mine.lease.ipv6Subnet).toBeUndefined();
    await expect(acquireLease({ store, config: v4, record: { publicIp: '198.18.0.2', backendType: 'vxlan', backendData: null }, ttlSeconds: 60 })).rejects.toThrow(SubnetExhaustedError);
    await etcd.etcdctl(['del', `${prefix}/subnets/10.244.0.0-24&fc00:0:0:7::-64`]);
    await waitFor(() => seen.changes.some((c) => c.removed.length > 0), { what: 'the removal' });
    expect(seen.changes.find((c) => c.removed.length > 0)!.removed[0]).toMatchObject({ ipv6Subnet: 'fc00:0:0:7::/64', record: { publicIpv6: 'fd00::7' } });
    expect(seen.malformed).toEqual([]);
  });

  it('counts malformed dual-stack keys and records, keeps what flannel honours taken, and changes none of them', async () => {
    const prefix = freshPrefix();
    const store = open(prefix);
    const bad = {
      '10.244.0.0-24&FC00::-64': json6('198.18.0.1', 'fd00::1'), // flannel's regex does not read it: nothing taken
      '10.244.1.0-24&fc00:0:0:1::5-64': json6('198.18.0.2', 'fd00::2'), // host bits: flannel reads 10.244.1.0/24 and fc00:0:0:1::/64
      '10.244.2.0-24&fc00:0:0:2::-64': '{"PublicIP":"198.18.0.3","PublicIPv6":"fd00::3%eth0","BackendType":"vxlan"}', // bad PublicIPv6
      '10.244.3.0-24&fc00::-64&x': json6('198.18.0.4', 'fd00::4'),
    };
    for (const [name, value] of Object.entries(bad)) await etcd.etcdctl(['put', `${prefix}/subnets/${name}`, value]);
    const listing = await store.listLeases();
    expect(listing.leases).toEqual([]);
    const reasons = Object.fromEntries(listing.malformed.map((m) => [m.key.slice(`${prefix}/subnets/`.length), m]));
    // flannel skips it, but Twill's create would find it: its IPv4 subnet stays taken.
    expect(reasons['10.244.0.0-24&FC00::-64']).toMatchObject({ subnet: '10.244.0.0/24', ipv6Subnet: undefined, reason: expect.stringMatching(/upper-case hex/) as string });
    expect(reasons['10.244.1.0-24&fc00:0:0:1::5-64']).toMatchObject({ subnet: '10.244.1.0/24', ipv6Subnet: 'fc00:0:0:1::/64', reason: expect.stringMatching(/host bits/) as string });
    expect(reasons['10.244.2.0-24&fc00:0:0:2::-64']).toMatchObject({ subnet: '10.244.2.0/24', ipv6Subnet: 'fc00:0:0:2::/64', reason: expect.stringMatching(/PublicIPv6/) as string });
    expect(reasons['10.244.3.0-24&fc00::-64&x']).toMatchObject({ subnet: '10.244.3.0/24', reason: expect.stringMatching(/more than one "&"/) as string });
    // Five /24s and four /64s, of which four and two are taken: the one /24 left is leased; then none is left.
    const cfg = config({ Network: '10.244.0.0/21', SubnetLen: 24, SubnetMin: '10.244.0.0', SubnetMax: '10.244.4.0', EnableIPv6: true, IPv6Network: 'fc00::/62', IPv6SubnetLen: 64, IPv6SubnetMin: 'fc00::' });
    const { lease } = await acquireLease({ store, config: cfg, record: rec6('198.18.1.1', 'fd00::1:1'), ttlSeconds: 60 });
    expect(lease.subnet).toBe('10.244.4.0/24');
    expect(['fc00::/64', 'fc00:0:0:3::/64']).toContain(lease.ipv6Subnet);
    await expect(acquireLease({ store, config: cfg, record: rec6('198.18.1.2', 'fd00::1:2'), ttlSeconds: 60 })).rejects.toThrow(SubnetExhaustedError);
    const after = await keys(prefix);
    for (const [name, value] of Object.entries(bad)) expect(after[name]).toBe(value);
  });
});
