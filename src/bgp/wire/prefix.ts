// Prefixes in text (canonical, see Prefix in ../types.ts) and in NLRI encoding (RFC 4271 §4.3:
// a length octet, then just enough octets to hold that many bits).
import { InvalidArgumentError } from '../../core/errors.js';
import type { Family, Prefix } from '../types.js';
import { parseIpv4Value } from '../../core/ip.js';
import { formatIpv6, parseIpv6Into } from './address.js';
import { UpdateErrorSubcode } from './notification-codes.js';
import { updateError } from './errors.js';

const SLASH_LEN: readonly string[] = Array.from({ length: 129 }, (_, i) => `/${i}`);
/** Network masks by prefix length as int32 (MASK[0] = 0, MASK[32] = all ones). */
const MASK = Int32Array.from({ length: 33 }, (_, i) => (i === 0 ? 0 : -1 << (32 - i)));

/** The largest NLRI encoding of a prefix (a /128). */
export const MAX_PREFIX_WIRE = 17;

function maxPrefixLength(family: Family): number {
  return family === 'ipv4-unicast' ? 32 : 128;
}

/** Reads the prefixes in buf[start, end) into `out`. A bad length or an overrun is an invalid network field (RFC 4271 §6.3). */
export function readPrefixes(family: Family, buf: Uint8Array, start: number, end: number, out: Prefix[]): void {
  if (family === 'ipv4-unicast') readIpv4Prefixes(buf, start, end, out);
  else readIpv6Prefixes(buf, start, end, out);
}

function badNlri(what: string): never {
  throw updateError(UpdateErrorSubcode.INVALID_NETWORK_FIELD, `UPDATE: ${what} (RFC 4271 §6.3)`);
}

/** ASCII digits of 0..255: DIGITS[4v] is the count, then up to three char codes. */
const DIGITS = new Uint8Array(256 * 4);
for (let v = 0; v < 256; v++) {
  const text = String(v);
  DIGITS[4 * v] = text.length;
  for (let k = 0; k < text.length; k++) DIGITS[4 * v + 1 + k] = text.charCodeAt(k);
}
/** Char code arrays for String.fromCharCode, one per text length ("0.0.0.0/0" is 9, "255.255.255.255/32" 18). */
const CODES: number[][] = Array.from({ length: 19 }, (_, n) => new Array<number>(n).fill(0));

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

function readIpv4Prefixes(buf: Uint8Array, start: number, end: number, out: Prefix[]): void {
  // The hot loop of a table transfer: no Buffer or number formatting per prefix. The text is
  // built from char codes in one call, giving a flat string: a chain of concatenations would
  // leave a rope that takes a third more memory in a RIB and is flattened again when hashed.
  let p = start;
  while (p < end) {
    const len = buf[p++]!;
    if (len > 32) badNlri(`IPv4 prefix length ${len} is more than 32`);
    const n = (len + 7) >> 3;
    if (p + n > end) badNlri(`IPv4 prefix /${len} runs past its field`);
    let v = 0;
    if (n > 0) {
      v = buf[p]! << 24;
      if (n > 1) {
        v |= buf[p + 1]! << 16;
        if (n > 2) v |= (buf[p + 2]! << 8) | (n > 3 ? buf[p + 3]! : 0);
      }
    }
    p += n;
    // Clear host bits beyond the length so equal prefixes are equal strings.
    v &= MASK[len]!;
    const a = v >>> 24;
    const b = (v >>> 16) & 255;
    const c = (v >>> 8) & 255;
    const d = v & 255;
    const codes = CODES[DIGITS[4 * a]! + DIGITS[4 * b]! + DIGITS[4 * c]! + DIGITS[4 * d]! + DIGITS[4 * len]! + 4]!;
    putOctet(codes, len, putOctet(codes, d, putOctet(codes, c, putOctet(codes, b, putOctet(codes, a, 0, 46), 46), 46), 47), 0);
    out.push(String.fromCharCode.apply(null, codes));
  }
}

const v6Scratch = new Uint8Array(16);

