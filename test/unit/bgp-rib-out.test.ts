import { describe, expect, it } from 'vitest';
import { ExportPolicy } from '../../src/bgp/policy/export-policy.js';
import { LOCAL_ASN, ROUTER_ID, addPeer, announce, attrs, newRib, summary, withdraw } from './bgp-rib-fixtures.js';

const P = '10.244.2.0/24';
const Q = '10.244.3.0/24';

describe('Adj-RIB-Out: pendingFor / markSent', () => {
  it('a new peer gets the whole table; after markSent nothing is pending', () => {
    const rib = newRib();
    rib.setLocal([{ prefix: '10.244.1.0/24' }]);
    addPeer(rib, 'a', 65001, 1);
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: { '10.244.1.0/24': `${ROUTER_ID} ${LOCAL_ASN}` }, withdraw: [] });
    rib.markSent('a');
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: [] });
    expect(rib.stats().peers[0]).toMatchObject({ advertised: 1, pendingChanges: 0 });
  });

  it('says whether a peer has anything pending: a new session does, its own routes make nothing pending for it, another peer\'s routes do', () => {
    const rib = newRib();
    addPeer(rib, 'src', 65001, 1);
    addPeer(rib, 'dst', 65002, 2);
    expect([rib.hasPending('src'), rib.hasPending('dst')]).toEqual([true, true]);
    rib.pendingFor('src');
    rib.markSent('src');
    rib.pendingFor('dst');
    rib.markSent('dst');
    expect([rib.hasPending('src'), rib.hasPending('dst')]).toEqual([false, false]);
    announce(rib, 'src', [P], attrs([65001]));
    // Never back to the sender (the speaker skips its flush); the other peer is to be told.
    expect([rib.hasPending('src'), rib.hasPending('dst')]).toEqual([false, true]);
    expect(summary(rib.pendingFor('dst')).announce).toHaveProperty([P]);
    rib.markSent('dst');
    expect(rib.hasPending('dst')).toBe(false);
    withdraw(rib, 'src', [P]);
    expect([rib.hasPending('src'), rib.hasPending('dst')]).toEqual([false, true]);
  });

  it('groups prefixes with identical outgoing attributes, across UPDATEs, so one UPDATE can carry them', () => {
    const rib = newRib();
    addPeer(rib, 'src', 65001, 1);
    addPeer(rib, 'dst', 65002, 2);
    rib.markSent('dst');
    // Two UPDATEs with equal attributes in different objects, and one that differs.
    announce(rib, 'src', ['10.244.1.0/24', '10.244.2.0/24'], attrs([65001], { communities: [7] }));
    announce(rib, 'src', ['10.244.3.0/24'], attrs([65001], { communities: [7] }));
    announce(rib, 'src', ['10.244.4.0/24'], attrs([65001], { communities: [8] }));
    const pending = rib.pendingFor('dst');
    expect([...pending.announce.values()].map((g) => [g.attributes.communities, g.prefixes])).toEqual([
      [[7], ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']],
      [[8], ['10.244.4.0/24']],
    ]);
    expect([...pending.announce.values()][0]).toMatchObject({ family: 'ipv4-unicast', nextHops: [ROUTER_ID] });
  });

  it('a large table in UPDATEs of shared attributes comes out as one group per distinct outgoing form', () => {
    const rib = newRib();
    addPeer(rib, 'src', 65001, 1);
    addPeer(rib, 'dst', 65002, 2);
    const prefixes = Array.from({ length: 5000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    for (let i = 0; i < prefixes.length; i += 500) announce(rib, 'src', prefixes.slice(i, i + 500), attrs([65001], { med: (i / 500) % 2 }));
    const groups = [...rib.pendingFor('dst').announce.values()];
    // MED does not reach eBGP, so all ten UPDATEs look the same on the way out.
    expect(groups.map((g) => g.prefixes.length)).toEqual([5000]);
    rib.markSent('dst');
    expect(rib.stats().peers.find((p) => p.peerId === 'dst')!.advertised).toBe(5000);
  });

  it('withdraws what was sent when the best route goes, per family', () => {
    const rib = newRib();
    addPeer(rib, 'src', 65001, 1);
    addPeer(rib, 'dst', 65002, 2);
    announce(rib, 'src', [P, Q], attrs([65001]));
    announce(rib, 'src', ['fd00:2::/64'], attrs([65001]), 'fd00::1');
    rib.pendingFor('dst');
    rib.markSent('dst');
    withdraw(rib, 'src', [P, 'fd00:2::/64']);
    // An announcement withdrawn before it was ever sent needs no withdrawal.
    announce(rib, 'src', ['10.244.9.0/24'], attrs([65001]));
    withdraw(rib, 'src', ['10.244.9.0/24']);
    const pending = rib.pendingFor('dst');
    expect(pending.announce.size).toBe(0);
    expect([...pending.withdraw]).toEqual([['ipv4-unicast', [P]]]); // IPv6 was never sent: dst has no IPv6 next hop self
  });

  it('changes made between pendingFor and markSent stay pending; pendingFor twice gives the whole difference', () => {
    const rib = newRib();
    addPeer(rib, 'src', 65001, 1);
    addPeer(rib, 'dst', 65002, 2);
    rib.markSent('dst');
    announce(rib, 'src', [P], attrs([65001]));
    expect(Object.keys(summary(rib.pendingFor('dst')).announce)).toEqual([P]);
    announce(rib, 'src', [Q], attrs([65001]));
    expect(Object.keys(summary(rib.pendingFor('dst')).announce)).toEqual([P, Q]);
    announce(rib, 'src', ['10.244.4.0/24'], attrs([65001]));
    rib.markSent('dst'); // sent P and Q, not 10.244.4.0/24
    expect(summary(rib.pendingFor('dst'))).toEqual({ announce: { '10.244.4.0/24': `${ROUTER_ID} ${LOCAL_ASN} 65001` }, withdraw: [] });
  });

  it('never sends a route back to the peer it came from, and withdraws ours when its route wins', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    announce(rib, 'a', [P], attrs([65001, 65009]));
    expect(summary(rib.pendingFor('a')).announce).toEqual({});
    rib.markSent('a');
    expect(summary(rib.pendingFor('b')).announce).toEqual({ [P]: `${ROUTER_ID} ${LOCAL_ASN} 65001 65009` });
    rib.markSent('b');
    // b now has the better path: b gets a withdrawal (its own route is best), a gets b's path.
    announce(rib, 'b', [P], attrs([65002]));
    expect(summary(rib.pendingFor('b'))).toEqual({ announce: {}, withdraw: [P] });
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: { [P]: `${ROUTER_ID} ${LOCAL_ASN} 65002` }, withdraw: [] });
  });

  it('a peer whose own route is best is sent nothing, whatever happens to it, and still gets a withdrawal owed from before', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    rib.markSent('a');
    rib.markSent('b');
    // b's route reaches a, then a's own better route wins: a is owed a withdrawal.
    announce(rib, 'b', [P], attrs([65002, 65009]));
    expect(summary(rib.pendingFor('a')).announce).toEqual({ [P]: `${ROUTER_ID} ${LOCAL_ASN} 65002 65009` });
    rib.markSent('a');
    announce(rib, 'a', [P], attrs([65001]));
    // b withdraws and a changes its route while a's own route stays best: the withdrawal is still owed, once.
    withdraw(rib, 'b', [P]);
    announce(rib, 'a', [P], attrs([65001], { med: 5 }));
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: [P] });
    rib.markSent('a');
    withdraw(rib, 'a', [P]);
    announce(rib, 'a', [P], attrs([65001]));
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: [] });
    expect(summary(rib.pendingFor('b'))).toEqual({ announce: { [P]: `${ROUTER_ID} ${LOCAL_ASN} 65001` }, withdraw: [] });
  });

  it('a withdrawal computed but not yet sent stays right when the peer then announces the prefix itself', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    rib.markSent('a');
    announce(rib, 'b', [P], attrs([65002]));
    rib.pendingFor('a');
    rib.markSent('a');
    withdraw(rib, 'b', [P]);
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: [P] });
    // Before that withdrawal is marked sent, a announces P: still nothing to send a but the withdrawal.
    announce(rib, 'a', [P], attrs([65001]));
    rib.markSent('a');
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: [] });
    expect(rib.stats().peers.find((p) => p.peerId === 'a')!.advertised).toBe(0);
  });

  it('iBGP: a learned route goes to eBGP peers but not to another iBGP peer; eBGP-learned goes to iBGP with its next hop', () => {
    const rib = newRib();
    addPeer(rib, 'i1', LOCAL_ASN, 1);
    addPeer(rib, 'i2', LOCAL_ASN, 2);
    addPeer(rib, 'e', 65003, 3);
    announce(rib, 'i1', [P], attrs([], { localPref: 100 }), '192.168.0.1');
    announce(rib, 'e', [Q], attrs([65003], { med: 4 }), '192.168.0.3');
    const toI2 = rib.pendingFor('i2');
    expect(summary(toI2)).toEqual({ announce: { [Q]: '192.168.0.3 65003' }, withdraw: [] });
    expect([...toI2.announce.values()][0]!.attributes).toMatchObject({ localPref: 100, med: 4, nextHop: '192.168.0.3' });
    const toE = rib.pendingFor('e');
    expect(summary(toE)).toEqual({ announce: { [P]: `${ROUTER_ID} ${LOCAL_ASN}` }, withdraw: [] });
    expect([...toE.announce.values()][0]!.attributes.localPref).toBeUndefined();
  });

  it('eBGP: a MED learned from one AS is not passed to another', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    announce(rib, 'a', [P], attrs([65001], { med: 30 }));
    expect([...rib.pendingFor('b').announce.values()][0]!.attributes.med).toBeUndefined();
  });

  it('only the negotiated families, each with its own next hop self', () => {
    const rib = newRib();
    rib.setLocal([{ prefix: '10.244.1.0/24' }, { prefix: 'fd00:10:244:1::/64' }]);
    addPeer(rib, 'v4', 65001, 1, { families: ['ipv4-unicast'] });
    addPeer(rib, 'dual', 65002, 2, { exportPolicy: new ExportPolicy({ nextHopSelf: { ipv6: 'fd00::100' } }) });
    expect(Object.keys(summary(rib.pendingFor('v4')).announce)).toEqual(['10.244.1.0/24']);
    const dual = rib.pendingFor('dual');
    expect([...dual.announce.values()].map((g) => [g.family, g.nextHops, g.attributes.nextHop])).toEqual([
      ['ipv4-unicast', [ROUTER_ID], ROUTER_ID],
      ['ipv6-unicast', ['fd00::100'], undefined],
    ]);
  });

  it('resetOut (new session, ROUTE-REFRESH) sends everything again; an unsent answer is not committed', () => {
    const rib = newRib();
    rib.setLocal([{ prefix: '10.244.1.0/24' }]);
    addPeer(rib, 'a', 65001, 1);
    rib.pendingFor('a');
    rib.markSent('a');
    rib.resetOut('a');
    expect(Object.keys(summary(rib.pendingFor('a')).announce)).toEqual(['10.244.1.0/24']);
    // The session died before sending; the next one starts from nothing again.
    rib.resetOut('a');
    rib.markSent('a');
    expect(Object.keys(summary(rib.pendingFor('a')).announce)).toEqual(['10.244.1.0/24']);
  });

  it('resetOut for one family keeps the other family\'s pending answer', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1, { exportPolicy: new ExportPolicy({ nextHopSelf: { ipv6: 'fd00::100' } }) });
    rib.markSent('a');
    rib.setLocal([{ prefix: '10.244.1.0/24' }, { prefix: 'fd00:10:244:1::/64' }]);
    rib.pendingFor('a');
    rib.resetOut('a', 'ipv6-unicast');
    rib.markSent('a');
    expect(Object.keys(summary(rib.pendingFor('a')).announce)).toEqual(['fd00:10:244:1::/64']);
  });

  it('a new export policy is applied by difference', () => {
    const rib = newRib();
    rib.setLocal([{ prefix: '10.244.1.0/24' }, { prefix: '10.245.1.0/24' }]);
    addPeer(rib, 'a', 65001, 1);
    rib.pendingFor('a');
    rib.markSent('a');
    rib.setExportPolicy('a', new ExportPolicy({ announce: ['10.244.0.0/16,le=32'] }));
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: ['10.245.1.0/24'] });
    rib.markSent('a');
    rib.setExportPolicy('a', new ExportPolicy({ localPref: 5 })); // LOCAL_PREF does not reach eBGP: no change
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: { '10.245.1.0/24': `${ROUTER_ID} ${LOCAL_ASN}` }, withdraw: [] });
  });

  it('local advertisements: changes and removals reach every peer', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    rib.setLocal([{ prefix: '10.244.1.0/24' }]);
    rib.pendingFor('a');
    rib.markSent('a');
    rib.setLocal([{ prefix: '10.244.1.0/24', nextHop: '192.168.0.55' }, { prefix: '10.244.7.0/24' }]);
    expect(summary(rib.pendingFor('a')).announce).toEqual({ '10.244.1.0/24': `192.168.0.55 ${LOCAL_ASN}`, '10.244.7.0/24': `${ROUTER_ID} ${LOCAL_ASN}` });
    rib.markSent('a');
    rib.setLocal([]);
    expect(summary(rib.pendingFor('a'))).toEqual({ announce: {}, withdraw: ['10.244.1.0/24', '10.244.7.0/24'] });
  });

  it('removing a peer leaves the others to withdraw what came from it', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    addPeer(rib, 'b', 65002, 2);
    announce(rib, 'a', [P], attrs([65001]));
    rib.pendingFor('b');
    rib.markSent('b');
    rib.removePeer('a');
    expect(summary(rib.pendingFor('b'))).toEqual({ announce: {}, withdraw: [P] });
    expect(() => rib.pendingFor('a')).toThrow(/not in the RIB/);
  });
});
