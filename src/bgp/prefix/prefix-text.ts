// Between a numeric prefix (prefix-list.ts) and its canonical text. Text is made only where a
// person or the public API sees a prefix (events, status, tests); the tables never hold it.

import type { Prefix } from '../types.js';
import { PrefixBits, readPrefix } from '../policy/prefix-bits.js';
import { formatIpv6 } from '../wire/address.js';

/** ASCII digits of 0..255: DIGITS[4v] is the count, then up to three char codes. */
const DIGITS = new Uint8Array(256 * 4);
for (let v = 0; v < 256; v++) {
  const text = String(v);
  DIGITS[4 * v] = text.length;
  for (let k = 0; k < text.length; k++) DIGITS[4 * v + 1 + k] = text.charCodeAt(k);
}
/** Char code arrays for String.fromCharCode, one per text length ("0.0.0.0/0" is 9, "255.255.255.255/32" 18). */
const CODES: number[][] = Array.from({ length: 19 }, (_, n) => new Array<number>(n).fill(0));
const SLASH_LEN: readonly string[] = Array.from({ length: 129 }, (_, i) => `/${i}`);

/** Writes the decimal digits of `v` (0..255) and then `sep` at codes[w..]; returns the new end. */
function putOctet(codes: number[], v: number, w: number, sep: number): number {
  const o = 4 * v;
  const n = DIGITS[o]!;
  codes[w] = DIGITS[o + 1]!;
  if (n > 1) {
    codes[w + 1] = DIGITS[o + 2]!;
    if (n > 2) codes[w + 2] = DIGITS[o + 3]!;
  }
  if (w + n < codes.length) codes[w + n] = sep;
  return w + n + 1;
}

/**
 * "a.b.c.d/len" for an IPv4 network address. Built from char codes in one call, which gives a
 * flat string: a chain of concatenations would leave a rope that is flattened again when hashed.
 */
export function formatIpv4Prefix(addr: number, len: number): Prefix {
  const a = addr >>> 24;
  const b = (addr >>> 16) & 255;
  const c = (addr >>> 8) & 255;
  const d = addr & 255;
  const codes = CODES[DIGITS[4 * a]! + DIGITS[4 * b]! + DIGITS[4 * c]! + DIGITS[4 * d]! + DIGITS[4 * len]! + 4]!;
  putOctet(codes, len, putOctet(codes, d, putOctet(codes, c, putOctet(codes, b, putOctet(codes, a, 0, 46), 46), 46), 47), 0);
  return String.fromCharCode.apply(null, codes);
}

const v6Bytes = new Uint8Array(16);

/** The canonical text of the prefix at `words[at..]` (`stride` 1: IPv4, 4: IPv6 in RFC 5952 form). */
export function formatPrefixWords(stride: 1 | 4, words: Uint32Array, at: number, len: number): Prefix {
  if (stride === 1) return formatIpv4Prefix(words[at]!, len);
  const b = v6Bytes;
  for (let k = 0; k < 4; k++) {
    const w = words[at + k]!;
    b[4 * k] = w >>> 24;
    b[4 * k + 1] = (w >>> 16) & 255;
    b[4 * k + 2] = (w >>> 8) & 255;
    b[4 * k + 3] = w & 255;
  }
  return formatIpv6(b) + SLASH_LEN[len]!;
}

const scratchBits = new PrefixBits();

/**
 * Reads prefix text ("10.244.1.0/24", "fd00::/64") into `out` (room for four words). Returns the
 * length with the family's bit (IPV6_FLAG) added for IPv6, or -1 for text that is not a prefix
 * with host bits zero (readPrefix's rules).
 */
export function readPrefixWords(text: string, out: Uint32Array): number {
  const bits = scratchBits;
  if (!readPrefix(text, bits)) return -1;
  out[0] = bits.w0;
  out[1] = bits.w1;
  out[2] = bits.w2;
  out[3] = bits.w3;
  return bits.v6 ? bits.length | IPV6_FLAG : bits.length;
}

/** Set in readPrefixWords()'s result for an IPv6 prefix; the length is the low 8 bits. */
export const IPV6_FLAG = 0x100;
