import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Backoff } from '../../core/backoff.js';
import type { Family, NotificationMessage } from '../types.js';
import { MessageType } from '../types.js';
import {
  BgpMessageError, CeaseSubcode, encodeKeepalive, encodeNotification, encodeOpen, FsmErrorSubcode, NotificationCode, packedEndOfRib,
  type PackedUpdate, type ReceivedMessage,
} from '../wire/index.js';
import type { LocalConfig, ResolvedPeerConfig } from './config.js';
import { collisionBetween, incomingToReplace, MAX_PENDING_INCOMING } from './collision.js';
import { Connection } from './connection.js';
import { buildOpen, negotiate, type Negotiated, type RestartFlags } from './open.js';
import type { BgpTransport } from './transport.js';

// One configured peer: the RFC 4271 §8 state machine over up to two TCP connections (ours and
// the peer's, until collision resolution in §6.8 keeps one). Messages are decoded by the codec;
// routes are the speaker's business: a session only reports UPDATEs and sends what it is given.

export type SessionState = 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

/** A NOTIFICATION that ended a session, and who sent it. */
export interface SessionNotification {
  readonly direction: 'sent' | 'received';
  readonly code: number;
  readonly subcode: number;
  readonly text?: string | undefined;
}

export interface SessionDown {
  readonly reason: string;
  readonly notification?: SessionNotification | undefined;
  /**
   * Seconds to keep the peer's routes as stale (RFC 4724 §4.2): set when the peer advertised
   * graceful restart and the session ended without a NOTIFICATION (a reset or a hold-timer expiry
   * of ours does not count: RFC 4724 §4.2 covers "the TCP session terminates", not a NOTIFICATION).
   */
  readonly gracefulRestartTime?: number | undefined;
}

export interface SessionStateEvent {
  readonly from: SessionState;
  readonly to: SessionState;
  readonly reason?: string | undefined;
  /** Set when the session reached Established. */
  readonly negotiated?: Negotiated | undefined;
  /** Set when the session left Established. */
  readonly down?: SessionDown | undefined;
}

interface SessionEvents {
  state: [event: SessionStateEvent];
  established: [negotiated: Negotiated];
  down: [down: SessionDown];
  /** Prefixes as numbers (wire/packed-update.ts). */
  update: [update: PackedUpdate, warnings: readonly BgpMessageError[]];
  'end-of-rib': [family: Family];
  'route-refresh': [family: Family];
  /**
   * RFC 4271 §6.8: one of two connections to the peer was closed with Cease/7. The session's
   * state may not change (the other connection carries on), so this is the only report of it.
   */
  collision: [event: CollisionEvent];
  /** A connection-level problem that did not end the session (a refused connect, say). */
  warning: [err: Error];
}

export interface CollisionEvent {
  /** Which connection was closed: the one we opened, or the one the peer opened. */
  readonly closed: 'outgoing' | 'incoming';
  readonly reason: string;
}

type ConnectionState = 'opensent' | 'openconfirm' | 'established';

interface Attempt {
  readonly conn: Connection;
  state: ConnectionState;
  negotiated?: Negotiated | undefined;
  holdTimer?: NodeJS.Timeout | undefined;
  /** The hold timer's period, in seconds. */
  holdSeconds?: number;
  keepaliveTimer?: NodeJS.Timeout | undefined;
  /** Set when a NOTIFICATION was exchanged on it (no graceful restart then). */
  notification?: SessionNotification | undefined;
}

const STATE_ORDER: readonly SessionState[] = ['idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'];

export class Session extends EventEmitter<SessionEvents> {
  private readonly attempts = new Set<Attempt>();
  private readonly backoff: Backoff;
  private started = false;
  private connecting: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private current: SessionState = 'idle';
  /** Set at the first Established: from then on our OPENs no longer say we are restarting. */
  private establishedBefore = false;
  private lastErrorText: string | undefined;

