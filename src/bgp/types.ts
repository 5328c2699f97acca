// Values shared by the BGP codec (wire/), the RIB and the sessions. Plain data, no behaviour, so
// each layer can be tested on its own and a decoded message can be compared with deepEqual.

/** Address families Twill speaks (RFC 4760 AFI/SAFI pairs). */
export type Family = 'ipv4-unicast' | 'ipv6-unicast';

export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;

/**
 * A prefix in canonical text form: "10.244.1.0/24", "fd00:10:244:1::/64". Host bits are always
 * zero (the decoder clears what the wire carries beyond the length) and IPv6 is in RFC 5952 form,
 * so two equal prefixes are equal strings and can key a Map.
 */
export type Prefix = string;

/** ORIGIN (RFC 4271 §5.1.1). */
export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;
export type Origin = (typeof Origin)[keyof typeof Origin];

/** AS_PATH segment types (RFC 4271 §4.3; confed types RFC 5065). */
export type AsPathSegmentType = 'set' | 'sequence' | 'confed-sequence' | 'confed-set';

export interface AsPathSegment {
  readonly type: AsPathSegmentType;
  /** 4-octet values; a path read from a 2-octet peer has AS4_PATH already merged in (RFC 6793 §4.2.3). */
  readonly asns: readonly number[];
}

/** A LARGE_COMMUNITY (RFC 8092): global administrator, local data 1, local data 2. */
export type LargeCommunity = readonly [number, number, number];

/** An attribute the codec does not interpret, kept so an optional transitive one can be passed on (RFC 4271 §5). */
export interface UnknownAttribute {
  readonly flags: number;
  readonly type: number;
  readonly value: Buffer;
}

/**
 * The path attributes of one UPDATE, decoded. MP_REACH_NLRI / MP_UNREACH_NLRI are not here: they
 * carry prefixes and live on {@link UpdateMessage}. AS4_PATH / AS4_AGGREGATOR are not here either:
 * the codec merges them into `asPath` / `aggregator` on decode and emits them on encode when the
 * session has no 4-octet AS capability.
 */
export interface PathAttributes {
  readonly origin: Origin;
  readonly asPath: readonly AsPathSegment[];
  /** NEXT_HOP (IPv4 unicast only; IPv6 next hops travel in MP_REACH_NLRI). */
  readonly nextHop?: string | undefined;
  readonly med?: number | undefined;
  /** iBGP only (RFC 4271 §5.1.5). */
  readonly localPref?: number | undefined;
  readonly atomicAggregate?: boolean | undefined;
  readonly aggregator?: { readonly asn: number; readonly address: string } | undefined;
  /** RFC 1997 communities as 32-bit values (high 16 bits: AS, low 16: value). */
  readonly communities?: readonly number[] | undefined;
  readonly largeCommunities?: readonly LargeCommunity[] | undefined;
  /** RFC 4456 route reflection. */
  readonly originatorId?: string | undefined;
  readonly clusterList?: readonly string[] | undefined;
  readonly unknown?: readonly UnknownAttribute[] | undefined;
}

/**
 * What a route says besides its prefix. All the prefixes of one received UPDATE share one (as
 * BIRD's routes share an rta), and the RIB keeps a reference to it per prefix.
 */
export interface RoutePath {
  readonly family: Family;
  /** For IPv4: NEXT_HOP; for IPv6: the MP_REACH global next hop (a link-local second one is dropped). */
  readonly nextHop: string;
  readonly attributes: PathAttributes;
}

/** One route: a prefix and its path. */
export interface Route extends RoutePath {
  readonly prefix: Prefix;
}

// --- Capabilities (RFC 5492) -------------------------------------------------------------------

export interface GracefulRestartCapability {
  /** The R bit: the sender has restarted (RFC 4724 §3). */
  readonly restarting: boolean;
  /** Seconds, 0..4095. */
  readonly restartTime: number;
  /** Families whose forwarding state the sender kept (the F bit per AFI/SAFI). */
  readonly families: readonly { readonly family: Family; readonly forwardingPreserved: boolean }[];
}

export interface Capabilities {
  /** Multiprotocol (code 1, RFC 4760); families the sender supports. */
  readonly multiprotocol: readonly Family[];
  /** 4-octet AS (code 65, RFC 6793): the sender's real AS. */
  readonly fourOctetAsn?: number | undefined;
  /** Route refresh (code 2, RFC 2918). */
  readonly routeRefresh: boolean;
  /** Enhanced route refresh (code 70, RFC 7313); decoded, never sent by Twill. */
  readonly enhancedRouteRefresh: boolean;
  readonly gracefulRestart?: GracefulRestartCapability | undefined;
  /** Every other capability, tolerated and kept for status output. */
  readonly unknown: readonly { readonly code: number; readonly value: Buffer }[];
}

// --- Messages (RFC 4271 §4) --------------------------------------------------------------------

export const MessageType = { OPEN: 1, UPDATE: 2, NOTIFICATION: 3, KEEPALIVE: 4, ROUTE_REFRESH: 5 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface OpenMessage {
  readonly type: typeof MessageType.OPEN;
  readonly version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS 23456 when the real AS needs 4 octets). */
  readonly myAsn: number;
  readonly holdTime: number;
  /** Dotted quad. */
  readonly routerId: string;
  readonly capabilities: Capabilities;
}

export interface MpReach {
  readonly family: Family;
  /** One next hop, or for IPv6 a global plus a link-local one (RFC 2545 §3). */
  readonly nextHops: readonly string[];
  readonly nlri: readonly Prefix[];
}

export interface MpUnreach {
  readonly family: Family;
  readonly withdrawn: readonly Prefix[];
}

export interface UpdateMessage {
  readonly type: typeof MessageType.UPDATE;
  /** IPv4 unicast withdrawals (the classic field). */
  readonly withdrawn: readonly Prefix[];
  /** Absent when the UPDATE carries only withdrawals. */
  readonly attributes?: PathAttributes | undefined;
  /** IPv4 unicast NLRI (the classic field). */
  readonly nlri: readonly Prefix[];
  readonly mpReach?: MpReach | undefined;
  readonly mpUnreach?: MpUnreach | undefined;
}

export interface NotificationMessage {
  readonly type: typeof MessageType.NOTIFICATION;
  readonly code: number;
  readonly subcode: number;
  readonly data: Buffer;
  /** RFC 9003 shutdown communication, for Cease/2 and Cease/4, when present and valid UTF-8. */
  readonly shutdownText?: string | undefined;
}

export interface KeepaliveMessage {
  readonly type: typeof MessageType.KEEPALIVE;
}

export interface RouteRefreshMessage {
  readonly type: typeof MessageType.ROUTE_REFRESH;
  readonly family: Family;
  /** RFC 7313 message subtype: 0 normal request, 1 BoRR, 2 EoRR. */
  readonly subtype: number;
}

export type Message = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;
