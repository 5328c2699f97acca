/**
 * BGP codec: UPDATE round trips for every attribute on 2- and 4-octet sessions, AS4_PATH merging
 * (RFC 6793), IPv6 MP_REACH with one and two next hops, extended length, End-of-RIB, packing,
 * and hex vectors laid out as ExaBGP's qa/encoding files show them.
 */
import { describe, expect, it } from 'vitest';
import type { PathAttributes, UpdateMessage } from '../../src/bgp/types.js';
import {
  MAX_MESSAGE, encodeAnnouncements, encodeEndOfRib, encodeUpdate, encodeWithdrawals, isEndOfRib, type CodecOptions,
} from '../../src/bgp/wire/index.js';
import { AS2, AS4, ATTRS, decodeUpdate, hex, rawUpdate } from './bgp-codec-helpers.js';

function roundTrip(update: Omit<UpdateMessage, 'type'>, opts: CodecOptions): UpdateMessage {
  const { update: back, warnings } = decodeUpdate(encodeUpdate(update, opts), opts);
  expect(warnings).toEqual([]);
  return back;
}

const EVERYTHING: PathAttributes = {
  origin: 2,
  asPath: [{ type: 'confed-sequence', asns: [64512] }, { type: 'sequence', asns: [65001, 4200000000, 65003] }, { type: 'set', asns: [65010, 4200000011] }],
  nextHop: '198.18.0.1',
  med: 4294967295,
  localPref: 100,
  atomicAggregate: true,
  aggregator: { asn: 4200000000, address: '198.18.0.9' },
  communities: [0xfde80001, 0xffffff01],
  largeCommunities: [[4200000000, 1, 2], [65000, 0xffffffff, 0]],
  originatorId: '10.0.0.7',
  clusterList: ['10.0.0.1', '10.0.0.2'],
  unknown: [{ flags: 0xc0, type: 16, value: hex('0002fde800000001') }, { flags: 0xe0, type: 99, value: hex('01020304') }],
};

