import { InvalidArgumentError } from '../core/errors.js';
import { formatIp, parseCidr } from '../core/ip.js';

/**
 * IPv6 prefixes as 128-bit bigints, for subnet arithmetic (carving a /48 into /64s, walking
 * IPv6SubnetMin..IPv6SubnetMax): the IPv6 twin of ipv4.ts. Text stays the interface to the rest
 * of Twill, always in RFC 5952 form, which is also what Go's net.IP.String() prints and so what
 * flannel writes in its lease keys and subnet.env.
 */
export interface Ipv6Prefix {
  /** Network address as an unsigned 128-bit integer. */
  readonly base: bigint;
  readonly length: number;
}

/** Network-order bytes (4 or 16) as one unsigned integer. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

/** An unsigned integer as `size` network-order bytes. */
export function bigIntToBytes(value: bigint, size: 4 | 16): Buffer {
  const bytes = Buffer.alloc(size);
  let v = value;
  for (let i = size - 1; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return bytes;
}

export function bigIntToIpv6(value: bigint): string {
  return formatIp(bigIntToBytes(value, 16));
}

/** Size of a prefix in addresses (2^(128-len)). */
export function blockSize6(length: number): bigint {
  return 1n << BigInt(128 - length);
}

/** Parses "x::y/len" that must be a network address (no host bits). */
export function parseIpv6Prefix(text: string, what: string): Ipv6Prefix {
  const cidr = parseCidr(text, what);
  if (cidr.address.family !== 6) throw new InvalidArgumentError(what, text, 'must be an IPv6 prefix');
  const p = { base: bytesToBigInt(cidr.address.bytes), length: cidr.prefixLength };
  const hostBits = p.base % blockSize6(p.length);
  if (hostBits !== 0n) {
    throw new InvalidArgumentError(what, text, `host bits are set (the network is ${formatIpv6Prefix({ base: p.base - hostBits, length: p.length })})`);
  }
  return p;
}

export function formatIpv6Prefix(p: Ipv6Prefix): string {
  return `${bigIntToIpv6(p.base)}/${p.length}`;
}

/** True when `inner` lies entirely inside `outer`. */
export function contains6(outer: Ipv6Prefix, inner: Ipv6Prefix): boolean {
  return inner.length >= outer.length && inner.base >= outer.base && inner.base + blockSize6(inner.length) <= outer.base + blockSize6(outer.length);
}

function overlaps6(a: Ipv6Prefix, b: Ipv6Prefix): boolean {
  return contains6(a, b) || contains6(b, a);
}

const prefix6 = (text: string): Ipv6Prefix => parseIpv6Prefix(text, 'special IPv6 range');

/**
 * IPv6 ranges that are never a pod network nor a tunnel endpoint (RFC 4291). Two of them also
 * break flannel's key format: Go prints an IPv4-mapped address, and flannel's IP6 (pkg/ip/ip6net.go
 * IP6.ToIP) any value below 2^32, as a dotted quad, so a subnet there would be written into a lease
 * key that flannel's own subnetRegex cannot read back.
 */
export const SPECIAL_IPV6_RANGES: readonly { readonly name: string; readonly prefix: Ipv6Prefix }[] = [
  { name: 'the range ::/96 of the unspecified, the loopback and the deprecated IPv4-compatible addresses (RFC 4291 §2.5.2, §2.5.3, §2.5.5.1)', prefix: prefix6('::/96') },
  { name: 'the IPv4-mapped range ::ffff:0:0/96 (RFC 4291 §2.5.5.2)', prefix: prefix6('::ffff:0:0/96') },
  { name: 'the link-local range fe80::/10 (RFC 4291 §2.5.6)', prefix: prefix6('fe80::/10') },
  { name: 'the multicast range ff00::/8 (RFC 4291 §2.7)', prefix: prefix6('ff00::/8') },
];

/** The special-purpose range `p` overlaps, by name, or undefined when it overlaps none. */
export function specialIpv6RangeOf(p: Ipv6Prefix): string | undefined {
  return SPECIAL_IPV6_RANGES.find((r) => overlaps6(r.prefix, p))?.name;
}

/**
 * Why `address` (canonical IPv6 text) cannot be a host's tunnel endpoint, or undefined when it can:
 * the unicast addresses Go calls IsGlobalUnicast (flannel pkg/ip/iface.go prefers those), which
 * include unique-local fc00::/7.
 */
export function ipv6EndpointProblem(address: string): string | undefined {
  const cidr = parseCidr(`${address}/128`, 'IPv6 address');
  if (cidr.address.family !== 6) return 'is not an IPv6 address';
  const special = specialIpv6RangeOf({ base: bytesToBigInt(cidr.address.bytes), length: 128 });
  return special === undefined ? undefined : `is in ${special}`;
}
