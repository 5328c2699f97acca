import type { Family, OpenMessage } from '../types.js';
import { MessageType } from '../types.js';
import { BgpMessageError, NotificationCode, OpenErrorSubcode } from '../wire/index.js';
import type { LocalConfig, ResolvedPeerConfig } from './config.js';

/** RFC 6793 §9: the 2-octet stand-in for an AS that does not fit. */
export const AS_TRANS = 23456;

/** What both sides agreed on in their OPENs. */
export interface Negotiated {
  /** The peer's real AS (from the 4-octet capability when present). */
  readonly peerAsn: number;
  readonly peerRouterId: string;
  /** Seconds; 0 means no keepalives and no hold timer (RFC 4271 §4.2). */
  readonly holdTime: number;
  readonly keepalive: number;
  readonly fourOctetAsn: boolean;
  readonly families: readonly Family[];
  readonly routeRefresh: boolean;
  /** The peer's graceful-restart restart time when it advertised the capability (RFC 4724). */
  readonly peerRestartTime: number | undefined;
  /** The peer's Restart State (R) bit: it has just restarted and will not wait for our End-of-RIB (RFC 4724 §3). */
  readonly peerRestarting: boolean;
  /** The peer's OPEN, for status output. */
  readonly open: OpenMessage;
}

/** What our graceful restart capability says of ourselves (RFC 4724 §3). */
export interface RestartFlags {
  /** The Restart State (R) bit: we have restarted, and the peer must not wait for our End-of-RIB. */
  readonly restarting: boolean;
  /** The Forwarding State (F) bit of every family: our forwarding state (the kernel's routes) survived. */
  readonly forwardingPreserved: boolean;
}

export function buildOpen(local: LocalConfig, peer: ResolvedPeerConfig, restart: RestartFlags): Omit<OpenMessage, 'type'> {
  return {
    version: 4,
    myAsn: local.asn > 0xffff ? AS_TRANS : local.asn,
    holdTime: peer.timers.holdTime,
    routerId: local.routerId,
    capabilities: {
      multiprotocol: peer.families,
      fourOctetAsn: local.asn,
      routeRefresh: true,
      enhancedRouteRefresh: false,
      // RFC 4724 §4.2: a receiving speaker keeps our routes across a restart only for the
      // families listed here, and drops them at once for those whose F bit is clear in our next OPEN.
      ...(peer.gracefulRestartTime > 0 && {
        gracefulRestart: {
          restarting: restart.restarting,
          restartTime: peer.gracefulRestartTime,
          families: peer.families.map((family) => ({ family, forwardingPreserved: restart.forwardingPreserved })),
        },
      }),
      unknown: [],
    },
  };
}

function openError(subcode: number, message: string, data?: Buffer): BgpMessageError {
  return new BgpMessageError(NotificationCode.OPEN_MESSAGE_ERROR, subcode, message, data ? { data } : {});
}

/**
 * Checks the peer's OPEN against its configuration (RFC 4271 §6.2) and works out the session's
 * parameters. Throws the BgpMessageError to answer with.
 */
export function negotiate(local: LocalConfig, peer: ResolvedPeerConfig, open: OpenMessage): Negotiated {
  const caps = open.capabilities;
  // RFC 6793 §4.1: with the capability, the real AS is in it; My AS is AS_TRANS or the same value.
  const peerAsn = caps.fourOctetAsn ?? open.myAsn;
  if (peerAsn !== peer.asn) {
    const data = Buffer.alloc(2);
    data.writeUInt16BE(open.myAsn);
    throw openError(OpenErrorSubcode.BAD_PEER_AS, `peer ${peer.address} says it is AS ${peerAsn}, configured AS ${peer.asn}`, data);
  }
  // RFC 6286 §2.1: identifiers must differ within an AS; between ASes a clash is tolerated.
  if (peerAsn === local.asn && open.routerId === local.routerId) {
    throw openError(OpenErrorSubcode.BAD_BGP_IDENTIFIER, `peer ${peer.address} uses our own router id ${local.routerId} inside our AS`);
  }
  if (open.holdTime !== 0 && open.holdTime < 3) {
    throw openError(OpenErrorSubcode.UNACCEPTABLE_HOLD_TIME, `peer ${peer.address} proposed hold time ${open.holdTime} s (must be 0 or at least 3)`);
  }
  const holdTime = Math.min(open.holdTime, peer.timers.holdTime);
  const keepalive = holdTime === 0 ? 0 : Math.min(peer.timers.keepalive ?? Math.floor(holdTime / 3), Math.floor(holdTime / 3)) || 1;
  // RFC 4760 §8: a peer that sends no multiprotocol capability speaks IPv4 unicast only.
  const theirs: readonly Family[] = caps.multiprotocol.length > 0 ? caps.multiprotocol : ['ipv4-unicast'];
  const families = peer.families.filter((f) => theirs.includes(f));
  if (families.length === 0) {
    throw openError(OpenErrorSubcode.UNSUPPORTED_CAPABILITY, `peer ${peer.address} supports none of ${peer.families.join(', ')} (it offers ${theirs.join(', ')})`);
  }
  return {
    peerAsn,
    peerRouterId: open.routerId,
    holdTime,
    keepalive,
    fourOctetAsn: caps.fourOctetAsn !== undefined,
    families,
    routeRefresh: caps.routeRefresh || caps.enhancedRouteRefresh,
    peerRestartTime: caps.gracefulRestart?.restartTime,
    peerRestarting: caps.gracefulRestart?.restarting ?? false,
    open: { ...open, type: MessageType.OPEN },
  };
}
