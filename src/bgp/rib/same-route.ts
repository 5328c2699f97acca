// Whether a re-announced route says anything new. A peer that restarts gracefully (RFC 4724)
// or answers a ROUTE-REFRESH sends its whole table again, in freshly decoded objects; treating
// each as a change would push the whole table through best-path, the kernel and every other peer.

import type { AsPathSegment, PathAttributes, RoutePath } from '../types.js';

// One-entry memo: the prefixes of one UPDATE share one attributes object, and so did the
// prefixes of the UPDATE it repeats.
let memoA: PathAttributes | undefined;
let memoB: PathAttributes | undefined;
let memoEqual = false;

/** Same prefix assumed; true when next hop and every attribute are equal. */
export function sameRoute(a: RoutePath, b: RoutePath): boolean {
  if (a.nextHop !== b.nextHop) return false;
  const x = a.attributes;
  const y = b.attributes;
  if (x === y) return true;
  if (x !== memoA || y !== memoB) {
    memoA = x;
    memoB = y;
    memoEqual = sameAttributes(x, y);
  }
  return memoEqual;
}

function sameAttributes(x: PathAttributes, y: PathAttributes): boolean {
  return (
    x.origin === y.origin &&
    x.nextHop === y.nextHop &&
    x.med === y.med &&
    x.localPref === y.localPref &&
    (x.atomicAggregate ?? false) === (y.atomicAggregate ?? false) &&
    x.aggregator?.asn === y.aggregator?.asn &&
    x.aggregator?.address === y.aggregator?.address &&
    x.originatorId === y.originatorId &&
    sameAsPath(x.asPath, y.asPath) &&
    sameList(x.communities, y.communities, (p, q) => p === q) &&
    sameList(x.largeCommunities, y.largeCommunities, (p, q) => p[0] === q[0] && p[1] === q[1] && p[2] === q[2]) &&
    sameList(x.clusterList, y.clusterList, (p, q) => p === q) &&
    sameList(x.unknown, y.unknown, (p, q) => p.flags === q.flags && p.type === q.type && p.value.equals(q.value))
  );
}

function sameAsPath(p: readonly AsPathSegment[], q: readonly AsPathSegment[]): boolean {
  return sameList(p, q, (s, t) => s.type === t.type && sameList(s.asns, t.asns, (m, n) => m === n));
}

/** Lists compare equal element by element; absent equals empty. */
function sameList<T>(p: readonly T[] | undefined, q: readonly T[] | undefined, equal: (a: T, b: T) => boolean): boolean {
  const m = p?.length ?? 0;
  if (m !== (q?.length ?? 0)) return false;
  for (let i = 0; i < m; i++) if (!equal(p![i]!, q![i]!)) return false;
  return true;
}
