import { broadcastOf, formatIp, parseCidr, parseIpv4Value } from '../core/ip.js';
import { contains, SPECIAL_IPV4_RANGES, type Ipv4Prefix } from '../ipam/ipv4.js';
import { compareRevisions } from '../store/index.js';
import type { SubnetLease } from '../store/types.js';

/**
 * Which leases in etcd this host may route, judged before any backend sees them. Anyone who can
 * write under <prefix>/subnets/ can write any key and any record, and every host turns each lease
 * into kernel routes: a key that covers part of another host's subnet, this host's own, or the
 * whole network would steer pod traffic away from its owner, and a PublicIP of loopback,
 * broadcast or multicast would send overlay traffic there. So a lease is routed only when:
 *   - its prefix length is the config's SubnetLen and it lies inside the Network (flannel never
 *     writes anything else);
 *   - it does not overlap this host's own subnet;
 *   - it does not overlap an older lease: of two overlapping leases the one with the lower etcd
 *     create revision wins (the key name breaks a tie of one transaction). Create revisions are
 *     the same in every host's view of etcd, so every host routes the same winner;
 *   - its PublicIP is a unicast address another host can have: not unspecified, loopback,
 *     link-local, multicast, reserved or broadcast (including the directed broadcast of this
 *     host's external network), not inside the cluster Network, and not this host's own.
 * Pure and allocation-light: it runs on every change of a set of up to tens of thousands.
 */
export type LeaseRejectReason =
  | 'wrong_prefix_length'
  | 'outside_network'
  | 'overlaps_own_subnet'
  | 'overlaps_older_lease'
  | 'public_ip_unusable'
  | 'public_ip_is_local';

export interface LeaseRejection {
  readonly key: string;
  readonly subnet: string;
  readonly reason: LeaseRejectReason;
  /** What exactly is wrong, for the log line. */
  readonly detail: string;
  /** The key of the lease this one collides with (overlaps). */
  readonly conflictsWith?: string | undefined;
}

export interface ScreenContext {
  readonly network: Ipv4Prefix;
  readonly subnetLen: number;
  /** This host's lease, when it holds one: never a remote lease, and nothing may overlap it. */
  readonly own: { readonly key: string; readonly subnet: Ipv4Prefix } | undefined;
  /** This host's own IPv4 addresses (external interface address, PublicIP). */
  readonly localAddresses: readonly string[];
  /** Directed broadcast addresses of this host's external networks (198.18.0.255 of a /24). */
  readonly broadcastAddresses: readonly string[];
}

export interface ScreenResult {
  /** The remote leases that may be routed (the own lease excluded), oldest first. */
  readonly accepted: SubnetLease[];
  readonly rejected: LeaseRejection[];
}

/** "10.244.3.0/24" -> base and length, or undefined (the store only yields valid prefixes). */
function prefixOf(subnet: string): Ipv4Prefix | undefined {
  const slash = subnet.indexOf('/');
  const base = parseIpv4Value(subnet, 0, slash);
  if (slash < 0 || base < 0) return undefined;
  return { base, length: Number(subnet.slice(slash + 1)) };
}

/** Older first: lower create revision, then key (one transaction can create several keys). */
function olderFirst(a: SubnetLease, b: SubnetLease): number {
  return compareRevisions(a.createRevision, b.createRevision) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** Why `ip` (dotted quad) cannot be a remote tunnel endpoint, or undefined when it can. */
function publicIpProblem(ip: string, ctx: ScreenContext): { reason: LeaseRejectReason; detail: string } | undefined {
  const value = parseIpv4Value(ip);
  if (value < 0) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is not an IPv4 address` };
  const special = SPECIAL_IPV4_RANGES.find((r) => contains(r.prefix, { base: value, length: 32 }));
  if (special) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is in ${special.name}` };
  if (ctx.broadcastAddresses.includes(ip)) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is the broadcast address of this host's external network` };
  if (contains(ctx.network, { base: value, length: 32 })) {
    return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is inside the cluster network: tunnel traffic to it would be routed into the overlay itself` };
  }
  if (ctx.localAddresses.includes(ip)) return { reason: 'public_ip_is_local', detail: `PublicIP ${ip} is this host's own address` };
  return undefined;
}

export function screenLeases(leases: Iterable<SubnetLease>, ctx: ScreenContext): ScreenResult {
  const rejected: LeaseRejection[] = [];
  const candidates: { lease: SubnetLease; prefix: Ipv4Prefix }[] = [];
  for (const lease of leases) {
    if (lease.key === ctx.own?.key) continue;
    const prefix = prefixOf(lease.subnet);
    if (prefix === undefined || prefix.length !== ctx.subnetLen) {
      rejected.push({ key: lease.key, subnet: lease.subnet, reason: 'wrong_prefix_length', detail: `${lease.subnet} is not a /${ctx.subnetLen} (the network config's SubnetLen)` });
    } else if (!contains(ctx.network, prefix)) {
      rejected.push({ key: lease.key, subnet: lease.subnet, reason: 'outside_network', detail: `${lease.subnet} is outside the cluster network` });
    } else if (ctx.own !== undefined && prefix.base === ctx.own.subnet.base) {
      // Same length, both aligned: overlapping means equal.
      rejected.push({ key: lease.key, subnet: lease.subnet, reason: 'overlaps_own_subnet', detail: `${lease.subnet} is this host's own subnet`, conflictsWith: ctx.own.key });
    } else {
      candidates.push({ lease, prefix });
    }
  }
  candidates.sort((a, b) => olderFirst(a.lease, b.lease));
  const winners = new Map<number, string>();
  const accepted: SubnetLease[] = [];
  for (const { lease, prefix } of candidates) {
    const older = winners.get(prefix.base);
    if (older !== undefined) {
      rejected.push({ key: lease.key, subnet: lease.subnet, reason: 'overlaps_older_lease', detail: `${lease.subnet} is already held by an older lease`, conflictsWith: older });
      continue;
    }
    // The subnet stays claimed by its oldest key even when that lease's PublicIP is unusable:
    // a younger key must not win the subnet by pairing it with a better address.
    winners.set(prefix.base, lease.key);
    const problem = publicIpProblem(lease.record.publicIp, ctx);
    if (problem) rejected.push({ key: lease.key, subnet: lease.subnet, ...problem });
    else accepted.push(lease);
  }
  return { accepted, rejected };
}

/** Directed broadcast addresses of interface addresses ("198.18.0.1/24" -> "198.18.0.255"). */
export function broadcastAddresses(cidrs: readonly string[]): string[] {
  // /31 and /32 have no broadcast address (RFC 3021).
  return cidrs.map((c) => parseCidr(c)).filter((c) => c.address.family === 4 && c.prefixLength < 31).map((c) => formatIp(broadcastOf(c)));
}
