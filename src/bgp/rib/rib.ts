// The speaker's routing tables in one object: every peer's Adj-RIB-In and Adj-RIB-Out, the local
// advertisements and the Loc-RIB between them (RFC 4271 §3.2, §9). Pure and synchronous: no
// I/O, no timers (the session runs the GR restart timer and calls sweepStale), no logging. Each
// call returns what changed; `bestChanges` is what the agent installs into, or removes from, the
// kernel, and pendingFor() is what a session sends.

import { InvalidArgumentError } from '../../core/errors.js';
import { exportAllowed, type ExportPolicy, type OutboundAttributes } from '../policy/export-policy.js';
import type { Family, Prefix, Route } from '../types.js';
import type { PendingUpdate } from './adj-rib-out.js';
import type { PathSource } from './best-path.js';
import { localRoutes, type LocalAdvertisement } from './local.js';
import { LocRib } from './loc-rib.js';
import { checkIdentity, localSource, PeerState, type LocalIdentity, type PeerInfo } from './peer.js';
import type { BestChange, BestRoute, LocalChanges, PeerStats, ReceivedUpdate, RibStats, SweepResult, UpdateResult } from './results.js';
import { sameRoute } from './same-route.js';

export type { AnnounceGroup, PendingUpdate } from './adj-rib-out.js';
export type { LocalAdvertisement } from './local.js';
export type { LocalIdentity, PeerInfo } from './peer.js';
export type * from './results.js';

export class Rib {
  private readonly peers = new Map<string, PeerState>();
  private readonly local = localSource();
  private readonly loc: LocRib;

  constructor(private readonly identity: LocalIdentity) {
    checkIdentity(identity);
    this.loc = new LocRib(identity.asn);
  }

  /** A session reached Established. Its Adj-RIB-Out starts empty: the first pendingFor() holds the whole table. */
  addPeer(peerId: string, info: PeerInfo): void {
    if (this.peers.has(peerId)) throw new InvalidArgumentError('peer id', peerId, 'is already in the RIB');
    this.peers.set(peerId, new PeerState(peerId, info, this.identity));
  }

