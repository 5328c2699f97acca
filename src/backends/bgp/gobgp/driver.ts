import { EventEmitter } from 'node:events';
import { status, type ClientReadableStream } from '@grpc/grpc-js';
import { Backoff, type BackoffOptions } from '../../../core/backoff.js';
import { ownSubnetsOf, routedFamilies, type BgpDriver, type DriverEvents, type DriverOptions, type DriverPeer, type LearnedPath, type PeerStatus, type RoutedFamily } from '../driver.js';
import { gobgpFamily, type Path, type Peer, type PolicyPrefix, type WatchEventResponse } from './api.js';
import { GobgpApiError, GobgpClient } from './client.js';
import { EXPORT_NAME, exportAssignment, exportPolicy, exportPrefixes, exportSet, exportSetName, planSet, policyKey, prefixesOfFamily } from './export.js';
import { LearnedPaths } from './learned.js';
import { learnedPath, neighborOf, ownPath, ownRoute, prefixOf, type OwnRoute } from './paths.js';
import { addressOf, guessRole, peerKey, peerMessage, planPeers } from './peers.js';
import { ensureStarted } from './start.js';
import { observe, PeerStatusTable, type Observation } from './status.js';

export interface GobgpDriverOptions extends DriverOptions {
  /** gobgpd's gRPC API: "127.0.0.1:50051" or "unix:///path/to/sock" (client.ts). */
  readonly api: string;
  /** How long a peer past its prefix limit stays held down before EnablePeer (default 5 s doubling to 120 s, jittered). */
  readonly prefixLimitRetry?: BackoffOptions;
}

/** ListPeer and GetTable: counters, uptime and End-of-RIB, and a check that nothing was missed. */
const REFRESH_MS = 5_000;
/** The ListPeer after a state change, for the new session's counters. */
const REFRESH_SOON_MS = 300;
const WATCH_RETRY = { initialMs: 1_000, maxMs: 30_000 };
/**
 * gobgpd holds a session down after the peer exceeded its prefix limit (admin state PFX_CT) until
 * EnablePeer; Twill's own speaker reconnects after its backoff. So does this driver, with a
 * longer one: the peer has to fix its export first.
 */
const PREFIX_LIMIT_RETRY = { initialMs: 5_000, maxMs: 120_000 };
/** A peer that kept under its limit this long starts its retries from the beginning again. */
const PREFIX_LIMIT_QUIET_MS = 600_000;

/**
 * The bgp backend on a gobgpd 3.x running beside the agent, over its gRPC API
 * (proto/gobgp/api/). gobgpd owns the sessions; the driver configures them (AddPeer/DeletePeer),
 * originates the host's routes (AddPath/DeletePath), limits what gobgpd sends to them with a
 * global export policy (export.ts: the host's own subnet, or the cluster's on a reflector) and
 * reports what peers send from one WatchEvent stream (peer states, Adj-RIB-In paths) and
 * ListPeer/ListPath.
 *
 * A planned restart of twilld (close({ graceful: true })) leaves gobgpd and its sessions alone,
 * so peers never see it; the next driver adopts them. `restarted` therefore means nothing here:
 * whether gobgpd itself restarts gracefully is its own -r flag.
 */
export function startGobgpDriver(opts: GobgpDriverOptions): Promise<BgpDriver> {
  return startGobgpDriverOn(new GobgpClient(opts.api), opts);
}

/** startGobgpDriver on a client made elsewhere (unit tests: a fake gobgpd); closes it if it fails. */
export async function startGobgpDriverOn(client: GobgpClient, opts: GobgpDriverOptions): Promise<BgpDriver> {
  try {
    const found = await ensureStarted(client, opts);
    const driver = new GobgpDriver(client, opts, found.peers, found.routes);
    // Before any session is added: a gobgpd without it sends peers whatever BGP allows.
    await driver.configureExport();
    driver.start();
    return driver;
  } catch (err) {
    client.close();
    throw err;
  }
}

interface PrefixLimitRetry {
  readonly backoff: Backoff;
  timer: NodeJS.Timeout | undefined;
  lastHit: number;
}

