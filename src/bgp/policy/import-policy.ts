// Import policy: which received routes enter a peer's Adj-RIB-In (RFC 4271 §9.1.1). Twill's
// policy (reference/bgp.md §1): accept only prefixes inside the cluster network, between the
// per-node block size and /32 (/128), never a default route, never our own block, and only with a
// next hop we can reach on a link and that is not our own (next-hop.ts). Plus the loop checks the
// RFCs require, and a limit on how many routes one peer may give us.
//
// `accept` empty means accept nothing. An agent that installs what it learns into the kernel must
// not take an arbitrary table by default (the same stance as RFC 8212 for eBGP); the agent fills
// `accept` with the cluster network.
//
// evaluate() runs once per received route, so it allocates nothing: verdicts are shared frozen
// objects, the prefix is read into a reused PrefixBits, and the checks that depend only on the
// path attributes are remembered for the last attributes object (an UPDATE carries hundreds of
// prefixes with one PathAttributes).

import { InvalidArgumentError } from '../../core/errors.js';
import type { PathAttributes, Prefix, Route } from '../types.js';
import { asPathContains } from './as-path.js';
import { unusableNextHop, type OwnAddresses } from './next-hop.js';
import { PrefixBits, readPrefix } from './prefix-bits.js';
import { PrefixSet, prefixRange, type PrefixRangeInput } from './prefix-set.js';

export type RejectReason =
  /** The prefix text is not a canonical prefix. */
  | 'malformed-prefix'
  /** The route's family does not match its prefix. */
  | 'family-mismatch'
  | 'default-route'
  /** Inside one of `rejectPrefixes` (our own block). */
  | 'own-prefix'
  /** Matches no `accept` range. */
  | 'not-accepted'
  /** Our AS is in the AS_PATH (RFC 4271 §9.1.2). */
  | 'as-loop'
  /** ORIGINATOR_ID is our router id (RFC 4456 §8). */
  | 'originator-loop'
  /** Our cluster id is in CLUSTER_LIST (RFC 4456 §8). */
  | 'cluster-loop'
  /** NEXT_HOP is one of our own addresses (RFC 4271 §6.3: the route is ignored, the session stays). */
  | 'own-next-hop'
  /** NEXT_HOP is a loopback address (127.0.0.0/8, ::1): the traffic would never leave this host. */
  | 'loopback-next-hop'
  /** `requireOnLinkNextHop` said no. */
  | 'next-hop-not-on-link'
  /** Would take the peer's Adj-RIB-In for the family beyond `maxPrefixes` (decided by the RIB). */
  | 'max-prefix';

export type ImportVerdict = { readonly accepted: true } | { readonly accepted: false; readonly reason: RejectReason };

const ACCEPT: ImportVerdict = Object.freeze({ accepted: true });
const rejections = new Map<RejectReason, ImportVerdict>();

/** The shared verdict object for `reason` (verdicts are compared by content, never mutated). */
export function reject(reason: RejectReason): ImportVerdict {
  let v = rejections.get(reason);
  if (!v) rejections.set(reason, (v = Object.freeze({ accepted: false, reason })));
  return v;
}

export interface ImportPolicyConfig {
  /** Ranges a prefix must match to be accepted. Empty: accept nothing. */
  readonly accept: readonly PrefixRangeInput[];
  /** Reject 0.0.0.0/0 and ::/0 even when `accept` covers them. Default true. */
  readonly rejectDefaultRoute?: boolean | undefined;
  /**
   * Blocks whose prefixes are refused, the block itself and everything inside it (our own pod
   * block: a more-specific route learned for it would take our pods' traffic).
   */
  readonly rejectPrefixes?: readonly Prefix[] | undefined;
  /**
   * Most accepted routes per family in one peer's Adj-RIB-In; beyond it the session sends Cease/1
   * (RFC 4486). Default {@link DEFAULT_MAX_PREFIXES}: a peer that leaks a full table must not
   * fill the agent's memory and the kernel's routing table.
   */
  readonly maxPrefixes?: number | undefined;
  /**
   * What `maxPrefixes` counts: 'family' (default), each family's routes on their own; 'peer', the
   * peer's routes of all families together (a dual-stack peer cannot send twice the limit).
   */
  readonly maxPrefixScope?: 'family' | 'peer' | undefined;
  /**
   * True for a next hop we can install (on a connected link). Called for each route that passed
   * the prefix and loop checks, and not remembered (links come and go): keep it cheap.
   */
  readonly requireOnLinkNextHop?: ((nextHop: string) => boolean) | undefined;
}

