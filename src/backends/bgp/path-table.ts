import type { LearnedPath, PathsEvent } from './driver.js';

/** One peer's path for a prefix; a prefix's paths are a short list (one per peer that gave it). */
interface PeerPath {
  readonly peer: string;
  path: LearnedPath;
  next: PeerPath | undefined;
}

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
  // One small node per prefix and peer rather than a Map per prefix: a table of 10,000 prefixes
  // from one ToR is 10,000 nodes, and a burst of UPDATEs allocates nothing else here.
  readonly #byPrefix = new Map<string, PeerPath>();

  /**
   * Applies one peer's announcements and withdrawals; adds the prefixes whose paths changed to
   * `touched` (a new set when none is given) and returns it.
   */
  apply(event: PathsEvent, touched: Set<string> = new Set()): Set<string> {
    const { peer } = event;
    for (const prefix of event.withdrawn) {
      if (this.#remove(prefix, peer)) touched.add(prefix);
    }
    for (const path of event.announced) {
      const head = this.#byPrefix.get(path.prefix);
      let node = head;
      while (node !== undefined && node.peer !== peer) node = node.next;
      if (node !== undefined) node.path = path;
      else this.#byPrefix.set(path.prefix, { peer, path, next: head });
      touched.add(path.prefix);
    }
    return touched;
  }

  /** Forgets everything a peer gave (its session was removed from the configuration). */
  dropPeer(peer: string): Set<string> {
    const touched = new Set<string>();
    for (const prefix of [...this.#byPrefix.keys()]) if (this.#remove(prefix, peer)) touched.add(prefix);
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
    for (const head of this.#byPrefix.values()) {
      for (let n: PeerPath | undefined = head; n !== undefined; n = n.next) counts.set(n.peer, (counts.get(n.peer) ?? 0) + 1);
    }
    return counts;
  }

  /** The equal-cost best paths for `prefix` with their peers, sorted by next hop; empty when none. */
  best(prefix: string, usable: (path: LearnedPath) => boolean = () => true): { peer: string; path: LearnedPath }[] {
    const head = this.#byPrefix.get(prefix);
    if (head === undefined) return [];
    if (head.next === undefined) return usable(head.path) ? [{ peer: head.peer, path: head.path }] : [];
    let best: { peer: string; path: LearnedPath }[] = [];
    for (let n: PeerPath | undefined = head; n !== undefined; n = n.next) {
      if (!usable(n.path)) continue;
      const order = best.length === 0 ? -1 : compare(n.path, best[0]!.path);
      if (order < 0) best = [{ peer: n.peer, path: n.path }];
      else if (order === 0) best.push({ peer: n.peer, path: n.path });
    }
    return best.sort((a, b) => (a.path.nextHop < b.path.nextHop ? -1 : a.path.nextHop > b.path.nextHop ? 1 : a.peer < b.peer ? -1 : 1));
  }

  /** Removes `peer`'s path for `prefix`; true if it had one. */
  #remove(prefix: string, peer: string): boolean {
    const head = this.#byPrefix.get(prefix);
    if (head === undefined) return false;
    if (head.peer === peer) {
      if (head.next === undefined) this.#byPrefix.delete(prefix);
      else this.#byPrefix.set(prefix, head.next);
      return true;
    }
    for (let n = head; n.next !== undefined; n = n.next) {
      if (n.next.peer === peer) {
        n.next = n.next.next;
        return true;
      }
    }
    return false;
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
