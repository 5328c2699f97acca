import { EventEmitter } from 'node:events';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import { ExportPolicy, type ExportPolicyConfig } from './policy/export-policy.js';
import { ImportPolicy, type ImportPolicyConfig } from './policy/import-policy.js';
import { Rib, type BestChange, type LocalAdvertisement } from './rib/rib.js';
import { resolvePeerConfig, validateLocal, type LocalConfig, type PeerConfig } from './session/config.js';
import { normaliseAddress } from './session/connection.js';
import type { Negotiated } from './session/open.js';
import { Session, type CollisionEvent, type SessionDown, type SessionState } from './session/session.js';
import { nodeTransport, type BgpListener, type BgpTransport } from './session/transport.js';
import { DEFAULT_SELECTION_DEFERRAL_TIME, SelectionDeferral } from './speaker-deferral.js';
import { routesEvent, toReceivedBatch, withdrawnEvent, type PeerRoutesEvent } from './speaker-updates.js';
import type { Family, Route } from './types.js';
import { CeaseSubcode, encodeAnnouncements, encodeEndOfRib, encodeWithdrawals, NotificationCode, type PackedUpdate } from './wire/index.js';

export type { PeerRoutesEvent } from './speaker-updates.js';

// The speaker: sessions (session/), the tables (rib/) and the glue between them. One Speaker per
// process or agent; peers are added and removed at run time, local routes are set declaratively.

export interface SpeakerPeerConfig extends PeerConfig {
  /** What to accept from this peer. Default: the speaker's `import` policy. */
  readonly import?: ImportPolicyConfig | undefined;
  readonly export?: ExportPolicyConfig | undefined;
  /**
   * This iBGP peer is our route reflector client (RFC 4456): its routes go to every other iBGP
   * peer, and other iBGP peers' routes go to it, with ORIGINATOR_ID and CLUSTER_LIST set. A
   * speaker without clients reflects nothing. Default false.
   */
  readonly routeReflectorClient?: boolean | undefined;
}

export interface SpeakerOptions {
  readonly local: LocalConfig;
  /** Addresses to accept connections on; none: active sessions only. */
  readonly listen?: readonly { readonly host: string; readonly port: number }[] | undefined;
  readonly transport?: BgpTransport | undefined;
  /** Import policy for peers that have none of their own. Default: accept nothing. */
  readonly import?: ImportPolicyConfig | undefined;
  /**
   * This process replaces one that stopped with `close(…, { graceful: true })`, and the kernel
   * kept the routes it installed (RFC 4724 §4.1). Until each session is first established its
   * OPENs carry the Restart State bit and the Forwarding State bit of every family, so peers keep
   * our routes as stale meanwhile; the first UPDATEs to every peer wait for the peers' End-of-RIB
   * (or `selectionDeferralTime`). Default false.
   */
  readonly restarting?: boolean | undefined;
  /** Seconds a restarting speaker waits at most for its peers' End-of-RIB (RFC 4724 §4.1). Default 240. */
  readonly selectionDeferralTime?: number | undefined;
}

/** One peer, for status output (`Speaker.peerStates()`). */
export interface SpeakerPeerState {
  readonly address: string;
  readonly asn: number;
  readonly state: SessionState;
  readonly negotiated: Negotiated | undefined;
  /** When the session reached Established (ms since the epoch); undefined while it is not. */
  readonly establishedAt: number | undefined;
  /**
   * The last NOTIFICATION sent or received (collision resolution's aside), or the connection
   * error that ended the session or an attempt at it; kept after the session is back.
   */
  readonly lastError: string | undefined;
  /** Routes in the peer's Adj-RIB-In (accepted; stale ones of a restarting peer included). */
  readonly received: number;
  /** Prefixes advertised to the peer on its current session. */
  readonly sent: number;
}

export interface SessionEvent {
  readonly peer: string;
  readonly from: SessionState;
  readonly state: SessionState;
  readonly reason?: string | undefined;
  readonly negotiated?: Negotiated | undefined;
  readonly down?: SessionDown | undefined;
}

