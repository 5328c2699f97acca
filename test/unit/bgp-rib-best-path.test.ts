import { describe, expect, it } from 'vitest';
import { Origin, type PathAttributes } from '../../src/bgp/types.js';
import { LOCAL_ASN, addPeer, announce, attrs, newRib, seq } from './bgp-rib-fixtures.js';

const P = '10.244.9.0/24';

interface Candidate {
  asn: number;
  /** Last octet of router id and address, unless given. */
  n: number;
  attributes: PathAttributes;
  routerId?: string;
  address?: string;
}

/** Announces P from peers "a" and "b" (in both orders) and returns which wins; both orders must agree. */
function winner(a: Candidate, b: Candidate): string {
  const results = [['a', 'b'], ['b', 'a']].map((order) => {
    const rib = newRib();
    const byName: Record<string, Candidate> = { a, b };
    for (const name of order) {
      const c = byName[name]!;
      addPeer(rib, name, c.asn, c.n, { ...(c.routerId ? { routerId: c.routerId } : {}), ...(c.address ? { address: c.address } : {}) });
      announce(rib, name, [P], c.attributes);
    }
    return rib.bestRoute('ipv4-unicast', P)!.peerId!;
  });
  expect(results[0]).toBe(results[1]);
  return results[0]!;
}

