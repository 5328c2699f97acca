import { familyOf, routedFamilies, type DriverOptions, type DriverPeer } from '../driver.js';
import type { SessionRole } from '../sessions.js';
import { gobgpFamily, type Peer } from './api.js';

/**
 * gobgpd's connect retry (its neighbor timers default to RFC 4271's 120 s). It waits at least 5 s
 * and adds up to as much again at random, so 5 is the fastest it goes; Twill's own speaker retries
 * in 2 s. Sessions between hosts should come back in seconds.
 */
const CONNECT_RETRY_S = 5;

export type PeerOptions = Pick<DriverOptions, 'routerId' | 'localAddress' | 'holdTimeS' | 'restartTimeS' | 'maxPrefixes' | 'families' | 'localAddressV6'>;

/**
 * The AddPeer message for a session the backend wants: one AfiSafi per family the host routes
 * (a dual-stack host's IPv4 session carries IPv6 unicast too), each with the prefix limit.
 */
export function peerMessage(opts: PeerOptions, p: DriverPeer): Peer {
  const gracefulRestart = opts.restartTimeS > 0;
  const localAddress = familyOf(p.address) === 'ipv6' && familyOf(opts.localAddress) === 'ipv4' ? opts.localAddressV6 ?? '' : opts.localAddress;
  return {
    conf: { neighbor_address: p.address, peer_asn: p.asn, auth_password: p.password ?? '' },
    // gobgpd sends from local_address; the peer must see the address it has configured for us.
    transport: { local_address: localAddress, remote_port: p.port },
    ...(p.multihop !== undefined && { ebgp_multihop: { enabled: true, multihop_ttl: p.multihop } }),
    timers: {
      config: {
        hold_time: opts.holdTimeS,
        // RFC 4271 §10 suggests a third of the hold time.
        keepalive_interval: Math.floor(opts.holdTimeS / 3),
        connect_retry: CONNECT_RETRY_S,
        // idle_hold_time_after_reset is left out: gobgpd 3.10 takes it from its config file only
        // (ListPeer shows its 30 s whatever AddPeer said), and applies it after ResetPeer only.
      },
    },
    // RFC 4724: the restart time offered to the peer; the family needs it too (mp_graceful_restart).
    ...(gracefulRestart && { graceful_restart: { enabled: true, restart_time: opts.restartTimeS } }),
    // RFC 4456: a reflector names its cluster; Twill's reflectors use their router id, as BIRD does.
    ...(p.role === 'reflector-client' && { route_reflector: { route_reflector_client: true, route_reflector_cluster_id: opts.routerId } }),
    afi_safis: routedFamilies(opts).map((f) => {
      const family = gobgpFamily(f);
      return {
        config: { family, enabled: true },
        // RFC 4486 Cease/1: gobgpd resets the session, and holds it down, past this many prefixes
        // (of the family: gobgpd's limit is per AFI/SAFI).
        prefix_limits: { family, max_prefixes: opts.maxPrefixes },
        ...(gracefulRestart && { mp_graceful_restart: { config: { enabled: true } } }),
      };
    }),
  };
}

/**
 * What a session's configuration is compared by: the fields peerMessage() sets, read the same way
 * from its own output and from ListPeer (which echoes them back), so a gobgpd adopted after a
 * restart of the agent keeps the sessions it already has. A different key means a new session.
 */
export function peerKey(p: Peer): string {
  const t = p.timers?.config;
  const gr = p.graceful_restart?.enabled === true ? p.graceful_restart.restart_time ?? 0 : 0;
  const rr = p.route_reflector?.route_reflector_client === true ? p.route_reflector.route_reflector_cluster_id ?? '' : '';
  const families = (p.afi_safis ?? []).map((a) => [
    a.config?.family?.afi, a.config?.family?.safi, a.config?.enabled === true, a.prefix_limits?.max_prefixes ?? 0,
    a.mp_graceful_restart?.config?.enabled === true,
  ]);
  return JSON.stringify([
    p.conf?.peer_asn ?? 0, p.conf?.auth_password ?? '',
    p.transport?.local_address ?? '', p.transport?.remote_port ?? 0,
    p.ebgp_multihop?.enabled === true ? p.ebgp_multihop.multihop_ttl ?? 0 : 0,
    t?.hold_time ?? 0, t?.keepalive_interval ?? 0, t?.connect_retry ?? 0,
    gr, rr, families,
  ]);
}

export function addressOf(p: Peer): string {
  return p.conf?.neighbor_address ?? '';
}

export interface PeerPlan {
  /** Addresses to DeletePeer: no longer wanted, or wanted with another configuration. */
  readonly remove: string[];
  /** Peers to AddPeer, after the removals. */
  readonly add: Peer[];
}

/** The calls that turn what gobgpd has (`configured`: address → peerKey) into what is wanted. */
export function planPeers(configured: ReadonlyMap<string, string>, wanted: readonly Peer[]): PeerPlan {
  const byAddress = new Map(wanted.map((p) => [addressOf(p), p]));
  const remove: string[] = [];
  for (const [address, key] of configured) {
    const want = byAddress.get(address);
    if (!want || peerKey(want) !== key) remove.push(address);
  }
  const removed = new Set(remove);
  const add = wanted.filter((p) => !configured.has(addressOf(p)) || removed.has(addressOf(p)));
  return { remove, add };
}

/**
 * The role of a session found in gobgpd that the backend has not asked for yet (an adopted one):
 * enough for peers() until the next setPeers says.
 */
export function guessRole(p: Peer, localAsn: number): SessionRole {
  if (p.route_reflector?.route_reflector_client === true) return 'reflector-client';
  return p.conf?.peer_asn === localAsn ? 'mesh' : 'external';
}