  /**
   * `restarting`: this speaker has just restarted with its forwarding state intact (RFC 4724
   * §4.1), so its OPENs carry the R and F bits until the session is first established.
   */
  constructor(
    readonly local: LocalConfig,
    readonly peer: ResolvedPeerConfig,
    private readonly transport: BgpTransport,
    private readonly restarting = false,
  ) {
    super();
    this.backoff = new Backoff({ initialMs: peer.timers.reconnectMin * 1000, maxMs: peer.timers.reconnectMax * 1000 });
  }

  get state(): SessionState {
    return this.current;
  }

  /** Our address on the established connection (next hop self). */
  get localAddress(): string | undefined {
    return this.established()?.conn.localAddress;
  }

  /** What the OPENs settled, while established. */
  get negotiated(): Negotiated | undefined {
    return this.established()?.negotiated;
  }

  /**
   * What last went wrong, for operators: the last NOTIFICATION sent or received (collision
   * resolution's Cease/7 aside: that is routine), a failed connect, or a connection that failed
   * or that the peer closed without a NOTIFICATION. Kept after the session comes back.
   */
  get lastError(): string | undefined {
    return this.lastErrorText;
  }

  /** RFC 4271 ManualStart (or ManualStart_with_PassiveTcpEstablishment for a passive peer). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.peer.passive) this.refreshState('waiting for the peer to connect');
    else this.connectNow();
  }

  /**
   * RFC 4271 ManualStop: Cease/2 (administrative shutdown, RFC 9003 text) on every connection.
   * `graceful` (a planned restart, RFC 4724 §4): when we advertised graceful restart, the
   * connections just close, without a NOTIFICATION, so the peer keeps our routes as stale until
   * we are back or our restart time is over.
   */
  stop(text = 'session stopped', graceful = false): void {
    this.started = false;
    this.clearRetry();
    this.connecting?.abort();
    const silent = graceful && this.peer.gracefulRestartTime > 0;
    for (const a of [...this.attempts]) {
      if (silent) {
        this.dropConnection(a, 'stopped for a graceful restart', false);
        a.conn.close();
      } else {
        this.closeWith(a, NotificationCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, text, 'stopped');
      }
    }
    this.refreshState('stopped');
  }

  /** Ends the session with a NOTIFICATION (max-prefix: Cease/1); it reconnects after the backoff. */
  reset(code: number, subcode: number, text: string): void {
    for (const a of [...this.attempts]) this.closeWith(a, code, subcode, text, text);
  }

  /** Queues encoded UPDATEs on the established connection; resolves when the socket can take more. */
  async send(messages: readonly Buffer[]): Promise<void> {
    const a = this.established();
    if (!a) return;
    for (const m of messages) a.conn.send(m);
    await a.conn.drain();
  }

  /**
   * A connection the speaker accepted from this peer's address. It gets our OPEN like any other;
   * what happens to an established session is decided only once its OPEN arrives (collision
   * detection, RFC 4271 §6.8, in resolveCollision()). A bare TCP connection proves nothing: any
   * local user of the peer's host can open one.
   */
  accept(socket: net.Socket): void {
    const conn = new Connection(socket, false, this.transport.readGatherMs);
    if (!this.started) {
      conn.close(encodeNotification(NotificationCode.CEASE, CeaseSubcode.CONNECTION_REJECTED));
      return;
    }
    const replaced = incomingToReplace(this.attempts);
    if (replaced) {
      this.emit('warning', new Error(`closed a connection from ${this.peer.address} still in ${replaced.state}: a newer one came, and at most ${MAX_PENDING_INCOMING} may wait at once`));
      this.closeWith(replaced, NotificationCode.CEASE, CeaseSubcode.CONNECTION_REJECTED, 'connection rejected', 'replaced by a newer connection from the peer');
    }
    this.transport.setTtl?.(socket, this.ttl());
    this.adopt(conn);
  }

  /**
   * RFC 4724 §4.1: a restarting speaker sets R, and F for the families whose forwarding state it
   * kept, until the session is back. After that, F stays set: a session that drops and comes back
   * while this process runs has lost no forwarding state either.
   */
  private restartFlags(): RestartFlags {
    return { restarting: this.restarting && !this.establishedBefore, forwardingPreserved: this.restarting || this.establishedBefore };
  }

