import { InvalidArgumentError } from './errors.js';

export type IpFamily = 4 | 6;

/** An IP address held both as text (canonical) and as network-order bytes. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly text: string;
  readonly bytes: Buffer;
}

/** A prefix such as 10.244.1.0/24. `address` keeps the host bits as given (e.g. 10.244.1.1/24). */
export interface Cidr {
  readonly address: IpAddress;
  readonly prefixLength: number;
}

/**
 * Parses the dotted quad in text[start, end) to its 32-bit value, or -1 when it is not exactly four
 * decimal octets 0..255 without leading zeros (the form node:net's isIPv4 accepts, so the text is
 * canonical). One pass, no regex or split: lease syncs and BGP tables parse tens of thousands,
 * and best-path tie-breaks and collision resolution compare router ids by this value.
 */
export function parseIpv4Value(text: string, start = 0, end = text.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero ("01" could be read as octal)
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

/** Whether text is a dotted quad as node:net's isIPv4 accepts it (no leading zeros). */
export function isIpv4Text(text: string): boolean {
  return parseIpv4Value(text) >= 0;
}

/** Whether text is an IPv6 address as node:net's isIPv6 accepts it, without a "%zone". */
export function isIpv6Text(text: string): boolean {
  return ipv6Groups(text) !== undefined;
}

/** The value of a hex digit's char code, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * The 8 groups of an IPv6 address in RFC 4291 §2.2 text form (hex groups, at most one "::", an
 * optional dotted quad as the last two groups; no zone), in one pass, or undefined when the text
 * is not one: exactly the texts node:net's isIPv6 accepts without a "%zone". Lease syncs parse tens
 * of thousands of these; a regex, splits and arrays cost a dual-stack sync of 5,000 leases about a
 * third of its time. And no node:net: loading it (with the streams it loads) cost each CNI call
 * without the agent about 4 ms (its own start-up, docs/design/cni-shim-and-socket.md).
 */
function ipv6Groups(text: string): Uint16Array | undefined {
  const n = text.length;
  if (n < 2) return undefined;
  const groups = new Uint16Array(8);
  let count = 0;
  let gap = -1; // where "::" stands, as a group index
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let value = 0;
    let digits = 0;
    for (; i < n; i++) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      if (++digits > 4) return undefined;
    }
    if (i < n && text.charCodeAt(i) === 46) {
      // A dotted quad ends the text and stands for the last two groups ("::ffff:192.0.2.1").
      const quad = parseIpv4Value(text, start, n);
      if (quad < 0 || count > 6) return undefined;
      groups[count++] = Math.floor(quad / 0x10000);
      groups[count++] = quad % 0x10000;
      break;
    }
    if (digits === 0 || count === 8) return undefined;
    groups[count++] = value;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return undefined;
    i++;
    if (i < n && text.charCodeAt(i) === 58) {
      if (gap >= 0) return undefined;
      gap = count;
      i++;
    } else if (i === n) {
      return undefined; // a trailing single ":"
    }
  }
  if (gap < 0) return count === 8 ? groups : undefined;
  if (count > 7) return undefined;
  // Move the groups after "::" to the end; zeros fill the gap.
  const tail = count - gap;
  for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return groups;
}

/** RFC 5952 text of 8 groups: lower case, the longest run of two or more zero groups compressed (the first on a tie). */
function formatIpv6Groups(groups: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += groups[i]!.toString(16);
  }
  return out;
}

