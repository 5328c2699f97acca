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
