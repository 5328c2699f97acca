import type { EventEmitter } from 'node:events';
import type { PlannedSession, SessionRole } from './sessions.js';

/**
 * The one seam between the bgp backend and a BGP speaker: Twill's own (builtin-driver.ts, over
 * src/bgp) or a gobgpd beside the agent (gobgp/driver.ts, over its gRPC API). The backend says
 * declaratively which sessions it wants and what it announces; the driver reports, per peer,
 * the paths it received and lost, and how its sessions are doing. Which paths reach the kernel is
 * the backend's decision (import-filter.ts, path-table.ts), the same for both speakers.
 */

/** A session the backend wants: planSessions' output, as the driver takes it. */
export type DriverPeer = PlannedSession;

/** One path a peer announced, reduced to what the kernel route and ECMP need. */
export interface LearnedPath {
  /** Canonical prefix text, "10.244.3.0/24" or "fd10:0:0:3::/64". */
  readonly prefix: string;
  /** For IPv6, the MP_REACH_NLRI global next hop (RFC 2545 §3; a link-local second one is dropped). */
  readonly nextHop: string;
  /** Length of the AS_PATH (an AS_SET counts 1, RFC 4271 §9.1.2.2 a). */
  readonly asPathLength: number;
  /** LOCAL_PREF; 100 when the peer sent none (eBGP). */
  readonly localPref: number;
  readonly med: number;
  /** ORIGIN: 0 IGP, 1 EGP, 2 INCOMPLETE. */
  readonly origin: number;
  /** Learned over eBGP (preferred over iBGP, RFC 4271 §9.1.2.2 d). */
  readonly ebgp: boolean;
}

export type PeerState = 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

export interface PeerStatus {
  readonly address: string;
  readonly asn: number;
  readonly role: SessionRole;
  readonly state: PeerState;
  /** When the session last became established (ms since the epoch), if it is. */
  readonly upSince: number | undefined;
  /** Prefixes the peer gave us (after the speaker's own checks) and that we announce to it. */
  readonly received: number;
  readonly sent: number;
  /** The last reason the session went down or was refused, if any. */
  readonly lastError: string | undefined;
}

export interface PathsEvent {
  readonly peer: string;
  readonly announced: readonly LearnedPath[];
  /** Prefixes the peer no longer gives us (withdrawn, or its session ended for good). */
  readonly withdrawn: readonly string[];
  /**
   * Prefixes the speaker itself refused (a default route, outside the cluster network, this
   * host's own subnet, beyond max-prefix), with the import-filter.ts reason code.
   */
  readonly rejected?: readonly { readonly prefix: string; readonly reason: string }[] | undefined;
}

export interface DriverEvents {
  paths: [event: PathsEvent];
  /** A session changed state (or its counters, on establishment). */
  peer: [status: PeerStatus];
  /** A peer sent more than `maxPrefixes`: the session was reset. */
  'max-prefix': [event: { readonly peer: string; readonly limit: number }];
  /** The peer sent End-of-RIB (RFC 4724 §2): its initial table is complete. */
  'end-of-rib': [event: { readonly peer: string }];
  /** Problems that did not stop the speaker. */
  warning: [err: Error];
}