class GobgpDriver extends EventEmitter<DriverEvents> implements BgpDriver {
  readonly #status: PeerStatusTable;
  readonly #learned = new LearnedPaths();
  /** What gobgpd has: peer address → peerKey, and own prefix → next hop. */
  readonly #configured = new Map<string, string>();
  readonly #announced = new Map<string, string>();
  /** What gobgpd's export sets hold (duplicates and all), by set name (one per family); absent until read. */
  readonly #exportSets = new Map<string, PolicyPrefix[]>();
  /** The families the sessions carry (IPv4, IPv6 or both). */
  readonly #families: readonly RoutedFamily[];
  /** What the backend wants; undefined until it first says (an adopted gobgpd keeps all until then). */
  #wantedPeers: ReadonlyMap<string, Peer> | undefined;
  #wantedRoutes: ReadonlyMap<string, string> | undefined;
  /** gobgpd changes, one at a time; never rejects. */
  #queue: Promise<unknown> = Promise.resolve();
  #busy = 0;
  /** How many changes have begun: a read from before one may be out of date. */
  #changes = 0;
  /** A change failed: what gobgpd has is to be read again. */
  #dirty = false;
  #closed = false;
  #watch: ClientReadableStream<WatchEventResponse> | undefined;
  readonly #watchRetry = new Backoff(WATCH_RETRY);
  #watchTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #soonTimer: NodeJS.Timeout | undefined;
  #refreshing = false;
  readonly #reconciles = new Map<string, { again: boolean; readonly done: Promise<void> }>();
  readonly #prefixLimit = new Map<string, PrefixLimitRetry>();

  constructor(private readonly client: GobgpClient, private readonly opts: GobgpDriverOptions, peers: readonly Peer[], routes: readonly OwnRoute[]) {
    super();
    this.#status = new PeerStatusTable(opts.maxPrefixes);
    this.#families = routedFamilies(opts);
    this.#adopt(peers, routes);
  }

  /** The export set, policy and assignment (export.ts), made what they should be. */
  async configureExport(): Promise<void> {
    try {
      await this.#syncExportSet();
      const wanted = exportPolicy(this.opts);
      const found = await this.client.policy(EXPORT_NAME);
      const same = found !== undefined && policyKey(found) === policyKey(wanted);
      if (found && !same) {
        // This host became a reflector or stopped being one (or the policy is not ours): gobgpd
        // changes no statement in place, nor deletes an assigned policy. Until it is back, the
        // default rejects what would be sent.
        await this.client.setPolicyAssignment({ ...exportAssignment(), policies: [] });
        await this.client.deletePolicy(EXPORT_NAME);
      }
      if (!same) await this.client.addPolicy(wanted);
      // Replaces whatever global export policies gobgpd had: Twill decides what it sends.
      await this.client.setPolicyAssignment(exportAssignment());
    } catch (err) {
      this.#dirty = true;
      throw err;
    }
  }

  start(): void {
    this.#openWatch();
    this.#refreshTimer = setInterval(() => void this.#refresh(), REFRESH_MS);
    this.#refreshTimer.unref();
    void this.#refresh();
  }

  async setPeers(peers: readonly DriverPeer[]): Promise<void> {
    this.#checkOpen();
    this.#wantedPeers = new Map(peers.map((p) => [p.address, peerMessage(this.opts, p)]));
    for (const p of peers) this.#status.describe(p.address, p.asn, p.role);
    await this.#serial(() => this.#syncPeers());
  }

