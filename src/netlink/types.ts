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
}

/** A nexthop object as the kernel lists it (`ip nexthop show`). */
export interface Nexthop {
  readonly id: number;
  readonly family: 4 | 6 | undefined;
  readonly gateway: string | undefined;
  readonly oif: number | undefined;
  readonly protocol: number;
  readonly onlink: boolean;
  /** A group of nexthops (NHA_GROUP) rather than one gateway. */
  readonly group: boolean;
  readonly blackhole: boolean;
}

export interface NexthopSpec {
  /** 1..2^32-1, unique in the namespace. */
  readonly id: number;
  readonly gateway: string;
  readonly oif: number;
  readonly onlink?: boolean;
  /** Defaults to Twill's own protocol (RTPROT_TWILL). */
  readonly protocol?: number;
}

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
