import { broadcastOf, formatIp, parseCidr, parseIpv4Value } from '../core/ip.js';
import { contains, SPECIAL_IPV4_RANGES, type Ipv4Prefix } from '../ipam/ipv4.js';
import { contains6, ipv6EndpointProblem, parseIpv6Prefix, type Ipv6Prefix } from '../ipam/ipv6.js';
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
 * It runs on every change of a set of up to tens of thousands, so it is one pass (LeaseScreen).
 *
 * A dual-stack cluster screens each family on its own (one LeaseScreen per family) by the same
 * rules: the IPv6 screen judges a lease's IPv6 subnet (IPv6SubnetLen, inside IPv6Network, the
 * older lease wins) and its PublicIPv6. A lease may then be routed over one family and refused
 * over the other; a lease without an IPv6 subnet is simply not in the IPv6 screen's result.
 */
export const LEASE_REJECT_REASONS = ['wrong_prefix_length', 'outside_network', 'overlaps_own_subnet', 'overlaps_older_lease',
  'public_ip_unusable', 'public_ip_is_local'] as const;
export type LeaseRejectReason = (typeof LEASE_REJECT_REASONS)[number];

export interface LeaseRejection {
  readonly key: string;
  readonly subnet: string;
  readonly reason: LeaseRejectReason;
  /** What exactly is wrong, for the log line. */
  readonly detail: string;
  /** The key of the lease this one collides with (overlaps). */
  readonly conflictsWith?: string | undefined;
}

/** What stays the same for the agent's lifetime: the config and this host's addresses. */
export type ScreenSettings = Ipv4ScreenSettings | Ipv6ScreenSettings;

export interface Ipv4ScreenSettings {
  readonly family?: 4 | undefined;
  readonly network: Ipv4Prefix;
  readonly subnetLen: number;
  /** This host's own IPv4 addresses (external interface address, PublicIP). */
  readonly localAddresses: readonly string[];
  /** Directed broadcast addresses of this host's external networks (198.18.0.255 of a /24). */
  readonly broadcastAddresses: readonly string[];
}

/** The IPv6 screen: IPv6Network and IPv6SubnetLen; this host's own IPv6 addresses (canonical text). */
export interface Ipv6ScreenSettings {
  readonly family: 6;
  readonly network: Ipv6Prefix;
  readonly subnetLen: number;
  readonly localAddresses: readonly string[];
}

export type ScreenContext = ScreenSettings & {
  /** This host's lease, when it holds one: never a remote lease, and nothing may overlap it. */
  readonly own: OwnLease | undefined;
};

export interface OwnLease {
  readonly key: string;
  /** The own lease's subnet of the screen's family (none: an IPv4-only lease in the IPv6 screen). */
  readonly subnet: Ipv4Prefix | Ipv6Prefix | undefined;
}

export interface ScreenResult {
  /** The remote leases that may be routed (the own lease excluded). */
  readonly accepted: SubnetLease[];
  readonly rejected: LeaseRejection[];
}

type Problem = { readonly reason: LeaseRejectReason; readonly detail: string };

/** What one lease is, judged alone: its subnet's network address, or why it is unusable. */
interface Verdict {
  /**
   * The subnet's network address: a number for IPv4, hex text for IPv6 (a Map keyed by bigints
   * made a screen of 5,000 leases 40 times slower); undefined for a lease without a subnet of the
   * family.
   */
  readonly base: number | string | undefined;
  /** A problem with the key itself: the lease takes no part in overlaps. */
  readonly key?: Problem | undefined;
  /** A problem with its PublicIP: the lease still claims its subnet (see screen()). */
  readonly publicIp?: Problem | undefined;
}

/** "10.244.3.0/24" -> base and length, or undefined (the store only yields valid prefixes). */
function prefixOf(subnet: string): Ipv4Prefix | undefined {
  const slash = subnet.indexOf('/');
  const base = parseIpv4Value(subnet, 0, slash);
  if (slash < 0 || base < 0) return undefined;
  return { base, length: Number(subnet.slice(slash + 1)) };
}