interface SpeakerEvents {
  session: [event: SessionEvent];
  routes: [event: PeerRoutesEvent];
  /** The best route changed: what an agent installs into (or removes from) the kernel. */
  best: [changes: readonly BestChange[]];
  'end-of-rib': [event: { readonly peer: string; readonly family: Family }];
  /** A connection collision (RFC 4271 §6.8) closed one of the two connections with Cease/7. */
  collision: [event: { readonly peer: string } & CollisionEvent];
  /** Problems that did not stop the speaker (a refused connection, a malformed attribute discarded). */
  warning: [err: Error];
}

interface PeerEntry {
  readonly session: Session;
  readonly config: SpeakerPeerConfig;
  readonly importPolicy: ImportPolicy;
  readonly exportPolicy: ExportPolicy;
  /**
   * Graceful restart (RFC 4724 §4.2): removes the stale routes if the peer does not come back in
   * time. It lives exactly as long as the routes it guards: whatever drops them stops it.
   */
  restartTimer?: NodeJS.Timeout | undefined;
  flushing?: Promise<void> | undefined;
  flushAgain?: boolean | undefined;
  /** Set while the session is established (ms since the epoch). */
  establishedAt?: number | undefined;
  /** The families whose initial table (and End-of-RIB) waits for a restart's selection deferral. */
  initialTable?: readonly Family[] | undefined;
}

export class Speaker extends EventEmitter<SpeakerEvents> {
  private readonly rib: Rib;
  private readonly peers = new Map<string, PeerEntry>();
  private readonly tcpListeners: BgpListener[] = [];
  private readonly transport: BgpTransport;
  private readonly defaultImport: ImportPolicy;
  private readonly local: LocalConfig;
  /** Our addresses besides the router id, for the RIB's next-hop check (RFC 4271 §6.3); only ever grows. */
  private readonly ownAddresses = new Set<string>();
  private readonly restarting: boolean;
  /** RFC 4724 §4.1, while a restart's first UPDATEs wait; undefined when not restarting. */
  private readonly deferral: SelectionDeferral | undefined;
  private flushScheduled = false;
  private closed = false;
  private closedGracefully = false;

  private constructor(opts: SpeakerOptions) {
    super();
    this.local = validateLocal(opts.local);
    this.rib = new Rib({ asn: this.local.asn, routerId: this.local.routerId, clusterId: this.local.clusterId, ownAddresses: this.ownAddresses });
    this.transport = opts.transport ?? nodeTransport;
    this.defaultImport = new ImportPolicy(opts.import ?? { accept: [] });
    this.restarting = opts.restarting ?? false;
    const deferral = opts.selectionDeferralTime ?? DEFAULT_SELECTION_DEFERRAL_TIME;
    if (!Number.isFinite(deferral) || deferral <= 0 || deferral > 3600) throw new InvalidArgumentError('selection deferral time', deferral, 'must be more than 0 and at most 3600 seconds');
    if (this.restarting) this.deferral = new SelectionDeferral(deferral, () => this.deferralOver());
  }

  static async start(opts: SpeakerOptions): Promise<Speaker> {
    const speaker = new Speaker(opts);
    try {
      for (const addr of opts.listen ?? []) {
        const listener = await speaker.transport.listen({ host: addr.host, port: addr.port });
        speaker.noteOwnAddress(addr.host);
        listener.server.on('connection', (socket) => speaker.incoming(socket));
        listener.server.on('error', (err) => speaker.emit('warning', err));
        speaker.tcpListeners.push(listener);
      }
    } catch (err) {
      await speaker.close();
      throw err;
    }
    return speaker;
  }

  /** Bound listen addresses (the port is useful when 0 was asked for). */
  get listenAddresses(): { host: string; port: number }[] {
    return this.tcpListeners.map((l) => {
      const a = l.server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    });
  }

  addPeer(config: SpeakerPeerConfig): void {
    if (this.closed) throw new Error('the speaker is closed');
    const resolved = resolvePeerConfig(config);
    if (this.peers.has(resolved.address)) throw new InvalidArgumentError('peer', resolved.address, 'is already configured');
    if (config.routeReflectorClient === true && resolved.asn !== this.local.asn) {
      throw new InvalidArgumentError('route reflector client', resolved.address, 'must be an iBGP peer (RFC 4456 §6)');
    }
    const entry: PeerEntry = {
      session: new Session(this.local, resolved, this.transport, this.restarting),
      config,
      importPolicy: config.import ? new ImportPolicy(config.import) : this.defaultImport,
      exportPolicy: new ExportPolicy(config.export ?? {}),
    };
    this.peers.set(resolved.address, entry);
    this.noteOwnAddress(resolved.localAddress);
    if (resolved.md5 !== undefined) for (const l of this.tcpListeners) l.setMd5Key(resolved.address, resolved.md5);
    this.wire(resolved.address, entry);
    entry.session.start();
  }