export interface DriverOptions {
  readonly asn: number;
  readonly routerId: string;
  /** Where the speaker accepts sessions (default: the public IP, port 179). */
  readonly listen: { readonly address: string; readonly port: number };
  /**
   * The address sessions are opened from: the host's IPv4 address, or in an IPv6-only cluster its
   * IPv6 address (the sessions' transport family; families.ts).
   */
  readonly localAddress: string;
  /** Where sessions to a peer at an IPv6 address start from when the transport is IPv4 (an IPv6 ToR of a dual-stack host). */
  readonly localAddressV6?: string | undefined;
  readonly holdTimeS: number;
  /** RFC 4724 restart time offered to peers; 0 disables graceful restart. */
  readonly restartTimeS: number;
  /**
   * The address families the sessions carry and the backend routes (RFC 4760 IPv4 and IPv6
   * unicast); absent is IPv4 alone. Read it with routedFamilies().
   */
  readonly families?: readonly RoutedFamily[] | undefined;
  /** Only prefixes inside this network are accepted at all (and never a default route); undefined without IPv4. */
  readonly clusterNetwork: string | undefined;
  /** This host's own subnet: never accepted from a peer, and all a host that reflects nothing announces. */
  readonly ownSubnet: string | undefined;
  /** The IPv6 cluster network, with IPv6 among the families. */
  readonly clusterNetworkV6?: string | undefined;
  /** This host's own IPv6 subnet, with IPv6 among the families. */
  readonly ownSubnetV6?: string | undefined;
  /** This host is one of the cluster's route reflectors: it passes the other hosts' subnets on (RFC 4456). */
  readonly reflector: boolean;
  /** Most prefixes one peer may give us before its session is reset (RFC 4486 Cease/1). */
  readonly maxPrefixes: number;
  /**
   * True when this agent restarted while the kernel kept its routes: the speaker says so in its
   * OPEN (RFC 4724 Restart State and Forwarding State bits), so peers keep our routes.
   */
  readonly restarted: boolean;
}

export interface BgpDriver extends EventEmitter<DriverEvents> {
  /** Declarative: afterwards exactly these sessions exist (added, removed, or changed by address). */
  setPeers(peers: readonly DriverPeer[]): Promise<void>;
  /** Declarative: afterwards exactly these prefixes are announced, each with its next hop. */
  announce(routes: readonly { readonly prefix: string; readonly nextHop: string }[]): Promise<void>;
  peers(): PeerStatus[];
  /**
   * Stops the speaker. `graceful`: a planned restart (RFC 4724 §4): no Cease to peers, which keep
   * our routes for the restart time; otherwise peers are told with Cease and drop them at once.
   */
  close(opts: { readonly graceful: boolean }): Promise<void>;
}

/**
 * Most prefixes one peer may give us, both families together, before its session is reset.
 * (gobgpd's PrefixLimit is per AFI/SAFI: there each family may have this many.)
 */
export const DEFAULT_MAX_PREFIXES_PER_PEER = 10_000;

/** An address family the bgp backend routes: IPv4 unicast (AFI 1) or IPv6 unicast (AFI 2), SAFI 1. */
export type RoutedFamily = 'ipv4' | 'ipv6';

/** The families a driver's sessions carry: `families`, else IPv4 alone (a config without IPv6). */
export function routedFamilies(opts: { readonly families?: readonly RoutedFamily[] | undefined }): readonly RoutedFamily[] {
  return opts.families !== undefined && opts.families.length > 0 ? opts.families : ['ipv4'];
}

/** The family of a prefix or address in text form. */
export function familyOf(text: string): RoutedFamily {
  return text.includes(':') ? 'ipv6' : 'ipv4';
}

/** The cluster networks of the driver's families (accepted from peers, exported by a reflector). */
export function clusterNetworksOf(opts: Pick<DriverOptions, 'families' | 'clusterNetwork' | 'clusterNetworkV6'>): string[] {
  const families = routedFamilies(opts);
  return [families.includes('ipv4') ? opts.clusterNetwork : undefined, families.includes('ipv6') ? opts.clusterNetworkV6 : undefined]
    .filter((n): n is string => n !== undefined);
}

/** This host's own subnets of the driver's families. */
export function ownSubnetsOf(opts: Pick<DriverOptions, 'families' | 'ownSubnet' | 'ownSubnetV6'>): string[] {
  const families = routedFamilies(opts);
  return [families.includes('ipv4') ? opts.ownSubnet : undefined, families.includes('ipv6') ? opts.ownSubnetV6 : undefined]
    .filter((n): n is string => n !== undefined);
}
