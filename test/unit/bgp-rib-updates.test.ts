import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { ExportPolicy } from '../../src/bgp/policy/export-policy.js';
import { Rib } from '../../src/bgp/rib/rib.js';
import { LOCAL_ASN, ROUTER_ID, addPeer, announce, attrs, importPolicy, newRib, route, withdraw } from './bgp-rib-fixtures.js';

const P = '10.244.2.0/24';
const Q = '10.244.3.0/24';

describe('Rib.applyUpdate', () => {
  it('reports best changes with the route, the previous one and the peers', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    const first = announce(rib, 'a', [P], attrs([65001, 65009]));
    expect(first.bestChanges).toEqual([{ family: 'ipv4-unicast', prefix: P, route: expect.objectContaining({ prefix: P }), previous: undefined, peerId: 'a', previousPeerId: undefined }]);
    const better = announce(rib, 'b', [P], attrs([65002]));
    expect(better.bestChanges).toMatchObject([{ peerId: 'b', previousPeerId: 'a', previous: first.bestChanges[0]!.route }]);
    // A worse route from a third side changes nothing.
    addPeer(rib, 'c', 65003, 3);
    expect(announce(rib, 'c', [P], attrs([65003, 65009, 65008])).bestChanges).toEqual([]);
    expect(withdraw(rib, 'b', [P]).bestChanges).toMatchObject([{ peerId: 'a', previousPeerId: 'b' }]);
  });

  it('reports refused routes with their reasons, and a refused re-announcement withdraws the accepted one', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1, { importPolicy: importPolicy({ rejectPrefixes: ['10.244.1.0/24'] }) });
    announce(rib, 'a', [P], attrs([65001]));
    const result = rib.applyUpdate('a', {
      announced: [route('0.0.0.0/0', attrs([65001])), route('10.244.1.0/24', attrs([65001])), route(P, attrs([65001, LOCAL_ASN]))],
      withdrawn: [],
    });
    expect(result.rejected.map((r) => [r.route.prefix, r.reason])).toEqual([['0.0.0.0/0', 'default-route'], ['10.244.1.0/24', 'own-prefix'], [P, 'as-loop']]);
    expect(result.bestChanges).toMatchObject([{ prefix: P, route: undefined, peerId: undefined, previousPeerId: 'a' }]);
    expect(result.replacedByRejected).toEqual([{ family: 'ipv4-unicast', prefix: P }]);
    expect([...rib.peerRoutes('a')]).toEqual([]);
    expect(rib.stats().peers[0]!.rejected).toBe(3);
  });

  it('refuses a next hop of the speaker\'s own (router id, the session\'s address, any other of its addresses) or loopback (RFC 4271 §6.3)', () => {
    const rib = new Rib({ asn: LOCAL_ASN, routerId: ROUTER_ID, ownAddresses: new Set(['192.168.9.9']) });
    addPeer(rib, 'a', 65001, 1, { localAddress: '192.168.0.10' });
    const result = rib.applyUpdate('a', {
      announced: ['192.168.0.10', ROUTER_ID, '192.168.9.9', '127.0.0.1', '192.168.0.1'].map((nh, i) => route(`10.244.${i}.0/24`, attrs([65001]), nh)),
      withdrawn: [],
    });
    expect(result.rejected.map((r) => `${r.route.nextHop} ${r.reason}`)).toEqual(['192.168.0.10 own-next-hop', `${ROUTER_ID} own-next-hop`, '192.168.9.9 own-next-hop', '127.0.0.1 loopback-next-hop']);
    expect([...rib.peerRoutes('a')].map((r) => r.nextHop)).toEqual(['192.168.0.1']);
  });

  it('withdrawals go first: a prefix both withdrawn and announced in one UPDATE ends up announced', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    rib.applyUpdate('a', { announced: [route(P, attrs([65001]))], withdrawn: [{ family: 'ipv4-unicast', prefix: P }] });
    expect(rib.bestRoute('ipv4-unicast', P)?.peerId).toBe('a');
    // Withdrawing what was never announced is no change.
    expect(withdraw(rib, 'a', [Q]).bestChanges).toEqual([]);
  });

  it('the same route again, in new objects, is no change (graceful restart and refresh resend everything)', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    announce(rib, 'a', [P, Q], attrs([65001], { communities: [1], largeCommunities: [[1, 2, 3]] }));
    expect(announce(rib, 'a', [P, Q], attrs([65001], { communities: [1], largeCommunities: [[1, 2, 3]] })).bestChanges).toEqual([]);
    expect(announce(rib, 'a', [P], attrs([65001], { communities: [2] })).bestChanges).toHaveLength(1);
    expect(announce(rib, 'a', [Q], attrs([65001], { communities: [1], largeCommunities: [[1, 2, 3]] }), '192.168.0.9').bestChanges).toHaveLength(1);
  });

  it('refuses unknown peers, duplicate peers and an ibgp flag that contradicts the AS', () => {
    const rib = newRib();
    expect(() => announce(rib, 'nobody', [P], attrs([65001]))).toThrow(InvalidArgumentError);
    addPeer(rib, 'a', 65001, 1);
    expect(() => addPeer(rib, 'a', 65001, 1)).toThrow(/already/);
    expect(() => addPeer(rib, 'x', 65001, 5, { ibgp: true })).toThrow(/say eBGP/);
    expect(() => addPeer(rib, 'y', 65001, 6, { routerId: 'fd00::1' })).toThrow(/dotted quad/);
  });

  it('checks our own identity', () => {
    expect(() => new Rib({ asn: 0, routerId: '1.1.1.1' })).toThrow(/local AS/);
    expect(() => new Rib({ asn: 65000, routerId: 'fd00::1' })).toThrow(/router id/);
    expect(() => new Rib({ asn: 65000, routerId: '1.1.1.1', clusterId: 'x' })).toThrow(/cluster id/);
  });
});