  /** Stops the session (Cease/3, peer de-configured) and withdraws the peer's routes. */
  removePeer(address: string): void {
    const entry = this.peers.get(address);
    if (!entry) return;
    this.peers.delete(address);
    entry.session.reset(NotificationCode.CEASE, CeaseSubcode.PEER_DECONFIGURED, 'peer removed from the configuration');
    entry.session.stop();
    entry.session.removeAllListeners();
    if (entry.config.md5 !== undefined) for (const l of this.tcpListeners) l.setMd5Key(address, undefined);
    this.dropRoutes(address, entry);
    this.deferral?.gone(address);
  }

  /** Replaces the whole set of locally originated routes (declarative, like MetalLB's Session.Set). */
  set(advertisements: readonly LocalAdvertisement[]): void {
    const changes = this.rib.setLocal(advertisements);
    if (changes.bestChanges.length > 0) this.emit('best', changes.bestChanges);
    this.scheduleFlush();
  }

  peerStates(): SpeakerPeerState[] {
    return [...this.peers.entries()].map(([address, e]) => {
      const stats = this.rib.peerStats(address);
      const up = e.session.state === 'established';
      return {
        address,
        asn: e.config.asn,
        state: e.session.state,
        negotiated: e.session.negotiated,
        establishedAt: up ? e.establishedAt : undefined,
        lastError: e.session.lastError,
        received: stats === undefined ? 0 : stats.received['ipv4-unicast'] + stats.received['ipv6-unicast'],
        // A peer away on a graceful restart may keep what it had from us; it is not advertised now.
        sent: up && stats !== undefined ? stats.advertised : 0,
      };
    });
  }

  /** The best routes (Loc-RIB). */
  bestRoutes(family?: Family): IterableIterator<{ route: Route; peerId: string | undefined }> {
    return this.rib.best(family);
  }

  /** Routes accepted from one peer (its Adj-RIB-In). */
  peerRoutes(address: string, family?: Family): Iterable<Route> {
    return this.rib.hasPeer(address) ? this.rib.peerRoutes(address, family) : [];
  }

  stats(): ReturnType<Rib['stats']> {
    return this.rib.stats();
  }

  /**
   * Cease/2 to every peer (RFC 9003 text), then closes the listeners. `graceful` (a planned
   * restart, RFC 4724 §4): no NOTIFICATION to the peers we advertised graceful restart to, only
   * the TCP connections close, so they keep our routes as stale until a speaker started with
   * `restarting` is back; and no withdrawal events here either (the kernel keeps the routes).
   */
  async close(text = 'speaker shutting down', opts: { readonly graceful?: boolean | undefined } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closedGracefully = opts.graceful ?? false;
    this.deferral?.cancel();
    for (const entry of this.peers.values()) {
      stopRestartTimer(entry);
      entry.session.stop(text, this.closedGracefully);
    }
    await Promise.all(this.tcpListeners.map((l) => l.close()));
  }

  private incoming(socket: Socket): void {
    const entry = this.peers.get(normaliseAddress(socket.remoteAddress ?? ''));
    // RFC 4271 §8.2.1.2: a connection from an address that is no configured peer is refused.
    if (!entry || this.closed) {
      socket.destroy();
      return;
    }
    entry.session.accept(socket);
  }

