import { parseIp } from '../core/ip.js';
import type { NetworkConfig } from '../ipam/network-config.js';
import { familyRange, pickFreeIpv6Subnet, pickFreeSubnet, subnetFits } from '../ipam/subnets.js';
import { NO_IPV4_SUBNET, type LeaseSubnets } from '../store/index.js';
import type { LeaseRecord, SubnetLease } from '../store/types.js';
import { SubnetExhaustedError } from './lease-errors.js';

// The judgements acquireLease (lease-acquire.ts) makes about one listing, pure: which leases are
// this host's, which fit the config, which subnets are taken, and which to try.

/** flannel's PublicIP of an IPv6-only lease (its empty ip.IP4): shared by all of them, so never "ours". */
const NO_PUBLIC_IP = '0.0.0.0';

/**
 * Each family the config enables has a fitting subnet, and a disabled family has none (flannel
 * local_manager.go isSubnetConfigCompat and isIPv6SubnetConfigCompat).
 */
export function fits(config: NetworkConfig, s: LeaseSubnets): boolean {
  const v4 = familyRange(config, 4) === undefined ? s.subnet === NO_IPV4_SUBNET : subnetFits(config, s.subnet);
  const v6 = config.ipv6 === undefined ? s.ipv6Subnet === undefined : s.ipv6Subnet !== undefined && subnetFits(config, s.ipv6Subnet);
  return v4 && v6;
}

function sameIpv6(a: string | null | undefined, b: string): boolean {
  try {
    return typeof a === 'string' && parseIp(a).text === parseIp(b).text;
  } catch {
    return false;
  }
}

/**
 * Which of this host's addresses `lease` carries ("PublicIP 198.18.0.9"), or undefined. flannel
 * matches PublicIP only; PublicIPv6 counts too, so that an IPv6-only host finds its lease.
 */
export function carriedAddress(lease: SubnetLease, ours: LeaseRecord): string | undefined {
  if (ours.publicIp !== NO_PUBLIC_IP && lease.record.publicIp === ours.publicIp) return `PublicIP ${ours.publicIp}`;
  if (typeof ours.publicIpv6 === 'string' && sameIpv6(lease.record.publicIpv6, ours.publicIpv6)) return `PublicIPv6 ${ours.publicIpv6}`;
  return undefined;
}

/** True when `s` names one of the subnets of `p` (a key, or a malformed entry, which still holds them). */
export function holds(s: Partial<LeaseSubnets>, p: LeaseSubnets): boolean {
  return (p.subnet !== NO_IPV4_SUBNET && s.subnet === p.subnet) || (p.ipv6Subnet !== undefined && s.ipv6Subnet === p.ipv6Subnet);
}

/** "10.244.1.0/24..10.244.255.0/24 and fc00:0:0:1::/64..fc00:0:0:ffff::/64". */
export function describeRanges(config: NetworkConfig): string {
  return [familyRange(config, 4), config.ipv6].flatMap((r) => (r ? [`${r.subnetMin}..${r.subnetMax}`] : [])).join(' and ');
}

/** The subnets of each family held by a key (a lease, or a malformed entry that still names them). */
export interface TakenSubnets {
  readonly v4: ReadonlySet<string>;
  readonly v6: ReadonlySet<string>;
}

export function takenSubnets(leases: readonly Partial<LeaseSubnets>[]): TakenSubnets {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const l of leases) {
    if (l.subnet !== undefined) v4.add(l.subnet);
    if (l.ipv6Subnet !== undefined) v6.add(l.ipv6Subnet);
  }
  return { v4, v6 };
}

/** Free subnets of each enabled family, each picked as flannel picks them (subnets.ts); or SubnetExhaustedError. */
export function pickFree(config: NetworkConfig, taken: TakenSubnets, random?: () => number): LeaseSubnets {
  const range4 = familyRange(config, 4);
  let subnet = NO_IPV4_SUBNET;
  if (range4 !== undefined) {
    const picked = pickFreeSubnet(config, taken.v4, random);
    if (picked === undefined) throw new SubnetExhaustedError(range4, taken.v4.size);
    subnet = picked;
  }
  if (config.ipv6 === undefined) return { subnet };
  const ipv6Subnet = pickFreeIpv6Subnet(config, taken.v6, random);
  if (ipv6Subnet === undefined) throw new SubnetExhaustedError(config.ipv6, taken.v6.size, 'IPv6 ');
  return { subnet, ipv6Subnet };
}

/**
 * The subnets to try from the subnet file, for the families the config enables. A file written
 * before IPv6 was enabled names only the IPv4 subnet: it is kept (the pods keep their IPv4
 * addresses) and completed with a free IPv6 subnet, where flannel would give up both.
 */
export function previousSubnets(config: NetworkConfig, file: Partial<LeaseSubnets>, taken: TakenSubnets, random?: () => number): LeaseSubnets | undefined {
  const subnet = familyRange(config, 4) === undefined ? NO_IPV4_SUBNET : file.subnet;
  if (subnet === undefined) return undefined;
  if (config.ipv6 === undefined) return { subnet };
  const ipv6Subnet = file.ipv6Subnet ?? (subnet === NO_IPV4_SUBNET ? undefined : pickFreeIpv6Subnet(config, taken.v6, random));
  return ipv6Subnet === undefined ? undefined : { subnet, ipv6Subnet };
}
