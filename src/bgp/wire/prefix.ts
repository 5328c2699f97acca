// Prefixes in NLRI encoding (RFC 4271 §4.3: a length octet, then just enough octets to hold that
// many bits), read into numbers (../prefix/prefix-list.ts), and in text (canonical, see Prefix in
// ../types.ts) for the encoder and the public decoder.
import { InvalidArgumentError } from '../../core/errors.js';
import type { Family, Prefix } from '../types.js';
import { parseIpv4Value } from '../../core/ip.js';
import { PrefixList } from '../prefix/prefix-list.js';
import { parseIpv6Into } from './address.js';
import { UpdateErrorSubcode } from './notification-codes.js';
import { updateError } from './errors.js';

/** Network masks by prefix length as int32 (MASK[0] = 0, MASK[32] = all ones). */
const MASK = Int32Array.from({ length: 33 }, (_, i) => (i === 0 ? 0 : -1 << (32 - i)));

/** The largest NLRI encoding of a prefix (a /128). */
export const MAX_PREFIX_WIRE = 17;

function maxPrefixLength(family: Family): number {
  return family === 'ipv4-unicast' ? 32 : 128;
}

function badNlri(what: string): never {
  throw updateError(UpdateErrorSubcode.INVALID_NETWORK_FIELD, `UPDATE: ${what} (RFC 4271 §6.3)`);
}

/**
 * Reads the prefixes in buf[start, end) straight into numbers (a PrefixList sized exactly: one
 * pass checks and counts, a second fills). A bad length or an overrun is an invalid network
 * field (RFC 4271 §6.3). Host bits beyond the length are cleared, so equal prefixes are equal keys.
 */
export function readPrefixes(family: Family, buf: Uint8Array, start: number, end: number): PrefixList {
  const list = new PrefixList(family, countPrefixes(family, buf, start, end));
  fill(buf, start, end, list);
  return list;
}

/**
 * readPrefixes() appended to `list` (of the family the field carries): a joined run of UPDATEs
 * (update-join.ts) grows one list instead of decoding each message into its own and copying it
 * over. The field is checked whole before anything is written, so a bad one leaves `list` as it was.
 */
export function readPrefixesInto(list: PrefixList, buf: Uint8Array, start: number, end: number): void {
  list.makeRoom(countPrefixes(list.family, buf, start, end));
  fill(buf, start, end, list);
}

/** How many prefixes buf[start, end) holds; throws on a bad length or an overrun. */
function countPrefixes(family: Family, buf: Uint8Array, start: number, end: number): number {
  const max = maxPrefixLength(family);
  const name = family === 'ipv4-unicast' ? 'IPv4' : 'IPv6';
  let count = 0;
  for (let p = start; p < end; count++) {
    const len = buf[p++]!;
    if (len > max) badNlri(`${name} prefix length ${len} is more than ${max}`);
    p += (len + 7) >> 3;
    if (p > end) badNlri(`${name} prefix /${len} runs past its field`);
  }
  return count;
}

/** Appends the prefixes of a checked field (countPrefixes) to `list`, which has room for them. */
function fill(buf: Uint8Array, start: number, end: number, list: PrefixList): void {
  if (list.stride === 1) readIpv4(buf, start, end, list);
  else readIpv6(buf, start, end, list);
}

function readIpv4(buf: Uint8Array, start: number, end: number, list: PrefixList): void {
  // The hot loop of a table transfer: a few loads and shifts per prefix, nothing allocated.
  const words = list.words;
  const lens = list.lens;
  let i = list.count;
  for (let p = start; p < end; i++) {
    const len = buf[p++]!;
    const n = (len + 7) >> 3;
    let v = 0;
    if (n > 0) {
      v = buf[p]! << 24;
      if (n > 1) {
        v |= buf[p + 1]! << 16;
        if (n > 2) v |= (buf[p + 2]! << 8) | (n > 3 ? buf[p + 3]! : 0);
      }
    }
    p += n;
    words[i] = v & MASK[len]!;
    lens[i] = len;
  }
  list.count = i;
}

function readIpv6(buf: Uint8Array, start: number, end: number, list: PrefixList): void {
  const words = list.words;
  const lens = list.lens;
  let i = list.count;
  for (let p = start; p < end; i++) {
    const len = buf[p++]!;
    const n = (len + 7) >> 3;
    for (let k = 0; k < 4; k++) {
      // Word k holds bytes 4k..4k+3; those beyond the encoded n are zero.
      let w = 0;
      for (let j = 0; j < 4; j++) w = (w << 8) | (4 * k + j < n ? buf[p + 4 * k + j]! : 0);
      const bits = len - 32 * k;
      words[4 * i + k] = bits >= 32 ? w >>> 0 : bits <= 0 ? 0 : (w & MASK[bits]!) >>> 0;
    }
    p += n;
    lens[i] = len;
  }
  list.count = i;
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
  const n = (length + 7) >> 3;
  const wire = new Uint8Array(1 + n);
  wire[0] = length;
  wire.set(bytes.subarray(0, n), 1);
  return readPrefixes(family, wire, 0, wire.length).text(0);
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
