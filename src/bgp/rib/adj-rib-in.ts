// One peer's Adj-RIB-In (RFC 4271 §3.2) after import policy: the routes it announced that we
// accepted, per family, keyed by prefix. Also holds the local advertisements (setLocal) in the
// RIB's "local" source.
//
// Graceful restart (RFC 4724 §4.2): when the peer's session drops and it can restart gracefully,
// its routes stay but are marked stale; routes it announces again lose the mark; End-of-RIB or
// the restart timer ends it and whatever is still stale is withdrawn. Stale marks are a Set of
// prefixes that exists only during a restart, so routes carry no flag (and no wrapper object)
// the rest of the time.

import type { Family, Prefix, Route } from '../types.js';

export class AdjRibIn {
  private readonly v4 = new Map<Prefix, Route>();
  private readonly v6 = new Map<Prefix, Route>();
  private staleV4: Set<Prefix> | undefined;
  private staleV6: Set<Prefix> | undefined;

  table(family: Family): Map<Prefix, Route> {
    return family === 'ipv4-unicast' ? this.v4 : this.v6;
  }

  get(family: Family, prefix: Prefix): Route | undefined {
    return this.table(family).get(prefix);
  }

  /** Stores `route` (replacing any route for its prefix: implicit withdraw, RFC 4271 §3.1) and clears its stale mark. */
  set(route: Route): void {
    this.table(route.family).set(route.prefix, route);
    this.unstale(route.family, route.prefix);
  }

  /** Removes the route for `prefix`; returns it, or undefined when there was none. */
  delete(family: Family, prefix: Prefix): Route | undefined {
    const table = this.table(family);
    const old = table.get(prefix);
    if (old !== undefined) {
      table.delete(prefix);
      this.unstale(family, prefix);
    }
    return old;
  }

  size(family?: Family): number {
    return family === undefined ? this.v4.size + this.v6.size : this.table(family).size;
  }

  *routes(family?: Family): IterableIterator<Route> {
    if (family !== 'ipv6-unicast') yield* this.v4.values();
    if (family !== 'ipv4-unicast') yield* this.v6.values();
  }

  /** RFC 4724 §4.2: the session dropped; every route of `family` is stale until announced again. Returns how many. */
  markStale(family: Family): number {
    const stale = new Set(this.table(family).keys());
    if (family === 'ipv4-unicast') this.staleV4 = stale;
    else this.staleV6 = stale;
    return stale.size;
  }

  /** A route the peer announced again is fresh. */
  unstale(family: Family, prefix: Prefix): void {
    const stale = this.staleSet(family);
    if (stale !== undefined) stale.delete(prefix);
  }

  isStale(family: Family, prefix: Prefix): boolean {
    return this.staleSet(family)?.has(prefix) ?? false;
  }

  staleCount(family?: Family): number {
    if (family === undefined) return (this.staleV4?.size ?? 0) + (this.staleV6?.size ?? 0);
    return this.staleSet(family)?.size ?? 0;
  }

  /**
   * Ends graceful restart for `family` (End-of-RIB received, or the restart timer expired):
   * removes the routes still stale and returns them, for the caller to withdraw.
   */
  sweepStale(family: Family): Route[] {
    const stale = this.staleSet(family);
    if (family === 'ipv4-unicast') this.staleV4 = undefined;
    else this.staleV6 = undefined;
    if (stale === undefined) return [];
    const table = this.table(family);
    const removed: Route[] = [];
    for (const prefix of stale) {
      const route = table.get(prefix);
      if (route === undefined) continue;
      table.delete(prefix);
      removed.push(route);
    }
    return removed;
  }

  private staleSet(family: Family): Set<Prefix> | undefined {
    return family === 'ipv4-unicast' ? this.staleV4 : this.staleV6;
  }
}