/** Formats 4 or 16 network-order bytes as an address in canonical text form (RFC 5952 for IPv6). */

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]!}.${bytes[1]!}.${bytes[2]!}.${bytes[3]!}`;
  if (bytes.length !== 16) throw new InvalidArgumentError('IP address bytes', bytes.length, 'need 4 or 16 bytes');
  const groups = new Uint16Array(8);
  for (let i = 0; i < 8; i++) groups[i] = (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  return formatIpv6Groups(groups);
}

/** Parses an IPv4 or IPv6 address; throws InvalidArgumentError naming the value otherwise. */
export function parseIp(text: string, what = 'IP address'): IpAddress {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  const v4 = parseIpv4Value(text);
  if (v4 >= 0) {
    // Only canonical dotted quads pass (no leading zeros), so the text is canonical.
    const bytes = Buffer.allocUnsafe(4);
    bytes.writeUInt32BE(v4);
    return { family: 4, bytes, text };
  }
  const groups = ipv6Groups(text);
  if (groups !== undefined) {
    const bytes = Buffer.allocUnsafe(16);
    for (let i = 0; i < 8; i++) bytes.writeUInt16BE(groups[i]!, 2 * i);
    return { family: 6, bytes, text: formatIpv6Groups(groups) };
  }
  throw new InvalidArgumentError(what, text, 'not an IPv4 or IPv6 address');
}

/** Parses "a.b.c.d/len" or "x::y/len". The host part may be non-zero (an interface address). */
export function parseCidr(text: string, what = 'CIDR'): Cidr {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  const slash = text.indexOf('/');
  if (slash < 0) throw new InvalidArgumentError(what, text, 'missing "/prefix-length"');
  const lenText = text.slice(slash + 1);
  let address: IpAddress;
  try {
    address = parseIp(text.slice(0, slash));
  } catch {
    throw new InvalidArgumentError(what, text, 'the address part is not an IPv4 or IPv6 address');
  }
  const max = address.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new InvalidArgumentError(what, text, `prefix length must be an integer 0..${max}`);
  }
  return { address, prefixLength: Number(lenText) };
}

/** The network address of a prefix (host bits cleared). */
export function networkOf(cidr: Cidr): IpAddress {
  // Most prefixes handled are networks already (every lease subnet): hand back the same address
  // rather than copy and re-format it, which a sync of thousands of leases felt.
  if (!hasHostBits(cidr)) return cidr.address;
  const bytes = Buffer.from(cidr.address.bytes);
  for (let bit = cidr.prefixLength; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  return { family: cidr.address.family, bytes, text: formatIp(bytes) };
}

/** The broadcast address of a prefix (host bits set), e.g. 10.244.3.255 for 10.244.3.1/24. */
export function broadcastOf(cidr: Cidr): Buffer {
  const bytes = Buffer.from(cidr.address.bytes);
  for (let bit = cidr.prefixLength; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  return bytes;
}

function hasHostBits(cidr: Cidr): boolean {
  const { bytes } = cidr.address;
  for (let bit = cidr.prefixLength; bit < bytes.length * 8; bit++) {
    if ((bytes[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) return true;
  }
  return false;
}

/** True when the prefix has no host bits set (10.244.1.0/24, not 10.244.1.1/24). */
export function isNetworkAddress(cidr: Cidr): boolean {
  return !hasHostBits(cidr);
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address.text}/${cidr.prefixLength}`;
}

/** The network of an address with its prefix length, as text: "10.244.3.1/24" -> "10.244.3.0/24". */
export function networkPrefix(text: string, what = 'CIDR'): string {
  const cidr = parseCidr(text, what);
  return formatCidr({ address: networkOf(cidr), prefixLength: cidr.prefixLength });
}

/** Parses a CIDR and requires it to be a network (no host bits), as a route destination must be. */
export function parsePrefix(text: string, what = 'prefix'): Cidr {
  const cidr = parseCidr(text, what);
  if (!isNetworkAddress(cidr)) {
    throw new InvalidArgumentError(what, text, `host bits are set (the network is ${formatCidr({ address: networkOf(cidr), prefixLength: cidr.prefixLength })})`);
  }
  return cidr;
}