  private ttl(): number | undefined {
    // Single-hop eBGP sends with TTL 1 unless multihop is set (RFC 4271 does not say; every router does).
    if (this.peer.multihop !== undefined) return this.peer.multihop;
    return this.peer.asn !== this.local.asn ? 1 : undefined;
  }

  private established(): Attempt | undefined {
    for (const a of this.attempts) if (a.state === 'established') return a;
    return undefined;
  }

  // --- connecting --------------------------------------------------------------------------

  private connectNow(): void {
    this.clearRetry();
    if (!this.started || this.peer.passive || this.connecting || this.attempts.size > 0) return;
    const abort = new AbortController();
    this.connecting = abort;
    this.refreshState('connecting');
    this.transport.connect({
      host: this.peer.address,
      port: this.peer.port,
      localAddress: this.peer.localAddress,
      timeoutMs: this.peer.timers.connectRetry * 1000,
      signal: abort.signal,
      md5: this.peer.md5,
      ttl: this.ttl(),
    }).then((socket) => {
      this.connecting = undefined;
      if (!this.started || abort.signal.aborted || this.established()) {
        socket.destroy();
        return;
      }
      this.adopt(new Connection(socket, true, this.transport.readGatherMs));
    }, (err: Error) => {
      this.connecting = undefined;
      if (!this.started || abort.signal.aborted) return;
      this.lastErrorText = `connect to ${this.peer.address}:${this.peer.port} failed: ${err.message}`;
      this.emit('warning', new Error(this.lastErrorText, { cause: err }));
      // RFC 4271 §8.2.2 Connect state: on a failed connection, restart ConnectRetryTimer and go Active.
      this.scheduleConnect(this.peer.timers.connectRetry * 1000, 'connect failed');
    });
  }

