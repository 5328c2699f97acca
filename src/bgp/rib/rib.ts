// The speaker's routing tables in one object: every peer's Adj-RIB-In and Adj-RIB-Out, the local
// advertisements and the Loc-RIB between them (RFC 4271 §3.2, §9). Pure and synchronous: no
// I/O, no timers (the session runs the GR restart timer and calls sweepStale), no logging. Each
// call returns what changed; `bestChanges` is what the agent installs into, or removes from, the
// kernel, and pendingFor() is what a session sends.
//
// Every table is keyed by numeric prefix (../prefix/prefix-table.ts). A received UPDATE comes in
// as numbers (applyBatch); a prefix is hashed once and that hash serves the Loc-RIB lookup, the
// Adj-RIB-In and the Adj-RIBs-Out. The calls that take or return prefix text (applyUpdate,
// setLocal, bestRoute, the results) convert at the edge.

import { InvalidArgumentError } from '../../core/errors.js';
import { exportAllowedKey, type ExportPolicy, type OutboundAttributes } from '../policy/export-policy.js';
import { PrefixList, strideOf, type Stride } from '../prefix/prefix-list.js';
import { hashPrefix, type PrefixTable } from '../prefix/prefix-table.js';
import { formatPrefixWords, IPV6_FLAG, readPrefixWords } from '../prefix/prefix-text.js';
import type { Family, Prefix, Route, RoutePath } from '../types.js';
import type { PendingUpdate } from './adj-rib-out.js';
import { BestChangeLog } from './best-changes.js';
import type { PathSource } from './best-path.js';
import { localRoutes, type LocalAdvertisement } from './local.js';
import { LocRib } from './loc-rib.js';
import { checkIdentity, localSource, PeerState, type LocalIdentity, type PeerInfo } from './peer.js';
import type {
  BatchRejection, BatchResult, BestChange, BestRoute, LocalChanges, MaxPrefixExceeded, PeerStats, ReceivedBatch, ReceivedUpdate, RibStats, SweepResult, UpdateResult,
} from './results.js';
import { sameRoute } from './same-route.js';

export type { AnnounceGroup, PendingUpdate } from './adj-rib-out.js';
export type { LocalAdvertisement } from './local.js';
export type { LocalIdentity, PeerInfo } from './peer.js';
export type * from './results.js';

/** What one call collects while it changes the tables (a BatchResult under construction). */
class Applied implements BatchResult {
  bestChangeCount = 0;
  readonly bestChanges: BestChangeLog | undefined;
  readonly rejected: BatchRejection[] = [];
  readonly replacedByRejected: { family: Family; prefix: Prefix }[] = [];
  maxPrefixExceeded: MaxPrefixExceeded | undefined;

  constructor(record: boolean) {
    this.bestChanges = record ? new BestChangeLog() : undefined;
  }

  changes(): BestChange[] {
    return this.bestChanges?.changes() ?? [];
  }
}

const FAMILIES = ['ipv4-unicast', 'ipv6-unicast'] as const;

export class Rib {
  private readonly peers = new Map<string, PeerState>();
  /** The same peers as an array, in the same order: walked once per changed best route. */
  private peerList: PeerState[] = [];
  private readonly local = localSource();
  private readonly loc: LocRib;
  /** One prefix read from text (the text-keyed calls). */
  private readonly one = new Uint32Array(4);
  /** The hashes of the prefix list being applied (hashAndTouch). */
  private hashes = new Int32Array(1024);
  private touched = 0;

  constructor(private readonly identity: LocalIdentity) {
    checkIdentity(identity);
    this.loc = new LocRib(identity.asn);
  }

  /** A session reached Established. Its Adj-RIB-Out starts empty: the first pendingFor() holds the whole table. */
  addPeer(peerId: string, info: PeerInfo): void {
    if (this.peers.has(peerId)) throw new InvalidArgumentError('peer id', peerId, 'is already in the RIB');
    const peer = new PeerState(peerId, info, this.identity);
    this.peers.set(peerId, peer);
    this.peerList = [...this.peers.values()];
  }

  /** The session is gone (without graceful restart): all its routes are withdrawn. */
  removePeer(peerId: string): BestChange[] {
    return this.dropPeer(peerId, true).result.bestChanges?.changes() ?? [];
  }

