// Import policy compiled for numeric prefixes: RangeMatcher must say what PrefixRange.matchesBits
// says (the reference semantics of a range), and PeerImport, which the RIB decides received
// routes with, must give the verdicts of ImportPolicy.evaluate().

import { describe, expect, it } from 'vitest';
import { ImportPolicy, type ImportContext } from '../../src/bgp/policy/import-policy.js';
import { PrefixBits, readPrefix } from '../../src/bgp/policy/prefix-bits.js';
import { parsePrefixRange } from '../../src/bgp/policy/prefix-set.js';
import { RangeMatcher } from '../../src/bgp/policy/range-matcher.js';
import { formatPrefixWords, IPV6_FLAG, readPrefixWords } from '../../src/bgp/prefix/prefix-text.js';
import type { PathAttributes, RoutePath } from '../../src/bgp/types.js';
import { prng } from './bgp-prng.js';

const RANGES = [
  '10.244.0.0/16', // exact length only
  '10.244.0.0/16,le=24',
  '10.244.0.0/16,ge=24',
  '10.244.0.0/16,ge=20,le=28',
  '0.0.0.0/0', // the default route only
  '0.0.0.0/0,le=32', // everything
  '192.0.2.0/24,ge=32',
  'fd00:10:244::/48',
  'fd00:10:244::/48,ge=64,le=128',
  '::/0,ge=1',
  '2001:db8::/32,le=64',
  'fd00::1/128',
];

/** A prefix near the ranges above, so matches and near misses both come up. */
function randomPrefix(rng: ReturnType<typeof prng>): string {
  const v6 = rng.next() < 0.5;
  const max = v6 ? 128 : 32;
  const len = rng.int(max + 1);
  const words = new Uint32Array(4);
  const bases = v6 ? [[0xfd000010, 0x02440000, 0, 0], [0x20010db8, 0, 0, 0], [0xfd000000, 0, 0, 1]] : [[0x0af40000], [0xc0000200], [0]];
  const base = rng.pick(bases);
  for (let k = 0; k < (v6 ? 4 : 1); k++) {
    // Keep the base's leading bits more often than not, then noise.
    const keep = rng.int(33);
    const noise = Math.floor(rng.next() * 2 ** 32);
    const mask = keep === 0 ? 0 : (-1 << (32 - keep)) >>> 0;
    words[k] = ((base[k]! & mask) | (noise & ~mask)) >>> 0;
  }
  for (let k = 0; k < 4; k++) {
    const bits = len - 32 * k;
    words[k] = bits >= 32 ? words[k]! : bits <= 0 ? 0 : (words[k]! & (-1 << (32 - bits))) >>> 0;
  }
  return formatPrefixWords(v6 ? 4 : 1, words, 0, len);
}

describe('RangeMatcher', () => {
  it('matches exactly what PrefixRange.matchesBits matches (exact length, ge/le bounds, default route, IPv6)', () => {
    const ranges = RANGES.map((r) => parsePrefixRange(r));
    const rng = prng(4271);
    const bits = new PrefixBits();
    const words = new Uint32Array(4);
    const edge = ['10.244.0.0/16', '10.244.0.0/15', '10.244.0.0/17', '10.244.3.0/24', '10.244.2.0/23', '10.244.3.16/28', '10.244.3.16/29', '10.245.0.0/16', '0.0.0.0/0', '192.0.2.1/32', '192.0.2.0/31', 'fd00:10:244::/48', 'fd00:10:244::/47', 'fd00:10:244:1::/64', 'fd00:10:244:2::/63', '::/0', '::/1', '2001:db8::/64', '2001:db8::/65', 'fd00::1/128', 'fd00::/128'];
    const cases = [...edge, ...Array.from({ length: 20_000 }, () => randomPrefix(rng))];
    for (const range of ranges) {
      const matcher = new RangeMatcher([range]);
      for (const p of cases) {
        expect(readPrefix(p, bits)).toBe(true);
        const read = readPrefixWords(p, words);
        const got = matcher.matches((read & IPV6_FLAG) !== 0 ? 4 : 1, words, 0, read & 0xff);
        if (got !== range.matchesBits(bits)) expect(`${range.toString()} ${p} ${got}`).toBe(`${range.toString()} ${p} ${!got}`);
      }
    }
    // A set matches when any of its ranges does.
    const all = new RangeMatcher(ranges);
    for (const p of cases) {
      readPrefix(p, bits);
      const read = readPrefixWords(p, words);
      expect(all.matches((read & IPV6_FLAG) !== 0 ? 4 : 1, words, 0, read & 0xff)).toBe(ranges.some((r) => r.matchesBits(bits)));
    }
  });

  it('matches nothing of a family it has no range of', () => {
    const matcher = new RangeMatcher([parsePrefixRange('10.0.0.0/8,le=32')]);
    expect(matcher.matchesV6(new Uint32Array(4), 0, 0)).toBe(false);
    expect(matcher.matchesV6(Uint32Array.of(0x0a000000, 0, 0, 0), 0, 8)).toBe(false);
    expect(matcher.matchesV4(0x0a000000, 8)).toBe(true);
  });
});