  private scheduleConnect(delayMs: number, reason: string, down?: SessionDown): void {
    this.clearRetry();
    if (!this.started || this.peer.passive) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connectNow();
    }, delayMs);
    this.refreshState(reason, down && { down });
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  // --- one connection ----------------------------------------------------------------------

  private adopt(conn: Connection): void {
    this.clearRetry();
    const a: Attempt = { conn, state: 'opensent' };
    this.attempts.add(a);
    conn.on('message', (m, warnings) => this.receive(a, m, warnings));
    conn.on('ignored', (err) => this.emit('warning', err));
    conn.on('protocol-error', (err) => this.closeWith(a, err.notificationCode, err.subcode, err.message, `protocol error: ${err.message}`, err.data));
    conn.on('closed', (err) => this.connectionEnded(a, err));
    conn.send(encodeOpen(buildOpen(this.local, this.peer, this.restartFlags())));
    this.armHold(a, this.peer.timers.openHold);
    this.refreshState('OPEN sent');
  }

  private receive(a: Attempt, m: ReceivedMessage, warnings: readonly BgpMessageError[]): void {
    if (!this.attempts.has(a)) return;
    if (m.type === MessageType.NOTIFICATION) return this.notified(a, m);
    switch (a.state) {
      case 'opensent': return this.inOpenSent(a, m);
      case 'openconfirm': return this.inOpenConfirm(a, m);
      case 'established': return this.inEstablished(a, m, warnings);
    }
  }

  private inOpenSent(a: Attempt, m: ReceivedMessage): void {
    if (m.type !== MessageType.OPEN) return this.fsmError(a, FsmErrorSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT, m);
    let negotiated: Negotiated;
    try {
      negotiated = negotiate(this.local, this.peer, m);
    } catch (err) {
      if (!(err instanceof BgpMessageError)) throw err;
      return this.closeWith(a, err.notificationCode, err.subcode, err.message, err.message, err.data);
    }
    a.negotiated = negotiated;
    a.conn.setCodecOptions({ fourOctetAsn: negotiated.fourOctetAsn });
    if (this.resolveCollision(a)) return;
    a.state = 'openconfirm';
    a.conn.send(encodeKeepalive());
    this.armHold(a, negotiated.holdTime);
    this.armKeepalive(a);
    this.refreshState('OPEN received');
  }

  /** RFC 4271 §6.8 (collision.ts decides). Returns true when `a`, whose OPEN just arrived, lost. */
  private resolveCollision(a: Attempt): boolean {
    for (const other of this.attempts) {
      if (other === a) continue;
      const established = other.state === 'established';
      switch (collisionBetween(this.local.routerId, a, other)) {
        case 'none':
          continue;
        case 'peer-restarted':
          this.dropConnection(other, `the peer restarted: a new connection sent its OPEN with BGP identifier ${other.negotiated!.peerRouterId} (graceful restart)`);
          continue;
        case 'close-other':
          this.closeWith(other, NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, 'connection collision', 'connection collision resolved');
          continue;
        case 'close-newcomer':
          this.closeWith(a, NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, 'connection collision', established ? 'collision with an established session' : 'connection collision resolved');
          return true;
      }
    }
    return false;
  }

  private inOpenConfirm(a: Attempt, m: ReceivedMessage): void {
    if (m.type !== MessageType.KEEPALIVE) return this.fsmError(a, FsmErrorSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM, m);
    a.state = 'established';
    this.establishedBefore = true;
    this.armHold(a, a.negotiated!.holdTime);
    // The state event first: closing the other connection below would otherwise report the
    // change to Established itself, with its own reason and without the negotiated values.
    this.backoff.reset();
    this.refreshState('KEEPALIVE received', { negotiated: a.negotiated! });
    for (const other of [...this.attempts]) {
      if (other !== a) this.closeWith(other, NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, 'connection collision', 'superseded by the established connection');
    }
    this.emit('established', a.negotiated!);
  }

  private inEstablished(a: Attempt, m: ReceivedMessage, warnings: readonly BgpMessageError[]): void {
    this.armHold(a, a.negotiated!.holdTime);
    switch (m.type) {
      case MessageType.KEEPALIVE: return;
      case MessageType.UPDATE: {
        const eor = packedEndOfRib(m.update);
        if (eor) this.emit('end-of-rib', eor);
        else this.emit('update', m.update, warnings);
        return;
      }
      case MessageType.ROUTE_REFRESH:
        // RFC 2918 §4: a request for a family not negotiated is ignored.
        if (a.negotiated!.families.includes(m.family) && m.subtype === 0) this.emit('route-refresh', m.family);
        return;
      case MessageType.OPEN: return this.fsmError(a, FsmErrorSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED, m);
      case MessageType.NOTIFICATION: return; // handled in receive()
    }
  }

  private fsmError(a: Attempt, subcode: number, m: ReceivedMessage): void {
    // RFC 6608 §3: the subcode names the state the unexpected message arrived in.
    this.closeWith(a, NotificationCode.FSM_ERROR, subcode, `unexpected message type ${m.type} in ${a.state}`, `unexpected message type ${m.type} in ${a.state}`);
  }

  private notified(a: Attempt, m: NotificationMessage): void {
    a.notification = { direction: 'received', code: m.code, subcode: m.subcode, text: m.shutdownText };
    const text = m.shutdownText ? `: "${m.shutdownText}"` : '';
    const reason = `NOTIFICATION ${m.code}/${m.subcode} received${text}`;
    if (!isCollisionResolution(m.code, m.subcode)) this.lastErrorText = reason;
    this.dropConnection(a, reason);
  }

  // --- timers ------------------------------------------------------------------------------

  /** (Re)starts the hold timer (RFC 4271 §4.4: every KEEPALIVE or UPDATE restarts it). */
  private armHold(a: Attempt, seconds: number): void {
    // Every message of a table does this: restarting the same timer in place costs a tenth of
    // clearing it and making a new one.
    if (a.holdTimer !== undefined && a.holdSeconds === seconds) {
      a.holdTimer.refresh();
      return;
    }
    if (a.holdTimer) clearTimeout(a.holdTimer);
    a.holdSeconds = seconds;
    a.holdTimer = undefined;
    if (seconds === 0) return;
    a.holdTimer = setTimeout(() => {
      a.holdTimer = undefined;
      this.closeWith(a, NotificationCode.HOLD_TIMER_EXPIRED, 0, 'hold timer expired', `hold timer expired (${seconds} s without a message)`, undefined, false);
    }, seconds * 1000);
  }

  private armKeepalive(a: Attempt): void {
    const interval = a.negotiated!.keepalive;
    if (interval === 0) return;
    a.keepaliveTimer = setInterval(() => a.conn.send(encodeKeepalive()), interval * 1000);
  }

  // --- ending ------------------------------------------------------------------------------

  /**
   * Sends a NOTIFICATION and closes the connection. `countsAsNotification` false keeps graceful
   * restart applicable (our hold timer expired: the peer may just be restarting).
   */
  private closeWith(a: Attempt, code: number, subcode: number, text: string, reason: string, data?: Buffer, countsAsNotification = true): void {
    if (!this.attempts.has(a)) return;
    const shutdown = code === NotificationCode.CEASE && (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET);
    const payload = shutdown ? { shutdownText: text } : data;
    if (countsAsNotification) a.notification = { direction: 'sent', code, subcode, ...(shutdown && { text }) };
    if (!isCollisionResolution(code, subcode)) this.lastErrorText = `NOTIFICATION ${code}/${subcode} sent: ${shutdown ? `"${text}"` : unsuffixed(reason, code, subcode)}`;
    // Forget the attempt first: close() reports 'closed' at once, which must not count as the peer's doing.
    this.dropConnection(a, reason, false);
    a.conn.close(encodeNotification(code, subcode, payload));
    if (isCollisionResolution(code, subcode)) {
      this.emit('collision', { closed: a.conn.initiatedLocally ? 'outgoing' : 'incoming', reason });
    }
  }

  /** The TCP connection failed, or the peer ended it without a NOTIFICATION. */
  private connectionEnded(a: Attempt, err: Error | undefined): void {
    const reason = err ? `connection failed: ${err.message}` : 'connection closed by the peer';
    if (this.attempts.has(a)) this.lastErrorText = reason;
    this.dropConnection(a, reason);
  }

  /** Forgets a connection, reports a lost session, and plans the reconnect. */
  private dropConnection(a: Attempt, reason: string, destroy = true): void {
    if (!this.attempts.delete(a)) return;
    if (a.holdTimer) clearTimeout(a.holdTimer);
    if (a.keepaliveTimer) clearInterval(a.keepaliveTimer);
    if (destroy) a.conn.destroy();
    let down: SessionDown | undefined;
    if (a.state === 'established') {
      const gr = a.notification === undefined ? a.negotiated?.peerRestartTime : undefined;
      down = { reason, ...(a.notification && { notification: a.notification }), ...(gr !== undefined && { gracefulRestartTime: gr }) };
    }
    if (this.attempts.size === 0 && this.started) this.scheduleConnect(this.backoff.next(), reason, down);
    this.refreshState(reason, down && { down });
    if (down) this.emit('down', down);
  }

  private refreshState(reason: string, extra?: { negotiated?: Negotiated; down?: SessionDown }): void {
    let next: SessionState = 'idle';
    for (const a of this.attempts) if (STATE_ORDER.indexOf(a.state) > STATE_ORDER.indexOf(next)) next = a.state;
    if (next === 'idle' && this.started) next = this.connecting ? 'connect' : 'active';
    if (next === this.current) return;
    const from = this.current;
    this.current = next;
    this.emit('state', { from, to: next, reason, ...extra });
  }
}

/** Cease/7: one of two connections closed by collision resolution (RFC 4271 §6.8), the session itself unharmed. */
function isCollisionResolution(code: number, subcode: number): boolean {
  return code === NotificationCode.CEASE && subcode === CeaseSubcode.CONNECTION_COLLISION_RESOLUTION;
}

/** A codec error's message ends by naming its NOTIFICATION (BgpMessageError): once is enough. */
function unsuffixed(reason: string, code: number, subcode: number): string {
  const named = ` (NOTIFICATION ${code}/${subcode})`;
  return reason.endsWith(named) ? reason.slice(0, -named.length) : reason;
}