describe('max-prefix (Cease/1, RFC 4486)', () => {
  it('accepts up to the limit per family, refuses the rest and says so', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1, { importPolicy: importPolicy({ maxPrefixes: 2 }) });
    const prefixes = ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24'];
    const result = announce(rib, 'a', prefixes, attrs([65001]));
    expect(result.maxPrefixExceeded).toEqual({ family: 'ipv4-unicast', limit: 2 });
    expect(result.rejected.map((r) => [r.route.prefix, r.reason])).toEqual([['10.244.3.0/24', 'max-prefix'], ['10.244.4.0/24', 'max-prefix']]);
    expect(result.bestChanges).toHaveLength(2);
    expect(rib.stats().peers[0]!.received['ipv4-unicast']).toBe(2);
  });

  it('counts accepted routes only: replacements, refused routes and the other family do not count', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1, { importPolicy: importPolicy({ maxPrefixes: 2 }) });
    announce(rib, 'a', ['10.244.1.0/24', '10.244.2.0/24'], attrs([65001]));
    expect(announce(rib, 'a', ['10.244.1.0/24'], attrs([65001], { med: 5 })).maxPrefixExceeded).toBeUndefined();
    expect(announce(rib, 'a', ['192.168.0.0/24', '0.0.0.0/0'], attrs([65001])).maxPrefixExceeded).toBeUndefined();
    expect(announce(rib, 'a', ['fd00:1::/64', 'fd00:2::/64'], attrs([65001]), 'fd00::1').maxPrefixExceeded).toBeUndefined();
    withdraw(rib, 'a', ['10.244.2.0/24']);
    expect(announce(rib, 'a', ['10.244.3.0/24'], attrs([65001])).maxPrefixExceeded).toBeUndefined();
    expect(announce(rib, 'a', ['10.244.4.0/24'], attrs([65001])).maxPrefixExceeded).toEqual({ family: 'ipv4-unicast', limit: 2 });
  });
});

describe('graceful restart: stale routes (RFC 4724 §4.2)', () => {
  it('keeps stale routes, freshens re-announced ones, and sweeps the rest on End-of-RIB', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    announce(rib, 'a', ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'], attrs([65001]));
    announce(rib, 'a', ['fd00:1::/64'], attrs([65001]), 'fd00::1');
    expect(rib.markStale('a')).toBe(4);
    expect(rib.stats().peers[0]!.stale).toBe(4);
    // Still installed while the peer restarts.
    expect(rib.bestRoute('ipv4-unicast', '10.244.1.0/24')?.peerId).toBe('a');
    // The restarted peer sends two of them again (one unchanged, one changed) and withdraws one.
    expect(announce(rib, 'a', ['10.244.1.0/24'], attrs([65001])).bestChanges).toEqual([]);
    expect(announce(rib, 'a', ['10.244.2.0/24'], attrs([65001], { med: 1 })).bestChanges).toHaveLength(1);
    withdraw(rib, 'a', ['fd00:1::/64']);
    const swept = rib.sweepStale('a', 'ipv4-unicast');
    expect(swept.withdrawn).toEqual(['10.244.3.0/24']);
    expect(swept.bestChanges).toMatchObject([{ prefix: '10.244.3.0/24', route: undefined, previousPeerId: 'a' }]);
    expect([...rib.peerRoutes('a')].map((r) => r.prefix).sort()).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    expect(rib.stats().peers[0]!.stale).toBe(0);
    // Sweeping again, or a family never marked, withdraws nothing.
    expect(rib.sweepStale('a', 'ipv4-unicast').withdrawn).toEqual([]);
    expect(rib.sweepStale('a', 'ipv6-unicast').withdrawn).toEqual([]);
  });

  it('marks only the families asked for; the restart timer sweeps everything still stale', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    announce(rib, 'a', ['10.244.1.0/24'], attrs([65001]));
    announce(rib, 'a', ['fd00:1::/64'], attrs([65001]), 'fd00::1');
    expect(rib.markStale('a', ['ipv6-unicast'])).toBe(1);
    expect(rib.sweepStale('a', 'ipv4-unicast').withdrawn).toEqual([]);
    expect(rib.sweepStale('a', 'ipv6-unicast').withdrawn).toEqual(['fd00:1::/64']);
  });
});

