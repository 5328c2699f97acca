import type { LearnedPath, PathsEvent } from '../driver.js';

/**
 * The paths each peer gave us, as reported to the backend ('paths' events), kept in step with
 * gobgpd's Adj-RIB-In from two sources:
 *
 *   - WatchEvent's ADJIN table events: every path of every UPDATE, as it comes (low latency).
 *   - ListPath(ADJ_IN) snapshots (reconcile): gobgpd also drops paths without an UPDATE, and so
 *     without an event: all of a peer's when its session ends (at once, or when the RFC 4724
 *     restart time runs out), the stale ones after the peer's End-of-RIB, everything when it
 *     restarts; and a re-opened watch misses what changed while it was down.
 *
 * A snapshot is older than the events that arrive while it is being fetched, so begin() starts
 * recording which prefixes such events touch, and finish() leaves those to the events.
 */
export class LearnedPaths {
  readonly #byPeer = new Map<string, Map<string, LearnedPath>>();
  /** Per peer with a snapshot in flight: the prefixes events touched since it was asked for. */
  readonly #touched = new Map<string, Set<string>>();

  /** Applies one WatchEvent table event's paths of one peer; the event to emit, if any. */
  apply(peer: string, announced: readonly LearnedPath[], withdrawn: readonly string[]): PathsEvent | undefined {
    const paths = this.#paths(peer);
    const touched = this.#touched.get(peer);
    const gone: string[] = [];
    for (const prefix of withdrawn) {
      touched?.add(prefix);
      if (paths.delete(prefix)) gone.push(prefix);
    }
    for (const p of announced) {
      touched?.add(p.prefix);
      paths.set(p.prefix, p);
    }
    return announced.length > 0 || gone.length > 0 ? { peer, announced, withdrawn: gone } : undefined;
  }

  /** Call right before asking gobgpd for the peer's Adj-RIB-In. */
  begin(peer: string): void {
    this.#touched.set(peer, new Set());
  }

  /**
   * Brings the peer's paths to the snapshot asked for at begin(), except prefixes that events
   * touched since; the event to emit (what changed), if any.
   */
  finish(peer: string, snapshot: readonly LearnedPath[]): PathsEvent | undefined {
    const touched = this.#touched.get(peer) ?? new Set<string>();
    this.#touched.delete(peer);
    const paths = this.#paths(peer);
    const now = new Map(snapshot.map((p) => [p.prefix, p]));
    const announced: LearnedPath[] = [];
    const withdrawn: string[] = [];
    for (const [prefix, p] of now) {
      if (touched.has(prefix) || samePath(paths.get(prefix), p)) continue;
      paths.set(prefix, p);
      announced.push(p);
    }
    for (const prefix of paths.keys()) {
      if (touched.has(prefix) || now.has(prefix)) continue;
      paths.delete(prefix);
      withdrawn.push(prefix);
    }
    return announced.length > 0 || withdrawn.length > 0 ? { peer, announced, withdrawn } : undefined;
  }

  /** The snapshot could not be had: events alone count again. */
  abandon(peer: string): void {
    this.#touched.delete(peer);
  }

  /** The peer's session is gone for good (removed by setPeers): everything it gave is withdrawn. */
  drop(peer: string): PathsEvent | undefined {
    const paths = this.#byPeer.get(peer);
    this.#byPeer.delete(peer);
    this.#touched.delete(peer);
    return paths && paths.size > 0 ? { peer, announced: [], withdrawn: [...paths.keys()] } : undefined;
  }

  count(peer: string): number {
    return this.#byPeer.get(peer)?.size ?? 0;
  }

  #paths(peer: string): Map<string, LearnedPath> {
    let paths = this.#byPeer.get(peer);
    if (!paths) this.#byPeer.set(peer, (paths = new Map<string, LearnedPath>()));
    return paths;
  }
}

function samePath(a: LearnedPath | undefined, b: LearnedPath): boolean {
  return a !== undefined && a.nextHop === b.nextHop && a.asPathLength === b.asPathLength && a.localPref === b.localPref
    && a.med === b.med && a.origin === b.origin && a.ebgp === b.ebgp;
}
