/**
 * Lease screening (issue 13 items 1 and 4): which leases a host may route when anyone can write
 * under subnets/. Every case here was programmed by the old agent and steered traffic.
 */
import { describe, expect, it } from 'vitest';
import { broadcastAddresses, LeaseScreen, screenLeases, type ScreenContext } from '../../src/agent/lease-screen.js';
import { parseIpv4Prefix } from '../../src/ipam/ipv4.js';
import { parseIpv6Prefix } from '../../src/ipam/ipv6.js';
import type { SubnetLease } from '../../src/store/types.js';

const PREFIX = '/coreos.com/network/subnets/';
let revision = 100;

/** A lease as the store yields it: `name` is the key name, revisions grow with each call unless given. */
function lease(name: string, publicIp: string, createRevision = String(revision++)): SubnetLease {
  const [v4 = ''] = name.split('&');
  const dash = v4.lastIndexOf('-');
  return {
    subnet: `${v4.slice(0, dash)}/${v4.slice(dash + 1)}`, key: PREFIX + name,
    record: { publicIp, publicIpv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } },
    etcdLeaseId: '7', expiresAt: undefined, modRevision: createRevision, createRevision,
  };
}

const ctx = (own?: SubnetLease): ScreenContext => ({
  network: parseIpv4Prefix('10.244.0.0/16', 'n'),
  subnetLen: 24,
  own: own && { key: own.key, subnet: parseIpv4Prefix(own.subnet, 'own') },
  localAddresses: ['198.18.0.1'],
  broadcastAddresses: broadcastAddresses(['198.18.0.1/24']),
});

const keysOf = (ls: readonly SubnetLease[]): string[] => ls.map((l) => l.key.slice(PREFIX.length));