describe('UPDATE round trips', () => {
  for (const opts of [AS2, AS4]) {
    const name = opts.fourOctetAsn ? '4-octet' : '2-octet';
    it(`carries every attribute on a ${name} session (AS4_PATH/AS4_AGGREGATOR behind the scenes)`, () => {
      const u = { withdrawn: ['10.9.0.0/16'], attributes: EVERYTHING, nlri: ['10.244.1.0/24', '10.244.2.128/25', '0.0.0.0/0', '192.0.2.1/32'] };
      expect(roundTrip(u, opts)).toEqual({ type: 2, ...u });
    });
  }

  it('writes AS_TRANS plus AS4_PATH on 2-octet sessions only when an ASN needs it (RFC 6793 §4.2.2)', () => {
    const big = encodeUpdate({ withdrawn: [], attributes: { ...ATTRS, asPath: [{ type: 'sequence', asns: [4200000000, 65001] }] }, nlri: ['10.0.0.0/8'] }, AS2);
    expect(big.toString('hex')).toContain('40020602025ba0fde9'); // AS_PATH: sequence [23456, 65001]
    expect(big.toString('hex')).toContain('c0110a0202fa56ea000000fde9'); // AS4_PATH: sequence [4200000000, 65001]
    const small = encodeUpdate({ withdrawn: [], attributes: ATTRS, nlri: ['10.0.0.0/8'] }, AS2);
    expect(small.toString('hex')).not.toContain('c011');
    const four = encodeUpdate({ withdrawn: [], attributes: { ...ATTRS, asPath: [{ type: 'sequence', asns: [4200000000] }] }, nlri: ['10.0.0.0/8'] }, AS4);
    expect(four.toString('hex')).toContain('40020602 01fa56ea00'.replace(' ', ''));
    expect(four.toString('hex')).not.toContain('c011');
  });

  it('round-trips IPv6 with one next hop and with a global plus link-local pair', () => {
    for (const nextHops of [['2001:db8::1'], ['2001:db8::1', 'fe80::1:2ff:fe03:405']]) {
      const u = {
        withdrawn: [], attributes: { origin: 0 as const, asPath: [], localPref: 200 }, nlri: [],
        mpReach: { family: 'ipv6-unicast' as const, nextHops, nlri: ['fd00:10:244:1::/64', '2001:db8::/32', '::/0', 'fd00::1/128'] },
        mpUnreach: { family: 'ipv6-unicast' as const, withdrawn: ['fd00:10:244:2::/64'] },
      };
      const wire = encodeUpdate(u, AS4);
      expect(wire[19 + 4]).toBe(0x80); // MP_REACH_NLRI is the first attribute (RFC 7606 §5.1)
      expect(wire[19 + 4 + 1]).toBe(14);
      expect(wire[19 + 4 + 3 + 3]).toBe(16 * nextHops.length);
      expect(roundTrip(u, AS4)).toEqual({ type: 2, ...u });
    }
  });

  it('uses the extended length flag for attributes over 255 octets, and only then', () => {
    const communities = Array.from({ length: 100 }, (_, i) => 0xfde80000 + i);
    const wire = encodeUpdate({ withdrawn: [], attributes: { ...ATTRS, communities }, nlri: ['10.1.0.0/16'] }, AS4);
    const at = wire.indexOf(hex('d008 0190'));
    expect(at).toBeGreaterThan(0); // flags 0xd0 = optional transitive + extended length, 400 octets
    expect(roundTrip({ withdrawn: [], attributes: { ...ATTRS, communities }, nlri: ['10.1.0.0/16'] }, AS4).attributes?.communities).toEqual(communities);
    expect(wire.includes(hex('4001 01 00'))).toBe(true); // ORIGIN stays short
    const longPath = { ...ATTRS, asPath: [{ type: 'sequence' as const, asns: Array.from({ length: 300 }, (_, i) => 65000 + i) }] };
    // 300 ASNs are split into segments of 255 and 45 (the segment count is one octet).
    expect(roundTrip({ withdrawn: [], attributes: longPath, nlri: ['10.1.0.0/16'] }, AS4).attributes?.asPath.map((s) => s.asns.length)).toEqual([255, 45]);
  });

  it('clears host bits the wire carries beyond the prefix length', () => {
    const { update } = decodeUpdate(rawUpdate('', '40010100 400200 400304 c0000201', '18 0a0b0c 19 0a0b0cff 00 1f ffffffff'), AS4);
    expect(update.nlri).toEqual(['10.11.12.0/24', '10.11.12.128/25', '0.0.0.0/0', '255.255.255.254/31']);
  });
});

describe('AS4_PATH merge on 2-octet sessions (RFC 6793 §4.2.3)', () => {
  const attrs = (aspath: string, extra = '') => `40010100 ${aspath} 400304 c0000201 ${extra}`;

  it('replaces AS_TRANS with the real ASNs and keeps leading ASNs AS4_PATH lacks', () => {
    // AS_PATH: sequence [65001, 23456, 23456]; AS4_PATH: sequence [4200000000, 4200000001]
    const m = rawUpdate('', attrs('400208 0203 fde9 5ba0 5ba0', 'c0110a 0202 fa56ea00 fa56ea01'), '080a');
    expect(decodeUpdate(m).update.attributes?.asPath).toEqual([{ type: 'sequence', asns: [65001, 4200000000, 4200000001] }]);
  });

  it('ignores an AS4_PATH longer than AS_PATH, and keeps leading confed segments', () => {
    const longer = rawUpdate('', attrs('400204 0201 5ba0', 'c0110a 0202 fa56ea00 fa56ea01'), '080a');
    expect(decodeUpdate(longer).update.attributes?.asPath).toEqual([{ type: 'sequence', asns: [23456] }]);
    const confed = rawUpdate('', attrs('400208 0301 fc00 0201 5ba0', 'c01106 0201 fa56ea00'), '080a');
    expect(decodeUpdate(confed).update.attributes?.asPath).toEqual([{ type: 'confed-sequence', asns: [64512] }, { type: 'sequence', asns: [4200000000] }]);
  });

  it('takes AS4_AGGREGATOR when AGGREGATOR says AS_TRANS, and ignores both AS4 attributes otherwise', () => {
    const trans = rawUpdate('', attrs('400204 0201 5ba0', 'c00706 5ba0 0a000001 c01106 0201 fa56ea00 c01208 fa56ea00 0a000001'), '080a');
    expect(decodeUpdate(trans).update.attributes).toMatchObject({ asPath: [{ type: 'sequence', asns: [4200000000] }], aggregator: { asn: 4200000000, address: '10.0.0.1' } });
    const old = rawUpdate('', attrs('400204 0201 5ba0', 'c00706 fde9 0a000001 c01106 0201 fa56ea00 c01208 fa56ea00 0a000001'), '080a');
    expect(decodeUpdate(old).update.attributes).toMatchObject({ asPath: [{ type: 'sequence', asns: [23456] }], aggregator: { asn: 65001, address: '10.0.0.1' } });
  });

  it('drops AS4_PATH silently between 4-octet speakers (RFC 6793 §6)', () => {
    const m = rawUpdate('', '40010100 400206 0201 0000fde9 400304 c0000201 c01106 0201 fa56ea00', '080a');
    const { update, warnings } = decodeUpdate(m, AS4);
    expect(warnings).toEqual([]);
    expect(update.attributes?.asPath).toEqual([{ type: 'sequence', asns: [65001] }]);
  });
});

