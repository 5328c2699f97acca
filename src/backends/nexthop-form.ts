import type { RouteHop, RouteSpec } from '../netlink/index.js';

/**
 * How a route is written through nexthop objects (route-sync.ts explains why): the keys Twill
 * finds its nexthops by, and the rewriting of a desired route to name one. Shared by the full
 * sync, which makes missing nexthops, and the written state, which only names recorded ones.
 */

/** A single nexthop is what it is: gateway, device and onlink flag. */
export const nexthopKey = (gateway: string, oif: number, onlink: boolean): string => `${gateway}|${oif}|${onlink ? 1 : 0}`;

export const hopKey = (hop: { readonly gateway: string | undefined; readonly oif: number; readonly onlink?: boolean | undefined }): string =>
  nexthopKey(hop.gateway ?? '', hop.oif, hop.onlink ?? false);

type Hop = Parameters<typeof hopKey>[0];

/** The same next hops, in any order (ECMP has none). */
export function sameHopSet(a: readonly Hop[], b: readonly Hop[]): boolean {
  if (a.length !== b.length) return false;
  const wanted = b.map(hopKey).sort();
  return a.map(hopKey).sort().every((key, i) => key === wanted[i]);
}

/** A group is its set of members: their ids, sorted. */
export const groupKey = (members: readonly number[]): string => [...members].sort((a, b) => a - b).join('/');

/**
 * The next hops of a desired route if nexthop objects can express it: gateways on devices, with
 * no scope or preferred source of the route's own (a nexthop has neither). Else undefined, and
 * the route is written as given (and an invalid one refused as such).
 */
export function hopsOf(d: RouteSpec): readonly RouteHop[] | undefined {
  if (d.scope !== undefined || d.prefsrc !== undefined || d.nexthopId !== undefined) return undefined;
  if (d.multipath !== undefined) return d.multipath.length > 0 && d.gateway === undefined && d.oif === undefined && !d.onlink ? d.multipath : undefined;
  return d.gateway !== undefined && d.oif !== undefined ? [{ gateway: d.gateway, oif: d.oif, onlink: d.onlink ?? false }] : undefined;
}

/**
 * `d` naming a nexthop (RTA_NH_ID): the one of its single next hop, or the group of its several
 * (deduplicated). `single` and `group` give the ids; undefined from either makes the result
 * undefined. A route nexthops cannot express is returned as it is.
 */
export function viaNexthops(
  d: RouteSpec, single: (hop: RouteHop) => number | undefined, group: (sortedMembers: readonly number[]) => number | undefined,
): RouteSpec | undefined {
  const hops = hopsOf(d);
  if (hops === undefined) return d;
  if (hops.length === 1) {
    // The common route: one gateway, one nexthop (and nothing to deduplicate or sort).
    const id = single(hops[0]!);
    return id === undefined ? undefined : nexthopRoute(d, id);
  }
  const ids = new Set<number>();
  for (const hop of hops) {
    const id = single(hop);
    if (id === undefined) return undefined;
    ids.add(id);
  }
  const members = [...ids].sort((a, b) => a - b);
  const nexthopId = members.length === 1 ? members[0] : group(members);
  return nexthopId === undefined ? undefined : nexthopRoute(d, nexthopId);
}

function nexthopRoute(d: RouteSpec, nexthopId: number): RouteSpec {
  if (d.table === undefined && d.metric === undefined && d.protocol === undefined) return { dst: d.dst, nexthopId };
  return {
    dst: d.dst, nexthopId,
    ...(d.table !== undefined && { table: d.table }), ...(d.metric !== undefined && { metric: d.metric }), ...(d.protocol !== undefined && { protocol: d.protocol }),
  };
}

/**
 * What names `r` in a deletion: a route through a nexthop object by its id (with a device or
 * gateway the kernel finds none, fib_nh_match()), a plain one by its device.
 */
export function deletionSpec(r: { readonly dst: string; readonly nexthopId?: number | undefined; readonly oif?: number | undefined; readonly table?: number | undefined }): RouteSpec {
  return r.nexthopId !== undefined ? { dst: r.dst, nexthopId: r.nexthopId, table: r.table } : { dst: r.dst, oif: r.oif, table: r.table };
}
