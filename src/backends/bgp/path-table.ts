import type { LearnedPath, PathsEvent } from './driver.js';

/**
 * Every path the peers gave this host, by prefix and peer (an Adj-RIB-In per peer, after the
 * speaker's own checks), and the equal-cost best paths per prefix that become one kernel route.
 * Both speakers feed it the same way (driver 'paths' events), so ECMP is decided once, here.
 *
 * The best paths are chosen with the RFC 4271 §9.1.2.2 steps that matter between hosts and
 * their routers: highest LOCAL_PREF, shortest AS_PATH, lowest ORIGIN, lowest MED, eBGP over
 * iBGP. Paths equal on all of them are equal-cost (what BIRD's `merge paths` and FRR's
 * `maximum-paths` install as multipath): the router-id tie-break only picks one where the
 * kernel can use all. MED is compared across neighbouring ASes too (`always-compare-med`): in a
 * cluster the only MEDs are the operator's own.
 */
export class PathTable {
  readonly #byPrefix = new Map<string, Map<string, LearnedPath>>();

  /** Applies one peer's announcements and withdrawals; returns the prefixes whose paths changed. */
  apply(event: PathsEvent): Set<string> {
    const touched = new Set<string>();
    for (const prefix of event.withdrawn) {
      const paths = this.#byPrefix.get(prefix);
      if (paths?.delete(event.peer)) touched.add(prefix);
      if (paths?.size === 0) this.#byPrefix.delete(prefix);
    }
    for (const path of event.announced) {
      let paths = this.#byPrefix.get(path.prefix);
      if (!paths) this.#byPrefix.set(path.prefix, (paths = new Map<string, LearnedPath>()));
      paths.set(event.peer, path);
      touched.add(path.prefix);
    }
    return touched;
  }

  /** Forgets everything a peer gave (its session was removed from the configuration). */
  dropPeer(peer: string): Set<string> {
    const touched = new Set<string>();
    for (const [prefix, paths] of this.#byPrefix) {
      if (!paths.delete(peer)) continue;
      touched.add(prefix);
      if (paths.size === 0) this.#byPrefix.delete(prefix);
    }
    return touched;
  }

  prefixes(): IterableIterator<string> {
    return this.#byPrefix.keys();
  }

  get size(): number {
    return this.#byPrefix.size;
  }

  /** Prefixes each peer gave, for the peer listing. */
  countByPeer(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const paths of this.#byPrefix.values()) for (const peer of paths.keys()) counts.set(peer, (counts.get(peer) ?? 0) + 1);
    return counts;
  }

  /** The equal-cost best paths for `prefix` with their peers, sorted by next hop; empty when none. */
  best(prefix: string, usable: (path: LearnedPath) => boolean = () => true): { peer: string; path: LearnedPath }[] {
    const paths = this.#byPrefix.get(prefix);
    if (!paths) return [];
    let best: { peer: string; path: LearnedPath }[] = [];
    for (const [peer, path] of paths) {
      if (!usable(path)) continue;
      const order = best.length === 0 ? -1 : compare(path, best[0]!.path);
      if (order < 0) best = [{ peer, path }];
      else if (order === 0) best.push({ peer, path });
    }
    return best.sort((a, b) => (a.path.nextHop < b.path.nextHop ? -1 : a.path.nextHop > b.path.nextHop ? 1 : a.peer < b.peer ? -1 : 1));
  }
}

/** Negative when `a` is preferred, 0 when equal-cost (RFC 4271 §9.1.2.2 a-d). */
export function compare(a: LearnedPath, b: LearnedPath): number {
  return (b.localPref - a.localPref)
    || (a.asPathLength - b.asPathLength)
    || (a.origin - b.origin)
    || (a.med - b.med)
    || (Number(b.ebgp) - Number(a.ebgp));
}