  private wire(address: string, entry: PeerEntry): void {
    const { session } = entry;
    session.on('state', (ev) => this.emit('session', { peer: address, from: ev.from, state: ev.to, reason: ev.reason, negotiated: ev.negotiated, down: ev.down }));
    session.on('warning', (err) => this.emit('warning', err));
    session.on('collision', (ev) => this.emit('collision', { peer: address, ...ev }));
    session.on('established', (negotiated) => this.established(address, entry, negotiated));
    session.on('update', (update, warnings) => {
      for (const w of warnings) this.emit('warning', new Error(`peer ${address}: ${w.message} (${w.action})`, { cause: w }));
      this.received(address, entry, update);
    });
    session.on('end-of-rib', (family) => {
      if (this.rib.hasPeer(address)) this.sweep(address, family);
      this.emit('end-of-rib', { peer: address, family });
      this.deferral?.endOfRib(address, family);
    });
    session.on('route-refresh', (family) => {
      // RFC 2918 §4: re-advertise the whole Adj-RIB-Out for the family. No End-of-RIB after it:
      // that marker ends the initial table (RFC 4724 §2); a refresh is bracketed only with
      // enhanced route refresh's BoRR/EoRR (RFC 7313), which Twill does not offer.
      this.rib.resetOut(address, family);
      // An initial table still waiting for a restart's End-of-RIBs will hold everything anyway.
      if (entry.initialTable === undefined) void this.flush(address, entry);
    });
    session.on('down', (down) => this.down(address, entry, down));
  }

  private established(address: string, entry: PeerEntry, negotiated: Negotiated): void {
    this.noteOwnAddress(entry.session.localAddress);
    entry.establishedAt = Date.now();
    const info = {
      asn: negotiated.peerAsn,
      routerId: negotiated.peerRouterId,
      address,
      ibgp: negotiated.peerAsn === this.local.asn,
      localAddress: entry.session.localAddress ?? '',
      importPolicy: entry.importPolicy,
      exportPolicy: entry.exportPolicy,
      families: negotiated.families,
      routeReflectorClient: entry.config.routeReflectorClient ?? false,
    };
    // A peer back within its restart time keeps its (stale) routes until its End-of-RIB.
    if (this.rib.hasPeer(address)) {
      this.rib.resetOut(address);
    } else {
      this.rib.addPeer(address, info);
    }
    // RFC 4724 §2: the initial table, then End-of-RIB per family, even for an empty table. A
    // restarting speaker sends it only once its route selection is done (RFC 4724 §4.1).
    if (this.deferral?.active) {
      entry.initialTable = negotiated.families;
      this.deferral.established(address, negotiated);
      return;
    }
    void this.flush(address, entry, negotiated.families);
  }

  /** RFC 4724 §4.1: the restart's route selection is done; each peer now gets its initial table and End-of-RIB. */
  private deferralOver(): void {
    for (const [address, entry] of this.peers) {
      const families = entry.initialTable;
      entry.initialTable = undefined;
      if (families !== undefined && entry.session.state === 'established' && this.rib.hasPeer(address)) void this.flush(address, entry, families);
    }
  }

  private received(address: string, entry: PeerEntry, update: PackedUpdate): void {
    if (!this.rib.hasPeer(address)) return;
    const batch = toReceivedBatch(update);
    // BestChange objects only for someone who listens: a table transfer needs none otherwise.
    const result = this.rib.applyBatch(address, batch, this.listenerCount('best') > 0);
    this.emit('routes', routesEvent(address, batch, result));
    if (result.bestChangeCount > 0) {
      if (result.bestChanges) this.emit('best', result.bestChanges.changes());
      this.scheduleFlush();
    }
    if (result.maxPrefixExceeded) {
      const { family, limit } = result.maxPrefixExceeded;
      // RFC 4486 §4 allows the AFI/SAFI and the limit as data; the text form suits logs better.
      entry.session.reset(NotificationCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, `maximum of ${limit} ${family} prefixes reached`);
    }
  }

  private down(address: string, entry: PeerEntry, down: SessionDown): void {
    entry.establishedAt = undefined;
    entry.initialTable = undefined;
    this.deferral?.gone(address);
    // Our own graceful restart: the routes stay in the kernel, and the next process learns them again.
    if (this.closedGracefully || !this.rib.hasPeer(address)) return;
    const restart = down.gracefulRestartTime;
    if (restart !== undefined && restart > 0) {
      // RFC 4724 §4.2: keep the routes, marked stale, until End-of-RIB or the restart time.
      this.rib.markStale(address);
      stopRestartTimer(entry);
      entry.restartTimer = setTimeout(() => this.restartTimeOver(address, entry), restart * 1000);
      return;
    }
    this.dropRoutes(address, entry);
  }

