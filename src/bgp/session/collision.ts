// Which of a peer's connections stays: collision resolution (RFC 4271 §6.8), a restarted peer's
// new session (RFC 4724 §4.2), and the cap on connections waiting for their OPEN. Decisions
// only; the session closes what they name.

import { parseIpv4Value } from '../../core/ip.js';
import type { Negotiated } from './open.js';

/** What the rules look at on one of the peer's connections. */
export interface CollisionSide {
  readonly conn: { readonly initiatedLocally: boolean };
  readonly state: 'opensent' | 'openconfirm' | 'established';
  /** Set once the connection's OPEN arrived. */
  readonly negotiated?: Negotiated | undefined;
}

export type CollisionVerdict =
  /** The connection whose OPEN just arrived loses: Cease/7 on it. */
  | 'close-newcomer'
  /** The other connection loses: Cease/7 on it. */
  | 'close-other'
  /** The other (established) session's peer has restarted: it goes, without a NOTIFICATION, so its routes are kept as stale. */
  | 'peer-restarted'
  /** No collision: the other connection has no OPEN yet to compare with. */
  | 'none';

/**
 * `newcomer` just received its OPEN; what happens between it and `other`? RFC 4271 §6.8: an
 * established connection wins; between two with OPENs, the one opened by the speaker with the
 * higher BGP identifier wins. Except (RFC 4724 §4.2) that a peer which advertised graceful
 * restart and opens a new session has restarted, so its established session is dead even if no
 * FIN or hold-timer expiry has said so yet. Only a completed OPEN with the established session's
 * BGP identifier shows that: a bare connection from the peer's address proves nothing, as any
 * local user of the peer's host can open one.
 */
export function collisionBetween(localRouterId: string, newcomer: CollisionSide, other: CollisionSide): CollisionVerdict {
  const peerId = newcomer.negotiated!.peerRouterId;
  if (other.state === 'established') {
    const old = other.negotiated!;
    return old.peerRestartTime !== undefined && old.peerRouterId === peerId ? 'peer-restarted' : 'close-newcomer';
  }
  if (other.state !== 'openconfirm') return 'none';
  const localWins = parseIpv4Value(localRouterId) > parseIpv4Value(peerId);
  return newcomer.conn.initiatedLocally === localWins ? 'close-other' : 'close-newcomer';
}

/**
 * Connections from the peer's address that may wait for their OPEN (or their KEEPALIVE) at once,
 * beside an established one. A collision needs one; anyone on the peer's host can open more.
 */
export const MAX_PENDING_INCOMING = 2;

/**
 * The connection to close before a new one from the peer is taken, or undefined when there is
 * room. At the cap, the oldest incoming one whose OPEN has not come makes room, rather than the
 * newcomer being refused: the peer's real connection sends its OPEN at once, so bare connections
 * piling up cannot keep it out for the OPEN hold time. (Collision resolution leaves at most one
 * incoming connection past OpenSent, so with a cap of two there always is a silent one.)
 */
export function incomingToReplace<T extends CollisionSide>(connections: Iterable<T>): T | undefined {
  const pending: T[] = [];
  for (const c of connections) if (!c.conn.initiatedLocally && c.state !== 'established') pending.push(c);
  if (pending.length < MAX_PENDING_INCOMING) return undefined;
  return pending.find((c) => c.state === 'opensent') ?? pending[0];
}
