import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { asPathContains, asPathLength, neighbourAs, prependAs } from '../../src/bgp/policy/as-path.js';
import { PrefixBits, readPrefix } from '../../src/bgp/policy/prefix-bits.js';
import { PrefixSet, familyOf, parsePrefixRange, prefixRange } from '../../src/bgp/policy/prefix-set.js';
import type { AsPathSegment } from '../../src/bgp/types.js';

describe('readPrefix: prefix text to integers', () => {
  const read = (text: string): PrefixBits | undefined => {
    const bits = new PrefixBits();
    return readPrefix(text, bits) ? bits : undefined;
  };

  it.each([
    ['10.244.1.0/24', false, 24, [0x0af40100, 0, 0, 0]],
    ['0.0.0.0/0', false, 0, [0, 0, 0, 0]],
    ['255.255.255.255/32', false, 32, [0xffffffff, 0, 0, 0]],
    ['fd00:10:244:1::/64', true, 64, [0xfd000010, 0x02440001, 0, 0]],
    ['::/0', true, 0, [0, 0, 0, 0]],
    ['::1/128', true, 128, [0, 0, 0, 1]],
    ['2001:db8::1:0:0:1/128', true, 128, [0x20010db8, 0, 0x00010000, 0x00000001]],
    ['1:2:3:4:5:6:7:8/128', true, 128, [0x00010002, 0x00030004, 0x00050006, 0x00070008]],
    ['fd00::/8', true, 8, [0xfd000000, 0, 0, 0]],
  ])('%s', (text, v6, length, words) => {
    const bits = read(text)!;
    expect(bits).toBeDefined();
    expect([bits.v6, bits.length, [bits.w0, bits.w1, bits.w2, bits.w3]]).toEqual([v6, length, words]);
  });

  it.each([
    '10.244.1.0', '10.244.1.0/', '10.244.1.0/33', '10.244.1.1/24', '10.244.256.0/24', '10.244.01.0/24', '10.244.1/24',
    '10.244.1.0.0/24', '10.244.1.0/024', 'a.b.c.d/8', '', '/8', 'fd00::/129', 'fd00::1/64', 'fd00:::/16', '1::2::/128',
    ':1::/16', '1:2:3:4:5:6:7:8:9/128', '::ffff:1.2.3.4/128', '12345::/16', 'fd00:/16', 'g::/16',
  ])('refuses %j', (text) => {
    expect(read(text)).toBeUndefined();
  });
});

