// The Loc-RIB (RFC 4271 §3.2): for every prefix, which sources hold a route for it, the best
// first. The routes themselves stay in the sources' Adj-RIBs-In; this table holds only references
// to the sources, and a prefix known from a single source (the usual case: each node announces
// its own block) is one entry pointing at that source: no array, no wrapper object.
//
// Prefixes are numeric keys (../prefix/prefix-table.ts). The RIB looks a prefix up once per
// received route, with find(), and hands the entry index to update(); nothing is inserted into
// the table between the two, so the index is still valid.

import { PrefixTable } from '../prefix/prefix-table.js';
import type { Family, Route, RoutePath } from '../types.js';
import { selectBest, type PathSource } from './best-path.js';

type Entry = PathSource | PathSource[];

export class LocRib {
  private readonly v4 = new PrefixTable<Entry>('ipv4-unicast');
  private readonly v6 = new PrefixTable<Entry>('ipv6-unicast');

  /**
   * The best source for the prefix of the last update() call, as it was before that call (saves
   * the caller a second lookup of the same prefix on the hot path).
   */
  previousBest: PathSource | undefined;

  constructor(private readonly localAsn: number) {}

  table(family: Family): PrefixTable<Entry> {
    return family === 'ipv4-unicast' ? this.v4 : this.v6;
  }

  /** The entry of the prefix at `words[at..]`/`len` (`h` its hash), or -1. */
  find(family: Family, words: Uint32Array, at: number, len: number, h: number): number {
    return this.table(family).find(words, at, len, h);
  }

  /** The source of the best route at entry `e`. */
  bestAt(family: Family, e: number): PathSource {
    const entry = this.table(family).valueAt(e);
    return Array.isArray(entry) ? entry[0]! : entry;
  }

  /** The source of the best route for the prefix, or undefined. */
  bestSource(family: Family, words: Uint32Array, at: number, len: number, h: number): PathSource | undefined {
    const e = this.find(family, words, at, len, h);
    return e < 0 ? undefined : this.bestAt(family, e);
  }

  /**
   * Whether `source` holds a route for the prefix at entry `e` (-1: no source does). Every route
   * in a source's Adj-RIB-In is registered here, so a prefix held by no source (a table being
   * learned) needs no lookup in the Adj-RIB-In at all.
   */
  holds(family: Family, e: number, source: PathSource): boolean {
    if (e < 0) return false;
    const entry = this.table(family).valueAt(e);
    return entry === source || (Array.isArray(entry) && entry.includes(source));
  }

  /** `source` is the first to hold a route for the prefix (find() said -1), so it is the best. */
  add(family: Family, words: Uint32Array, at: number, len: number, h: number, source: PathSource): void {
    this.table(family).insert(words, at, len, source, h);
  }

  /**
   * `source` now holds a route for the prefix (`present`) or no longer does; its Adj-RIB-In is
   * already updated. `e` is the prefix's entry from find() (-1: absent), `h` its hash. Re-runs
   * selection when needed and returns the source of the best route.
   */
  update(family: Family, e: number, words: Uint32Array, at: number, len: number, h: number, source: PathSource, present: boolean): PathSource | undefined {
    const table = this.table(family);
    const entry = e < 0 ? undefined : table.valueAt(e);
    this.previousBest = Array.isArray(entry) ? entry[0] : entry;
    if (entry === undefined) {
      if (!present) return undefined;
      table.insert(words, at, len, source, h);
      return source;
    }
    if (!Array.isArray(entry)) {
      if (entry === source) {
        if (!present) table.deleteAt(e);
        return present ? source : undefined;
      }
      if (!present) return entry;
      const pair = [entry, source];
      table.setValueAt(e, pair);
      return this.reselect(family, words, at, len, h, pair);
    }
    const i = entry.indexOf(source);
    if (present && i < 0) entry.push(source);
    if (!present && i >= 0) entry.splice(i, 1);
    if (entry.length === 1) {
      table.setValueAt(e, entry[0]!);
      return entry[0];
    }
    return this.reselect(family, words, at, len, h, entry);
  }

  /** Puts the best source at index 0 and returns it. */
  private reselect(family: Family, words: Uint32Array, at: number, len: number, h: number, sources: PathSource[]): PathSource {
    const paths: RoutePath[] = sources.map((s) => s.routes.get(family, words, at, len, h)!);
    const best = selectBest(sources, paths, this.localAsn);
    if (best !== 0) [sources[0], sources[best]] = [sources[best]!, sources[0]!];
    return sources[0]!;
  }

  size(family?: Family): number {
    return family === undefined ? this.v4.size + this.v6.size : this.table(family).size;
  }

  /** Calls `visit` with every entry and the source of its best route, in insertion order. */
  forEachBest(family: Family, visit: (table: PrefixTable<unknown>, e: number, source: PathSource) => void): void {
    const table = this.table(family);
    for (let e = table.next(0); e >= 0; e = table.next(e + 1)) visit(table, e, this.bestAt(family, e));
  }

  /** Every best route with its source, as Route objects (made once per route, see AdjRibIn.routeAt). */
  *best(family?: Family): IterableIterator<{ readonly route: Route; readonly source: PathSource }> {
    for (const f of family === undefined ? (['ipv4-unicast', 'ipv6-unicast'] as const) : [family]) {
      const table = this.table(f);
      for (let e = table.next(0); e >= 0; e = table.next(e + 1)) {
        const source = this.bestAt(f, e);
        yield { route: source.routes.routeAt(f, source.routes.table(f).findEntryOf(table, e)), source };
      }
    }
  }

  /** Gives memory back after many withdrawals. Not while iterating. */
  compact(): void {
    this.v4.compact();
    this.v6.compact();
  }
}
