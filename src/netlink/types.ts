import type { RouteScope } from './constants.js';

/** A network interface as the kernel reports it. */
export interface Link {
  readonly index: number;
  readonly name: string;
  /** IFLA_INFO_KIND: "bridge", "veth", "vxlan", "ipip"... undefined for plain devices such as lo. */
  readonly kind: string | undefined;
  readonly mtu: number;
  readonly mac: string | undefined;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  readonly masterIndex: number | undefined;
  /** IFLA_LINK: a veth's peer or a tunnel's underlay device index (in linkNetnsId's namespace if set). */
  readonly linkIndex: number | undefined;
  readonly linkNetnsId: number | undefined;
  readonly vxlan: VxlanInfo | undefined;
  readonly ipip: IpipInfo | undefined;
  /** Operationally up (IFLA_OPERSTATE is IF_OPER_UP): carrier and, for a veth, the peer up too. */
  readonly operUp: boolean;
  /** For a bridge port: whether hairpin mode (IFLA_BRPORT_MODE) is on; undefined for other links. */
  readonly hairpin: boolean | undefined;
}

export interface VxlanInfo {
  readonly vni: number;
  readonly port: number;
  readonly localIp: string | undefined;
  readonly underlayIndex: number | undefined;
  readonly learning: boolean;
  readonly gbp: boolean;
}

export interface IpipInfo {
  readonly localIp: string | undefined;
  readonly underlayIndex: number | undefined;
}

export interface BridgeSpec {
  readonly name: string;
  readonly mtu?: number;
  readonly mac?: string;
}

export interface VethSpec {
  readonly name: string;
  readonly peerName: string;
  /** Create the peer directly in this namespace (a /run/netns path or /proc/<pid>/ns/net). */
  readonly peerNetnsPath?: string;
  readonly mtu?: number;
  readonly mac?: string;
  readonly peerMac?: string;
}

export interface VxlanSpec {
  readonly name: string;
  readonly vni: number;
  /** UDP destination port; flannel and Linux use 8472, IANA says 4789. */
  readonly port: number;
  readonly localIp?: string;
  /** Underlay device index the tunnel sends through. */
  readonly underlayIndex?: number;
  /** MAC learning from received packets. Twill programs the FDB itself, so default false. */
  readonly learning?: boolean;
  readonly gbp?: boolean;
  readonly mtu?: number;
  readonly mac?: string;
}

export interface IpipSpec {
  readonly name: string;
  readonly localIp?: string;
  readonly underlayIndex?: number;
  readonly mtu?: number;
}

export interface LinkChanges {
  readonly up?: boolean;
  readonly mtu?: number;
  /** Enslave to this bridge index; 0 releases it. */
  readonly masterIndex?: number;
  readonly mac?: string;
  /** Move the link into another namespace. */
  readonly netnsPath?: string;
  readonly name?: string;
  /**
   * Hairpin mode of a bridge port (a pod reaching itself through a Service). Sent as bridge
   * slave data, so the link must already be enslaved: not combinable with masterIndex.
   */
  readonly hairpin?: boolean;
}

export interface Address {
  readonly index: number;
  /** "10.244.1.1/24" */
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly label: string | undefined;
}

export interface Route {
  readonly family: 4 | 6;
  /** "10.244.2.0/24"; "0.0.0.0/0" for a default route. */
  readonly dst: string;
  readonly gateway: string | undefined;
  readonly oif: number | undefined;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly onlink: boolean;
  readonly metric: number | undefined;
  readonly prefsrc: string | undefined;
  /** The nexthop object the route names (RTA_NH_ID), if any; see nexthops.ts. */
  readonly nexthopId: number | undefined;
  /**
   * The next hops of a route over several (RTA_MULTIPATH), then without gateway and oif of its
   * own: a plain multipath route, or one through a nexthop group, which the kernel lists with its
   * members' next hops (nexthop_compat_mode, fib_dump_info() in net/ipv4/fib_semantics.c).
   */
  readonly multipath?: readonly ListedRouteHop[];
}

/** One next hop of a multipath route as the kernel lists it (struct rtnexthop, rtnetlink.h). */
export interface ListedRouteHop {
  readonly gateway: string | undefined;
  readonly oif: number;
  readonly onlink: boolean;
  /** 1..256 (rtnh_hops + 1): the hop's share of the flows. */
  readonly weight: number;
}