describe('End-of-RIB (RFC 4724 §2)', () => {
  it('is an empty UPDATE for IPv4 and an AFI/SAFI-only MP_UNREACH for IPv6', () => {
    expect(encodeEndOfRib('ipv4-unicast').toString('hex')).toBe(`${'ff'.repeat(16)}0017020000 0000`.replace(' ', ''));
    expect(encodeEndOfRib('ipv6-unicast').toString('hex')).toBe(`${'ff'.repeat(16)}001d02 0000 0006 800f03 000201`.replace(/ /g, ''));
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      expect(isEndOfRib(decodeUpdate(encodeEndOfRib(family)).update)).toBe(family);
    }
  });

  it('is not an UPDATE carrying anything', () => {
    const withdrawal = decodeUpdate(encodeWithdrawals('ipv4-unicast', ['10.0.0.0/8'])[0]!).update;
    expect(isEndOfRib(withdrawal)).toBeUndefined();
    expect(isEndOfRib(decodeUpdate(encodeWithdrawals('ipv6-unicast', ['fd00::/8'])[0]!).update)).toBeUndefined();
    expect(isEndOfRib({ type: 2, withdrawn: [], nlri: [], attributes: ATTRS })).toBeUndefined();
  });
});

describe('packing', () => {
  const slash24s = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);

  function collect(messages: Buffer[], opts: CodecOptions, pick: (u: UpdateMessage) => readonly string[]): string[] {
    return messages.flatMap((m) => {
      expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE);
      return pick(decodeUpdate(m, opts).update);
    });
  }

  it('packs 2,000 IPv4 /24s into several full UPDATEs, each prefix once, sharing one attribute object', () => {
    const messages = encodeAnnouncements('ipv4-unicast', EVERYTHING, ['198.18.0.1'], slash24s, AS2);
    expect(messages.length).toBeGreaterThan(1);
    expect(messages.length).toBeLessThanOrEqual(3);
    expect(messages.slice(0, -1).every((m) => m.length > MAX_MESSAGE - 4)).toBe(true);
    expect(collect(messages, AS2, (u) => u.nlri)).toEqual(slash24s);
    expect(decodeUpdate(messages[0]!, AS2).update.attributes).toEqual(EVERYTHING);
  });

  it('packs IPv6 announcements into MP_REACH and withdrawals into MP_UNREACH / the withdrawn field', () => {
    const v6 = Array.from({ length: 1500 }, (_, i) => `fd00:10:${(i + 1).toString(16)}::/48`);
    const ann = encodeAnnouncements('ipv6-unicast', { origin: 0, asPath: [] }, ['2001:db8::1', 'fe80::1'], v6, AS4);
    expect(ann.length).toBeGreaterThan(1);
    expect(collect(ann, AS4, (u) => u.mpReach!.nlri)).toEqual(v6);
    expect(decodeUpdate(ann[0]!, AS4).update.mpReach?.nextHops).toEqual(['2001:db8::1', 'fe80::1']);
    expect(collect(encodeWithdrawals('ipv6-unicast', v6), AS4, (u) => u.mpUnreach!.withdrawn)).toEqual(v6);
    const w4 = encodeWithdrawals('ipv4-unicast', slash24s);
    expect(w4.length).toBe(2);
    expect(collect(w4, AS4, (u) => u.withdrawn)).toEqual(slash24s);
  });

  it('returns nothing for no prefixes, and canonicalises prefixes with host bits', () => {
    expect(encodeAnnouncements('ipv4-unicast', ATTRS, [], [], AS4)).toEqual([]);
    expect(encodeWithdrawals('ipv6-unicast', [])).toEqual([]);
    const [m] = encodeAnnouncements('ipv4-unicast', ATTRS, [], ['10.1.2.3/24', '10.0.0.1/32'], AS4);
    expect(decodeUpdate(m!, AS4).update.nlri).toEqual(['10.1.2.0/24', '10.0.0.1/32']);
  });

  it('rejects prefixes of the wrong family and unusable next hops', () => {
    expect(() => encodeAnnouncements('ipv4-unicast', ATTRS, [], ['fd00::/8'], AS4)).toThrow(/wrong address family/);
    expect(() => encodeAnnouncements('ipv6-unicast', ATTRS, ['10.0.0.1'], ['fd00::/8'], AS4)).toThrow(/IPv4 next hop/);
    expect(() => encodeAnnouncements('ipv4-unicast', { origin: 0, asPath: [] }, [], ['10.0.0.0/8'], AS4)).toThrow(/next hop/);
    expect(() => encodeWithdrawals('ipv4-unicast', ['10.0.0.0/33'])).toThrow(/length/);
  });

  it('refuses an UPDATE over 4096 octets in encodeUpdate', () => {
    expect(() => encodeUpdate({ withdrawn: slash24s, nlri: [] }, AS4)).toThrow(/more than 4096/);
  });
});

