import { BGP_PORT, type BgpOptions, type BgpPeerOption } from './config.js';

/**
 * Pure: the BGP sessions a host wants, from the cluster's options, its own flags and the hosts
 * that hold leases (issue 16, item 1). Run again whenever the leases change; the backend adds and
 * removes sessions by the difference, keyed by address.
 *
 *   - Mesh: an iBGP session to every other host's PublicIP, all in the cluster's ASN.
 *   - RouteReflectors (RFC 4456): a reflector peers with every other host, treating the hosts
 *     that are not reflectors as its clients and the other reflectors as ordinary iBGP peers
 *     (the reflectors mesh among themselves); every other host peers with the reflectors only.
 *   - External peers: the cluster's Peers and the host's own --bgp-peer (its ToR); the host's
 *     flag wins for an address listed in both. They never replace a session to another host.
 */
export interface SessionPlanInput {
  readonly options: BgpOptions;
  /** This host's PublicIP. */
  readonly self: string;
  /** This host's ASN: --bgp-asn, else the options' ASN. */
  readonly asn: number;
  /** The PublicIPs of the hosts that hold leases of this backend, this host's included or not. */
  readonly hosts: Iterable<string>;
  /** This host's --bgp-peer flags. */
  readonly hostPeers: readonly BgpPeerOption[];
}

export type SessionRole = 'mesh' | 'reflector' | 'reflector-client' | 'external';

export interface PlannedSession {
  readonly address: string;
  readonly asn: number;
  readonly role: SessionRole;
  readonly password: string | undefined;
  readonly port: number;
  readonly multihop: number | undefined;
}

export function planSessions(input: SessionPlanInput): PlannedSession[] {
  const { options, self, asn } = input;
  const others = [...new Set(input.hosts)].filter((h) => h !== self);
  const sessions = new Map<string, PlannedSession>();
  const host = (address: string, role: SessionRole): void => {
    sessions.set(address, { address, asn, role, password: undefined, port: BGP_PORT, multihop: undefined });
  };
  if (options.routeReflectors.length > 0) {
    const reflectors = new Set(options.routeReflectors);
    if (reflectors.has(self)) {
      for (const h of others) host(h, reflectors.has(h) ? 'reflector' : 'reflector-client');
    } else {
      // A reflector without a lease is still a reflector (it may be restarting).
      for (const r of options.routeReflectors) if (r !== self) host(r, 'reflector');
    }
  } else if (options.mesh) {
    for (const h of others) host(h, 'mesh');
  }
  const external = new Map<string, BgpPeerOption>();
  for (const p of [...options.peers, ...input.hostPeers]) external.set(p.address, p);
  for (const p of external.values()) {
    if (p.address === self || sessions.has(p.address)) continue;
    sessions.set(p.address, { address: p.address, asn: p.asn, role: 'external', password: p.password, port: p.port, multihop: p.multihop });
  }
  // In address text order: the same list, and so the same log lines, on every run.
  return [...sessions.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