/** One of a route's equal-cost next hops (RouteSpec.multipath). */
export interface RouteHop {
  readonly gateway: string;
  readonly oif: number;
  /** As RouteSpec.onlink, for this hop (RTNH_F_ONLINK in its rtnh_flags). */
  readonly onlink?: boolean;
}

export interface RouteSpec {
  readonly dst: string;
  readonly gateway?: string;
  readonly oif?: number;
  /** Use the gateway even if no local address covers it (RTNH_F_ONLINK), as VXLAN routes need. */
  readonly onlink?: boolean;
  readonly scope?: RouteScope;
  readonly table?: number;
  readonly metric?: number;
  readonly prefsrc?: string;
  /** Defaults to Twill's own protocol (RTPROT_TWILL). */
  readonly protocol?: number;
  /**
   * Forward through this nexthop object (RTA_NH_ID) instead of `gateway`/`oif`/`onlink`, which the
   * kernel then rejects; on delete, names the route together with `dst`.
   */
  readonly nexthopId?: number;
  /**
   * A route over several equal-cost next hops (ECMP), instead of `gateway`/`oif`/`onlink`: written
   * as RTA_MULTIPATH (route-sync.ts writes it through a nexthop group where the kernel has them).
   * With one entry it is the same as that entry's gateway/oif/onlink.
   */
  readonly multipath?: readonly RouteHop[];
}

/** A nexthop object as the kernel lists it (`ip nexthop show`). */
export interface Nexthop {
  readonly id: number;
  readonly family: 4 | 6 | undefined;
  readonly gateway: string | undefined;
  readonly oif: number | undefined;
  readonly protocol: number;
  readonly onlink: boolean;
  /** A group of nexthops (NHA_GROUP) rather than one gateway; listed with family undefined (AF_UNSPEC). */
  readonly group: boolean;
  /** A group's members, in the kernel's order; undefined for any other nexthop. */
  readonly members?: readonly { readonly id: number; readonly weight: number }[];
  readonly blackhole: boolean;
}

/** A member of a nexthop group: a nexthop of one gateway, never another group. */
export interface NexthopGroupMember {
  readonly id: number;
  /** 1..256, default 1: the member's share of the flows (hash-threshold, nexthop.h). */
  readonly weight?: number;
}

interface NexthopSpecBase {
  /** 1..2^32-1, unique in the namespace. */
  readonly id: number;
  /** Defaults to Twill's own protocol (RTPROT_TWILL). */
  readonly protocol?: number;
}

/** A nexthop of one gateway and device, like `ip nexthop add id N via GW dev D [onlink]`. */
export interface GatewayNexthopSpec extends NexthopSpecBase {
  readonly gateway: string;
  readonly oif: number;
  readonly onlink?: boolean;
  readonly group?: undefined;
}

/**
 * An ECMP group of existing nexthops, like `ip nexthop add id N group A/B`: it has no gateway or
 * device of its own (the kernel refuses them beside NHA_GROUP, rtm_to_nh_config() in
 * net/ipv4/nexthop.c).
 */
export interface GroupNexthopSpec extends NexthopSpecBase {
  readonly group: readonly NexthopGroupMember[];
  readonly gateway?: undefined;
  readonly oif?: undefined;
  readonly onlink?: undefined;
}

export type NexthopSpec = GatewayNexthopSpec | GroupNexthopSpec;

export interface Neighbour {
  readonly index: number;
  readonly ip: string;
  readonly mac: string | undefined;
  readonly state: number;
  readonly permanent: boolean;
}

export interface NeighbourSpec {
  readonly index: number;
  readonly ip: string;
  readonly mac: string;
}

/** A bridge forwarding entry on a VXLAN device: frames for `mac` go to the VTEP at `dst`. */
export interface FdbEntry {
  readonly index: number;
  readonly mac: string;
  readonly dst: string | undefined;
  readonly permanent: boolean;
  /** NTF_SELF: the entry lives in the device's own table (VXLAN), not in a bridge master's. */
  readonly self: boolean;
  readonly masterIndex: number | undefined;
}

export interface FdbSpec {
  readonly index: number;
  readonly mac: string;
  readonly dst: string;
}