function readIpv6Prefixes(buf: Uint8Array, start: number, end: number, out: Prefix[]): void {
  const a = v6Scratch;
  let p = start;
  while (p < end) {
    const len = buf[p++]!;
    if (len > 128) badNlri(`IPv6 prefix length ${len} is more than 128`);
    const n = (len + 7) >> 3;
    if (p + n > end) badNlri(`IPv6 prefix /${len} runs past its field`);
    a.fill(0);
    for (let k = 0; k < n; k++) a[k] = buf[p + k]!;
    p += n;
    if (len & 7) a[n - 1]! &= (0xff00 >> (len & 7)) & 0xff;
    out.push(formatIpv6(a) + SLASH_LEN[len]!);
  }
}

export interface ParsedPrefix {
  readonly family: Family;
  /** The network address, 4 or 16 bytes, host bits cleared. */
  readonly bytes: Buffer;
  readonly length: number;
  /** The canonical text, e.g. "10.244.1.0/24" for "10.244.1.7/24". */
  readonly text: Prefix;
}

/** Parses "a.b.c.d/len" or "x:y::z/len", clearing host bits; throws InvalidArgumentError on anything else. */
export function parsePrefix(text: string): ParsedPrefix {
  const bad = (reason: string): never => {
    throw new InvalidArgumentError('prefix', text, reason);
  };
  if (typeof text !== 'string') bad('not a string');
  const slash = text.indexOf('/');
  if (slash < 0) bad('missing "/length"');
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) bad('the length is not a number');
  const length = Number(lenText);
  let bytes: Buffer;
  let family: Family;
  const v4 = parseIpv4Value(text, 0, slash);
  if (v4 >= 0) {
    family = 'ipv4-unicast';
    bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(v4);
  } else {
    family = 'ipv6-unicast';
    bytes = Buffer.alloc(16);
    if (!parseIpv6Into(text, 0, slash, bytes, 0)) bad('the address is neither IPv4 nor IPv6');
  }
  const max = maxPrefixLength(family);
  if (length > max) bad(`the length must be 0..${max}`);
  clearHostBits(bytes, length);
  return { family, bytes, length, text: formatPrefix(family, bytes, length) };
}

function clearHostBits(bytes: Uint8Array, length: number): void {
  for (let i = length >> 3; i < bytes.length; i++) {
    const keep = Math.max(0, length - i * 8);
    bytes[i]! &= keep >= 8 ? 0xff : (0xff00 >> keep) & 0xff;
  }
}

/** Canonical text of a prefix given its network bytes (at least ceil(length/8) of them). */
export function formatPrefix(family: Family, bytes: Uint8Array, length: number): Prefix {
  const out: Prefix[] = [];
  const n = (length + 7) >> 3;
  const wire = new Uint8Array(1 + n);
  wire[0] = length;
  wire.set(bytes.subarray(0, n), 1);
  readPrefixes(family, wire, 0, wire.length, out);
  return out[0]!;
}

/**
 * Writes `prefix` in NLRI encoding at out[off..] and returns the offset after it. The IPv4 path
 * reads the dotted quad by char codes; anything unusual goes through parsePrefix, which throws
 * InvalidArgumentError for text that is not a prefix of `family`. `out` needs MAX_PREFIX_WIRE bytes free.
 */
export function writePrefix(family: Family, prefix: Prefix, out: Uint8Array, off: number): number {
  if (family === 'ipv4-unicast') {
    const end = writeIpv4Fast(prefix, out, off);
    if (end >= 0) return end;
  }
  const parsed = parsePrefix(prefix);
  if (parsed.family !== family) throw new InvalidArgumentError(`${family} prefix`, prefix, 'wrong address family');
  const n = (parsed.length + 7) >> 3;
  out[off] = parsed.length;
  out.set(parsed.bytes.subarray(0, n), off + 1);
  return off + 1 + n;
}

function writeIpv4Fast(text: string, out: Uint8Array, off: number): number {
  const slash = text.indexOf('/', 7);
  if (slash < 0 || slash > 15 || text.length - slash > 3 || text.length === slash + 1) return -1;
  let len = 0;
  for (let i = slash + 1; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    len = len * 10 + c;
  }
  const v = parseIpv4Value(text, 0, slash);
  if (v < 0 || len > 32) return -1;
  const net = v & MASK[len]!;
  const n = (len + 7) >> 3;
  out[off] = len;
  for (let k = 0; k < n; k++) out[off + 1 + k] = (net >>> (24 - 8 * k)) & 255;
  return off + 1 + n;
}
