// The outcome of import policy for one received route: accepted, or refused with a reason. The
// verdicts are shared frozen objects, so deciding a route allocates nothing.

import type { OwnAddresses } from './next-hop.js';

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

export const ACCEPT: ImportVerdict = Object.freeze({ accepted: true });
const rejections = new Map<RejectReason, ImportVerdict>();

/** The shared verdict object for `reason` (verdicts are compared by content, never mutated). */
export function reject(reason: RejectReason): ImportVerdict {
  let v = rejections.get(reason);
  if (!v) rejections.set(reason, (v = Object.freeze({ accepted: false, reason })));
  return v;
}

/** Who we are and what kind of peer sent the route. The RIB keeps one per peer. */
export interface ImportContext extends OwnAddresses {
  readonly localAsn: number;
  /** RFC 4456 cluster id; our router id unless configured. */
  readonly clusterId: string;
  readonly ibgp: boolean;
}
