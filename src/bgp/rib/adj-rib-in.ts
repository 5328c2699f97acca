// One peer's Adj-RIB-In (RFC 4271 §3.2) after import policy: the routes it announced that we
// accepted, per family, keyed by numeric prefix (../prefix/prefix-table.ts). Also holds the
// local advertisements (setLocal) in the RIB's "local" source.
//
// A prefix's value is the path it was announced with (RoutePath), which all the prefixes of one
// UPDATE share: a table of 10^6 routes holds no object per route. A Route object (prefix text
// included) is made only when someone asks for one (peerRoutes, best, status) and then replaces
// the path in the table, so asking again gives the same object.
//
// Graceful restart (RFC 4724 §4.2): when the peer's session drops and it can restart gracefully,
// its routes stay but are marked stale; routes it announces again lose the mark; End-of-RIB or
// the restart timer ends it and whatever is still stale is withdrawn. Stale marks are a set of
// prefixes that exists only during a restart, so routes carry no flag the rest of the time.

import { PrefixList } from '../prefix/prefix-list.js';
import { PrefixTable } from '../prefix/prefix-table.js';
import type { Family, Route, RoutePath } from '../types.js';

/** A path that is already a Route (a local advertisement, a route handed in as an object, or one made by routeAt). */
export function isRoute(path: RoutePath): path is Route {
  return (path as Partial<Route>).prefix !== undefined;
}

/** Prefixes removed from a table, with the paths they had. */
export interface Removed {
  readonly prefixes: PrefixList;
  readonly paths: RoutePath[];
}

export class AdjRibIn {
  private readonly v4 = new PrefixTable<RoutePath>('ipv4-unicast');
  private readonly v6 = new PrefixTable<RoutePath>('ipv6-unicast');
  private staleV4: PrefixTable<true> | undefined;
  private staleV6: PrefixTable<true> | undefined;

  table(family: Family): PrefixTable<RoutePath> {
    return family === 'ipv4-unicast' ? this.v4 : this.v6;
  }

  /** The path held for the prefix at `words[at..]`/`len` (`h` its hash), or undefined. */
  get(family: Family, words: Uint32Array, at: number, len: number, h: number): RoutePath | undefined {
    return this.table(family).get(words, at, len, h);
  }

  /** Stores `path` for the prefix (replacing any: implicit withdraw, RFC 4271 §3.1) and clears its stale mark. */
  set(family: Family, words: Uint32Array, at: number, len: number, h: number, path: RoutePath): void {
    this.table(family).set(words, at, len, path, h);
    this.unstale(family, words, at, len, h);
  }

  /**
   * set() for a prefix the caller knows is absent (the Loc-RIB says this source holds none): no
   * lookup first, and no stale mark to clear, since only held prefixes are marked.
   */
  add(family: Family, words: Uint32Array, at: number, len: number, h: number, path: RoutePath): void {
    this.table(family).insert(words, at, len, path, h);
  }

  /** Removes the prefix; returns its path, or undefined when there was none. */
  delete(family: Family, words: Uint32Array, at: number, len: number, h: number): RoutePath | undefined {
    const old = this.table(family).delete(words, at, len, h);
    if (old !== undefined) this.unstale(family, words, at, len, h);
    return old;
  }

  size(family?: Family): number {
    return family === undefined ? this.v4.size + this.v6.size : this.table(family).size;
  }

  /** The route at entry `e` of the family's table as an object, made once (see the file comment). */
  routeAt(family: Family, e: number): Route {
    const table = this.table(family);
    const path = table.valueAt(e);
    if (isRoute(path)) return path;
    const route: Route = { family: path.family, prefix: table.text(e), nextHop: path.nextHop, attributes: path.attributes };
    table.setValueAt(e, route);
    return route;
  }

  *routes(family?: Family): IterableIterator<Route> {
    for (const f of family === undefined ? (['ipv4-unicast', 'ipv6-unicast'] as const) : [family]) {
      const table = this.table(f);
      for (let e = table.next(0); e >= 0; e = table.next(e + 1)) yield this.routeAt(f, e);
    }
  }

  /** RFC 4724 §4.2: the session dropped; every route of `family` is stale until announced again. Returns how many. */
  markStale(family: Family): number {
    const table = this.table(family);
    const stale = new PrefixTable<true>(family, table.size);
    for (let e = table.next(0); e >= 0; e = table.next(e + 1)) stale.insert(table.keyWords, table.keyOffset(e), table.lengthAt(e), true);
    if (family === 'ipv4-unicast') this.staleV4 = stale;
    else this.staleV6 = stale;
    return stale.size;
  }

  /** A route the peer announced again (or withdrew) is no longer stale. `h` is the prefix's hash. */
  unstale(family: Family, words: Uint32Array, at: number, len: number, h: number): void {
    const stale = this.staleSet(family);
    if (stale !== undefined && stale.size > 0) stale.delete(words, at, len, h);
  }

  staleCount(family?: Family): number {
    if (family === undefined) return (this.staleV4?.size ?? 0) + (this.staleV6?.size ?? 0);
    return this.staleSet(family)?.size ?? 0;
  }

  /**
   * Ends graceful restart for `family` (End-of-RIB received, or the restart timer expired):
   * removes the routes still stale and returns them, for the caller to withdraw.
   */
  sweepStale(family: Family): Removed {
    const stale = this.staleSet(family);
    if (family === 'ipv4-unicast') this.staleV4 = undefined;
    else this.staleV6 = undefined;
    const removed: Removed = { prefixes: new PrefixList(family, stale?.size ?? 0), paths: [] };
    if (stale === undefined) return removed;
    const table = this.table(family);
    for (let s = stale.next(0); s >= 0; s = stale.next(s + 1)) {
      const e = table.findEntryOf(stale, s);
      if (e < 0) continue;
      stale.copyKey(s, removed.prefixes);
      removed.paths.push(table.deleteAt(e));
    }
    table.compact();
    return removed;
  }

  private staleSet(family: Family): PrefixTable<true> | undefined {
    return family === 'ipv4-unicast' ? this.staleV4 : this.staleV6;
  }
}