describe('prefix ranges: "<prefix>[,ge=<len>][,le=<len>]" with FRR prefix-list meaning', () => {
  it('parses, defaults and prints back', () => {
    expect(parsePrefixRange('10.244.0.0/16')).toMatchObject({ family: 'ipv4-unicast', prefix: '10.244.0.0/16', length: 16, ge: 16, le: 16 });
    expect(parsePrefixRange('10.244.0.0/16,le=32')).toMatchObject({ ge: 16, le: 32 });
    expect(parsePrefixRange('10.244.0.0/16,ge=24')).toMatchObject({ ge: 24, le: 32 });
    expect(parsePrefixRange('10.244.0.0/16, le=28 ,ge=24')).toMatchObject({ ge: 24, le: 28 });
    expect(parsePrefixRange('FD00:0::/48,ge=64')).toMatchObject({ family: 'ipv6-unicast', prefix: 'fd00::/48', ge: 64, le: 128 });
    for (const text of ['10.244.0.0/16', '10.244.0.0/16,le=32', '10.244.0.0/16,ge=24', '10.244.0.0/16,ge=24,le=28', 'fd00::/48,ge=64']) {
      expect(parsePrefixRange(text).toString()).toBe(text);
    }
    expect(prefixRange('10.0.0.0/8', { ge: 8, le: 8 }).toString()).toBe('10.0.0.0/8');
  });

  it.each([
    ['10.244.0.1/16', /host bits/],
    ['10.244.0.0/16,le=15', /le=15 must be an integer from the prefix length 16 to 32/],
    ['10.244.0.0/16,ge=33', /ge=33/],
    ['10.244.0.0/16,ge=28,le=24', /ge=28 is greater than le=24/],
    ['10.244.0.0/16,le=24,le=28', /le is given twice/],
    ['10.244.0.0/16,max=24', /"max=24" is not ge=<length> or le=<length>/],
    ['fd00::/48,le=129', /le=129/],
    ['nonsense', /prefix/],
  ])('refuses %j, naming the whole text', (text, reason) => {
    expect(() => parsePrefixRange(text)).toThrow(InvalidArgumentError);
    expect(() => parsePrefixRange(text)).toThrow(reason);
    expect(() => parsePrefixRange(text)).toThrow(JSON.stringify(text));
  });

  // [range, prefix, matches]
  const table: [string, string, boolean][] = [
    // Exact match without ge/le.
    ['10.244.0.0/16', '10.244.0.0/16', true],
    ['10.244.0.0/16', '10.244.1.0/24', false],
    ['10.244.0.0/16', '10.245.0.0/16', false],
    // le: lengths from the prefix length to le, inclusive at both ends.
    ['10.244.0.0/16,le=24', '10.244.0.0/16', true],
    ['10.244.0.0/16,le=24', '10.244.7.0/24', true],
    ['10.244.0.0/16,le=24', '10.244.7.128/25', false],
    // ge: from ge to 32.
    ['10.244.0.0/16,ge=24', '10.244.0.0/23', false],
    ['10.244.0.0/16,ge=24', '10.244.255.0/24', true],
    ['10.244.0.0/16,ge=24', '10.244.255.255/32', true],
    ['10.244.0.0/16,ge=24', '10.243.255.0/24', false],
    ['10.244.0.0/16,ge=24', '10.0.0.0/8', false],
    // Twill's default import: the cluster network, per-node block size to /32.
    ['10.244.0.0/16,ge=24,le=32', '10.244.3.0/24', true],
    ['10.244.0.0/16,ge=24,le=32', '10.244.3.4/32', true],
    ['10.244.0.0/16,ge=24,le=32', '10.244.0.0/16', false],
    // Whole space.
    ['0.0.0.0/0,le=32', '0.0.0.0/0', true],
    ['0.0.0.0/0,le=32', '192.0.2.1/32', true],
    ['0.0.0.0/0,le=32', '::/0', false],
    // Family never crosses.
    ['10.244.0.0/16,le=32', 'fd00::/64', false],
    ['::/0,le=128', '10.0.0.0/8', false],
    // IPv6, bits in every word.
    ['fd00:10:244::/48,ge=64,le=128', 'fd00:10:244:1::/64', true],
    ['fd00:10:244::/48,ge=64,le=128', 'fd00:10:245:1::/64', false],
    ['fd00:10:244::/48,ge=64,le=128', 'fd00:10:244::/48', false],
    ['fd00:10:244::/48,ge=64,le=128', 'fd00:10:244:ffff:ffff:ffff:ffff:ffff/128', true],
    ['fd00:10:244:1:2:3:4:0/112,le=128', 'fd00:10:244:1:2:3:4:5/128', true],
    ['fd00:10:244:1:2:3:4:0/112,le=128', 'fd00:10:244:1:2:3:5:5/128', false],
    ['fd00:10:244:1:2:3:4:0/127,le=128', 'fd00:10:244:1:2:3:4:1/128', true],
    ['fd00:10:244:1:2:3:4:0/127,le=128', 'fd00:10:244:1:2:3:4:2/128', false],
    // Odd lengths across an octet and a word boundary.
    ['10.244.128.0/17,le=32', '10.244.127.0/24', false],
    ['10.244.128.0/17,le=32', '10.244.128.0/24', true],
    ['fd00:0:8000::/33,le=64', 'fd00:0:8000::/48', true],
    ['fd00:0:8000::/33,le=64', 'fd00:0:7fff::/48', false],
    // Not a prefix: no match, no throw.
    ['0.0.0.0/0,le=32', '10.0.0.1/8', false],
  ];
  it.each(table)('%s matches %s: %s', (range, prefix, expected) => {
    expect(parsePrefixRange(range).matches(prefix)).toBe(expected);
  });

  it('a set matches when any range does; an empty set matches nothing', () => {
    const set = new PrefixSet(['10.244.0.0/16,ge=24', 'fd00::/48,ge=64']);
    expect(set.size).toBe(2);
    expect(set.matches('10.244.1.0/24')).toBe(true);
    expect(set.matches('fd00::/64')).toBe(true);
    expect(set.matches('192.168.0.0/24')).toBe(false);
    expect(new PrefixSet([]).matches('10.244.1.0/24')).toBe(false);
  });

  it('names the family of a prefix', () => {
    expect(familyOf('10.0.0.0/8')).toBe('ipv4-unicast');
    expect(familyOf('::/0')).toBe('ipv6-unicast');
  });
});

describe('AS_PATH arithmetic', () => {
  const seq = (...asns: number[]): AsPathSegment => ({ type: 'sequence', asns });
  const set = (...asns: number[]): AsPathSegment => ({ type: 'set', asns });

  it('length: a sequence counts each AS, a set counts 1, confederation segments 0 (RFC 4271 §9.1.2.2 a, RFC 5065)', () => {
    expect(asPathLength([])).toBe(0);
    expect(asPathLength([seq(1, 2, 3)])).toBe(3);
    expect(asPathLength([seq(1), set(2, 3, 4)])).toBe(2);
    expect(asPathLength([{ type: 'confed-sequence', asns: [7, 8] }, { type: 'confed-set', asns: [9] }, seq(1)])).toBe(1);
  });

  it('finds an AS anywhere, sets included', () => {
    expect(asPathContains([seq(1, 2), set(3, 4)], 4)).toBe(true);
    expect(asPathContains([seq(1, 2)], 3)).toBe(false);
  });

  it('neighbour AS: the first of a leading sequence, else our own', () => {
    expect(neighbourAs([seq(65001, 65002)], 65000)).toBe(65001);
    expect(neighbourAs([], 65000)).toBe(65000);
    expect(neighbourAs([set(65001)], 65000)).toBe(65000);
    expect(neighbourAs([{ type: 'confed-sequence', asns: [7] }, seq(65003)], 65000)).toBe(65003);
  });

  it('prepends into a leading sequence, or a new one before a set, an empty or a full path; drops confed segments', () => {
    expect(prependAs([], 65000)).toEqual([seq(65000)]);
    expect(prependAs([seq(1, 2)], 65000)).toEqual([seq(65000, 1, 2)]);
    expect(prependAs([set(1, 2)], 65000)).toEqual([seq(65000), set(1, 2)]);
    const full = seq(...Array.from({ length: 255 }, (_, i) => i + 1));
    expect(prependAs([full], 65000)).toEqual([seq(65000), full]);
    expect(prependAs([{ type: 'confed-sequence', asns: [7] }, seq(1)], 65000)).toEqual([seq(65000, 1)]);
  });
});