/** True when `a` is older than `b`: lower create revision, then key (one transaction can create several keys). */
function older(a: SubnetLease, b: SubnetLease): boolean {
  const byRevision = compareRevisions(a.createRevision, b.createRevision);
  return byRevision < 0 || (byRevision === 0 && a.key < b.key);
}

/**
 * Screens lease sets for one agent. A lease's own verdict (its key, its PublicIP) depends only on
 * the lease and the settings, so it is kept per lease object, which the watcher keeps until the
 * key changes: a sync of thousands of leases then only resolves overlaps, in one pass.
 */
export class LeaseScreen {
  private readonly verdicts = new WeakMap<SubnetLease, Verdict>();

  constructor(private readonly settings: ScreenSettings) {}

  screen(leases: Iterable<SubnetLease>, own: OwnLease | undefined): ScreenResult {
    const rejected: LeaseRejection[] = [];
    const subnetOf = (lease: SubnetLease): string => (this.settings.family === 6 ? lease.ipv6Subnet ?? '' : lease.subnet);
    const reject = (lease: SubnetLease, problem: Problem, conflictsWith?: string): void => {
      rejected.push({ key: lease.key, subnet: subnetOf(lease), ...problem, ...(conflictsWith !== undefined && { conflictsWith }) });
    };
    // The oldest lease of each subnet; a younger one is refused (same length, aligned: overlapping means equal).
    const holders = new Map<number | string, SubnetLease>();
    const outranked: { readonly lease: SubnetLease; readonly base: number | string }[] = [];
    const ownHeld = own?.subnet === undefined ? undefined : { key: own.key, base: baseKey(own.subnet.base) };
    for (const lease of leases) {
      if (lease.key === own?.key) continue;
      const verdict = this.verdictOf(lease);
      if (verdict.base === undefined) continue; // no subnet of this family: nothing to route over it
      if (verdict.key) {
        reject(lease, verdict.key);
      } else if (ownHeld !== undefined && verdict.base === ownHeld.base) {
        reject(lease, { reason: 'overlaps_own_subnet', detail: `${subnetOf(lease)} is this host's own subnet` }, ownHeld.key);
      } else {
        const holder = holders.get(verdict.base);
        if (holder === undefined) {
          holders.set(verdict.base, lease);
          continue;
        }
        const younger = older(lease, holder) ? holder : lease;
        if (younger === holder) holders.set(verdict.base, lease);
        outranked.push({ lease: younger, base: verdict.base });
      }
    }
    // Named after the pass: the oldest key of a subnet is known only once every key was seen.
    for (const { lease, base } of outranked) {
      reject(lease, { reason: 'overlaps_older_lease', detail: `${subnetOf(lease)} is already held by an older lease` }, holders.get(base)!.key);
    }
    const accepted: SubnetLease[] = [];
    for (const lease of holders.values()) {
      // The subnet stays claimed by its oldest key even when that lease's PublicIP is unusable:
      // a younger key must not win the subnet by pairing it with a better address.
      const problem = this.verdicts.get(lease)!.publicIp;
      if (problem) reject(lease, problem);
      else accepted.push(lease);
    }
    return { accepted, rejected };
  }

  private verdictOf(lease: SubnetLease): Verdict {
    let verdict = this.verdicts.get(lease);
    if (verdict === undefined) {
      verdict = this.settings.family === 6 ? judge6(lease, this.settings) : judge(lease, this.settings);
      this.verdicts.set(lease, verdict);
    }
    return verdict;
  }
}

/** One-off screening (tests, tools): a LeaseScreen without its cache's benefit. */
export function screenLeases(leases: Iterable<SubnetLease>, ctx: ScreenContext): ScreenResult {
  return new LeaseScreen(ctx).screen(leases, ctx.own);
}

function judge(lease: SubnetLease, settings: Ipv4ScreenSettings): Verdict {
  const prefix = prefixOf(lease.subnet);
  if (prefix === undefined || prefix.length !== settings.subnetLen) {
    return { base: -1, key: { reason: 'wrong_prefix_length', detail: `${lease.subnet} is not a /${settings.subnetLen} (the network config's SubnetLen)` } };
  }
  if (!contains(settings.network, prefix)) return { base: prefix.base, key: { reason: 'outside_network', detail: `${lease.subnet} is outside the cluster network` } };
  return { base: prefix.base, publicIp: publicIpProblem(lease.record.publicIp, settings) };
}