  /**
   * RFC 4724 §4.2: the restart time is over. A peer back in session keeps what it announced
   * again, and loses what is still stale (its End-of-RIB did not come in time); a peer still away
   * loses everything.
   */
  private restartTimeOver(address: string, entry: PeerEntry): void {
    entry.restartTimer = undefined;
    if (!this.rib.hasPeer(address)) return;
    if (entry.session.state === 'established') for (const f of ['ipv4-unicast', 'ipv6-unicast'] as const) this.sweep(address, f);
    else this.dropRoutes(address, entry);
  }

  private sweep(address: string, family: Family): void {
    const swept = this.rib.sweepStale(address, family);
    if (swept.withdrawn.length === 0) return;
    this.emit('routes', { peer: address, announced: [], withdrawn: swept.withdrawn.map((prefix) => ({ family, prefix })), rejected: [] });
    if (swept.bestChanges.length > 0) {
      this.emit('best', swept.bestChanges);
      this.scheduleFlush();
    }
  }

  /** Withdraws every route of the peer and forgets it (its session ended for good, or it was removed). */
  private dropRoutes(address: string, entry: PeerEntry): void {
    // The restart timer guards these routes; left armed, it would come back for a peer no longer
    // in the RIB (or for the routes of a later session).
    stopRestartTimer(entry);
    if (!this.rib.hasPeer(address)) return;
    const { result, withdrawn } = this.rib.dropPeer(address, this.listenerCount('best') > 0);
    if (withdrawn.some((list) => list.count > 0)) this.emit('routes', withdrawnEvent(address, withdrawn));
    if (result.bestChangeCount > 0) {
      if (result.bestChanges) this.emit('best', result.bestChanges.changes());
      this.scheduleFlush();
    }
  }

  /** Adds `address` to the ones a received NEXT_HOP must not be; a wildcard or a host name is none. */
  private noteOwnAddress(address: string | undefined): void {
    if (address === undefined || isIP(address) === 0) return;
    const ip = parseIp(address, 'local address');
    if (ip.bytes.some((b) => b !== 0)) this.ownAddresses.add(ip.text);
  }

  /**
   * Sends every established peer what changed for it, once per tick whatever the number of
   * changes. A peer with nothing pending is skipped: a ToR that sends its table one prefix per
   * UPDATE (gobgpd) makes a tick per UPDATE, and its own routes are never sent back to it.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const [address, entry] of this.peers) {
        if (entry.session.state === 'established' && this.rib.hasPeer(address) && entry.initialTable === undefined && this.rib.hasPending(address)) void this.flush(address, entry);
      }
    });
  }

  /** Sends pending changes to one peer; `endOfRib` families get an End-of-RIB after them. */
  private async flush(address: string, entry: PeerEntry, endOfRib: readonly Family[] = []): Promise<void> {
    if (entry.flushing) {
      entry.flushAgain = true;
      await entry.flushing;
      if (endOfRib.length > 0) await this.flush(address, entry, endOfRib);
      return;
    }
    entry.flushing = this.sendPending(address, entry, endOfRib);
    try {
      await entry.flushing;
    } catch (err) {
      this.emit('warning', new Error(`sending to ${address} failed: ${(err as Error).message}`, { cause: err }));
    } finally {
      entry.flushing = undefined;
    }
    if (entry.flushAgain) {
      entry.flushAgain = false;
      await this.flush(address, entry);
    }
  }

  private async sendPending(address: string, entry: PeerEntry, endOfRib: readonly Family[]): Promise<void> {
    const negotiated = entry.session.negotiated;
    if (!negotiated || !this.rib.hasPeer(address)) return;
    const codec = { fourOctetAsn: negotiated.fourOctetAsn };
    const pending = this.rib.pendingFor(address);
    this.rib.markSent(address);
    for (const [family, prefixes] of pending.withdraw) {
      if (prefixes.length > 0) await entry.session.send(encodeWithdrawals(family, prefixes));
    }
    for (const group of pending.announce.values()) {
      await entry.session.send(encodeAnnouncements(group.family, group.attributes, group.nextHops, group.prefixes, codec));
    }
    for (const family of endOfRib) await entry.session.send([encodeEndOfRib(family)]);
  }
}

function stopRestartTimer(entry: PeerEntry): void {
  if (entry.restartTimer) clearTimeout(entry.restartTimer);
  entry.restartTimer = undefined;
}
