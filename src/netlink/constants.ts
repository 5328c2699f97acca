/**
 * rtnetlink numbers used by Twill, from include/uapi/linux/{rtnetlink,if_link,neighbour,
 * if_addr,netlink}.h. Only what this layer needs; names follow the kernel's.
 */
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWNEXTHOP = 104;
export const RTM_DELNEXTHOP = 105;
export const RTM_GETNEXTHOP = 106;

export const IFF_UP = 0x1;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_NET_NS_FD = 28;
export const IFLA_LINK_NETNSID = 37;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;
/** IFLA_BRPORT_MODE in a bridge port's slave data: 1 = hairpin (reflective relay). */
export const IFLA_BRPORT_MODE = 4;
/** IF_OPER_UP in IFLA_OPERSTATE (RFC 2863 operational status). */
export const IF_OPER_UP = 6;
export const VETH_INFO_PEER = 1;

export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_LOCAL6 = 17;
export const IFLA_VXLAN_GBP = 23;

export const IFLA_IPTUN_LINK = 1;
export const IFLA_IPTUN_LOCAL = 2;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
/** ifa_flags: no duplicate address detection (IPv6): the address is never "tentative". */
export const IFA_F_NODAD = 0x02;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
/** A route's equal-cost next hops: struct rtnexthop entries, each followed by its own attributes. */
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;
export const RTA_NH_ID = 30;
export const RTN_UNICAST = 1;
export const RTNH_F_ONLINK = 4;
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;

// include/uapi/linux/nexthop.h
export const NHA_ID = 1;
/** A group's members: an array of struct nexthop_grp {u32 id; u8 weight (weight - 1); u8 resvd1; u16 resvd2}. */
export const NHA_GROUP = 2;
export const NHA_BLACKHOLE = 4;
export const NHA_OIF = 5;
export const NHA_GATEWAY = 6;

export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_MASTER = 9;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

/**
 * The route protocol Twill stamps on every route it installs (rtm_protocol), so it can tell its
 * own routes from everybody else's and never touch theirs. 84 is unassigned in iproute2's
 * rt_protos (Calico uses 80, BIRD 12, zebra 11). `ip route show proto 84` lists Twill's routes.
 */
export const RTPROT_TWILL = 84;

export const ROUTE_SCOPES = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
export type RouteScope = keyof typeof ROUTE_SCOPES;
