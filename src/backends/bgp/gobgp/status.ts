import type { PeerState, PeerStatus } from '../driver.js';
import type { SessionRole } from '../sessions.js';
import type { AdminState, Peer, SessionState } from './api.js';

const STATES: Readonly<Record<SessionState, PeerState>> = {
  UNKNOWN: 'idle', IDLE: 'idle', CONNECT: 'connect', ACTIVE: 'active', OPENSENT: 'opensent', OPENCONFIRM: 'openconfirm', ESTABLISHED: 'established',
};

/** What ListPeer adds to a peer event: counters, uptime and End-of-RIB. */
export interface PeerCounters {
  readonly received: number;
  readonly sent: number;
  /** Session uptime start (ms since the epoch) while established. */
  readonly upSince: number | undefined;
  /**
   * gobgpd got the peer's End-of-RIB for every family of the session (RFC 4724 §2 sends one per
   * family; gobgpd records it with graceful restart off too): those it marks enabled, or all.
   */
  readonly endOfRib: boolean;
}

/** One look at a peer: a WatchEvent peer event (no counters) or a ListPeer entry with its Adj-RIB-Out size. */
export interface Observation {
  readonly address: string;
  readonly state: PeerState;
  readonly admin: AdminState;
  readonly counters: PeerCounters | undefined;
  /** For a ListPeer answer: the table's epoch() when it was asked for. */
  readonly askedAt?: number;
}

export function observe(p: Peer, adjOut?: number, askedAt?: number): Observation | undefined {
  const address = p.state?.neighbor_address || p.conf?.neighbor_address;
  if (!address || address === '<nil>') return undefined; // END_OF_INIT's empty peer
  const state = STATES[p.state?.session_state ?? 'UNKNOWN'] ?? 'idle';
  const admin = p.state?.admin_state ?? 'UP';
  if (adjOut === undefined) return { address, state, admin, counters: undefined, ...(askedAt !== undefined && { askedAt }) };
  const families = p.afi_safis ?? [];
  const inUse = families.some((a) => a.state?.enabled === true) ? families.filter((a) => a.state?.enabled === true) : families;
  const uptime = p.timers?.state?.uptime?.seconds;
  return {
    address, state, admin,
    counters: {
      // "accepted": what passed gobgpd's import policy (none is set: all it took in), both families.
      received: families.reduce((n, a) => n + (a.state?.accepted ?? 0), 0),
      sent: adjOut,
      upSince: state === 'established' && uptime ? uptime * 1000 : undefined,
      endOfRib: inUse.length > 0 && inUse.every((a) => a.mp_graceful_restart?.state?.end_of_rib_received === true),
    },
    ...(askedAt !== undefined && { askedAt }),
  };
}

export interface StatusChange {
  readonly status: PeerStatus;
  /** Worth a 'peer' event: the state changed, or the first counters after establishment came. */
  readonly notify: boolean;
  readonly stateChanged: boolean;
  /** gobgpd just reset the session for exceeding the prefix limit and holds it down (admin state PFX_CT). */
  readonly prefixLimitHit: boolean;
  /**
   * gobgpd still holds the peer down after our EnablePeer, with no sign of the peer between: gobgpd
   * had not applied the enable yet, or the peer tripped again through states we did not see. Not
   * reported as a trip; the driver makes sure another EnablePeer is on its way.
   */
  readonly stillHeldDown: boolean;
  /** End-of-RIB from the peer in this session, not reported before. */
  readonly endOfRib: boolean;
}

interface Entry {
  asn: number;
  role: SessionRole;
  state: PeerState;
  admin: AdminState;
  upSince: number | undefined;
  received: number;
  sent: number;
  lastError: string | undefined;
  countersDue: boolean;
  endOfRibReported: boolean;
  /** The epoch of our last EnablePeer after a hold-down, while no look at the peer since has shown it lifted. */
  enabledAt: number | undefined;
}

/** The sessions' last known state, kept from peer events and ListPeer (peers() must answer at once). */
export class PeerStatusTable {
  readonly #peers = new Map<string, Entry>();
  /** Counts EnablePeer calls, so a ListPeer answer can be placed before or after one. */
  #epoch = 0;

  constructor(private readonly maxPrefixes: number) {}