/** Why `ip` (dotted quad) cannot be a remote tunnel endpoint, or undefined when it can. */
function publicIpProblem(ip: string, settings: Ipv4ScreenSettings): Problem | undefined {
  const value = parseIpv4Value(ip);
  if (value < 0) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is not an IPv4 address` };
  const special = SPECIAL_IPV4_RANGES.find((r) => contains(r.prefix, { base: value, length: 32 }));
  if (special) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is in ${special.name}` };
  if (settings.broadcastAddresses.includes(ip)) return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is the broadcast address of this host's external network` };
  if (contains(settings.network, { base: value, length: 32 })) {
    return { reason: 'public_ip_unusable', detail: `PublicIP ${ip} is inside the cluster network: tunnel traffic to it would be routed into the overlay itself` };
  }
  if (settings.localAddresses.includes(ip)) return { reason: 'public_ip_is_local', detail: `PublicIP ${ip} is this host's own address` };
  return undefined;
}

/** The IPv6 screen's verdict: the lease's IPv6 subnet and its PublicIPv6, by the IPv4 screen's rules. */
function judge6(lease: SubnetLease, settings: Ipv6ScreenSettings): Verdict {
  if (lease.ipv6Subnet === undefined) return { base: undefined };
  let prefix: Ipv6Prefix;
  try {
    prefix = parseIpv6Prefix(lease.ipv6Subnet, 'IPv6 subnet');
  } catch {
    return { base: -1, key: { reason: 'wrong_prefix_length', detail: `${lease.ipv6Subnet} is not an IPv6 network address` } };
  }
  if (prefix.length !== settings.subnetLen) {
    return { base: -1, key: { reason: 'wrong_prefix_length', detail: `${lease.ipv6Subnet} is not a /${settings.subnetLen} (the network config's IPv6SubnetLen)` } };
  }
  if (!contains6(settings.network, prefix)) return { base: baseKey(prefix.base), key: { reason: 'outside_network', detail: `${lease.ipv6Subnet} is outside the cluster's IPv6 network` } };
  return { base: baseKey(prefix.base), publicIp: publicIpv6Problem(lease.record.publicIpv6 ?? undefined, settings) };
}

/** A subnet's network address as a Map key: IPv4's number as it is, IPv6's bigint as hex text. */
function baseKey(base: number | bigint): number | string {
  return typeof base === 'bigint' ? base.toString(16) : base;
}

function publicIpv6Problem(ip: string | undefined, settings: Ipv6ScreenSettings): Problem | undefined {
  if (ip === undefined) return { reason: 'public_ip_unusable', detail: 'the lease has an IPv6 subnet but no PublicIPv6' };
  let value: bigint;
  try {
    value = parseIpv6Prefix(`${ip}/128`, 'PublicIPv6').base;
  } catch {
    return { reason: 'public_ip_unusable', detail: `PublicIPv6 ${ip} is not an IPv6 address` };
  }
  const problem = ipv6EndpointProblem(ip);
  if (problem !== undefined) return { reason: 'public_ip_unusable', detail: `PublicIPv6 ${ip} ${problem}` };
  if (contains6(settings.network, { base: value, length: 128 })) {
    return { reason: 'public_ip_unusable', detail: `PublicIPv6 ${ip} is inside the cluster's IPv6 network: tunnel traffic to it would be routed into the overlay itself` };
  }
  if (settings.localAddresses.includes(ip)) return { reason: 'public_ip_is_local', detail: `PublicIPv6 ${ip} is this host's own address` };
  return undefined;
}

/** Directed broadcast addresses of interface addresses ("198.18.0.1/24" -> "198.18.0.255"). */
export function broadcastAddresses(cidrs: readonly string[]): string[] {
  // /31 and /32 have no broadcast address (RFC 3021).
  return cidrs.map((c) => parseCidr(c)).filter((c) => c.address.family === 4 && c.prefixLength < 31).map((c) => formatIp(broadcastOf(c)));
}
