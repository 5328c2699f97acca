// The Loc-RIB (RFC 4271 §3.2): for every prefix, which sources hold a route for it, the best
// first. The routes themselves stay in the sources' Adj-RIBs-In; this map holds only references
// to the sources, and a prefix known from a single source (the usual case: each node announces
// its own block) is one Map entry pointing at that source: no array, no wrapper object.

import type { Family, Prefix, Route } from '../types.js';
import { selectBest, type PathSource } from './best-path.js';

type Entry = PathSource | PathSource[];

export class LocRib {
  private readonly v4 = new Map<Prefix, Entry>();
  private readonly v6 = new Map<Prefix, Entry>();

  constructor(private readonly localAsn: number) {}

  private table(family: Family): Map<Prefix, Entry> {
    return family === 'ipv4-unicast' ? this.v4 : this.v6;
  }

  /** The source of the best route for `prefix`. */
  bestSource(family: Family, prefix: Prefix): PathSource | undefined {
    const entry = this.table(family).get(prefix);
    return Array.isArray(entry) ? entry[0] : entry;
  }

  has(family: Family, prefix: Prefix): boolean {
    return this.table(family).has(prefix);
  }

  /** How many sources hold a route for `prefix`. */
  candidates(family: Family, prefix: Prefix): number {
    const entry = this.table(family).get(prefix);
    return entry === undefined ? 0 : Array.isArray(entry) ? entry.length : 1;
  }

  /**
   * The best source for the prefix of the last update() call, as it was before that call (saves
   * the caller a second lookup of the same prefix on the hot path).
   */
  previousBest: PathSource | undefined;

  // The entry the last holds() call found, for the update() of the same prefix that usually
  // follows: a received route costs one Loc-RIB lookup instead of two. Only update() changes the
  // table, and it always clears this, so a remembered entry is never stale.
  private peekedFamily: Family | undefined;
  private peekedPrefix: Prefix | undefined;
  private peekedEntry: Entry | undefined;

  /**
   * Whether `source` holds a route for `prefix`. Every route in a source's Adj-RIB-In is
   * registered here, so a prefix held by no source (a table being learned) needs no lookup in
   * the Adj-RIB-In at all.
   */
  holds(family: Family, prefix: Prefix, source: PathSource): boolean {
    const entry = this.table(family).get(prefix);
    this.peekedFamily = family;
    this.peekedPrefix = prefix;
    this.peekedEntry = entry;
    return entry === source || (Array.isArray(entry) && entry.includes(source));
  }

  /**
   * `source` now holds a route for `prefix` (`present`) or no longer does; its Adj-RIB-In is
   * already updated. Re-runs selection when needed and returns the source of the best route.
   */
  update(family: Family, prefix: Prefix, source: PathSource, present: boolean): PathSource | undefined {
    const table = this.table(family);
    const entry = this.peekedPrefix === prefix && this.peekedFamily === family ? this.peekedEntry : table.get(prefix);
    this.peekedPrefix = undefined;
    this.peekedEntry = undefined;
    this.previousBest = Array.isArray(entry) ? entry[0] : entry;
    if (entry === undefined) {
      if (!present) return undefined;
      table.set(prefix, source);
      return source;
    }
    if (!Array.isArray(entry)) {
      if (entry === source) {
        if (!present) table.delete(prefix);
        return present ? source : undefined;
      }
      if (!present) return entry;
      const pair = [entry, source];
      table.set(prefix, pair);
      return this.reselect(family, prefix, pair);
    }
    const at = entry.indexOf(source);
    if (present && at < 0) entry.push(source);
    if (!present && at >= 0) entry.splice(at, 1);
    if (entry.length === 1) {
      table.set(prefix, entry[0]!);
      return entry[0];
    }
    return this.reselect(family, prefix, entry);
  }

  /** Puts the best source at index 0 and returns it. */
  private reselect(family: Family, prefix: Prefix, sources: PathSource[]): PathSource {
    const best = selectBest(family, prefix, sources, this.localAsn);
    if (best !== 0) [sources[0], sources[best]] = [sources[best]!, sources[0]!];
    return sources[0]!;
  }

  size(family?: Family): number {
    return family === undefined ? this.v4.size + this.v6.size : this.table(family).size;
  }

  /** Calls `visit` with every prefix and the source of its best route. */
  forEachBest(family: Family, visit: (prefix: Prefix, source: PathSource) => void): void {
    // Map.forEach: no [key, value] pair per entry, which a full-table walk would allocate 10^5 times.
    this.table(family).forEach((entry, prefix) => visit(prefix, Array.isArray(entry) ? entry[0]! : entry));
  }

  /** Every best route with its source. */
  *best(family?: Family): IterableIterator<{ readonly route: Route; readonly source: PathSource }> {
    for (const f of family === undefined ? (['ipv4-unicast', 'ipv6-unicast'] as const) : [family]) {
      for (const [prefix, entry] of this.table(f)) {
        const source = Array.isArray(entry) ? entry[0]! : entry;
        yield { route: source.routes.get(f, prefix)!, source };
      }
    }
  }
}
