import type { RouteSpec } from '../../netlink/index.js';
import type { RemoteLease, SkippedLease } from '../backend.js';
import { screenRemoteLeases } from '../lease-checks.js';
import { TYPE } from './config.js';

/**
 * Pure: the routes the ipip backend wants for a set of remote leases (flannel's ipip scheme).
 * twill.ipip has a local address and no remote one, so the kernel takes each packet's outer
 * destination from the route's gateway (an NBMA tunnel, ip-tunnel(8) "remote any"):
 *   10.244.9.0/24 via <peer PublicIP> dev twill.ipip onlink
 * With DirectRouting and a peer inside a connected subnet of the external interface, a plain route
 *   10.244.9.0/24 via <peer PublicIP> dev <ext>
 * There is nothing to learn and no lease data: the PublicIP is all a peer needs.
 */
export interface IpipPlanInput {
  readonly leases: readonly RemoteLease[];
  readonly clusterNetwork: string;
  readonly localPublicIp: string;
  readonly directRouting: boolean;
  /** True when an IPv4 address is directly reachable on the external interface (see ../on-link.ts). */
  readonly onLink: (ip: string) => boolean;
  readonly deviceIndex: number;
  readonly extIndex: number;
}

export interface IpipPlan {
  readonly routes: readonly RouteSpec[];
  readonly skipped: readonly SkippedLease[];
}

export function planIpipRoutes(input: IpipPlanInput): IpipPlan {
  const { usable, skipped } = screenRemoteLeases(input.leases, { type: TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.localPublicIp });
  const routes = usable.map(({ checked: { dst, publicIp } }): RouteSpec => (input.directRouting && input.onLink(publicIp)
    ? { dst, gateway: publicIp, oif: input.extIndex }
    : { dst, gateway: publicIp, oif: input.deviceIndex, onlink: true }));
  return { routes, skipped };
}
