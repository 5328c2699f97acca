import { networkOf } from '../../core/ip.js';
import type { FdbSpec, NeighbourSpec, RouteSpec } from '../../netlink/index.js';
import type { RemoteLease, SkippedLease } from '../backend.js';
import { screenRemoteLeases } from '../lease-checks.js';
import { TYPE } from './config.js';
import { decodeLeaseData } from './lease-data.js';

/**
 * Pure: what the kernel must hold for a set of remote leases. No I/O, so every decision (which
 * lease is usable, encapsulated or direct, which entries) is unit-testable; apply.ts diffs the
 * result against the kernel.
 *
 * Per encapsulated peer, flannel's scheme (pkg/backend/vxlan, "design" comment in vxlan.go):
 *   neighbour  10.244.9.0 lladdr <peer VtepMAC> nud permanent dev twill.N   (no ARP on the overlay)
 *   FDB        <peer VtepMAC> dst <peer PublicIP> self permanent dev twill.N (no flooding, learning off)
 *   route      10.244.9.0/24 via 10.244.9.0 dev twill.N onlink              (the gateway is the neighbour)
 * With DirectRouting and a peer inside a connected subnet of the external interface, only
 *   route      10.244.9.0/24 via <peer PublicIP> dev <ext>
 */
export interface PlanInput {
  readonly leases: readonly RemoteLease[];
  readonly vni: number;
  readonly clusterNetwork: string;
  /** This node's PublicIP and VTEP MAC: a lease claiming either is not a peer. */
  readonly localPublicIp: string;
  readonly localMac: string;
  readonly directRouting: boolean;
  /** True when an IPv4 address is directly reachable on the external interface (see ../on-link.ts). */
  readonly onLink: (ip: string) => boolean;
  readonly vxlanIndex: number;
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

export function planPeers(input: PlanInput): Plan {
  const check = { type: TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.localPublicIp };
  const { usable, skipped } = screenRemoteLeases(input.leases, check, (lease) => {
    const decoded = decodeLeaseData(lease.backendData, input.vni);
    if (!decoded.ok) return decoded.reason;
    return decoded.vtep.mac === input.localMac ? `VtepMAC ${decoded.vtep.mac} is this node's own` : decoded.vtep;
  });
  const peers: PeerPlan[] = [];
  // One MAC can point at one VTEP only: the FDB is keyed by MAC. Who claimed which MAC first.
  const macOwner = new Map<string, { subnet: string; publicIp: string }>();
  for (const { lease, checked: { subnet, dst, publicIp }, refined: { mac } } of usable) {
    if (input.directRouting && input.onLink(publicIp)) {
      peers.push({ subnet: dst, direct: true, neighbour: undefined, fdb: undefined, route: { dst, gateway: publicIp, oif: input.extIndex } });
      continue;
    }
    const owner = macOwner.get(mac);
    if (owner && owner.publicIp !== publicIp) {
      skipped.push({ subnet: lease.subnet, reason: `VtepMAC ${mac} is also claimed by ${owner.subnet} (PublicIP ${owner.publicIp})` });
      continue;
    }
    macOwner.set(mac, { subnet: dst, publicIp });
    // The subnet's network address is the peer's overlay "gateway": it sits on the peer's device
    // as a /32 and never on a pod, so it is free to serve as the neighbour key.
    const gateway = networkOf(subnet).text;
    peers.push({
      subnet: dst,
      direct: false,
      neighbour: { index: input.vxlanIndex, ip: gateway, mac },
      fdb: { index: input.vxlanIndex, mac, dst: publicIp },
      route: { dst, gateway, oif: input.vxlanIndex, onlink: true },
    });
  }
  return { peers, skipped };
}
