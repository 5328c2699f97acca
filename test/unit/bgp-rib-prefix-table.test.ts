// The numeric prefix structures under the RIB: PrefixList (what the codec decodes NLRI into),
// the text form of a numeric prefix, and PrefixTable (the RIB's hash table), which must behave
// exactly like a Map keyed by canonical prefix text, insertion order included.

import { describe, expect, it } from 'vitest';
import { concatLists, PrefixList } from '../../src/bgp/prefix/prefix-list.js';
import { hashPrefix, PrefixTable } from '../../src/bgp/prefix/prefix-table.js';
import { formatIpv4Prefix, IPV6_FLAG, readPrefixWords } from '../../src/bgp/prefix/prefix-text.js';
import type { Family } from '../../src/bgp/types.js';
import { prng } from './bgp-prng.js';

/** The key words and length of canonical prefix text. */
function key(text: string): { words: Uint32Array; len: number; family: Family } {
  const words = new Uint32Array(4);
  const read = readPrefixWords(text, words);
  if (read < 0) throw new Error(`not a prefix: ${text}`);
  return { words, len: read & 0xff, family: (read & IPV6_FLAG) !== 0 ? 'ipv6-unicast' : 'ipv4-unicast' };
}

function put<V>(table: PrefixTable<V>, text: string, value: V): number {
  const k = key(text);
  return table.set(k.words, 0, k.len, value);
}

function get<V>(table: PrefixTable<V>, text: string): V | undefined {
  const k = key(text);
  return table.get(k.words, 0, k.len);
}

function del<V>(table: PrefixTable<V>, text: string): V | undefined {
  const k = key(text);
  return table.delete(k.words, 0, k.len);
}

/** The table's live entries as [prefix text, value], in iteration order. */
function entries<V>(table: PrefixTable<V>): [string, V][] {
  const out: [string, V][] = [];
  for (let e = table.next(0); e >= 0; e = table.next(e + 1)) out.push([table.text(e), table.valueAt(e)]);
  return out;
}

describe('PrefixList and prefix text', () => {
  it('keeps prefixes as words and lengths and gives canonical text back', () => {
    const v4 = new PrefixList('ipv4-unicast', 1);
    for (const p of ['10.244.1.0/24', '0.0.0.0/0', '255.255.255.255/32', '100.64.0.7/32']) {
      const k = key(p);
      v4.push(k.words, 0, k.len);
    }
    expect(v4.count).toBe(4);
    expect(v4.texts()).toEqual(['10.244.1.0/24', '0.0.0.0/0', '255.255.255.255/32', '100.64.0.7/32']);
    const v6 = new PrefixList('ipv6-unicast');
    for (const p of ['fd00:10:244:1::/64', '::/0', '2001:db8::1/128', 'fd00::/8']) {
      const k = key(p);
      v6.push(k.words, 0, k.len);
    }
    expect(v6.texts()).toEqual(['fd00:10:244:1::/64', '::/0', '2001:db8::1/128', 'fd00::/8']);
    expect(concatLists(v4, v4).texts()).toEqual([...v4.texts(), ...v4.texts()]);
  });

  it('formats every octet value and length as the text parser reads it', () => {
    const rng = prng(7);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rng.next() * 33);
      const addr = len === 0 ? 0 : (Math.floor(rng.next() * 2 ** 32) & (-1 << (32 - len))) >>> 0;
      const text = formatIpv4Prefix(addr, len);
      const k = key(text);
      expect([k.words[0], k.len, k.family]).toEqual([addr, len, 'ipv4-unicast']);
    }
  });

  it('refuses text that is not a prefix with host bits zero', () => {
    const words = new Uint32Array(4);
    for (const bad of ['10.244.1.1/24', '10.244.1.0', '10.244.1.0/33', 'fd00::1/64', 'x/8', '']) expect(readPrefixWords(bad, words)).toBe(-1);
  });
});

