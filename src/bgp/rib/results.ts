// What the Rib's calls return: plain data for the session (what to send, when to tear down) and
// for the agent (which kernel routes to install or remove).

import type { RejectReason } from '../policy/import-policy.js';
import type { PrefixList } from '../prefix/prefix-list.js';
import type { Family, Prefix, Route, RoutePath } from '../types.js';

/** The best route for a prefix changed. `route` undefined: no route left (remove it from the kernel). */
export interface BestChange {
  readonly family: Family;
  readonly prefix: Prefix;
  readonly route: Route | undefined;
  readonly previous: Route | undefined;
  /** The peer `route` came from; undefined when it is a local advertisement or there is none. */
  readonly peerId: string | undefined;
  /** The peer `previous` came from; undefined when it was local or there was none. */
  readonly previousPeerId: string | undefined;
}

export interface Rejection {
  readonly route: Route;
  readonly reason: RejectReason;
}

/** RFC 4486 Cease/1 data: the family and the configured upper bound. */
export interface MaxPrefixExceeded {
  readonly family: Family;
  readonly limit: number;
}

/** One received UPDATE, as the session hands it over. */
export interface ReceivedUpdate {
  readonly announced: readonly Route[];
  readonly withdrawn: readonly { readonly family: Family; readonly prefix: Prefix }[];
}

/** Best-route changes recorded as numbers (best-changes.ts), made into objects on demand. */
export interface RecordedChanges {
  readonly count: number;
  changes(): BestChange[];
}

/** Prefixes announced with one path (all the prefixes of one family in one UPDATE). */
export interface AnnouncedGroup {
  readonly prefixes: PrefixList;
  readonly path: RoutePath;
}

/** One received UPDATE with its prefixes as numbers (speaker-updates.ts builds it from the codec's). */
export interface ReceivedBatch {
  /** Applied first, so a prefix both withdrawn and announced ends up announced. */
  readonly withdrawn: readonly PrefixList[];
  readonly announced: readonly AnnouncedGroup[];
}

/** An announcement import policy refused: prefix `index` of announced group `group`. */
export interface BatchRejection {
  readonly group: number;
  readonly index: number;
  readonly reason: RejectReason;
}

/** What applying a ReceivedBatch (or a peer's removal) did. */
export interface BatchResult {
  /** How many prefixes' best route changed. */
  readonly bestChangeCount: number;
  /** Those changes, when they were asked for (the speaker asks while someone listens to 'best'). */
  readonly bestChanges: RecordedChanges | undefined;
  readonly rejected: readonly BatchRejection[];
  /** Accepted routes that a refused announcement replaced, and so withdrew (RFC 4271 §3.1: implicit withdraw). */
  readonly replacedByRejected: readonly { readonly family: Family; readonly prefix: Prefix }[];
  readonly maxPrefixExceeded: MaxPrefixExceeded | undefined;
}

export interface UpdateResult {
  readonly bestChanges: BestChange[];
  /** Announced routes import policy refused (a previously accepted route for the prefix is withdrawn). */
  readonly rejected: Rejection[];
  /** Accepted routes that a refused announcement replaced, and so withdrew (RFC 4271 §3.1: implicit withdraw). */
  readonly replacedByRejected: { readonly family: Family; readonly prefix: Prefix }[];
  /** Set when the peer went over its limit: the session sends Cease/1 (RFC 4486) and removes the peer. */
  maxPrefixExceeded: MaxPrefixExceeded | undefined;
}

export interface LocalChanges {
  readonly added: Prefix[];
  readonly changed: Prefix[];
  readonly removed: Prefix[];
  readonly bestChanges: BestChange[];
}

export interface SweepResult {
  readonly family: Family;
  /** Prefixes that were still stale and are now withdrawn. */
  readonly withdrawn: Prefix[];
  readonly bestChanges: BestChange[];
}

export interface BestRoute {
  readonly route: Route;
  /** undefined for a local advertisement. */
  readonly peerId: string | undefined;
}

export interface PeerStats {
  readonly peerId: string;
  /** Accepted routes in the Adj-RIB-In, per family. */
  readonly received: Readonly<Record<Family, number>>;
  readonly stale: number;
  /** Announcements import policy refused while the peer has been in the RIB (each named with its reason in the speaker's 'routes' event). */
  readonly rejected: number;
  /** Prefixes the peer holds from us. */
  readonly advertised: number;
  /** Prefixes whose best changed since the last pendingFor(); 'full' when everything is to be compared. */
  readonly pendingChanges: number | 'full';
}

export interface RibStats {
  readonly local: number;
  readonly best: Readonly<Record<Family, number>>;
  readonly peers: readonly PeerStats[];
}
