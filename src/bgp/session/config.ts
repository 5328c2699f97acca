import { isIPv4, isIP } from 'node:net';
import { InvalidArgumentError } from '../../core/errors.js';
import type { Family } from '../types.js';

/** This speaker's identity and defaults for its sessions. */
export interface LocalConfig {
  readonly asn: number;
  /** BGP identifier, a dotted quad (RFC 4271 §4.2; RFC 6286 allows any non-zero 32-bit value). */
  readonly routerId: string;
  /**
   * RFC 4456 §7 cluster id, a dotted quad: what a route reflector prepends to CLUSTER_LIST and
   * refuses routes carrying. Default: the router id. Set the same value on the reflectors of one
   * cluster.
   */
  readonly clusterId?: string | undefined;
}

/** Timers in seconds, as routers are configured; RFC 4271 §10 suggests most of the defaults. */
export interface SessionTimers {
  /** Proposed hold time: 0, or at least 3 (default 90, as GoBGP). */
  readonly holdTime: number;
  /** Keepalive interval; default a third of the negotiated hold time. */
  readonly keepalive?: number | undefined;
  /** Wait between connection attempts to an unreachable peer (default 5 s; RFC 4271 suggests 120, Calico uses 5). */
  readonly connectRetry: number;
  /** Hold time while waiting for the peer's OPEN (RFC 4271 §8: "a large value", 4 minutes suggested). */
  readonly openHold: number;
  /** Delay before reconnecting after a session went down: starts here and doubles (with jitter) up to `reconnectMax`. */
  readonly reconnectMin: number;
  readonly reconnectMax: number;
}

export const DEFAULT_TIMERS: SessionTimers = Object.freeze({
  holdTime: 90,
  connectRetry: 5,
  openHold: 240,
  reconnectMin: 1,
  reconnectMax: 120,
});

export interface PeerConfig {
  readonly address: string;
  /** TCP port of the peer (default 179). */
  readonly port?: number | undefined;
  readonly asn: number;
  /** Never connect; wait for the peer (RFC 4271 PassiveTcpEstablishment). */
  readonly passive?: boolean | undefined;
  readonly md5?: string | undefined;
  /** eBGP multihop TTL; single-hop eBGP sends with TTL 1, iBGP with the system default. */
  readonly multihop?: number | undefined;
  /** Source address for the connection and next-hop-self (default: the connection's local address). */
  readonly localAddress?: string | undefined;
  /** Families to negotiate (default: IPv4 unicast for an IPv4 peer, IPv6 unicast for an IPv6 one). */
  readonly families?: readonly Family[] | undefined;
  readonly timers?: Partial<SessionTimers> | undefined;
  /**
   * Advertise graceful restart (RFC 4724) with this restart time (s), default 120: the peer keeps
   * our routes that long when the session drops without a NOTIFICATION, and we keep its routes
   * when it advertised the capability too. 0 disables it.
   */
  readonly gracefulRestartTime?: number | undefined;
}

/** A PeerConfig with every default filled in and every value checked. */
export interface ResolvedPeerConfig {
  readonly address: string;
  readonly port: number;
  readonly asn: number;
  readonly passive: boolean;
  readonly md5: string | undefined;
  readonly multihop: number | undefined;
  readonly localAddress: string | undefined;
  readonly families: readonly Family[];
  readonly timers: SessionTimers;
  readonly gracefulRestartTime: number;
}

const MAX_ASN = 0xffffffff;

export function validateAsn(asn: number, what: string): number {
  if (!Number.isInteger(asn) || asn < 1 || asn > MAX_ASN) throw new InvalidArgumentError(what, asn, 'must be an integer from 1 to 4294967295');
  // RFC 6793 §9: AS_TRANS is only ever a placeholder on the wire.
  if (asn === 23456) throw new InvalidArgumentError(what, asn, 'is AS_TRANS (RFC 6793), which no speaker may use as its own AS');
  return asn;
}

export function validateLocal(local: LocalConfig): LocalConfig {
  validateAsn(local.asn, 'local AS');
  if (!isIPv4(local.routerId) || local.routerId === '0.0.0.0') throw new InvalidArgumentError('router id', local.routerId, 'must be a non-zero dotted quad');
  if (local.clusterId !== undefined && !isIPv4(local.clusterId)) throw new InvalidArgumentError('cluster id', local.clusterId, 'must be a dotted quad');
  return Object.freeze({ asn: local.asn, routerId: local.routerId, ...(local.clusterId !== undefined && { clusterId: local.clusterId }) });
}

function seconds(value: number, what: string, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) throw new InvalidArgumentError(what, value, `must be from ${min} to ${max} seconds`);
  return value;
}

export function resolvePeerConfig(peer: PeerConfig): ResolvedPeerConfig {
  if (isIP(peer.address) === 0) throw new InvalidArgumentError('peer address', peer.address, 'not an IP address');
  const port = peer.port ?? 179;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('peer port', port, 'must be from 1 to 65535');
  const t = { ...DEFAULT_TIMERS, ...Object.fromEntries(Object.entries(peer.timers ?? {}).filter(([, v]) => v !== undefined)) };
  // RFC 4271 §4.2: the hold time is 0 or at least 3 seconds; it is a 16-bit field.
  if (!Number.isInteger(t.holdTime) || (t.holdTime !== 0 && t.holdTime < 3) || t.holdTime > 65535) {
    throw new InvalidArgumentError('hold time', t.holdTime, 'must be 0 or an integer from 3 to 65535');
  }
  if (t.keepalive !== undefined) seconds(t.keepalive, 'keepalive', 1, Math.max(1, t.holdTime / 3));
  seconds(t.connectRetry, 'connect retry', 0.1, 3600);
  seconds(t.openHold, 'OPEN hold time', 3, 65535);
  seconds(t.reconnectMin, 'reconnect delay', 0.05, 3600);
  seconds(t.reconnectMax, 'reconnect max delay', t.reconnectMin, 3600);
  if (peer.md5 !== undefined && (peer.md5.length === 0 || Buffer.byteLength(peer.md5) > 80)) {
    throw new InvalidArgumentError('MD5 key', '<hidden>', 'must be 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)');
  }
  if (peer.multihop !== undefined && (!Number.isInteger(peer.multihop) || peer.multihop < 1 || peer.multihop > 255)) {
    throw new InvalidArgumentError('multihop TTL', peer.multihop, 'must be from 1 to 255');
  }
  if (peer.localAddress !== undefined && isIP(peer.localAddress) === 0) throw new InvalidArgumentError('local address', peer.localAddress, 'not an IP address');
  const gr = peer.gracefulRestartTime ?? 120;
  if (!Number.isInteger(gr) || gr < 0 || gr > 4095) throw new InvalidArgumentError('graceful restart time', gr, 'must be from 0 to 4095 (RFC 4724 §3)');
  const families = peer.families ?? [isIPv4(peer.address) ? 'ipv4-unicast' : 'ipv6-unicast'];
  if (families.length === 0) throw new InvalidArgumentError('families', families, 'at least one address family');
  return Object.freeze({
    address: peer.address,
    port,
    asn: validateAsn(peer.asn, 'peer AS'),
    passive: peer.passive ?? false,
    md5: peer.md5,
    multihop: peer.multihop,
    localAddress: peer.localAddress,
    families: Object.freeze([...new Set(families)]),
    timers: Object.freeze(t),
    gracefulRestartTime: gr,
  });
}