  /** Says who a session is (ASN and role); a new one starts idle. */
  describe(address: string, asn: number, role: SessionRole): void {
    const e = this.#peers.get(address);
    if (e) Object.assign(e, { asn, role });
    else this.#peers.set(address, {
      asn, role, state: 'idle', admin: 'UP', upSince: undefined, received: 0, sent: 0, lastError: undefined, countersDue: false, endOfRibReported: false, enabledAt: undefined,
    });
  }

  forget(address: string): void {
    this.#peers.delete(address);
  }

  get(address: string): PeerStatus | undefined {
    const e = this.#peers.get(address);
    return e && statusOf(address, e);
  }

  list(addresses: Iterable<string>): PeerStatus[] {
    return [...addresses].flatMap((a) => this.get(a) ?? []);
  }

  /**
   * gobgpd cannot be reached: its sessions are gone with it, or at least unknown. Returns the
   * statuses that changed.
   */
  lost(reason: string): PeerStatus[] {
    const changed: PeerStatus[] = [];
    for (const [address, e] of this.#peers) {
      if (e.state === 'idle' && e.lastError === reason) continue;
      if (e.state === 'established') e.endOfRibReported = false;
      Object.assign(e, { state: 'idle', upSince: undefined, lastError: reason, countersDue: false });
      changed.push(statusOf(address, e));
    }
    return changed;
  }

  /** Now, for a ListPeer about to be asked for (Observation.askedAt). */
  epoch(): number {
    return this.#epoch;
  }

  /**
   * After EnablePeer on a peer held down. gobgpd answers EnablePeer before its session applies it,
   * and a ListPeer asked before it still shows the hold-down, so PFX_CT seen until a look after the
   * enable shows the peer otherwise is not a new trip (update() reports it as stillHeldDown). After
   * that look, PFX_CT is a new trip: the peer came back still over its limit.
   */
  enabled(address: string): void {
    const e = this.#peers.get(address);
    if (e === undefined || e.admin !== 'PFX_CT') return;
    e.admin = 'UP';
    e.enabledAt = ++this.#epoch;
  }

  /** Applies an observation of a described peer; undefined for a peer not described. */
  update(o: Observation): StatusChange | undefined {
    const e = this.#peers.get(o.address);
    if (!e) return undefined;
    const stateChanged = o.state !== e.state;
    let admin = o.admin;
    let stillHeldDown = false;
    if (e.enabledAt !== undefined) {
      const askedBeforeEnable = o.askedAt !== undefined && o.askedAt < e.enabledAt;
      if (admin === 'PFX_CT') {
        stillHeldDown = !askedBeforeEnable;
        admin = e.admin;
      } else if (!askedBeforeEnable) {
        e.enabledAt = undefined;
      }
    }
    const prefixLimitHit = admin === 'PFX_CT' && e.admin !== 'PFX_CT';
    if (prefixLimitHit) e.lastError = `more than ${this.maxPrefixes} prefixes: reset (RFC 4486 Cease/1) and held down by gobgpd`;
    else if (admin === 'DOWN' && e.admin !== 'DOWN') e.lastError = 'administratively down in gobgpd';
    else if (stateChanged && e.state === 'established') e.lastError = 'session went down (gobgpd gives no reason: see its log)';
    e.admin = admin;
    if (stateChanged) {
      if (o.state === 'established') {
        e.upSince = Date.now();
        e.countersDue = true;
      } else if (e.state === 'established') {
        e.upSince = undefined;
        e.endOfRibReported = false;
      }
      e.state = o.state;
    }
    let notify = stateChanged;
    let endOfRib = false;
    const c = o.counters;
    if (c) {
      const countersChanged = c.received !== e.received || c.sent !== e.sent;
      e.received = c.received;
      e.sent = c.sent;
      if (c.upSince !== undefined) e.upSince = c.upSince;
      if (e.countersDue && e.state === 'established') {
        notify ||= countersChanged;
        e.countersDue = false;
      }
      if (c.endOfRib && e.state === 'established' && !e.endOfRibReported) endOfRib = e.endOfRibReported = true;
    }
    return { status: statusOf(o.address, e), notify, stateChanged, prefixLimitHit, stillHeldDown, endOfRib };
  }
}

function statusOf(address: string, e: Entry): PeerStatus {
  return {
    address, asn: e.asn, role: e.role, state: e.state,
    upSince: e.state === 'established' ? e.upSince : undefined,
    received: e.received, sent: e.sent, lastError: e.lastError,
  };
}
