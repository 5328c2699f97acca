/**
 * The GoBGP 3.10 API messages (package apipb, proto/gobgp/api/) the gobgp driver sends and reads,
 * typed as @grpc/proto-loader hands them over with the options client.ts loads them with:
 * field names as in the .proto (keepCase), enums as their names, 64-bit integers as numbers,
 * absent scalars as their defaults and absent messages as null. Requests may leave any field out.
 * Only the fields Twill uses are listed; the .proto has the rest of the subset.
 */

/** Enum names: afi "AFI_IP", "AFI_IP6", ...; safi "SAFI_UNICAST", ... */
export interface Family {
  readonly afi: string;
  readonly safi: string;
}

/** The families Twill's bgp backend routes: IPv4 and IPv6 unicast (RFC 4760 AFI 1 and 2, SAFI 1). */
export const IPV4_UNICAST: Family = { afi: 'AFI_IP', safi: 'SAFI_UNICAST' };
export const IPV6_UNICAST: Family = { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' };

/** gobgpd's family of one the backend routes. */
export function gobgpFamily(family: 'ipv4' | 'ipv6'): Family {
  return family === 'ipv4' ? IPV4_UNICAST : IPV6_UNICAST;
}

/**
 * A google.protobuf.Any as proto-loader's `json` option unpacks it: the message's own fields
 * plus '@type', its type URL. An Any of a type that proto/gobgp/api/ leaves out stays packed
 * ({ type_url, value }) and has no '@type'.
 */
const TYPE_URL = 'type.googleapis.com/apipb.';
export const ANY = {
  ipAddressPrefix: `${TYPE_URL}IPAddressPrefix`,
  origin: `${TYPE_URL}OriginAttribute`,
  asPath: `${TYPE_URL}AsPathAttribute`,
  nextHop: `${TYPE_URL}NextHopAttribute`,
  med: `${TYPE_URL}MultiExitDiscAttribute`,
  localPref: `${TYPE_URL}LocalPrefAttribute`,
  mpReach: `${TYPE_URL}MpReachNLRIAttribute`,
} as const;

export interface IpAddressPrefix { readonly '@type': typeof ANY.ipAddressPrefix; readonly prefix_len: number; readonly prefix: string }
export interface OriginAttribute { readonly '@type': typeof ANY.origin; readonly origin: number }
export interface AsSegment { readonly type: 'AS_SET' | 'AS_SEQUENCE' | 'AS_CONFED_SEQUENCE' | 'AS_CONFED_SET' | 'UNKNOWN'; readonly numbers: readonly number[] }
export interface AsPathAttribute { readonly '@type': typeof ANY.asPath; readonly segments: readonly AsSegment[] }
export interface NextHopAttribute { readonly '@type': typeof ANY.nextHop; readonly next_hop: string }
export interface MultiExitDiscAttribute { readonly '@type': typeof ANY.med; readonly med: number }
export interface LocalPrefAttribute { readonly '@type': typeof ANY.localPref; readonly local_pref: number }
/**
 * RFC 4760 MP_REACH_NLRI: gobgpd reports an IPv6 path's next hops here (global, then link-local),
 * and AddPath takes an IPv6 path's next hop here (with the family and the NLRI, as gobgp's CLI sends it).
 */
export interface MpReachNlriAttribute {
  readonly '@type': typeof ANY.mpReach;
  readonly family?: Family | null;
  readonly next_hops: readonly string[];
  readonly nlris?: readonly (IpAddressPrefix | PackedAny)[];
}
/** An attribute of a type not in attribute.proto's subset (communities, say): Twill ignores it. */
export interface PackedAny { readonly '@type'?: undefined; readonly type_url: string }

export type PathAttribute =
  | OriginAttribute | AsPathAttribute | NextHopAttribute | MultiExitDiscAttribute | LocalPrefAttribute | MpReachNlriAttribute | PackedAny;

export interface Path {
  readonly nlri?: IpAddressPrefix | PackedAny | null;
  readonly pattrs?: readonly PathAttribute[];
  readonly is_withdraw?: boolean;
  readonly family?: Family | null;
  /** The AS of the peer the path came from; 0 for a local path. */
  readonly source_asn?: number;
  /** The peer the path came from; "<nil>" (Go's text of no address) for a local path. */
  readonly neighbor_ip?: string;
  readonly stale?: boolean;
}

export type TableType = 'GLOBAL' | 'LOCAL' | 'ADJ_IN' | 'ADJ_OUT' | 'VRF';

export interface Global {
  readonly asn?: number;
  readonly router_id?: string;
  readonly listen_port?: number;
  readonly listen_addresses?: readonly string[];
}

export type SessionState = 'UNKNOWN' | 'IDLE' | 'CONNECT' | 'ACTIVE' | 'OPENSENT' | 'OPENCONFIRM' | 'ESTABLISHED';
/** PFX_CT: held down after the peer exceeded its prefix limit, until EnablePeer. */
export type AdminState = 'UP' | 'DOWN' | 'PFX_CT';

export interface Timestamp { readonly seconds: number; readonly nanos: number }

export interface AfiSafi {
  readonly config?: { readonly family?: Family | null; readonly enabled?: boolean } | null;
  /** `enabled`: the family is in use on the session (gobgpd clears it for one the peer did not negotiate). */
  readonly state?: { readonly family?: Family | null; readonly enabled?: boolean; readonly received?: number; readonly accepted?: number } | null;
  readonly prefix_limits?: { readonly family?: Family | null; readonly max_prefixes?: number } | null;
  readonly mp_graceful_restart?: {
    readonly config?: { readonly enabled?: boolean } | null;
    readonly state?: { readonly end_of_rib_received?: boolean } | null;
  } | null;
}

export interface Peer {
  readonly conf?: { readonly neighbor_address?: string; readonly peer_asn?: number; readonly auth_password?: string } | null;
  readonly ebgp_multihop?: { readonly enabled?: boolean; readonly multihop_ttl?: number } | null;
  readonly route_reflector?: { readonly route_reflector_client?: boolean; readonly route_reflector_cluster_id?: string } | null;
  readonly state?: { readonly neighbor_address?: string; readonly session_state?: SessionState; readonly admin_state?: AdminState } | null;
  readonly timers?: {
    readonly config?: {
      readonly hold_time?: number; readonly keepalive_interval?: number; readonly connect_retry?: number;
    } | null;
    readonly state?: { readonly uptime?: Timestamp | null } | null;
  } | null;
  readonly transport?: { readonly local_address?: string; readonly remote_port?: number } | null;
  readonly graceful_restart?: { readonly enabled?: boolean; readonly restart_time?: number } | null;
  readonly afi_safis?: readonly AfiSafi[];
}

export interface WatchEventRequest {
  readonly peer?: Record<string, never>;
  readonly table?: { readonly filters: readonly { readonly type: 'BEST' | 'ADJIN' | 'POST_POLICY'; readonly init: boolean }[] };
}

export interface WatchEventResponse {
  readonly event?: 'peer' | 'table';
  /** INIT: a peer's state when the watch began; END_OF_INIT closes those (its peer is empty); STATE: a change. */
  readonly peer?: { readonly type: 'UNKNOWN' | 'INIT' | 'END_OF_INIT' | 'STATE'; readonly peer: Peer | null } | null;
  readonly table?: { readonly paths: readonly Path[] } | null;
}

// --- routing policy (export.ts) ------------------------------------------------------------

/** A prefix range: inside `ip_prefix`, of length mask_length_min..mask_length_max (no defaults). */
export interface PolicyPrefix {
  readonly ip_prefix: string;
  readonly mask_length_min: number;
  readonly mask_length_max: number;
}

export interface DefinedSet {
  /** Twill uses PREFIX sets only (the other types keep their members in a field the subset leaves out). */
  readonly defined_type: 'PREFIX';
  readonly name: string;
  readonly prefixes?: readonly PolicyPrefix[];
}

export type RouteAction = 'NONE' | 'ACCEPT' | 'REJECT';
/** LOCAL: a path originated here (AddPath), not learned from a peer. */
export type RouteType = 'ROUTE_TYPE_NONE' | 'ROUTE_TYPE_INTERNAL' | 'ROUTE_TYPE_EXTERNAL' | 'ROUTE_TYPE_LOCAL';

export interface Statement {
  readonly name: string;
  readonly conditions?: {
    readonly prefix_set?: { readonly type: 'ANY' | 'ALL' | 'INVERT'; readonly name: string } | null;
    readonly route_type?: RouteType;
  } | null;
  readonly actions?: { readonly route_action?: RouteAction } | null;
}

export interface Policy {
  readonly name: string;
  readonly statements?: readonly Statement[];
}

export interface PolicyAssignment {
  /** "global": every peer but route-server clients (which have their own). */
  readonly name: string;
  readonly direction: 'IMPORT' | 'EXPORT';
  /** By name; the first that decides a path decides it. */
  readonly policies: readonly { readonly name: string }[];
  /** What a path that no policy decided gets. */
  readonly default_action: RouteAction;
}