describe('PrefixTable', () => {
  it('inserts, finds, replaces and deletes, for IPv4 and IPv6', () => {
    for (const [family, a, b] of [['ipv4-unicast', '10.244.1.0/24', '10.244.1.0/25'], ['ipv6-unicast', 'fd00:1::/64', 'fd00:1::/65']] as const) {
      const table = new PrefixTable<string>(family);
      put(table, a, 'a');
      put(table, b, 'b');
      expect([get(table, a), get(table, b), table.size]).toEqual(['a', 'b', 2]);
      // The same address with another length is another key.
      put(table, a, 'a2');
      expect(entries(table)).toEqual([[a, 'a2'], [b, 'b']]);
      expect(del(table, a)).toBe('a2');
      expect(del(table, a)).toBeUndefined();
      expect([get(table, a), table.size]).toEqual([undefined, 1]);
    }
  });

  it('tells apart keys whose hashes share a slot (collisions) and grows past its first capacity', () => {
    // Prefixes chosen to start their probe at the same slot of the smallest index (16 slots).
    const table = new PrefixTable<number>('ipv4-unicast');
    const same: string[] = [];
    const target = hashPrefix(key('10.0.0.0/32').words, 0, 1, 32) & 15;
    for (let i = 0; same.length < 6; i++) {
      const p = `10.0.${i >> 8}.${i & 255}/32`;
      if ((hashPrefix(key(p).words, 0, 1, 32) & 15) === target) same.push(p);
    }
    same.forEach((p, i) => put(table, p, i));
    same.forEach((p, i) => expect(get(table, p)).toBe(i));
    expect(get(table, '10.9.9.9/32')).toBeUndefined();
    // Delete one in the middle of the probe sequence: the later ones must still be found.
    del(table, same[1]!);
    expect(same.map((p) => get(table, p))).toEqual([0, undefined, 2, 3, 4, 5]);
    for (let i = 0; i < 5000; i++) put(table, `10.1.${i >> 8}.${i & 255}/32`, 100 + i);
    for (let i = 0; i < 5000; i += 97) expect(get(table, `10.1.${i >> 8}.${i & 255}/32`)).toBe(100 + i);
    expect(table.size).toBe(5005);
    expect(same.map((p) => get(table, p))).toEqual([0, undefined, 2, 3, 4, 5]);
  });

  it('tells apart keys whose slots also hold the same hash bits, and refuses to grow past its limit', () => {
    // A slot keeps only the top byte of the hash: these keys start at the same slot and carry
    // the same byte, so only their keys tell them apart.
    const table = new PrefixTable<number>('ipv4-unicast');
    const bits = (p: string): number => {
      const h = hashPrefix(key(p).words, 0, 1, 32);
      return (h & 15) | ((h >>> 24) << 4);
    };
    const target = bits('10.0.0.0/32');
    const same: string[] = ['10.0.0.0/32'];
    for (let i = 1; same.length < 4; i++) {
      const p = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`;
      if (bits(p) === target) same.push(p);
    }
    same.slice(0, 3).forEach((p, i) => put(table, p, i));
    expect(same.map((p) => get(table, p))).toEqual([0, 1, 2, undefined]);
    del(table, same[0]!);
    expect(same.map((p) => get(table, p))).toEqual([undefined, 1, 2, undefined]);
    expect(() => new PrefixTable<number>('ipv4-unicast', 2 ** 23 + 1)).toThrow(RangeError);
  });

  it('behaves like a Map keyed by prefix text through random inserts, replacements and deletions, order included', () => {
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      const rng = prng(family === 'ipv4-unicast' ? 1 : 2);
      const table = new PrefixTable<number>(family);
      const model = new Map<string, number>();
      // A small universe, so keys come back after being deleted (and go to the end, as with a Map).
      const universe = Array.from({ length: 300 }, (_, i) => (family === 'ipv4-unicast' ? `10.${i % 7}.${i % 256}.0/${24 + (i % 3)}` : `fd00:${i % 5}:${i.toString(16)}::/${64 + (i % 3)}`));
      for (let step = 0; step < 20_000; step++) {
        const p = universe[Math.floor(rng.next() * universe.length)]!;
        if (rng.next() < 0.4) {
          expect(del(table, p)).toBe(model.get(p));
          model.delete(p);
        } else {
          // Few distinct values, so entries share them (each is held once, counted).
          put(table, p, step % 17);
          model.set(p, step % 17);
        }
        if (step % 1000 === 0) table.compact();
      }
      expect(table.size).toBe(model.size);
      expect(entries(table)).toEqual([...model]);
    }
  });

  it('walks safely while its entries are deleted, and compacts afterwards', () => {
    const table = new PrefixTable<number>('ipv4-unicast');
    for (let i = 0; i < 1000; i++) put(table, `10.2.${i >> 8}.${i & 255}/32`, i);
    let seen = 0;
    for (let e = table.next(0); e >= 0; e = table.next(e + 1)) {
      seen++;
      if (table.valueAt(e) % 10 !== 0) table.deleteAt(e);
    }
    expect([seen, table.size]).toEqual([1000, 100]);
    table.compact();
    expect(entries(table).map(([, v]) => v)).toEqual(Array.from({ length: 100 }, (_, i) => 10 * i));
    expect(get(table, '10.2.0.20/32')).toBe(20);
  });

  it('finds the entries of another table of the family and copies keys out', () => {
    const a = new PrefixTable<string>('ipv6-unicast');
    const b = new PrefixTable<string>('ipv6-unicast');
    put(a, 'fd00::/64', 'x');
    put(b, '2001:db8::/32', 'y');
    put(b, 'fd00::/64', 'z');
    const e = a.next(0);
    expect(b.valueAt(b.findEntryOf(a, e))).toBe('z');
    const list = new PrefixList('ipv6-unicast');
    b.copyKey(b.next(0), list);
    a.copyKey(e, list);
    expect(list.texts()).toEqual(['2001:db8::/32', 'fd00::/64']);
    a.clear();
    expect([a.size, a.next(0)]).toEqual([0, -1]);
  });
});