  /** The session is gone (without graceful restart): all its routes are withdrawn. */
  removePeer(peerId: string): BestChange[] {
    const peer = this.peer(peerId);
    this.peers.delete(peerId);
    const changes: BestChange[] = [];
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      for (const route of peer.routes.table(family).values()) {
        peer.routes.delete(family, route.prefix);
        this.reselect(peer, family, route.prefix, route, undefined, changes);
      }
    }
    return changes;
  }

  /** Withdrawals first, then announcements, so a prefix in both ends up announced. */
  applyUpdate(peerId: string, update: ReceivedUpdate): UpdateResult {
    const peer = this.peer(peerId);
    const result: UpdateResult = { bestChanges: [], rejected: [], replacedByRejected: [], maxPrefixExceeded: undefined };
    for (const { family, prefix } of update.withdrawn) this.remove(peer, family, prefix, result.bestChanges);
    const policy = peer.importPolicy;
    const max = policy.maxPrefixes;
    for (const route of update.announced) {
      const verdict = policy.evaluate(route, peer.importContext);
      if (!verdict.accepted) {
        result.rejected.push({ route, reason: verdict.reason });
        // The announcement replaces what the peer said before, and it is refused: nothing is left.
        if (this.remove(peer, route.family, route.prefix, result.bestChanges)) result.replacedByRejected.push({ family: route.family, prefix: route.prefix });
        continue;
      }
      const old = this.loc.holds(route.family, route.prefix, peer) ? peer.routes.get(route.family, route.prefix) : undefined;
      if (old === undefined && peer.routes.size(policy.maxPrefixScope === 'peer' ? undefined : route.family) >= max) {
        result.rejected.push({ route, reason: 'max-prefix' });
        result.maxPrefixExceeded ??= { family: route.family, limit: max };
        continue;
      }
      if (old !== undefined && sameRoute(old, route)) {
        peer.routes.unstale(route.family, route.prefix);
        continue;
      }
      peer.routes.set(route);
      this.reselect(peer, route.family, route.prefix, old, route, result.bestChanges);
    }
    peer.rejected += result.rejected.length;
    return result;
  }

  /**
   * Replaces the whole set of local advertisements (declarative, like MetalLB's Session.Set).
   * Throws InvalidArgumentError, changing nothing, when an entry is invalid.
   */
  setLocal(advertisements: readonly LocalAdvertisement[]): LocalChanges {
    const routes = localRoutes(advertisements);
    const wanted = new Set(routes.map((r) => r.prefix));
    const result: LocalChanges = { added: [], changed: [], removed: [], bestChanges: [] };
    const own = this.local.routes;
    for (const route of own.routes()) {
      if (wanted.has(route.prefix)) continue;
      result.removed.push(route.prefix);
      this.remove(this.local, route.family, route.prefix, result.bestChanges);
    }
    for (const route of routes) {
      const old = own.get(route.family, route.prefix);
      if (old !== undefined && sameRoute(old, route)) continue;
      (old === undefined ? result.added : result.changed).push(route.prefix);
      own.set(route);
      this.reselect(this.local, route.family, route.prefix, old, route, result.bestChanges);
    }
    return result;
  }

  /** RFC 4724 §4.2: the peer's session dropped and it will restart; keep its routes, marked stale. Returns how many. */
  markStale(peerId: string, families?: readonly Family[]): number {
    const peer = this.peer(peerId);
    let n = 0;
    for (const family of families ?? peer.families) n += peer.routes.markStale(family);
    return n;
  }

  /** RFC 4724 §4.2: End-of-RIB arrived for `family`, or the restart timer expired: withdraw what is still stale. */
  sweepStale(peerId: string, family: Family): SweepResult {
    const peer = this.peer(peerId);
    const bestChanges: BestChange[] = [];
    const withdrawn = peer.routes.sweepStale(family).map((old) => {
      this.reselect(peer, family, old.prefix, old, undefined, bestChanges);
      return old.prefix;
    });
    return { family, withdrawn, bestChanges };
  }

  /**
   * The peer holds nothing from us: a new session after a graceful restart, or a ROUTE-REFRESH
   * request (RFC 2918) for `family`. The next pendingFor() carries the whole table.
   */
  resetOut(peerId: string, family?: Family): void {
    this.peer(peerId).out.requireFull(family, true);
  }

  /** A new export policy for the peer; the next pendingFor() sends the difference. */
  setExportPolicy(peerId: string, policy: ExportPolicy): void {
    this.peer(peerId).setExportPolicy(policy);
  }

  /** What the peer should be sent now; call markSent() once it is. */
  pendingFor(peerId: string): PendingUpdate {
    const peer = this.peer(peerId);
    const loc = this.loc;
    return peer.out.pending({
      exportOne: (family, prefix) => {
        const source = loc.bestSource(family, prefix);
        return source === undefined ? undefined : exportOf(peer, family, prefix, source);
      },
      exportAll: (family, visit) => loc.forEachBest(family, (prefix, source) => visit(prefix, exportOf(peer, family, prefix, source))),
      has: (family, prefix) => loc.has(family, prefix),
    });
  }

  markSent(peerId: string): void {
    this.peer(peerId).out.markSent();
  }

  /** The peer's accepted routes (its Adj-RIB-In after import policy). */
  peerRoutes(peerId: string, family?: Family): IterableIterator<Route> {
    return this.peer(peerId).routes.routes(family);
  }

  *best(family?: Family): IterableIterator<BestRoute> {
    for (const { route, source } of this.loc.best(family)) yield { route, peerId: source.id };
  }

  bestRoute(family: Family, prefix: Prefix): BestRoute | undefined {
    const source = this.loc.bestSource(family, prefix);
    return source === undefined ? undefined : { route: source.routes.get(family, prefix)!, peerId: source.id };
  }

  hasPeer(peerId: string): boolean {
    return this.peers.has(peerId);
  }

  stats(): RibStats {
    return {
      local: this.local.routes.size(),
      best: { 'ipv4-unicast': this.loc.size('ipv4-unicast'), 'ipv6-unicast': this.loc.size('ipv6-unicast') },
      peers: [...this.peers.values()].map(peerStats),
    };
  }

  /** One peer's part of stats(); undefined when it is not in the RIB. */
  peerStats(peerId: string): PeerStats | undefined {
    const peer = this.peers.get(peerId);
    return peer === undefined ? undefined : peerStats(peer);
  }

  private peer(peerId: string): PeerState {
    const peer = this.peers.get(peerId);
    if (peer === undefined) throw new InvalidArgumentError('peer id', peerId, 'is not in the RIB');
    return peer;
  }

  /** Deletes `source`'s route for the prefix, if it has one; returns whether it had. */
  private remove(source: PathSource, family: Family, prefix: Prefix, changes: BestChange[]): boolean {
    const old = source.routes.delete(family, prefix);
    if (old !== undefined) this.reselect(source, family, prefix, old, undefined, changes);
    return old !== undefined;
  }

  /**
   * `source`'s route for the prefix changed from `old` to `current` (already applied to its
   * Adj-RIB-In; `current` undefined: withdrawn). Re-runs selection and, if the best route is a
   * different one, records the change and marks the prefix for every peer's Adj-RIB-Out.
   */
  private reselect(source: PathSource, family: Family, prefix: Prefix, old: Route | undefined, current: Route | undefined, changes: BestChange[]): void {
    const loc = this.loc;
    const after = loc.update(family, prefix, source, current !== undefined);
    const before = loc.previousBest;
    const previous = before === undefined ? undefined : before === source ? old : before.routes.get(family, prefix);
    const route = after === undefined ? undefined : after === source ? current : after.routes.get(family, prefix);
    if (route === previous) return;
    changes.push({ family, prefix, route, previous, peerId: after?.id, previousPeerId: before?.id });
    for (const peer of this.peers.values()) {
      // A peer whose own route was the best (or nothing was), and still is (or nothing is), is
      // sent nothing for the prefix either way (never back to the sender), so its Adj-RIB-Out
      // has nothing to compare. While a peer sends us a full table, this spares one set entry
      // and one export lookup per prefix for that peer.
      if ((after === undefined || after === peer) && (before === undefined || before === peer)) continue;
      peer.out.touch(family, prefix);
    }
  }
}

function peerStats(p: PeerState): PeerStats {
  return {
    peerId: p.id,
    received: { 'ipv4-unicast': p.routes.size('ipv4-unicast'), 'ipv6-unicast': p.routes.size('ipv6-unicast') },
    stale: p.routes.staleCount(),
    rejected: p.rejected,
    advertised: p.out.sentCount(),
    pendingChanges: p.out.pendingCount(),
  };
}

/** What `peer` is sent for `prefix` when `source` holds the best route. */
function exportOf(peer: PeerState, family: Family, prefix: Prefix, source: PathSource): OutboundAttributes | undefined {
  if (!exportAllowed(family, prefix, source, peer)) return undefined;
  return peer.outboundFor(source.routes.get(family, prefix)!, source);
}
