/**
 * flannel's key layout in etcd (flannel pkg/subnet/etcd/registry.go, reference flannel.md §2):
 *
 *   <prefix>/config                              network config JSON, written by the operator
 *   <prefix>/subnets/10.244.3.0-24               one lease per node ("/" is not allowed in a key
 *                                                name segment, so flannel writes the length after "-")
 *   <prefix>/subnets/10.5.52.0-24&fc00::-64      a dual-stack lease; Twill reads the IPv4 part
 *
 * Key names come from etcd, i.e. from anyone with write access: parsing them never throws, it
 * returns a reason instead, so one stray key cannot stop a listing or a watch.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { formatCidr, parsePrefix, type Cidr } from '../core/ip.js';

/** flannel's default --etcd-prefix. */
export const DEFAULT_PREFIX = '/coreos.com/network';

export interface KeyLayout {
  /** Normalised prefix: starts with "/", no trailing "/" ("" for the root). */
  readonly prefix: string;
  /** `${prefix}/config` */
  readonly configKey: string;
  /** `${prefix}/subnets/`, with the trailing slash so that a range read cannot match "subnetsX". */
  readonly subnetsPrefix: string;
}

export type KeyNameParse = { readonly ok: true; readonly subnet: string } | { readonly ok: false; readonly reason: string };

/** Normalises a key prefix: "/coreos.com/network/" -> "/coreos.com/network"; "/" -> "". */
export function normalisePrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
    throw new InvalidArgumentError('etcd key prefix', prefix, 'must start with "/"');
  }
  const trimmed = prefix.replace(/\/+$/, '');
  // An empty segment ("/a//b") is almost certainly a typo and would not match flannel's keys,
  // which Go builds with path.Join (it collapses "//").
  if (trimmed.includes('//')) throw new InvalidArgumentError('etcd key prefix', prefix, 'contains an empty path segment');
  return trimmed;
}

export function keyLayout(prefix: string = DEFAULT_PREFIX): KeyLayout {
  const p = normalisePrefix(prefix);
  return { prefix: p, configKey: `${p}/config`, subnetsPrefix: `${p}/subnets/` };
}

/** Parses and checks a subnet given to the store: an IPv4 network ("10.244.3.0/24"). */
function parseSubnet(subnet: string): Cidr {
  const cidr = parsePrefix(subnet, 'subnet');
  // flannel's lease key always starts with the IPv4 subnet; IPv6 lives after "&".
  if (cidr.address.family !== 4) throw new InvalidArgumentError('subnet', subnet, 'lease keys are named by an IPv4 subnet');
  return cidr;
}

/** Canonical text of a subnet argument; throws InvalidArgumentError for anything else. */
export function canonicalSubnet(subnet: string): string {
  return formatCidr(parseSubnet(subnet));
}

/** "10.244.3.0/24" -> "10.244.3.0-24". */
export function subnetToKeyName(subnet: string): string {
  const cidr = parseSubnet(subnet);
  return `${cidr.address.text}-${cidr.prefixLength}`;
}

/** The full lease key of a subnet. */
export function subnetKey(layout: KeyLayout, subnet: string): string {
  return layout.subnetsPrefix + subnetToKeyName(subnet);
}

/** Parses "a.b.c.d-len" (family 4) or "x::y-len" (family 6) into a network prefix. */
function parseDashed(part: string, family: 4 | 6): KeyNameParse {
  const dash = part.lastIndexOf('-');
  if (dash <= 0) return { ok: false, reason: `"${part}" is not <address>-<length>` };
  try {
    const cidr = parsePrefix(`${part.slice(0, dash)}/${part.slice(dash + 1)}`, 'subnet key');
    if (cidr.address.family !== family) return { ok: false, reason: `"${part}" is not an IPv${family} prefix` };
    return { ok: true, subnet: formatCidr(cidr) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * "10.244.3.0-24" -> 10.244.3.0/24; "10.5.52.0-24&fc00::-64" -> 10.5.52.0/24 (the IPv6 half must
 * be a valid prefix too, or the name is malformed). Never throws.
 */
export function parseSubnetKeyName(name: string): KeyNameParse {
  const parts = name.split('&');
  if (parts.length > 2) return { ok: false, reason: `key name "${name}" has more than one "&"` };
  const v4 = parseDashed(parts[0]!, 4);
  if (!v4.ok) return { ok: false, reason: `key name "${name}" is not a subnet: ${v4.reason}` };
  if (parts.length === 2) {
    const v6 = parseDashed(parts[1]!, 6);
    if (!v6.ok) return { ok: false, reason: `key name "${name}" has a bad IPv6 part: ${v6.reason}` };
  }
  return v4;
}

/** Parses a full key under `subnetsPrefix`. Never throws. */
export function subnetFromKey(layout: KeyLayout, key: string): KeyNameParse {
  if (!key.startsWith(layout.subnetsPrefix)) return { ok: false, reason: `key "${key}" is not under ${layout.subnetsPrefix}` };
  const name = key.slice(layout.subnetsPrefix.length);
  // A nested key ("subnets/a/b") is not a lease: flannel never writes one.
  if (name.includes('/')) return { ok: false, reason: `key name "${name}" contains "/"` };
  return parseSubnetKeyName(name);
}