describe('best-path selection, one tie-break at a time (RFC 4271 §9.1.2.2)', () => {
  it.each<[string, Candidate, Candidate, 'a' | 'b']>([
    ['highest LOCAL_PREF wins over a shorter path (iBGP)',
      { asn: LOCAL_ASN, n: 9, attributes: attrs([65001, 65002], { localPref: 200 }) },
      { asn: LOCAL_ASN, n: 1, attributes: attrs([65001], { localPref: 100 }) }, 'a'],
    ['a missing LOCAL_PREF from iBGP counts as 100',
      { asn: LOCAL_ASN, n: 9, attributes: attrs([65001], { localPref: 101 }) },
      { asn: LOCAL_ASN, n: 1, attributes: attrs([65001]) }, 'a'],
    ['LOCAL_PREF received over eBGP is ignored (RFC 4271 §5.1.5)',
      { asn: 65001, n: 1, attributes: attrs([65001, 65009], { localPref: 500 }) },
      { asn: 65002, n: 9, attributes: attrs([65002]) }, 'b'],
    ['shortest AS_PATH',
      { asn: 65001, n: 9, attributes: attrs([65001]) },
      { asn: 65002, n: 1, attributes: attrs([65002, 65003]) }, 'a'],
    ['an AS_SET counts as one',
      { asn: 65001, n: 9, attributes: { origin: 0, asPath: [seq(65001), { type: 'set', asns: [1, 2, 3, 4] }] } },
      { asn: 65002, n: 1, attributes: attrs([65002, 65003, 65004]) }, 'a'],
    ['confederation segments count zero',
      { asn: 65001, n: 9, attributes: { origin: 0, asPath: [{ type: 'confed-sequence', asns: [1, 2, 3] }, seq(65001)] } },
      { asn: 65002, n: 1, attributes: attrs([65002, 65003]) }, 'a'],
    ['lowest ORIGIN: IGP before EGP',
      { asn: 65001, n: 9, attributes: attrs([65001], { origin: Origin.IGP }) },
      { asn: 65002, n: 1, attributes: attrs([65002], { origin: Origin.EGP }) }, 'a'],
    ['lowest ORIGIN: EGP before INCOMPLETE',
      { asn: 65001, n: 9, attributes: attrs([65001], { origin: Origin.EGP }) },
      { asn: 65002, n: 1, attributes: attrs([65002], { origin: Origin.INCOMPLETE }) }, 'a'],
    ['lowest MED between routes from the same neighbour AS',
      { asn: 65001, n: 9, attributes: attrs([65001], { med: 10 }) },
      { asn: 65001, n: 1, attributes: attrs([65001], { med: 20 }) }, 'a'],
    ['a missing MED counts as 0',
      { asn: 65001, n: 9, attributes: attrs([65001]) },
      { asn: 65001, n: 1, attributes: attrs([65001], { med: 1 }) }, 'a'],
    ['MED is not compared across neighbour ASes (the router id decides)',
      { asn: 65001, n: 1, attributes: attrs([65001], { med: 100 }) },
      { asn: 65002, n: 9, attributes: attrs([65002], { med: 0 }) }, 'a'],
    ['eBGP over iBGP',
      { asn: LOCAL_ASN, n: 1, attributes: attrs([65001]) },
      { asn: 65001, n: 9, attributes: attrs([65001]) }, 'b'],
    ['lowest router id',
      { asn: 65001, n: 9, attributes: attrs([65001]) },
      { asn: 65002, n: 2, attributes: attrs([65002]) }, 'b'],
    ['ORIGINATOR_ID stands in for the router id (RFC 4456 §9)',
      { asn: LOCAL_ASN, n: 1, attributes: attrs([65001], { originatorId: '9.9.9.9' }) },
      { asn: LOCAL_ASN, n: 2, attributes: attrs([65001]) }, 'b'],
    ['equal identifiers: the shorter CLUSTER_LIST, before the peer address (RFC 4456 §9)',
      { asn: LOCAL_ASN, n: 1, attributes: attrs([65001], { originatorId: '9.9.9.9', clusterList: ['1.1.1.1', '2.2.2.2'] }) },
      { asn: LOCAL_ASN, n: 2, attributes: attrs([65001], { originatorId: '9.9.9.9', clusterList: ['3.3.3.3'] }) }, 'b'],
    ['lowest peer address, compared as a number (192.168.0.3 < 192.168.0.20)',
      { asn: 65001, n: 1, routerId: '7.7.7.7', address: '192.168.0.20', attributes: attrs([65001]) },
      { asn: 65001, n: 2, routerId: '7.7.7.7', address: '192.168.0.3', attributes: attrs([65001]) }, 'b'],
  ])('%s', (_name, a, b, expected) => {
    expect(winner(a, b)).toBe(expected);
  });

  it('a local advertisement beats any learned route', () => {
    const rib = newRib();
    addPeer(rib, 'a', LOCAL_ASN, 1);
    announce(rib, 'a', [P], attrs([], { localPref: 1000 }));
    rib.setLocal([{ prefix: P }]);
    expect(rib.bestRoute('ipv4-unicast', P)!.peerId).toBeUndefined();
  });

  it('MED elimination is over the whole set, not pairwise in arrival order', () => {
    // r1 and r3 share neighbour AS 65001, so r3's lower MED eliminates r1; of r2 and r3 the lower
    // router id (r2) wins. Comparing pairwise in order would give r1 > r2 (router id), then
    // r3 > r1 (MED): r3, an answer that depends on arrival order.
    const cands: [string, number, number, number][] = [['r1', 65001, 20, 1], ['r2', 65002, 10, 2], ['r3', 65001, 5, 3]];
    const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for (const order of orders) {
      const rib = newRib();
      for (const i of order) {
        const [name, asn, med, n] = cands[i]!;
        addPeer(rib, name, asn, n);
        announce(rib, name, [P], attrs([asn], { med }));
      }
      expect(rib.bestRoute('ipv4-unicast', P)!.peerId).toBe('r2');
    }
  });

  it('three candidates: the shortest CLUSTER_LIST among equal identifiers (RFC 4456 §9)', () => {
    const rib = newRib();
    const reflected = (clusterList: string[]): PathAttributes => attrs([65001], { originatorId: '9.9.9.9', clusterList });
    addPeer(rib, 'two', LOCAL_ASN, 1);
    addPeer(rib, 'one', LOCAL_ASN, 3);
    addPeer(rib, 'three', LOCAL_ASN, 2);
    announce(rib, 'two', [P], reflected(['1.1.1.1', '2.2.2.2']));
    announce(rib, 'one', [P], reflected(['3.3.3.3']));
    announce(rib, 'three', [P], reflected(['4.4.4.4', '5.5.5.5', '6.6.6.6']));
    expect(rib.bestRoute('ipv4-unicast', P)!.peerId).toBe('one');
  });

  it('three or more candidates go through every step', () => {
    const rib = newRib();
    addPeer(rib, 'long', 65001, 1);
    addPeer(rib, 'ibgp', LOCAL_ASN, 2);
    addPeer(rib, 'best', 65003, 3);
    announce(rib, 'long', [P], attrs([65001, 65009]));
    announce(rib, 'ibgp', [P], attrs([65002]));
    announce(rib, 'best', [P], attrs([65003]));
    expect(rib.bestRoute('ipv4-unicast', P)!.peerId).toBe('best');
  });
});