  async announce(routes: readonly { readonly prefix: string; readonly nextHop: string }[]): Promise<void> {
    this.#checkOpen();
    this.#wantedRoutes = new Map(routes.map((r) => {
      const own = ownRoute(r.prefix, r.nextHop, this.#families);
      return [own.prefix, own.nextHop];
    }));
    await this.#serial(() => this.#syncRoutes());
  }

  peers(): PeerStatus[] {
    return this.#status.list((this.#wantedPeers ?? this.#configured).keys());
  }

  async close(opts: { readonly graceful: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of [this.#refreshTimer, this.#soonTimer, this.#watchTimer, ...[...this.#prefixLimit.values()].map((r) => r.timer)]) clearTimeout(t);
    const watch = this.#watch;
    this.#watch = undefined;
    watch?.cancel();
    try {
      // Graceful: gobgpd keeps the sessions and routes for the next twilld (and its peers never
      // notice). Otherwise peers lose our routes at once: withdrawn, then Cease (Peer De-configured).
      await this.#serial(() => (opts.graceful ? Promise.resolve() : this.#removeAll()));
    } finally {
      this.client.close();
    }
  }

  // --- gobgpd's configuration -------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new Error('gobgp driver: closed');
  }

  #adopt(peers: readonly Peer[], routes: readonly OwnRoute[]): void {
    this.#configured.clear();
    for (const p of peers) {
      const address = addressOf(p);
      this.#configured.set(address, peerKey(p));
      if (!this.#wantedPeers?.has(address)) this.#status.describe(address, p.conf?.peer_asn ?? 0, guessRole(p, this.opts.asn));
    }
    this.#announced.clear();
    for (const r of routes) this.#announced.set(r.prefix, r.nextHop);
    this.#exportSets.clear();
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    this.#busy++;
    const run = this.#queue.then(() => {
      this.#changes++;
      return task();
    }).finally(() => this.#busy--);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Runs every call, even after one failed; returns the failures. */
  async #each<T>(items: Iterable<T>, call: (item: T) => Promise<void>): Promise<Error[]> {
    const failures: Error[] = [];
    for (const item of items) {
      try {
        await call(item);
      } catch (err) {
        failures.push(err as Error);
      }
    }
    return failures;
  }

  /** Throws what failed, all of it; gobgpd is read again on the next refresh. */
  #check(failures: readonly Error[], what: string): void {
    if (failures.length === 0) return;
    this.#dirty = true;
    throw new AggregateError(failures, `gobgpd: ${failures.length} ${what} failed: ${failures.map((e) => e.message).join('; ')}`);
  }

  async #syncPeers(): Promise<void> {
    const wanted = this.#wantedPeers;
    if (!wanted) return;
    const plan = planPeers(this.#configured, [...wanted.values()]);
    const failures = await this.#each(plan.remove, async (address) => {
      await this.client.deletePeer(address);
      this.#configured.delete(address);
      this.#peerGone(address, !wanted.has(address));
    });
    failures.push(...await this.#each(plan.add, async (peer) => {
      await this.client.addPeer(peer);
      this.#configured.set(addressOf(peer), peerKey(peer));
    }));
    this.#check(failures, 'session changes');
  }

  async #syncRoutes(): Promise<void> {
    const wanted = this.#wantedRoutes;
    if (!wanted) return;
    // New prefixes into the export set before their paths: gobgpd applies the policy to a path
    // when it changes (or a session begins), not again when the policy does, so one it rejected
    // would stay unsent. Old ones out after their withdrawal (below).
    await this.#syncExportSet();
    const failures = await this.#withdraw([...this.#announced].filter(([prefix]) => !wanted.has(prefix)));
    // AddPath of a prefix gobgpd has replaces its path: a new next hop needs no withdrawal.
    const fresh = [...wanted].filter(([prefix, nextHop]) => this.#announced.get(prefix) !== nextHop);
    failures.push(...await this.#each(fresh, async ([prefix, nextHop]) => {
      await this.client.addPath(ownPath({ prefix, nextHop }));
      this.#announced.set(prefix, nextHop);
    }));
    this.#check(failures, 'route changes');
    await this.#syncExportSet();
  }

  /**
   * The export sets (one per family) made exactly the entries for this host's own prefixes: those
   * gobgpd has paths for and those about to get one (the subnets from the options until the
   * backend first announces), or the cluster networks on a reflector. Adds before it removes.
   */
  async #syncExportSet(): Promise<void> {
    const own = new Set(this.#announced.keys());
    for (const prefix of this.#wantedRoutes?.keys() ?? ownSubnetsOf(this.opts)) own.add(prefix);
    const all = exportPrefixes(this.opts, own);
    for (const family of this.#families) await this.#syncOneExportSet(exportSetName(family), prefixesOfFamily(all, family));
  }

  async #syncOneExportSet(name: string, wanted: PolicyPrefix[]): Promise<void> {
    try {
      let current = this.#exportSets.get(name);
      if (current === undefined) {
        const found = await this.client.prefixSet(name);
        if (!found) {
          await this.client.addDefinedSet(exportSet(wanted, name));
          this.#exportSets.set(name, wanted);
          return;
        }
        current = [...found.prefixes ?? []];
        this.#exportSets.set(name, current);
      }
      const plan = planSet(current, wanted);
      if (plan.add.length > 0) {
        await this.client.addDefinedSet(exportSet(plan.add, name));
        this.#exportSets.set(name, [...current, ...plan.add]);
      }
      if (plan.remove.length > 0) {
        await this.client.deleteFromDefinedSet(exportSet(plan.remove, name));
        this.#exportSets.set(name, wanted);
      }
    } catch (err) {
      // Read again next time; the refresh resyncs.
      this.#exportSets.delete(name);
      this.#dirty = true;
      throw err;
    }
  }

  #withdraw(routes: Iterable<[string, string]>): Promise<Error[]> {
    return this.#each(routes, async ([prefix, nextHop]) => {
      await this.client.deletePath(ownPath({ prefix, nextHop }));
      this.#announced.delete(prefix);
    });
  }

  async #removeAll(): Promise<void> {
    const failures = await this.#withdraw([...this.#announced]);
    failures.push(...await this.#each([...this.#configured.keys()], async (address) => {
      await this.client.deletePeer(address);
      this.#configured.delete(address);
    }));
    this.#check(failures, 'removals');
  }

  /**
   * Reads gobgpd again and makes it what the backend wants: after the event stream broke (gobgpd
   * may have restarted, empty), or a change failed. A restarted gobgpd is started again. Throws
   * only when gobgpd cannot be reached or runs as another speaker.
   */
  async #resync(): Promise<void> {
    const found = await ensureStarted(this.client, this.opts);
    if (found.started) this.emit('warning', new Error(`gobgpd at ${this.opts.api} was not running BGP (restarted?): started it again; re-adding sessions and routes`));
    this.#dirty = false;
    this.#adopt(found.peers, found.routes);
    try {
      await this.configureExport();
    } catch (err) {
      // No sessions added or changed without it (a fresh gobgpd would send them everything); the
      // next refresh tries again.
      this.emit('warning', err as Error);
      return;
    }
    for (const sync of [() => this.#syncPeers(), () => this.#syncRoutes()]) {
      try {
        await sync();
      } catch (err) {
        // gobgpd answers; what it refused is tried again on the next refresh (#dirty).
        this.emit('warning', err as Error);
      }
    }
  }

  /** A session was deleted: what it gave is gone (gobgpd sends no event for that). */
  #peerGone(address: string, forGood: boolean): void {
    const ev = this.#learned.drop(address);
    if (ev) this.emit('paths', ev);
    if (!forGood) return;
    this.#status.forget(address);
    clearTimeout(this.#prefixLimit.get(address)?.timer);
    this.#prefixLimit.delete(address);
  }

  // --- events ------------------------------------------------------------------------------

  /**
   * One stream for everything: peer state changes, and every path in peers' UPDATEs (ADJIN,
   * before import policy, which gobgpd has none of here; `init` first sends what each Adj-RIB-In
   * holds). Locally originated paths are never in an Adj-RIB-In.
   */
  #openWatch(): void {
    const stream = this.client.watch({ peer: {}, table: { filters: [{ type: 'ADJIN', init: true }] } });
    this.#watch = stream;
    stream.on('data', (ev: WatchEventResponse) => {
      this.#watchRetry.reset();
      this.#event(ev);
    });
    const ended = (err?: Error): void => {
      if (this.#watch !== stream) return;
      this.#watch = undefined;
      this.#watchBroken(err);
    };
    stream.on('error', ended);
    stream.on('end', () => ended());
  }

  #watchBroken(err: Error | undefined): void {
    if (this.#closed) return;
    const delay = this.#watchRetry.next();
    const why = err ? `failed: ${(err as { details?: string }).details || err.message}` : 'ended';
    this.emit('warning', new Error(`gobgpd event stream (${this.opts.api}) ${why}; re-opening in ${Math.round(delay)} ms`, { cause: err }));
    if (err instanceof GobgpApiError && err.grpcCode === status.UNAVAILABLE) {
      // gobgpd is gone, and its sessions with it. What peers gave stays reported until it is back
      // and says otherwise (the first reconcile): the kernel keeps forwarding meanwhile, as a
      // graceful restart helper would (RFC 4724 §4.2).
      for (const s of this.#status.lost(`gobgpd at ${this.opts.api} is not reachable`)) this.emit('peer', s);
    }
    this.#watchTimer = setTimeout(() => {
      this.#watchTimer = undefined;
      this.#serial(() => this.#resync()).then(() => {
        if (this.#closed) return;
        this.#openWatch();
        // What changed while the stream was down, removals above all (gobgpd sends those to nobody).
        for (const address of this.#configured.keys()) void this.#reconcile(address);
      }, (e: Error) => this.#watchBroken(e));
    }, delay);
  }

  #event(ev: WatchEventResponse): void {
    if (this.#closed) return;
    if (ev.peer?.peer && ev.peer.type !== 'END_OF_INIT') {
      const o = observe(ev.peer.peer);
      if (o) this.#observed(o);
    }
    if (ev.table) this.#paths(ev.table.paths);
  }

  #paths(paths: readonly Path[]): void {
    const byPeer = new Map<string, { announced: LearnedPath[]; withdrawn: string[] }>();
    for (const p of paths) {
      const peer = neighborOf(p);
      if (peer === undefined || this.#status.get(peer) === undefined) continue;
      let entry = byPeer.get(peer);
      if (!entry) byPeer.set(peer, (entry = { announced: [], withdrawn: [] }));
      if (p.is_withdraw) {
        const prefix = prefixOf(p);
        if (prefix !== undefined) entry.withdrawn.push(prefix);
      } else {
        const path = learnedPath(p, this.opts.asn);
        if (path) entry.announced.push(path);
      }
    }
    for (const [peer, { announced, withdrawn }] of byPeer) {
      const ev = this.#learned.apply(peer, announced, withdrawn);
      if (ev) this.emit('paths', ev);
    }
  }

  #observed(o: Observation): void {
    const change = this.#status.update(o);
    if (!change) return;
    const peer = o.address;
    if (change.notify) this.emit('peer', change.status);
    if (change.prefixLimitHit) {
      this.emit('max-prefix', { peer, limit: this.opts.maxPrefixes });
      this.#retryAfterPrefixLimit(peer);
    } else if (change.stillHeldDown && this.#prefixLimit.get(peer)?.timer === undefined) {
      this.#retryAfterPrefixLimit(peer);
    }
    if (change.stateChanged) {
      void this.#reconcile(peer);
      if (!o.counters) this.#refreshSoon();
    }
    if (change.endOfRib) {
      // After the peer's paths are all reported: the backend takes End-of-RIB as "table complete".
      void this.#reconcile(peer).then(() => {
        if (!this.#closed && this.#status.get(peer)?.state === 'established') this.emit('end-of-rib', { peer });
      });
    }
  }

  /** Brings the peer's reported paths to its Adj-RIB-In in gobgpd (learned.ts); one at a time per peer. */
  #reconcile(peer: string): Promise<void> {
    const running = this.#reconciles.get(peer);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state = { again: true, done: Promise.resolve() };
    state.done = (async () => {
      while (state.again && !this.#closed) {
        state.again = false;
        await this.#reconcileOnce(peer);
      }
      this.#reconciles.delete(peer);
    })();
    this.#reconciles.set(peer, state);
    return state.done;
  }

  async #reconcileOnce(peer: string): Promise<void> {
    if (!this.#configured.has(peer)) return;
    this.#learned.begin(peer);
    let paths: Path[];
    try {
      paths = [];
      for (const family of this.#families) paths.push(...await this.client.listPaths('ADJ_IN', peer, gobgpFamily(family)));
    } catch (err) {
      this.#learned.abandon(peer);
      // A peer that setPeers() no longer wants is being deleted from gobgpd (#syncPeers drops it
      // from #configured only once DeletePeer returns): its ListPath may fail with "neighbor that
      // has ... doesn't exist", which is that removal, not a fault to report.
      const wanted = this.#wantedPeers?.has(peer) ?? true;
      if (!this.#closed && this.#configured.has(peer) && wanted) this.emit('warning', err as Error);
      return;
    }
    if (this.#closed || !this.#configured.has(peer)) {
      this.#learned.abandon(peer);
      return;
    }
    const snapshot = paths.flatMap((p) => (neighborOf(p) === peer ? learnedPath(p, this.opts.asn) ?? [] : []));
    const ev = this.#learned.finish(peer, snapshot);
    if (ev) this.emit('paths', ev);
  }

  #refreshSoon(): void {
    if (this.#soonTimer !== undefined || this.#closed) return;
    this.#soonTimer = setTimeout(() => {
      this.#soonTimer = undefined;
      void this.#refresh();
    }, REFRESH_SOON_MS);
  }

  /** ListPeer and GetTable: counters, missed state changes, and whether gobgpd's peers are what we think. */
  async #refresh(): Promise<void> {
    if (this.#closed || this.#refreshing) return;
    this.#refreshing = true;
    try {
      const changes = this.#changes;
      const askedAt = this.#status.epoch();
      const peers = await this.client.listPeers();
      if (this.#closed) return;
      for (const p of peers) {
        const address = addressOf(p);
        if (!this.#configured.has(address)) continue;
        let sent = 0;
        try {
          if (p.state?.session_state === 'ESTABLISHED') {
            for (const family of this.#families) sent += await this.client.adjOutSize(address, gobgpFamily(family));
          }
        } catch (err) {
          // The session was deleted (or replaced) since ListPeer: the next round sees it as it is.
          if (this.#busy > 0 || this.#changes !== changes) continue;
          throw err;
        }
        const o = observe(p, sent, askedAt);
        if (!o || this.#closed) continue;
        this.#observed(o);
        // A count that differs: something was dropped without an event (learned.ts), or is on its way.
        if (o.counters && o.counters.received !== this.#learned.count(o.address)) void this.#reconcile(o.address);
      }
      const addresses = new Set(peers.map(addressOf));
      const drifted = addresses.size !== this.#configured.size || [...this.#configured.keys()].some((a) => !addresses.has(a));
      if (this.#busy === 0 && (this.#dirty || drifted)) void this.#serial(() => this.#resync()).catch((err: Error) => this.emit('warning', err));
    } catch (err) {
      // While the stream is down, its retries report gobgpd's absence.
      if (this.#watch) this.emit('warning', err as Error);
    } finally {
      this.#refreshing = false;
    }
  }

  #retryAfterPrefixLimit(peer: string): void {
    let retry = this.#prefixLimit.get(peer);
    if (!retry) this.#prefixLimit.set(peer, (retry = { backoff: new Backoff(this.opts.prefixLimitRetry ?? PREFIX_LIMIT_RETRY), timer: undefined, lastHit: 0 }));
    const now = Date.now();
    if (now - retry.lastHit > PREFIX_LIMIT_QUIET_MS) retry.backoff.reset();
    retry.lastHit = now;
    clearTimeout(retry.timer);
    retry.timer = setTimeout(() => {
      if (retry.timer === undefined) return;
      retry.timer = undefined;
      if (this.#closed || !this.#configured.has(peer)) return;
      this.client.enablePeer(peer).then(() => this.#status.enabled(peer), (err: Error) => this.emit('warning', err));
    }, retry.backoff.next());
    retry.timer.unref();
  }
}