describe('screenLeases', () => {
  it('routes well-formed leases of other hosts, and never the own lease', () => {
    const own = lease('10.244.1.0-24', '198.18.0.1');
    const r = screenLeases([own, lease('10.244.2.0-24', '198.18.0.2'), lease('10.244.3.0-24', '198.18.0.3')], ctx(own));
    expect(keysOf(r.accepted)).toEqual(['10.244.2.0-24', '10.244.3.0-24']);
    expect(r.rejected).toEqual([]);
  });

  it('refuses prefixes of another length: part of a /24, a /32, the whole network', () => {
    const own = lease('10.244.11.0-24', '198.18.0.1');
    const r = screenLeases([
      own,
      lease('10.244.12.0-24', '198.18.0.2'),
      lease('10.244.12.128-25', '198.18.0.66'), // part of another host's /24
      lease('10.244.11.128-25', '198.18.0.66'), // part of this host's own
      lease('10.244.12.7-32', '198.18.0.66'),
      lease('10.244.0.0-16', '198.18.0.66'),
      lease('10.0.0.0-8', '198.18.0.66'),
    ], ctx(own));
    expect(keysOf(r.accepted)).toEqual(['10.244.12.0-24']);
    expect(r.rejected.map((x) => [x.key.slice(PREFIX.length), x.reason])).toEqual([
      ['10.244.12.128-25', 'wrong_prefix_length'],
      ['10.244.11.128-25', 'wrong_prefix_length'],
      ['10.244.12.7-32', 'wrong_prefix_length'],
      ['10.244.0.0-16', 'wrong_prefix_length'],
      ['10.0.0.0-8', 'wrong_prefix_length'],
    ]);
    expect(r.rejected[0]!.detail).toBe('10.244.12.128/25 is not a /24 (the network config\'s SubnetLen)');
  });

  it('refuses a /24 outside the network', () => {
    const r = screenLeases([lease('10.245.1.0-24', '198.18.0.2'), lease('198.18.0.0-24', '198.18.0.2')], ctx());
    expect(r.accepted).toEqual([]);
    expect(r.rejected.map((x) => x.reason)).toEqual(['outside_network', 'outside_network']);
  });

  it('an IPv4-only host routes the IPv4 part of dual-stack leases, and never an IPv6-only one (issue 17)', () => {
    const own = lease('10.244.1.0-24', '198.18.0.1');
    const dual = { ...lease('10.244.20.0-24&fc00:0:0:20::-64', '198.18.0.20'), ipv6Subnet: 'fc00:0:0:20::/64' };
    const withV6 = { ...dual, record: { ...dual.record, publicIpv6: 'fd00::20', backendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:00:20' } } };
    const ipv6Only = { ...lease('0.0.0.0-0&fc00:0:0:21::-64', '0.0.0.0'), ipv6Subnet: 'fc00:0:0:21::/64' };
    const r = screenLeases([own, withV6, ipv6Only], ctx(own));
    expect(keysOf(r.accepted)).toEqual(['10.244.20.0-24&fc00:0:0:20::-64']);
    expect(r.rejected.map((x) => [x.key.slice(PREFIX.length), x.reason])).toEqual([['0.0.0.0-0&fc00:0:0:21::-64', 'wrong_prefix_length']]);
  });

  it('refuses another key for this host\'s own subnet (a dual-stack key, a hostile writer), naming both keys', () => {
    const own = lease('10.244.5.0-24', '198.18.0.1');
    const r = screenLeases([own, lease('10.244.5.0-24&fc00:0:0:5::-64', '198.18.0.66')], ctx(own));
    expect(r.accepted).toEqual([]);
    expect(r.rejected).toEqual([expect.objectContaining({ key: `${PREFIX}10.244.5.0-24&fc00:0:0:5::-64`, reason: 'overlaps_own_subnet', conflictsWith: own.key })]);
  });

  it('between two keys of one subnet the older wins, whatever order they come in, on every host alike', () => {
    const older = lease('10.244.9.0-24&fc00:0:0:9::-64', '198.18.0.9', '50');
    const younger = lease('10.244.9.0-24', '198.18.0.66', '60');
    for (const order of [[older, younger], [younger, older]]) {
      const r = screenLeases(order, ctx());
      expect(keysOf(r.accepted)).toEqual(['10.244.9.0-24&fc00:0:0:9::-64']);
      expect(r.rejected).toEqual([expect.objectContaining({ key: younger.key, reason: 'overlaps_older_lease', conflictsWith: older.key })]);
    }
    // Revisions compare as numbers, not text ("9" < "10").
    const nine = lease('10.244.8.0-24', '198.18.0.8', '9');
    const ten = lease('10.244.8.0-24&fc00::-64', '198.18.0.66', '10');
    expect(keysOf(screenLeases([ten, nine], ctx()).accepted)).toEqual(['10.244.8.0-24']);
    // One transaction can create both: the key name decides, the same way everywhere.
    const a = lease('10.244.7.0-24', '198.18.0.7', '70');
    const b = lease('10.244.7.0-24&fc00::-64', '198.18.0.66', '70');
    expect(keysOf(screenLeases([b, a], ctx()).accepted)).toEqual(['10.244.7.0-24']);
  });

  it('keeps the oldest of three keys of one subnet in any order, and its verdicts across syncs', () => {
    const keys = [lease('10.244.6.0-24&fc00::1:0-112', '198.18.0.61', '33'), lease('10.244.6.0-24', '198.18.0.6', '31'), lease('10.244.6.0-24&fc00::-64', '198.18.0.62', '32')];
    const screen = new LeaseScreen(ctx());
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]]) {
      const r = screen.screen(order.map((i) => keys[i]!), undefined);
      expect(keysOf(r.accepted)).toEqual(['10.244.6.0-24']);
      expect(r.rejected.map((x) => [x.key.slice(PREFIX.length), x.conflictsWith?.slice(PREFIX.length)]).sort()).toEqual([
        ['10.244.6.0-24&fc00::-64', '10.244.6.0-24'], ['10.244.6.0-24&fc00::1:0-112', '10.244.6.0-24'],
      ]);
    }
    // The host's own subnet changes between syncs (a new lease): the cached verdicts follow it.
    const own = { key: keys[1]!.key, subnet: parseIpv4Prefix('10.244.6.0/24', 'own') };
    expect(screen.screen(keys, own).rejected.map((x) => x.reason)).toEqual(['overlaps_own_subnet', 'overlaps_own_subnet']);
  });

  it('refuses PublicIPs that are no tunnel endpoint, and this host\'s own', () => {
    const cases: [string, RegExp][] = [
      ['127.0.0.1', /loopback/],
      ['0.0.0.0', /"this network"/],
      ['255.255.255.255', /reserved range .* broadcast/],
      ['224.0.0.5', /multicast/],
      ['239.255.255.250', /multicast/],
      ['169.254.1.1', /link-local/],
      ['198.18.0.255', /broadcast address of this host's external network/],
      ['10.244.77.1', /inside the cluster network/],
    ];
    let third = 20;
    for (const [ip, detail] of cases) {
      const r = screenLeases([lease(`10.244.${third++}.0-24`, ip)], ctx());
      expect(r.accepted, ip).toEqual([]);
      expect(r.rejected[0], ip).toMatchObject({ reason: 'public_ip_unusable', detail: expect.stringMatching(detail) as string });
    }
    const self = screenLeases([lease('10.244.30.0-24', '198.18.0.1')], ctx());
    expect(self.rejected[0]).toMatchObject({ reason: 'public_ip_is_local', detail: 'PublicIP 198.18.0.1 is this host\'s own address' });
  });

  it('keeps a subnet with its oldest key even when that key\'s PublicIP is unusable', () => {
    // Otherwise a younger key could win the subnet just by pairing it with a good address.
    const bad = lease('10.244.40.0-24', '127.0.0.1', '10');
    const younger = lease('10.244.40.0-24&fc00::-64', '198.18.0.66', '11');
    const r = screenLeases([younger, bad], ctx());
    expect(r.accepted).toEqual([]);
    expect(r.rejected.map((x) => x.reason).sort()).toEqual(['overlaps_older_lease', 'public_ip_unusable']);
  });
});