describe('Rib.removePeer', () => {
  it('withdraws all its routes and exposes the fallback from another peer', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    announce(rib, 'a', [P, Q], attrs([65001]));
    announce(rib, 'b', [P], attrs([65002, 65009]));
    const changes = rib.removePeer('a');
    expect(changes).toHaveLength(2);
    expect(changes.find((c) => c.prefix === P)).toMatchObject({ peerId: 'b', previousPeerId: 'a', route: { attributes: { asPath: [{ asns: [65002, 65009] }] } } });
    expect(changes.find((c) => c.prefix === Q)).toMatchObject({ route: undefined, peerId: undefined, previousPeerId: 'a' });
    expect(rib.hasPeer('a')).toBe(false);
    expect(rib.stats().best['ipv4-unicast']).toBe(1);
  });
});

describe('Rib.setLocal: declarative local advertisements', () => {
  it('reports what was added, changed and removed; the same list again is no change', () => {
    const rib = newRib();
    const one = rib.setLocal([{ prefix: '10.244.1.0/24' }, { prefix: 'fd00:10:244:1::/64', family: 'ipv6-unicast' }]);
    expect([one.added, one.changed, one.removed]).toEqual([['10.244.1.0/24', 'fd00:10:244:1::/64'], [], []]);
    expect(one.bestChanges.map((c) => [c.prefix, c.peerId, c.route?.nextHop])).toEqual([['10.244.1.0/24', undefined, ''], ['fd00:10:244:1::/64', undefined, '']]);
    const same = rib.setLocal([{ prefix: 'fd00:10:244:1::/64' }, { prefix: '10.244.1.0/24' }]);
    expect([same.added, same.changed, same.removed, same.bestChanges]).toEqual([[], [], [], []]);
    const two = rib.setLocal([{ prefix: '10.244.1.0/24', communities: [100] }, { prefix: '10.244.5.0/24', med: 10 }]);
    expect([two.added, two.changed, two.removed]).toEqual([['10.244.5.0/24'], ['10.244.1.0/24'], ['fd00:10:244:1::/64']]);
    expect(rib.bestRoute('ipv4-unicast', '10.244.1.0/24')!.route.attributes.communities).toEqual([100]);
    expect(rib.stats().local).toBe(2);
  });

  it('a local route shadows a learned one, and removing it falls back to the learned one', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    announce(rib, 'a', [P], attrs([65001]));
    expect(rib.setLocal([{ prefix: P }]).bestChanges).toMatchObject([{ peerId: undefined, previousPeerId: 'a' }]);
    expect(rib.setLocal([]).bestChanges).toMatchObject([{ peerId: 'a', previousPeerId: undefined }]);
  });

  it.each([
    [{ prefix: '10.244.1.1/24' }, /host bits/],
    [{ prefix: 'FD00::/64' }, /not canonical; write fd00::\/64/],
    [{ prefix: '10.244.1.0/24', family: 'ipv6-unicast' as const }, /is ipv4-unicast/],
    [{ prefix: '10.244.1.0/24', nextHop: 'fd00::1' }, /next hop/],
    [{ prefix: '10.244.1.0/24', med: -1 }, /MED/],
    [{ prefix: '10.244.1.0/24', communities: [2 ** 32] }, /community/],
    [{ prefix: '10.244.1.0/24', largeCommunities: [[1, 2] as unknown as [number, number, number]] }, /large community/],
  ])('refuses %j and changes nothing', (bad, reason) => {
    const rib = newRib();
    rib.setLocal([{ prefix: '10.244.9.0/24' }]);
    expect(() => rib.setLocal([{ prefix: '10.244.7.0/24' }, bad])).toThrow(reason);
    expect([...rib.best()].map((b) => b.route.prefix)).toEqual(['10.244.9.0/24']);
  });

  it('refuses a prefix listed twice', () => {
    expect(() => newRib().setLocal([{ prefix: P }, { prefix: P, med: 1 }])).toThrow(/listed twice/);
  });
});

describe('Rib.best and stats', () => {
  it('lists best routes per family with their peers', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1, { exportPolicy: new ExportPolicy() });
    rib.setLocal([{ prefix: '10.244.1.0/24' }]);
    announce(rib, 'a', [P], attrs([65001]));
    announce(rib, 'a', ['fd00:2::/64'], attrs([65001]), 'fd00::1');
    expect([...rib.best('ipv4-unicast')].map((b) => [b.route.prefix, b.peerId])).toEqual([['10.244.1.0/24', undefined], [P, 'a']]);
    expect([...rib.best()].length).toBe(3);
    expect(rib.stats()).toEqual({
      local: 1,
      best: { 'ipv4-unicast': 2, 'ipv6-unicast': 1 },
      peers: [{ peerId: 'a', received: { 'ipv4-unicast': 1, 'ipv6-unicast': 1 }, stale: 0, rejected: 0, advertised: 0, pendingChanges: 'full' }],
    });
  });
});
