// Import policy compiled for one peer when its session reaches Established (RFC 4271 §9.1.1):
// the prefix ranges as integer rows (range-matcher.ts), the peer's facts (iBGP or not, our AS,
// router and cluster id, our addresses) bound once. Deciding a route is then integer tests on
// its numeric prefix plus one check of its path, and the path check is remembered for the path
// object, which all the prefixes of one received UPDATE share (BIRD's rta): a 4,096-octet
// UPDATE of 800 prefixes costs one AS_PATH walk, not 800.
//
// The checks and their order are those of ImportPolicy.evaluate(), which uses this class too:
// default route, own prefix, accepted ranges; then the path's loops and next hop; then the
// optional on-link callback, which is called for every route (links come and go).

import type { Stride } from '../prefix/prefix-list.js';
import type { PathAttributes, RoutePath } from '../types.js';
import { asPathContains } from './as-path.js';
import { ACCEPT, reject, type ImportContext, type ImportVerdict } from './import-verdict.js';
import { unusableNextHop } from './next-hop.js';
import type { PrefixSet } from './prefix-set.js';
import type { RangeMatcher } from './range-matcher.js';

/** The compiled, peer-independent part of an import policy (ImportPolicy). */
export interface ImportRules {
  readonly accept: PrefixSet;
  readonly rejectDefaultRoute: boolean;
  readonly rejectPrefixes: PrefixSet;
  readonly maxPrefixes: number;
  readonly maxPrefixScope: 'family' | 'peer';
  readonly requireOnLinkNextHop: ((nextHop: string) => boolean) | undefined;
}

const DEFAULT_ROUTE = reject('default-route');
const OWN_PREFIX = reject('own-prefix');
const NOT_ACCEPTED = reject('not-accepted');
const NOT_ON_LINK = reject('next-hop-not-on-link');

export class PeerImport {
  readonly maxPrefixes: number;
  readonly maxPrefixScope: 'family' | 'peer';
  private readonly accept: RangeMatcher;
  private readonly rejectPrefixes: RangeMatcher;
  private readonly rejectDefaultRoute: boolean;
  private readonly onLink: ((nextHop: string) => boolean) | undefined;
  // One-entry memo of the path check, see the file comment.
  private lastPath: RoutePath | undefined;
  private lastPathVerdict: ImportVerdict = ACCEPT;

  constructor(rules: ImportRules, readonly context: ImportContext) {
    this.maxPrefixes = rules.maxPrefixes;
    this.maxPrefixScope = rules.maxPrefixScope;
    this.accept = rules.accept.matcher;
    this.rejectPrefixes = rules.rejectPrefixes.matcher;
    this.rejectDefaultRoute = rules.rejectDefaultRoute;
    this.onLink = rules.requireOnLinkNextHop;
  }

  /**
   * Call before each UPDATE: forgets the remembered path check, since our own addresses may have
   * grown since (a session came up), and a path object could be handed in again.
   */
  begin(): void {
    this.lastPath = undefined;
  }

  /** Decides the prefix at `words[at..]`/`len` announced with `path`. */
  verdict(stride: Stride, words: Uint32Array, at: number, len: number, path: RoutePath): ImportVerdict {
    if (this.rejectDefaultRoute && len === 0) return DEFAULT_ROUTE;
    if (this.rejectPrefixes.matches(stride, words, at, len)) return OWN_PREFIX;
    if (!this.accept.matches(stride, words, at, len)) return NOT_ACCEPTED;
    if (path !== this.lastPath) {
      this.lastPathVerdict = this.pathVerdict(path);
      this.lastPath = path;
    }
    if (!this.lastPathVerdict.accepted) return this.lastPathVerdict;
    if (this.onLink !== undefined && !this.onLink(path.nextHop)) return NOT_ON_LINK;
    return ACCEPT;
  }

  /** The checks that depend on the path alone: loops, then the next hop. */
  private pathVerdict(path: RoutePath): ImportVerdict {
    const loops = checkLoops(path.attributes, this.context);
    if (!loops.accepted) return loops;
    const unusable = unusableNextHop(path.nextHop, this.context);
    return unusable === undefined ? ACCEPT : reject(unusable);
  }
}

/**
 * Loop detection. RFC 4271 §9.1.2 excludes a route whose AS_PATH holds our AS; that is the eBGP
 * case, but an iBGP route carrying our AS has also left and come back, so it applies to both.
 * RFC 4456 §8: ORIGINATOR_ID equal to our router id, or our cluster id in CLUSTER_LIST, is a
 * reflection loop (checked for iBGP, where those attributes live).
 */
function checkLoops(attributes: PathAttributes, context: ImportContext): ImportVerdict {
  if (asPathContains(attributes.asPath, context.localAsn)) return reject('as-loop');
  if (context.ibgp) {
    if (attributes.originatorId === context.routerId) return reject('originator-loop');
    if (attributes.clusterList?.includes(context.clusterId)) return reject('cluster-loop');
  }
  return ACCEPT;
}