/** True when `inner` lies inside `outer` (same family, at least as long, same network bits). */
export function prefixContains(outer: Cidr, inner: Cidr): boolean {
  if (inner.address.family !== outer.address.family || inner.prefixLength < outer.prefixLength) return false;
  // The first outer.prefixLength bits agree: whole bytes, then the masked remainder.
  const a = outer.address.bytes;
  const b = inner.address.bytes;
  const whole = outer.prefixLength >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = outer.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** The sort key of an item whose prefix does not parse (those sort last, by text). */
const EMPTY = Buffer.alloc(0);

/** An item's sort key: `value` orders IPv4 addresses, `bytes` IPv6 ones. */
interface PrefixSortKey<T> {
  readonly item: T;
  /** 4, 6, or 9 for text that is not a prefix. */
  readonly family: number;
  readonly value: number;
  readonly bytes: Buffer;
  readonly length: number;
  readonly text: string;
}

/**
 * Reads "<a.b.c.d><separator><length>" in one pass, as every lease subnet and every prefix Twill
 * formats is written: a canonical dotted quad (parseIpv4Value), the separator ("/" in a CIDR, "-"
 * in a lease key name), and a length of 0..32 in canonical digits ("24", not "024"). Returns
 * address * 64 + length (both fit a double exactly; nothing is allocated, since lease syncs and
 * BGP tables read tens of thousands), or -1 for any other text, which the general parsers then
 * read. Host bits are allowed: plainIpv4Address and plainIpv4Length take the parts apart.
 */
export function readPlainIpv4Prefix(text: string, separator: '/' | '-' = '/'): number {
  const at = text.indexOf(separator);
  const digits = text.length - at - 1;
  if (at < 7 || digits < 1 || digits > 2 || (digits === 2 && text.charCodeAt(at + 1) === 48)) return -1;
  let length = 0;
  for (let i = at + 1; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    length = length * 10 + d;
  }
  if (length > 32) return -1;
  const address = parseIpv4Value(text, 0, at);
  return address < 0 ? -1 : address * 64 + length;
}

/** The address of readPlainIpv4Prefix's result. */
export const plainIpv4Address = (plain: number): number => Math.floor(plain / 64);
/** The prefix length of readPlainIpv4Prefix's result. */
export const plainIpv4Length = (plain: number): number => plain % 64;
/** Whether prefix `inner` lies inside prefix `outer`, both readPlainIpv4Prefix results (host bits of `outer` ignored, as prefixContains does). */
export function plainIpv4Contains(outer: number, inner: number): boolean {
  const outerLength = plainIpv4Length(outer);
  if (plainIpv4Length(inner) < outerLength) return false;
  const size = 2 ** (32 - outerLength);
  return Math.floor(plainIpv4Address(inner) / size) === Math.floor(plainIpv4Address(outer) / size);
}
/** Whether the address of readPlainIpv4Prefix's result has no bits past its length. */
export const plainIpv4IsNetwork = (plain: number): boolean => plainIpv4Address(plain) % 2 ** (32 - plainIpv4Length(plain)) === 0;

/**
 * Sorts prefixes numerically ("10.244.9.0/24" before "10.244.10.0/24"), IPv4 before IPv6,
 * then by length; text that is not a prefix goes last. Each key is computed once (a comparator
 * that re-parsed both sides cost most of a 5,000-lease sync), an IPv4 one as a number (with
 * Buffer keys and Buffer.compare, this sort took about 50 ms of a start with 5,000 leases).
 */
export function sortPrefixes<T>(items: readonly T[], prefixOf: (item: T) => string): T[] {
  const keyed = items.map((item): PrefixSortKey<T> => {
    const text = prefixOf(item);
    const plain = readPlainIpv4Prefix(text);
    if (plain >= 0) return { item, family: 4, value: plainIpv4Address(plain), bytes: EMPTY, length: plainIpv4Length(plain), text: '' };
    try {
      const c = parseCidr(text);
      const v4 = c.address.family === 4;
      return { item, family: c.address.family, value: v4 ? c.address.bytes.readUInt32BE(0) : 0, bytes: v4 ? EMPTY : c.address.bytes, length: c.prefixLength, text: '' };
    } catch {
      return { item, family: 9, value: 0, bytes: EMPTY, length: 0, text };
    }
  });
  keyed.sort((a, b) => a.family - b.family || a.value - b.value || (a.family === 6 ? Buffer.compare(a.bytes, b.bytes) : 0) || a.length - b.length
    || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return keyed.map((k) => k.item);
}
