// Best-path selection (RFC 4271 §9.1.2.2) among the routes several sources hold for one prefix.
// It runs only for prefixes with two or more candidates; a prefix known from one source needs no
// comparison at all.
//
// Done as the RFC describes it, by eliminating candidates step by step over the whole set, not
// with a pairwise comparator: the MED step compares only routes from the same neighbour AS, which
// is not a total order, so a sort could give an answer that depends on arrival order.

import { parseIpv4Value } from '../../core/ip.js';
import { asPathLength, neighbourAs } from '../policy/as-path.js';
import { DEFAULT_LOCAL_PREF } from '../policy/export-policy.js';
import type { RoutePath } from '../types.js';
import type { AdjRibIn } from './adj-rib-in.js';

/** A holder of routes that best-path can rank: a peer, or the local advertisements. */
export interface PathSource {
  /** The peer id; undefined for the local advertisements. */
  readonly id: string | undefined;
  readonly local: boolean;
  readonly ibgp: boolean;
  /** BGP identifier of the peer as an unsigned 32-bit number. */
  readonly routerIdNumber: number;
  /** The peer's address in a form that sorts numerically (see {@link addressSortKey}). */
  readonly addressKey: string;
  readonly routes: AdjRibIn;
}

/** Address bytes as hex behind a family digit: IPv4 sorts before IPv6, and each numerically. */
export function addressSortKey(family: 4 | 6, bytes: Uint8Array): string {
  return `${family}${Buffer.from(bytes).toString('hex')}`;
}

/** RFC 4271 §5.1.5 / §9.1.1: LOCAL_PREF counts only from internal peers; external routes get the default. */
function localPrefOf(source: PathSource, route: RoutePath): number {
  return source.ibgp ? (route.attributes.localPref ?? DEFAULT_LOCAL_PREF) : DEFAULT_LOCAL_PREF;
}

/** RFC 4456 §9: a reflected route is ranked by its ORIGINATOR_ID instead of the peer's identifier. */
function identifierOf(source: PathSource, route: RoutePath): number {
  const originator = route.attributes.originatorId;
  return originator !== undefined ? parseIpv4Value(originator) : source.routerIdNumber;
}

/** RFC 4456 §9: the CLUSTER_LIST length, 0 without one. */
function clusterListLength(route: RoutePath): number {
  return route.attributes.clusterList?.length ?? 0;
}

/** Keeps the indexes whose score is the highest (or the lowest). */
function keepBest(live: number[], score: (i: number) => number, lowest: boolean): number[] {
  let best = lowest ? Infinity : -Infinity;
  for (const i of live) {
    const s = score(i);
    if (lowest ? s < best : s > best) best = s;
  }
  return live.filter((i) => score(i) === best);
}

/**
 * The index of the best route among `routes`, one per source, all for one prefix. Steps (RFC 4271
 * §9.1.2.2 unless noted): a local advertisement first; highest LOCAL_PREF (§9.1.1); shortest
 * AS_PATH; lowest ORIGIN; lowest MED among routes from the same neighbour AS (c: a missing MED
 * counts as 0); eBGP over iBGP (d); lowest BGP identifier (f, the ORIGINATOR_ID of a reflected
 * route); shortest CLUSTER_LIST (RFC 4456 §9, between f and g); lowest peer address (g). Step e
 * (IGP cost to the next hop) does not apply: next hops are on-link.
 */
export function selectBest(sources: readonly PathSource[], routes: readonly RoutePath[], localAsn: number): number {
  if (sources.length === 2) {
    // With two candidates the elimination is a plain comparison: no arrays, no closures.
    return firstIsBetter(sources[0]!, routes[0]!, sources[1]!, routes[1]!, localAsn) ? 0 : 1;
  }
  let live = sources.map((_, i) => i);
  const steps: ((live: number[]) => number[])[] = [
    (l) => (l.some((i) => sources[i]!.local) ? l.filter((i) => sources[i]!.local) : l),
    (l) => keepBest(l, (i) => localPrefOf(sources[i]!, routes[i]!), false),
    (l) => keepBest(l, (i) => asPathLength(routes[i]!.attributes.asPath), true),
    (l) => keepBest(l, (i) => routes[i]!.attributes.origin, true),
    (l) => eliminateByMed(l, routes, localAsn),
    (l) => (l.some((i) => !sources[i]!.ibgp) ? l.filter((i) => !sources[i]!.ibgp) : l),
    (l) => keepBest(l, (i) => identifierOf(sources[i]!, routes[i]!), true),
    (l) => keepBest(l, (i) => clusterListLength(routes[i]!), true),
  ];
  for (const step of steps) {
    if (live.length === 1) return live[0]!;
    live = step(live);
  }
  // Lowest peer address; the keys are unique per peer, so exactly one remains.
  return live.reduce((a, b) => (sources[b]!.addressKey < sources[a]!.addressKey ? b : a));
}

/** RFC 4271 §9.1.2.2 c: drop a route when another from the same neighbour AS has a lower MED. */
function eliminateByMed(live: number[], routes: readonly RoutePath[], localAsn: number): number[] {
  const lowest = new Map<number, number>();
  for (const i of live) {
    const a = routes[i]!.attributes;
    const asn = neighbourAs(a.asPath, localAsn);
    const med = a.med ?? 0;
    const seen = lowest.get(asn);
    if (seen === undefined || med < seen) lowest.set(asn, med);
  }
  return live.filter((i) => {
    const a = routes[i]!.attributes;
    return (a.med ?? 0) === lowest.get(neighbourAs(a.asPath, localAsn));
  });
}

/** The same steps as {@link selectBest} for exactly two candidates. */
function firstIsBetter(sa: PathSource, ra: RoutePath, sb: PathSource, rb: RoutePath, localAsn: number): boolean {
  if (sa.local !== sb.local) return sa.local;
  const lpA = localPrefOf(sa, ra);
  const lpB = localPrefOf(sb, rb);
  if (lpA !== lpB) return lpA > lpB;
  const a = ra.attributes;
  const b = rb.attributes;
  const lenA = asPathLength(a.asPath);
  const lenB = asPathLength(b.asPath);
  if (lenA !== lenB) return lenA < lenB;
  if (a.origin !== b.origin) return a.origin < b.origin;
  if (neighbourAs(a.asPath, localAsn) === neighbourAs(b.asPath, localAsn) && (a.med ?? 0) !== (b.med ?? 0)) return (a.med ?? 0) < (b.med ?? 0);
  if (sa.ibgp !== sb.ibgp) return !sa.ibgp;
  const idA = identifierOf(sa, ra);
  const idB = identifierOf(sb, rb);
  if (idA !== idB) return idA < idB;
  const clA = clusterListLength(ra);
  const clB = clusterListLength(rb);
  if (clA !== clB) return clA < clB;
  return sa.addressKey <= sb.addressKey;
}