describe('screenLeases, IPv6 (one screen per family)', () => {
  /** A dual-stack lease: `name` is "<v4>-<len>&<v6>-<len>". */
  const lease6 = (name: string, publicIpv6: string | null, createRevision = String(revision++)): SubnetLease => {
    const base = lease(name, '198.18.0.9', createRevision);
    const v6 = name.split('&')[1];
    const dash = v6?.lastIndexOf('-') ?? -1;
    return { ...base, ipv6Subnet: v6 && `${v6.slice(0, dash)}/${v6.slice(dash + 1)}`, record: { ...base.record, publicIpv6 } };
  };
  const ctx6 = (own?: SubnetLease): ScreenContext => ({
    family: 6,
    network: parseIpv6Prefix('fc00::/48', 'n'),
    subnetLen: 64,
    own: own && { key: own.key, subnet: own.ipv6Subnet === undefined ? undefined : parseIpv6Prefix(own.ipv6Subnet, 'own') },
    localAddresses: ['fd00::1'],
  });

  it('routes the IPv6 subnets of other hosts\' dual-stack leases; IPv4-only leases are simply not in it', () => {
    const own = lease6('10.244.1.0-24&fc00:0:0:1::-64', 'fd00::1');
    const r = screenLeases([own, lease6('10.244.2.0-24&fc00:0:0:2::-64', 'fd00::2'), lease('10.244.3.0-24', '198.18.0.3')], ctx6(own));
    expect(keysOf(r.accepted)).toEqual(['10.244.2.0-24&fc00:0:0:2::-64']);
    expect(r.rejected).toEqual([]);
  });

  it('refuses what the IPv4 screen refuses, by the IPv6 fields: length, network, own subnet, older lease, PublicIPv6', () => {
    const own = lease6('10.244.1.0-24&fc00:0:0:1::-64', 'fd00::1');
    const older = lease6('10.244.5.0-24&fc00:0:0:5::-64', 'fd00::5', '1');
    const r = screenLeases([
      own, older,
      lease6('10.244.6.0-24&fc00:0:0:5::-64', 'fd00::6'),        // another host's IPv6 subnet, younger
      lease6('10.244.7.0-24&fc00:0:0:1::-64', 'fd00::7'),        // this host's own IPv6 subnet
      lease6('10.244.8.0-24&fc00:0:0:8::-80', 'fd00::8'),        // not a /64
      lease6('10.244.9.0-24&fc00:1:0:9::-64', 'fd00::9'),        // outside fc00::/48
      lease6('10.244.10.0-24&fc00:0:0:a::-64', null),            // no PublicIPv6
      lease6('10.244.11.0-24&fc00:0:0:b::-64', 'fe80::1'),       // link-local
      lease6('10.244.12.0-24&fc00:0:0:c::-64', 'ff02::1'),       // multicast
      lease6('10.244.13.0-24&fc00:0:0:d::-64', 'fc00:0:0:99::1'), // inside the IPv6 cluster network
      lease6('10.244.14.0-24&fc00:0:0:e::-64', 'fd00::1'),       // this host's address
    ], ctx6(own));
    expect(keysOf(r.accepted)).toEqual(['10.244.5.0-24&fc00:0:0:5::-64']);
    expect(r.rejected.map((x) => [x.key.slice(PREFIX.length).split('&')[1], x.reason, x.subnet])).toEqual([
      ['fc00:0:0:1::-64', 'overlaps_own_subnet', 'fc00:0:0:1::/64'],
      ['fc00:0:0:8::-80', 'wrong_prefix_length', 'fc00:0:0:8::/80'],
      ['fc00:1:0:9::-64', 'outside_network', 'fc00:1:0:9::/64'],
      ['fc00:0:0:5::-64', 'overlaps_older_lease', 'fc00:0:0:5::/64'],
      ['fc00:0:0:a::-64', 'public_ip_unusable', 'fc00:0:0:a::/64'],
      ['fc00:0:0:b::-64', 'public_ip_unusable', 'fc00:0:0:b::/64'],
      ['fc00:0:0:c::-64', 'public_ip_unusable', 'fc00:0:0:c::/64'],
      ['fc00:0:0:d::-64', 'public_ip_unusable', 'fc00:0:0:d::/64'],
      ['fc00:0:0:e::-64', 'public_ip_is_local', 'fc00:0:0:e::/64'],
    ]);
    expect(r.rejected.find((x) => x.reason === 'overlaps_older_lease')?.conflictsWith).toBe(older.key);
  });
});

describe('broadcastAddresses', () => {
  it('gives the directed broadcast of each IPv4 network, none for /31, /32 or IPv6', () => {
    expect(broadcastAddresses(['198.18.0.1/24', '198.19.4.5/22', '198.18.9.1/31', '198.18.9.9/32', 'fd00::1/64'])).toEqual(['198.18.0.255', '198.19.7.255']);
  });
});