  /**
   * removePeer() for the speaker: the withdrawn prefixes as numbers (v4, then v6, each in the
   * order they were learned), and the best changes only when `record`.
   */
  dropPeer(peerId: string, record: boolean): { readonly result: BatchResult; readonly withdrawn: readonly PrefixList[] } {
    const peer = this.peer(peerId);
    this.peers.delete(peerId);
    this.peerList = [...this.peers.values()];
    const out = new Applied(record);
    const withdrawn = FAMILIES.map((family) => {
      const table = peer.routes.table(family);
      const list = new PrefixList(family, table.size);
      // Deleting while walking is safe (prefix-table.ts); nothing is inserted into this table.
      for (let e = table.next(0); e >= 0; e = table.next(e + 1)) {
        const words = table.keyWords;
        const at = table.keyOffset(e);
        const len = table.lengthAt(e);
        const h = hashPrefix(words, at, table.stride, len);
        const old = table.deleteAt(e);
        list.push(words, at, len);
        this.reselect(peer, family, words, at, len, h, this.loc.find(family, words, at, len, h), old, undefined, out);
      }
      return list;
    });
    this.loc.compact();
    return { result: out, withdrawn };
  }

  /** Withdrawals first, then announcements, so a prefix in both ends up announced. */
  applyUpdate(peerId: string, update: ReceivedUpdate): UpdateResult {
    const peer = this.peer(peerId);
    const out = new Applied(true);
    const one = this.one;
    peer.importer.begin();
    for (const { family, prefix } of update.withdrawn) {
      // Text that is no prefix of the family names nothing the peer holds.
      const len = readKey(prefix, family, one);
      if (len >= 0) this.remove(peer, family, one, 0, len, hashPrefix(one, 0, strideOf(family), len), out);
    }
    update.announced.forEach((route, i) => {
      const read = readPrefixWords(route.prefix, one);
      if (read < 0) out.rejected.push({ group: i, index: 0, reason: 'malformed-prefix' });
      else if (((read & IPV6_FLAG) !== 0) !== (route.family === 'ipv6-unicast')) out.rejected.push({ group: i, index: 0, reason: 'family-mismatch' });
      // The route object itself is the path: it is what peerRoutes() gives back.
      else this.announce(peer, i, 0, route.family, strideOf(route.family), one, 0, read & 0xff, hashPrefix(one, 0, strideOf(route.family), read & 0xff), route, out);
    });
    peer.rejected += out.rejected.length;
    return {
      bestChanges: out.changes(),
      rejected: out.rejected.map((r) => ({ route: update.announced[r.group]!, reason: r.reason })),
      replacedByRejected: out.replacedByRejected,
      maxPrefixExceeded: out.maxPrefixExceeded,
    };
  }

  /**
   * applyUpdate() for an UPDATE as numbers, the speaker's path: no object per prefix. Best
   * changes are recorded only when `record`; their count is always there.
   */
  applyBatch(peerId: string, batch: ReceivedBatch, record: boolean): BatchResult {
    const peer = this.peer(peerId);
    const out = new Applied(record);
    peer.importer.begin();
    for (const list of batch.withdrawn) {
      const { family, stride, words, lens } = list;
      const hashes = this.hashAndTouch(list, peer);
      for (let i = 0; i < list.count; i++) this.remove(peer, family, words, i * stride, lens[i]!, hashes[i]!, out);
    }
    for (let g = 0; g < batch.announced.length; g++) {
      const { prefixes, path } = batch.announced[g]!;
      const { family, stride, words, lens } = prefixes;
      const hashes = this.hashAndTouch(prefixes, peer);
      for (let i = 0; i < prefixes.count; i++) this.announce(peer, g, i, family, stride, words, i * stride, lens[i]!, hashes[i]!, path, out);
    }
    peer.rejected += out.rejected.length;
    return out;
  }

  /**
   * Hashes every prefix of `list` and touches where its lookups in the Loc-RIB and in `peer`'s
   * Adj-RIB-In will start (PrefixTable.touch): with 10^6 prefixes those tables are far larger
   * than the CPU caches, and fetching the lines of a whole UPDATE at once costs about as much as
   * one lookup waiting for its line. The hashes are kept for the lookups themselves.
   */
  private hashAndTouch(list: PrefixList, peer: PeerState): Int32Array {
    if (this.hashes.length < list.count) this.hashes = new Int32Array(2 * list.count);
    const hashes = this.hashes;
    const { stride, words, lens } = list;
    const loc = this.loc.table(list.family);
    const adj = peer.routes.table(list.family);
    let seen = 0;
    for (let i = 0; i < list.count; i++) {
      const h = hashPrefix(words, i * stride, stride, lens[i]!);
      hashes[i] = h;
      seen = (seen + (loc.touch(h) ^ adj.touch(h))) | 0;
    }
    // Kept, so the reads cannot be optimised away.
    this.touched ^= seen;
    return hashes;
  }

