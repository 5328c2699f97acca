// Rib.applyBatch (the speaker's path: prefixes as numbers, one path per family per UPDATE) must
// do exactly what Rib.applyUpdate does with the same UPDATE given as Route objects: the same best
// changes, refusals (max-prefix included), implicit withdrawals and tables.

import { describe, expect, it } from 'vitest';
import type { BatchResult, Rib, UpdateResult } from '../../src/bgp/rib/rib.js';
import type { Route, RoutePath } from '../../src/bgp/types.js';
import { LOCAL_ASN, addPeer, attrs, importPolicy, newRib, prefixList } from './bgp-rib-fixtures.js';
import { prng } from './bgp-prng.js';

const V4 = Array.from({ length: 12 }, (_, i) => `10.244.${i}.0/24`).concat('0.0.0.0/0', '192.168.1.0/24');
const V6 = Array.from({ length: 6 }, (_, i) => `fd00:${i + 1}::/64`);


/** The comparable content of either result. */
function summary(r: UpdateResult): unknown {
  return {
    best: r.bestChanges.map((c) => [c.family, c.prefix, c.peerId, c.previousPeerId, c.route?.nextHop, c.previous?.nextHop, c.route?.attributes.med]),
    rejected: r.rejected.map((j) => [j.route.prefix, j.route.nextHop, j.reason]),
    replaced: r.replacedByRejected,
    max: r.maxPrefixExceeded,
  };
}

function batchSummary(r: BatchResult, groups: { prefixes: string[]; path: RoutePath }[]): unknown {
  return {
    best: (r.bestChanges?.changes() ?? []).map((c) => [c.family, c.prefix, c.peerId, c.previousPeerId, c.route?.nextHop, c.previous?.nextHop, c.route?.attributes.med]),
    rejected: r.rejected.map((j) => [groups[j.group]!.prefixes[j.index]!, groups[j.group]!.path.nextHop, j.reason]),
    replaced: r.replacedByRejected,
    max: r.maxPrefixExceeded,
  };
}

function tables(rib: Rib, peers: readonly string[]): unknown {
  return {
    best: [...rib.best()].map((b) => [b.route.family, b.route.prefix, b.peerId, b.route.nextHop, b.route.attributes.med]),
    peers: peers.map((p) => [...rib.peerRoutes(p)].map((r) => [r.prefix, r.nextHop, r.attributes.med])),
    stats: rib.stats(),
  };
}

describe('Rib.applyBatch', () => {
  it('does what applyUpdate does with the same UPDATEs, over a random sequence', () => {
    const rng = prng(9106);
    const text = newRib();
    const batch = newRib();
    const peers = ['a', 'b', 'c'];
    for (const rib of [text, batch]) {
      addPeer(rib, 'a', 65001, 1, { importPolicy: importPolicy({ maxPrefixes: 9 }) });
      addPeer(rib, 'b', 65002, 2);
      addPeer(rib, 'c', LOCAL_ASN, 3);
    }
    const seen = new Set<string>();
    for (let step = 0; step < 3000; step++) {
      const peer = rng.pick(peers);
      const withdrawn4 = V4.filter(() => rng.next() < 0.1);
      const withdrawn6 = V6.filter(() => rng.next() < 0.1);
      const nlri4 = V4.filter(() => rng.next() < 0.2);
      const nlri6 = V6.filter(() => rng.next() < 0.2);
      // Sometimes our own AS in the path (as-loop), sometimes a loopback next hop: refusals.
      const asns = rng.next() < 0.1 ? [65001, LOCAL_ASN] : [65001 + rng.int(3), 65009].slice(0, 1 + rng.int(2));
      const attributes = attrs(asns, { med: rng.int(3) });
      const nh4 = rng.next() < 0.05 ? '127.0.0.1' : `192.168.0.${1 + rng.int(3)}`;
      const nh6 = `fd00::${1 + rng.int(3)}`;
      const groups = [
        { prefixes: nlri4, path: { family: 'ipv4-unicast' as const, nextHop: nh4, attributes } },
        { prefixes: nlri6, path: { family: 'ipv6-unicast' as const, nextHop: nh6, attributes } },
      ].filter((g) => g.prefixes.length > 0);
      const routes: Route[] = groups.flatMap((g) => g.prefixes.map((prefix) => ({ ...g.path, prefix })));
      const withdrawn = [...withdrawn4.map((prefix) => ({ family: 'ipv4-unicast' as const, prefix })), ...withdrawn6.map((prefix) => ({ family: 'ipv6-unicast' as const, prefix }))];
      const reference = text.applyUpdate(peer, { announced: routes, withdrawn });
      for (const j of reference.rejected) seen.add(j.reason);
      if (reference.replacedByRejected.length > 0) seen.add('replaced by a refused announcement');
      const expected = summary(reference);
      const got = batchSummary(
        batch.applyBatch(peer, { withdrawn: [prefixList('ipv4-unicast', withdrawn4), prefixList('ipv6-unicast', withdrawn6)], announced: groups.map((g) => ({ prefixes: prefixList(g.path.family, g.prefixes), path: g.path })) }, true),
        groups,
      );
      expect(got, `step ${step}`).toEqual(expected);
      if (step % 500 === 499) expect(tables(batch, peers)).toEqual(tables(text, peers));
    }
    expect(tables(batch, peers)).toEqual(tables(text, peers));
    // The sequence reached the interesting cases.
    expect([...seen].sort()).toEqual(['as-loop', 'default-route', 'loopback-next-hop', 'max-prefix', 'not-accepted', 'replaced by a refused announcement']);
    // And a peer gone: the same withdrawals, in the same order.
    const gone = text.removePeer('b');
    const dropped = batch.dropPeer('b', true);
    expect(dropped.result.bestChanges?.changes().map((c) => [c.prefix, c.peerId])).toEqual(gone.map((c) => [c.prefix, c.peerId]));
    expect(dropped.withdrawn.flatMap((l) => l.texts()).length).toBeGreaterThan(0);
    expect(tables(batch, ['a', 'c'])).toEqual(tables(text, ['a', 'c']));
  });

  it('counts best changes without recording them when not asked to', () => {
    const rib = newRib();
    addPeer(rib, 'a', 65001, 1);
    const path: RoutePath = { family: 'ipv4-unicast', nextHop: '192.168.0.1', attributes: attrs([65001]) };
    const result = rib.applyBatch('a', { withdrawn: [], announced: [{ prefixes: prefixList('ipv4-unicast', ['10.244.1.0/24', '10.244.2.0/24']), path }] }, false);
    expect([result.bestChangeCount, result.bestChanges]).toEqual([2, undefined]);
    // The route objects made on demand are kept: asking twice gives the same object.
    const [first] = [...rib.peerRoutes('a')];
    expect([...rib.peerRoutes('a')][0]).toBe(first);
    expect(rib.bestRoute('ipv4-unicast', '10.244.1.0/24')!.route).toBe(first);
  });
});
