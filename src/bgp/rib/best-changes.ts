// Best-route changes as the RIB records them while it applies an UPDATE: the prefix as numbers
// and references to the paths and sources before and after. BestChange objects (with prefix
// text and Route objects) are made only when a caller asks, which the speaker does only while
// someone listens to its 'best' event: a table transfer into a process that does not listen
// (twillctl bgp serve, the bgp backend) makes no object per changed prefix.

import { PrefixList } from '../prefix/prefix-list.js';
import type { Family, Prefix, Route, RoutePath } from '../types.js';
import { isRoute } from './adj-rib-in.js';
import type { PathSource } from './best-path.js';
import type { BestChange, RecordedChanges } from './results.js';

export class BestChangeLog implements RecordedChanges {
  private readonly v4 = new PrefixList('ipv4-unicast');
  private readonly v6 = new PrefixList('ipv6-unicast');
  /** Per change: the family's list it is in (its index there is counted in order). */
  private readonly families: Family[] = [];
  private readonly routes: (RoutePath | undefined)[] = [];
  private readonly previous: (RoutePath | undefined)[] = [];
  private readonly peerIds: (string | undefined)[] = [];
  private readonly previousPeerIds: (string | undefined)[] = [];

  get count(): number {
    return this.families.length;
  }

  /** The best route for the prefix at `words[at..]`/`len` went from `previous` (held by `before`) to `route` (held by `after`). */
  add(family: Family, words: Uint32Array, at: number, len: number, previous: RoutePath | undefined, before: PathSource | undefined, route: RoutePath | undefined, after: PathSource | undefined): void {
    (family === 'ipv4-unicast' ? this.v4 : this.v6).push(words, at, len);
    this.families.push(family);
    this.previous.push(previous);
    this.previousPeerIds.push(before?.id);
    this.routes.push(route);
    this.peerIds.push(after?.id);
  }

  /** The changes as BestChange objects, in the order they happened. */
  changes(): BestChange[] {
    const out: BestChange[] = [];
    let i4 = 0;
    let i6 = 0;
    for (let i = 0; i < this.families.length; i++) {
      const family = this.families[i]!;
      const prefix = family === 'ipv4-unicast' ? this.v4.text(i4++) : this.v6.text(i6++);
      out.push({
        family, prefix,
        route: routeOf(this.routes[i], prefix),
        previous: routeOf(this.previous[i], prefix),
        peerId: this.peerIds[i],
        previousPeerId: this.previousPeerIds[i],
      });
    }
    return out;
  }
}

/** `path` as a Route for `prefix`: itself when it already is one. */
function routeOf(path: RoutePath | undefined, prefix: Prefix): Route | undefined {
  if (path === undefined || isRoute(path)) return path;
  return { family: path.family, prefix, nextHop: path.nextHop, attributes: path.attributes };
}
