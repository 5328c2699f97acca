import { InvalidArgumentError } from '../core/errors.js';
import { parseCidr, type Cidr } from '../core/ip.js';

/**
 * IPv4 prefixes as unsigned 32-bit integers, for subnet arithmetic (carving a /16 into /24s,
 * walking SubnetMin..SubnetMax). Text stays the interface to the rest of Twill.
 */
export interface Ipv4Prefix {
  /** Network address as an unsigned 32-bit integer. */
  readonly base: number;
  readonly length: number;
}

export function ipv4ToInt(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

export function intToIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Size of a prefix in addresses (2^(32-len)), as a float-safe integer. */
export function blockSize(length: number): number {
  return 2 ** (32 - length);
}

export function prefixFromCidr(cidr: Cidr, what: string, text: string): Ipv4Prefix {
  if (cidr.address.family !== 4) throw new InvalidArgumentError(what, text, 'must be an IPv4 prefix');
  return { base: ipv4ToInt(cidr.address.bytes), length: cidr.prefixLength };
}

/** Parses "a.b.c.d/len" that must be a network address (no host bits). */
export function parseIpv4Prefix(text: string, what: string): Ipv4Prefix {
  const p = prefixFromCidr(parseCidr(text, what), what, text);
  if (p.base % blockSize(p.length) !== 0) {
    const network = p.base - (p.base % blockSize(p.length));
    throw new InvalidArgumentError(what, text, `host bits are set (the network is ${intToIpv4(network)}/${p.length})`);
  }
  return p;
}

export function formatIpv4Prefix(p: Ipv4Prefix): string {
  return `${intToIpv4(p.base)}/${p.length}`;
}

/** True when `inner` lies entirely inside `outer`. */
export function contains(outer: Ipv4Prefix, inner: Ipv4Prefix): boolean {
  return inner.length >= outer.length && inner.base >= outer.base && inner.base + blockSize(inner.length) <= outer.base + blockSize(outer.length);
}

/** True when the two prefixes share any address. */
export function overlaps(a: Ipv4Prefix, b: Ipv4Prefix): boolean {
  return contains(a, b) || contains(b, a);
}

/**
 * IPv4 ranges that are never a pod network nor a tunnel endpoint (RFC 6890's special-purpose
 * registry, the parts that break forwarding): a route or FDB entry into one of them sends traffic
 * to this host itself, to every host, or nowhere.
 */
export const SPECIAL_IPV4_RANGES: readonly { readonly name: string; readonly prefix: Ipv4Prefix }[] = [
  { name: 'the "this network" range 0.0.0.0/8 (RFC 1122 §3.2.1.3)', prefix: { base: 0, length: 8 } },
  { name: 'the loopback range 127.0.0.0/8 (RFC 1122 §3.2.1.3)', prefix: { base: 0x7f000000, length: 8 } },
  { name: 'the link-local range 169.254.0.0/16 (RFC 3927)', prefix: { base: 0xa9fe0000, length: 16 } },
  { name: 'the multicast range 224.0.0.0/4 (RFC 5771)', prefix: { base: 0xe0000000, length: 4 } },
  { name: 'the reserved range 240.0.0.0/4, with the broadcast address (RFC 1112 §4, RFC 919)', prefix: { base: 0xf0000000, length: 4 } },
];

/** The special-purpose range `p` overlaps, by name, or undefined when it overlaps none. */
export function specialRangeOf(p: Ipv4Prefix): string | undefined {
  return SPECIAL_IPV4_RANGES.find((r) => overlaps(r.prefix, p))?.name;
}
