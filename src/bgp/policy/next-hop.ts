// Next hops a speaker must not take (RFC 4271 §6.3): "the NEXT_HOP attribute is semantically
// correct if it does not represent the IP address of the receiving speaker"; a route with such a
// next hop SHOULD be ignored, without a NOTIFICATION and without closing the session (§5.1.3: a
// speaker SHALL NOT install a route with itself as the next hop). A loopback next hop is the same
// mistake seen from the kernel: the traffic would stay on this host.

/** This speaker's addresses as one session sees them. */
export interface OwnAddresses {
  /** The BGP identifier (often an address of the host). */
  readonly routerId: string;
  /** The session's own end (canonical text). */
  readonly localAddress: string;
  /** Every other address the speaker knows as its own: configured local and listen addresses, other sessions' ends. */
  readonly ownAddresses: ReadonlySet<string>;
}

export type UnusableNextHop = 'own-next-hop' | 'loopback-next-hop';

/**
 * Why `nextHop` (canonical text, as the codec decodes it) cannot be used, or undefined when it
 * can. Runs once per received route, so it only compares strings.
 */
export function unusableNextHop(nextHop: string, own: OwnAddresses): UnusableNextHop | undefined {
  if (isLoopback(nextHop)) return 'loopback-next-hop';
  if (nextHop === own.localAddress || nextHop === own.routerId || own.ownAddresses.has(nextHop)) return 'own-next-hop';
  return undefined;
}

/** 127.0.0.0/8 (RFC 1122 §3.2.1.3) or ::1 (RFC 4291 §2.5.3); the text is canonical, so a prefix test is exact. */
function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}