  /**
   * Replaces the whole set of local advertisements (declarative, like MetalLB's Session.Set).
   * Throws InvalidArgumentError, changing nothing, when an entry is invalid.
   */
  setLocal(advertisements: readonly LocalAdvertisement[]): LocalChanges {
    const routes = localRoutes(advertisements);
    const wanted = new Set(routes.map((r) => r.prefix));
    const out = new Applied(true);
    const result = { added: [] as Prefix[], changed: [] as Prefix[], removed: [] as Prefix[] };
    const own = this.local.routes;
    const one = this.one;
    for (const route of own.routes()) {
      if (wanted.has(route.prefix)) continue;
      result.removed.push(route.prefix);
      const len = readKey(route.prefix, route.family, one);
      this.remove(this.local, route.family, one, 0, len, hashPrefix(one, 0, strideOf(route.family), len), out);
    }
    for (const route of routes) {
      const len = readKey(route.prefix, route.family, one);
      const h = hashPrefix(one, 0, strideOf(route.family), len);
      const old = own.get(route.family, one, 0, len, h);
      if (old !== undefined && sameRoute(old, route)) continue;
      (old === undefined ? result.added : result.changed).push(route.prefix);
      own.set(route.family, one, 0, len, h, route);
      this.reselect(this.local, route.family, one, 0, len, h, this.loc.find(route.family, one, 0, len, h), old, route, out);
    }
    return { ...result, bestChanges: out.changes() };
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
    const out = new Applied(true);
    const { prefixes, paths } = peer.routes.sweepStale(family);
    const { stride, words, lens } = prefixes;
    for (let i = 0; i < prefixes.count; i++) {
      const h = hashPrefix(words, i * stride, stride, lens[i]!);
      this.reselect(peer, family, words, i * stride, lens[i]!, h, this.loc.find(family, words, i * stride, lens[i]!, h), paths[i], undefined, out);
    }
    if (prefixes.count > 0) this.loc.compact();
    return { family, withdrawn: prefixes.texts(), bestChanges: out.changes() };
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

  /** Whether pendingFor() could give the peer anything: a prefix whose best route changed, or a full comparison due. */
  hasPending(peerId: string): boolean {
    const pending = this.peer(peerId).out.pendingCount();
    return pending === 'full' || pending > 0;
  }

  /** What the peer should be sent now; call markSent() once it is. */
  pendingFor(peerId: string): PendingUpdate {
    const peer = this.peer(peerId);
    const loc = this.loc;
    return peer.out.pending({
      exportOne: (table, e) => {
        const l = loc.table(table.family).findEntryOf(table, e);
        return l < 0 ? undefined : exportOf(peer, table, e, loc.bestAt(table.family, l));
      },
      exportAll: (family, visit) => loc.forEachBest(family, (table, e, source) => visit(table, e, exportOf(peer, table, e, source))),
      has: (table, e) => loc.table(table.family).findEntryOf(table, e) >= 0,
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
    const one = this.one;
    const len = readKey(prefix, family, one);
    if (len < 0) return undefined;
    const h = hashPrefix(one, 0, strideOf(family), len);
    const source = this.loc.bestSource(family, one, 0, len, h);
    if (source === undefined) return undefined;
    return { route: source.routes.routeAt(family, source.routes.table(family).find(one, 0, len, h)), peerId: source.id };
  }

  hasPeer(peerId: string): boolean {
    return this.peers.has(peerId);
  }

  stats(): RibStats {
    return {
      local: this.local.routes.size(),
      best: { 'ipv4-unicast': this.loc.size('ipv4-unicast'), 'ipv6-unicast': this.loc.size('ipv6-unicast') },
      peers: this.peerList.map(peerStats),
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

  /**
   * One announced prefix (`words[at..]`/`len`, hash `h`, prefix `index` of group `group`) from
   * `peer` with `path`: import policy, max-prefix, implicit withdraw of what the peer said before (RFC 4271
   * §3.1), then selection.
   */
  private announce(peer: PeerState, group: number, index: number, family: Family, stride: Stride, words: Uint32Array, at: number, len: number, h: number, path: RoutePath, out: Applied): void {
    const importer = peer.importer;
    const verdict = importer.verdict(stride, words, at, len, path);
    if (!verdict.accepted) {
      out.rejected.push({ group, index, reason: verdict.reason });
      // The announcement replaces what the peer said before, and it is refused: nothing is left.
      if (this.remove(peer, family, words, at, len, h, out)) out.replacedByRejected.push({ family, prefix: formatPrefixWords(stride, words, at, len) });
      return;
    }
    const loc = this.loc;
    const e = loc.find(family, words, at, len, h);
    const old = loc.holds(family, e, peer) ? peer.routes.get(family, words, at, len, h) : undefined;
    if (old === undefined && peer.routes.size(importer.maxPrefixScope === 'peer' ? undefined : family) >= importer.maxPrefixes) {
      out.rejected.push({ group, index, reason: 'max-prefix' });
      out.maxPrefixExceeded ??= { family, limit: importer.maxPrefixes };
      return;
    }
    if (old === undefined) {
      peer.routes.add(family, words, at, len, h, path);
      if (e < 0) {
        // The usual case of a table transfer: no source holds the prefix, so this route is the
        // only candidate and the best (RFC 4271 §9.1.2.2), with no selection to run.
        loc.add(family, words, at, len, h, peer);
        this.changed(family, words, at, len, h, undefined, undefined, path, peer, out);
        return;
      }
    } else {
      if (sameRoute(old, path)) {
        peer.routes.unstale(family, words, at, len, h);
        return;
      }
      peer.routes.set(family, words, at, len, h, path);
    }
    this.reselect(peer, family, words, at, len, h, e, old, path, out);
  }

  /** Deletes `source`'s route for the prefix, if it has one; returns whether it had. */
  private remove(source: PathSource, family: Family, words: Uint32Array, at: number, len: number, h: number, out: Applied): boolean {
    const old = source.routes.delete(family, words, at, len, h);
    if (old !== undefined) this.reselect(source, family, words, at, len, h, this.loc.find(family, words, at, len, h), old, undefined, out);
    return old !== undefined;
  }

  /**
   * `source`'s route for the prefix changed from `old` to `current` (already applied to its
   * Adj-RIB-In; `current` undefined: withdrawn). `e` is the prefix's Loc-RIB entry (-1: none).
   * Re-runs selection and, if the best route is a different one, reports it to changed().
   */
  private reselect(source: PathSource, family: Family, words: Uint32Array, at: number, len: number, h: number, e: number, old: RoutePath | undefined, current: RoutePath | undefined, out: Applied): void {
    const loc = this.loc;
    const after = loc.update(family, e, words, at, len, h, source, current !== undefined);
    const before = loc.previousBest;
    const previous = before === undefined ? undefined : before === source ? old : before.routes.get(family, words, at, len, h);
    const route = after === undefined ? undefined : after === source ? current : after.routes.get(family, words, at, len, h);
    if (route !== previous) this.changed(family, words, at, len, h, previous, before, route, after, out);
  }

  /**
   * The best route for the prefix went from `previous` (held by `before`) to `route` (held by
   * `after`): records the change and marks the prefix for the Adj-RIB-Out of every peer that may
   * be told something about it.
   */
  private changed(family: Family, words: Uint32Array, at: number, len: number, h: number, previous: RoutePath | undefined, before: PathSource | undefined, route: RoutePath | undefined, after: PathSource | undefined, out: Applied): void {
    out.bestChangeCount++;
    out.bestChanges?.add(family, words, at, len, previous, before, route, after);
    const peers = this.peerList;
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[i]!;
      // A peer whose own route was the best (or nothing was), and still is (or nothing is), is
      // sent nothing for the prefix either way (never back to the sender), so its Adj-RIB-Out
      // has nothing to compare. While a peer sends us a full table, this spares one set entry
      // and one export lookup per prefix for that peer.
      if ((after === undefined || after === peer) && (before === undefined || before === peer)) continue;
      peer.out.touch(family, words, at, len, h);
    }
  }
}

/** Reads `prefix` into `into` as a key of `family`; -1 when it is not a prefix of that family. */
function readKey(prefix: Prefix, family: Family, into: Uint32Array): number {
  const read = readPrefixWords(prefix, into);
  if (read < 0 || ((read & IPV6_FLAG) !== 0) !== (family === 'ipv6-unicast')) return -1;
  return read & 0xff;
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

/** What `peer` is sent for entry `e` of `table` (the prefix) when `source` holds the best route. */
function exportOf(peer: PeerState, table: PrefixTable<unknown>, e: number, source: PathSource): OutboundAttributes | undefined {
  const family = table.family;
  const words = table.keyWords;
  const at = table.keyOffset(e);
  const len = table.lengthAt(e);
  if (!exportAllowedKey(family, words, at, len, source, peer)) return undefined;
  return peer.outboundFor(source.routes.get(family, words, at, len, hashPrefix(words, at, table.stride, len))!, source);
}
