import { networkOf } from '../../core/ip.js';
import type { FdbSpec, NeighbourSpec, RouteSpec } from '../../netlink/index.js';
import { leaseFamily, type RemoteLease, type SkippedLease } from '../backend.js';
import { screenRemoteLeases } from '../lease-checks.js';
import { TYPE } from './config.js';
import { decodeLeaseData } from './lease-data.js';

/**
 * Pure: what the kernel must hold for a set of remote leases, of both address families. No I/O,
 * so every decision (which lease is usable, encapsulated or direct, which entries) is
 * unit-testable; apply.ts diffs the result against the kernel.
 *
 * Per encapsulated peer, flannel's scheme (pkg/backend/vxlan, "design" comment in vxlan.go), on
 * the device of the lease entry's family (an IPv4 entry on twill.N, an IPv6 one on twill-v6.N):
 *   neighbour  10.244.9.0 lladdr <peer VtepMAC> nud permanent dev twill.N   (no ARP/ND on the overlay)
 *   FDB        <peer VtepMAC> dst <peer PublicIP> self permanent dev twill.N (no flooding, learning off)
 *   route      10.244.9.0/24 via 10.244.9.0 dev twill.N onlink              (the gateway is the neighbour)
 * and for IPv6 the same with the IPv6 subnet's network address, the BackendV6Data's VtepMAC and
 * the PublicIPv6 (fc00:0:0:9::/64 via fc00:0:0:9:: dev twill-v6.N onlink).
 * With DirectRouting and a peer inside a connected subnet of the external interface, only
 *   route      10.244.9.0/24 via <peer PublicIP> dev <ext>     (fc00:0:0:9::/64 via <PublicIPv6>)
 */
export interface PlanInput {
  readonly leases: readonly RemoteLease[];
  readonly vni: number;
  /** The IPv4 cluster network; undefined in an IPv6-only cluster. */
  readonly clusterNetwork: string | undefined;
  /** The IPv6 cluster network when the config enables IPv6. */
  readonly clusterNetworkV6?: string | undefined;
  /** This node's PublicIP and IPv4 VTEP MAC: a lease claiming either is not a peer. */
  readonly localPublicIp: string | undefined;
  readonly localMac: string | undefined;
  /** This node's PublicIPv6 and IPv6 VTEP MAC. */
  readonly localPublicIpv6?: string | undefined;
  readonly localMacV6?: string | undefined;
  readonly directRouting: boolean;
  /** True when an address (of either family) is directly reachable on the external interface (see ../on-link.ts). */
  readonly onLink: (ip: string) => boolean;
  /** twill.N's index (undefined without IPv4) and twill-v6.N's (undefined without IPv6). */
  readonly vxlanIndex: number | undefined;
  readonly vxlanIndexV6?: number | undefined;
  readonly extIndex: number;
}

/** What one usable lease needs; neighbour and fdb are absent for a directly routed peer. */
export interface PeerPlan {
  readonly subnet: string;
  readonly direct: boolean;
  readonly neighbour: NeighbourSpec | undefined;
  readonly fdb: FdbSpec | undefined;
  readonly route: RouteSpec;
}

export type Skipped = SkippedLease;

export interface Plan {
  /** Sorted by subnet, so conflicts resolve the same way on every node and every run. */
  readonly peers: readonly PeerPlan[];
  readonly skipped: readonly Skipped[];
}

/** The local VTEP (device and MAC) of `family`, if this node has one. */
function localVtep(input: PlanInput, family: 4 | 6): { readonly index: number; readonly mac: string | undefined } | undefined {
  const index = family === 4 ? input.vxlanIndex : input.vxlanIndexV6;
  return index === undefined ? undefined : { index, mac: family === 4 ? input.localMac : input.localMacV6 };
}

export function planPeers(input: PlanInput): Plan {
  const check = {
    type: TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.localPublicIp,
    clusterNetworkV6: input.clusterNetworkV6, localPublicIpv6: input.localPublicIpv6,
  };
  const { usable, skipped } = screenRemoteLeases(input.leases, check, (lease) => {
    const family = leaseFamily(lease);
    const vtep = localVtep(input, family);
    if (vtep === undefined) return `this node has no IPv${family} VXLAN device`;
    const decoded = decodeLeaseData(lease.backendData, input.vni, family);
    if (!decoded.ok) return decoded.reason;
    return decoded.vtep.mac === vtep.mac ? `VtepMAC ${decoded.vtep.mac} is this node's own` : { ...decoded.vtep, family, index: vtep.index };
  });
  const peers: PeerPlan[] = [];
  // One MAC can point at one VTEP only: each device's FDB is keyed by MAC. Who claimed which MAC first.
  const macOwner = new Map<string, { subnet: string; publicIp: string }>();
  for (const { lease, checked: { subnet, dst, publicIp }, refined: { mac, family, index } } of usable) {
    if (input.directRouting && input.onLink(publicIp)) {
      peers.push({ subnet: dst, direct: true, neighbour: undefined, fdb: undefined, route: { dst, gateway: publicIp, oif: input.extIndex } });
      continue;
    }
    const owner = macOwner.get(`${family} ${mac}`);
    if (owner && owner.publicIp !== publicIp) {
      skipped.push({ subnet: lease.subnet, reason: `VtepMAC ${mac} is also claimed by ${owner.subnet} (${family === 4 ? 'PublicIP' : 'PublicIPv6'} ${owner.publicIp})` });
      continue;
    }
    macOwner.set(`${family} ${mac}`, { subnet: dst, publicIp });
    // The subnet's network address is the peer's overlay "gateway": it sits on the peer's device
    // as a /32 (/128) and never on a pod, so it is free to serve as the neighbour key.
    const gateway = networkOf(subnet).text;
    peers.push({
      subnet: dst,
      direct: false,
      neighbour: { index, ip: gateway, mac },
      fdb: { index, mac, dst: publicIp },
      route: { dst, gateway, oif: index, onlink: true },
    });
  }
  return { peers, skipped };
}
