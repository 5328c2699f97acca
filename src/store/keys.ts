/**
 * flannel's key layout in etcd (flannel pkg/subnet/etcd/registry.go, reference flannel.md §2):
 *
 *   <prefix>/config                              network config JSON, written by the operator
 *   <prefix>/subnets/10.244.3.0-24               one lease per node ("/" is not allowed in a key
 *                                                name segment, so flannel writes the length after "-")
 *   <prefix>/subnets/10.244.3.0-24&fc00:0:0:3::-64   a dual-stack lease: one key holds both subnets
 *   <prefix>/subnets/0.0.0.0-0&fc00:0:0:3::-64   an IPv6-only lease (NO_IPV4_SUBNET, key-name.ts)
 *
 * Building names is here (flannel's MakeSubnetKey); reading them, which must never throw, in
 * key-name.ts.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { formatCidr, parsePrefix, type Cidr } from '../core/ip.js';
import { NO_IPV4_SUBNET, parseSubnetKeyName, type KeyNameParse } from './key-name.js';

export { describeSubnets, FLANNEL_SUBNET_REGEX, NO_IPV4_SUBNET, parseSubnetKeyName, type KeyNameParse, type LeaseSubnets } from './key-name.js';

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

/**
 * ::/96 and ::ffff:0:0/96: flannel's IP6.ToIP (pkg/ip/ip6net.go) turns values in [2^24, 2^32)
 * into 4-byte IPs, and Go prints those and IPv4-mapped addresses as dotted quads.
 */
function printedAsIpv4(b: Uint8Array): boolean {
  return b.subarray(0, 10).every((x) => x === 0) && ((b[10] === 0 && b[11] === 0) || (b[10] === 0xff && b[11] === 0xff));
}

/**
 * Parses and checks one family's subnet given to the store: a network prefix that flannel can read
 * back from a key. ParseSubnetKey reads prefix lengths into 5 (IPv4) and 7 (IPv6) bits, and Go
 * prints an IPv6 address below 2^32 or IPv4-mapped as a dotted quad (key-name.ts), which its
 * subnetRegex does not take.
 */
function parseSubnet(subnet: string, family: 4 | 6): Cidr {
  const what = family === 4 ? 'subnet' : 'IPv6 subnet';
  const cidr = parsePrefix(subnet, what);
  if (cidr.address.family !== family) {
    throw new InvalidArgumentError(what, subnet, family === 4 ? 'lease keys are named by an IPv4 subnet (the IPv6 one follows "&")' : 'must be an IPv6 prefix');
  }
  if (cidr.prefixLength > (family === 4 ? 31 : 127)) throw new InvalidArgumentError(what, subnet, 'is longer than flannel\'s lease keys can name');
  if (family === 6 && printedAsIpv4(cidr.address.bytes)) {
    throw new InvalidArgumentError(what, subnet, 'lies in ::/96 or ::ffff:0:0/96, which flannel writes as a dotted quad its lease keys cannot hold');
  }
  return cidr;
}

/** Canonical text of a subnet argument; throws InvalidArgumentError for anything else. */
export function canonicalSubnet(subnet: string): string {
  return formatCidr(parseSubnet(subnet, 4));
}

/**
 * flannel's MakeSubnetKey (pkg/subnet/subnet.go): "10.244.3.0/24" -> "10.244.3.0-24", and with an
 * IPv6 subnet "10.244.3.0-24&fc00:0:0:3::-64" (the address as Go's net.IP.String() prints it, which
 * is RFC 5952's form, as Twill's formatIp). An IPv6-only lease passes NO_IPV4_SUBNET.
 */
export function subnetToKeyName(subnet: string, ipv6Subnet?: string): string {
  const v4 = parseSubnet(subnet, 4);
  const name = `${v4.address.text}-${v4.prefixLength}`;
  if (ipv6Subnet === undefined) {
    if (formatCidr(v4) === NO_IPV4_SUBNET) throw new InvalidArgumentError('subnet', subnet, 'stands for "no IPv4 subnet" and needs an IPv6 subnet');
    return name;
  }
  const v6 = parseSubnet(ipv6Subnet, 6);
  return `${name}&${v6.address.text}-${v6.prefixLength}`;
}

/** The full lease key of a lease's subnets. */
export function subnetKey(layout: KeyLayout, subnet: string, ipv6Subnet?: string): string {
  return layout.subnetsPrefix + subnetToKeyName(subnet, ipv6Subnet);
}

/** Parses a full key under `subnetsPrefix`. Never throws. */
export function subnetFromKey(layout: KeyLayout, key: string): KeyNameParse {
  if (!key.startsWith(layout.subnetsPrefix)) return { ok: false, reason: `key "${key}" is not under ${layout.subnetsPrefix}` };
  return parseSubnetKeyName(key.slice(layout.subnetsPrefix.length));
}