describe('hex vectors', () => {
  it('decodes an IPv4 UPDATE laid out like ExaBGP qa/encoding (4-octet session)', () => {
    // announce 10.0.0.0/24 next-hop 10.0.0.1 origin igp as-path [65001] med 100 community 65000:1
    const m = hex(`ffffffffffffffffffffffffffffffff 003d 02 | 0000 | 0022
      40 01 01 00 | 40 02 06 02 01 0000fde9 | 40 03 04 0a000001 | 80 04 04 00000064 | c0 08 04 fde80001
      | 18 0a0000`);
    const { update, warnings } = decodeUpdate(m, AS4);
    expect(warnings).toEqual([]);
    expect(update).toEqual({
      type: 2, withdrawn: [], nlri: ['10.0.0.0/24'],
      attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [65001] }], nextHop: '10.0.0.1', med: 100, communities: [0xfde80001] },
    });
    expect(encodeUpdate(update, AS4)).toEqual(m);
  });

  it('decodes an IPv6 MP_REACH UPDATE with a link-local next hop (RFC 2545 §3) and large communities', () => {
    const m = hex(`ffffffffffffffffffffffffffffffff 0083 02 | 0000 | 006c
      90 0e 0035 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 40 fd00001002440001 | 30 20010db80001
      40 01 01 00 | 40 02 0a 02 02 0000fde9 fa56ea00 | 40 05 04 00000064
      c0 20 18 0000fde8 00000001 00000002 fa56ea00 00000003 00000004`);
    const { update } = decodeUpdate(m, AS4);
    expect(update).toEqual({
      type: 2, withdrawn: [], nlri: [],
      mpReach: { family: 'ipv6-unicast', nextHops: ['2001:db8::1', 'fe80::1'], nlri: ['fd00:10:244:1::/64', '2001:db8:1::/48'] },
      attributes: { origin: 0, asPath: [{ type: 'sequence', asns: [65001, 4200000000] }], localPref: 100, largeCommunities: [[65000, 1, 2], [4200000000, 3, 4]] },
    });
    // Re-encoded with the short length form (the vector used Extended Length for 48 octets).
    expect(decodeUpdate(encodeUpdate(update, AS4), AS4).update).toEqual(update);
  });
});