describe('PeerImport (import policy compiled for one peer)', () => {
  const own = new Set(['10.0.0.11']);
  const context: ImportContext = { localAsn: 65000, routerId: '10.0.0.1', clusterId: '10.0.0.1', ibgp: true, localAddress: '10.0.0.10', ownAddresses: own };
  const policy = new ImportPolicy({
    accept: ['10.244.0.0/16,ge=24,le=32', 'fd00:10:244::/48,ge=64,le=128', '0.0.0.0/0', '10.9.0.0/16'],
    rejectPrefixes: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  });
  const attributes = (extra: Partial<PathAttributes> = {}): PathAttributes => ({ origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], ...extra });
  const path = (nextHop: string, extra: Partial<PathAttributes> = {}): RoutePath => ({ family: nextHop.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast', nextHop, attributes: attributes(extra) });

  function compiled(peer: ReturnType<ImportPolicy['forPeer']>, prefix: string, p: RoutePath): string {
    const words = new Uint32Array(4);
    const read = readPrefixWords(prefix, words);
    const v = peer.verdict((read & IPV6_FLAG) !== 0 ? 4 : 1, words, 0, read & 0xff, p);
    return v.accepted ? 'accepted' : v.reason;
  }

  it.each<[string, string, RoutePath]>([
    ['the default route, listed in accept', '0.0.0.0/0', path('10.0.0.2')],
    ['exactly the block length', '10.244.2.0/24', path('10.0.0.2')],
    ['shorter than ge', '10.244.0.0/23', path('10.0.0.2')],
    ['a host route (le)', '10.244.2.9/32', path('10.0.0.2')],
    ['an exact-length range, matched', '10.9.0.0/16', path('10.0.0.2')],
    ['an exact-length range, one longer', '10.9.0.0/17', path('10.0.0.2')],
    ['our own block', '10.244.1.0/24', path('10.0.0.2')],
    ['inside our own block', '10.244.1.64/26', path('10.0.0.2')],
    ['IPv6 at ge', 'fd00:10:244:2::/64', path('fd00:1::2')],
    ['IPv6 below ge', 'fd00:10:244::/63', path('fd00:1::2')],
    ['IPv6 inside our block', 'fd00:10:244:1:1::/80', path('fd00:1::2')],
    ['an AS loop', '10.244.2.0/24', path('10.0.0.2', { asPath: [{ type: 'set', asns: [65009, 65000] }] })],
    ['an ORIGINATOR_ID loop (RFC 4456 §8)', '10.244.2.0/24', path('10.0.0.2', { originatorId: '10.0.0.1' })],
    ['a CLUSTER_LIST loop (RFC 4456 §8)', '10.244.2.0/24', path('10.0.0.2', { clusterList: ['10.9.9.9', '10.0.0.1'] })],
    ['our own next hop', '10.244.2.0/24', path('10.0.0.10')],
    ['a loopback next hop', '10.244.2.0/24', path('127.0.0.5')],
  ])('%s: the verdict of ImportPolicy.evaluate()', (_name, prefix, p) => {
    const reference = policy.evaluate({ ...p, prefix }, context);
    expect(compiled(policy.forPeer(context), prefix, p)).toBe(reference.accepted ? 'accepted' : reference.reason);
  });

  it('checks a path once per UPDATE, and again after begin() (our addresses may have grown)', () => {
    const peer = policy.forPeer(context);
    const shared = path('10.0.0.12');
    peer.begin();
    expect(compiled(peer, '10.244.2.0/24', shared)).toBe('accepted');
    own.add('10.0.0.12');
    // Within one UPDATE the path's verdict is remembered ...
    expect(compiled(peer, '10.244.3.0/24', shared)).toBe('accepted');
    // ... and the next UPDATE sees the new address.
    peer.begin();
    expect(compiled(peer, '10.244.3.0/24', shared)).toBe('own-next-hop');
    own.delete('10.0.0.12');
  });

  it('calls the on-link check for every route it gets to', () => {
    const asked: string[] = [];
    const onLink = new ImportPolicy({ accept: ['10.244.0.0/16,le=32'], requireOnLinkNextHop: (nh) => (asked.push(nh), nh !== '10.0.0.3') });
    const peer = onLink.forPeer(context);
    peer.begin();
    const p = path('10.0.0.2');
    expect([compiled(peer, '10.244.2.0/24', p), compiled(peer, '10.244.3.0/24', p), compiled(peer, '10.245.0.0/24', p)]).toEqual(['accepted', 'accepted', 'not-accepted']);
    expect(compiled(peer, '10.244.4.0/24', path('10.0.0.3'))).toBe('next-hop-not-on-link');
    expect(asked).toEqual(['10.0.0.2', '10.0.0.2', '10.0.0.3']);
  });
});