/** Routes per family one peer may give us when its policy names no limit (a cluster has far fewer nodes). */
export const DEFAULT_MAX_PREFIXES = 10_000;

/** Who we are and what kind of peer sent the route. The RIB keeps one per peer. */
export interface ImportContext extends OwnAddresses {
  readonly localAsn: number;
  /** RFC 4456 cluster id; our router id unless configured. */
  readonly clusterId: string;
  readonly ibgp: boolean;
}

/** A compiled, immutable import policy. One object may serve many peers. */
export class ImportPolicy {
  readonly accept: PrefixSet;
  readonly rejectDefaultRoute: boolean;
  readonly rejectPrefixes: PrefixSet;
  readonly maxPrefixes: number;
  readonly maxPrefixScope: 'family' | 'peer';
  private readonly onLink: ((nextHop: string) => boolean) | undefined;
  private readonly bits = new PrefixBits();
  // One-entry memos, see the file comment.
  private lastAttributes: PathAttributes | undefined;
  private lastContext: ImportContext | undefined;
  private lastAttributeVerdict: ImportVerdict = ACCEPT;

  constructor(config: ImportPolicyConfig) {
    this.accept = new PrefixSet(config.accept, 'accepted prefix range');
    this.rejectDefaultRoute = config.rejectDefaultRoute ?? true;
    this.rejectPrefixes = new PrefixSet(
      (config.rejectPrefixes ?? []).map((p) => prefixRange(p, { le: p.includes(':') ? 128 : 32 }, 'rejected prefix')),
    );
    const max = config.maxPrefixes;
    if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
      throw new InvalidArgumentError('max prefixes', max, 'must be a positive integer');
    }
    this.maxPrefixes = max ?? DEFAULT_MAX_PREFIXES;
    this.maxPrefixScope = config.maxPrefixScope ?? 'family';
    this.onLink = config.requireOnLinkNextHop;
  }

  /** Decides one received route; `context` should be the same object for every call from one peer. */
  evaluate(route: Route, context: ImportContext): ImportVerdict {
    const bits = this.bits;
    if (!readPrefix(route.prefix, bits)) return reject('malformed-prefix');
    if (bits.v6 !== (route.family === 'ipv6-unicast')) return reject('family-mismatch');
    if (this.rejectDefaultRoute && bits.length === 0) return reject('default-route');
    if (this.rejectPrefixes.matchesBits(bits)) return reject('own-prefix');
    if (!this.accept.matchesBits(bits)) return reject('not-accepted');
    const byAttributes = this.attributeVerdict(route.attributes, context);
    if (!byAttributes.accepted) return byAttributes;
    const unusable = unusableNextHop(route.nextHop, context);
    if (unusable !== undefined) return reject(unusable);
    if (this.onLink !== undefined && !this.onLink(route.nextHop)) return reject('next-hop-not-on-link');
    return ACCEPT;
  }

  private attributeVerdict(attributes: PathAttributes, context: ImportContext): ImportVerdict {
    if (attributes === this.lastAttributes && context === this.lastContext) return this.lastAttributeVerdict;
    const verdict = checkLoops(attributes, context);
    this.lastAttributes = attributes;
    this.lastContext = context;
    this.lastAttributeVerdict = verdict;
    return verdict;
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
