import type { RouteSpec } from '../../netlink/index.js';
import type { RemoteLease, SkippedLease } from '../backend.js';
import { screenRemoteLeases } from '../lease-checks.js';
import { onLinkMatcher } from '../on-link.js';

/**
 * Pure: which routes (of both families) the host-gw backend wants for a set of remote leases, and which leases it
 * must skip and why. A route `<subnet> via <PublicIP> dev <ext>` only works when the PublicIP is
 * a neighbour on the external interface's own L2 segment, so any other lease is skipped (reported,
 * never fatal: one misplaced host must not take routing down for the rest).
 */
export interface HostGwPlanInput {
  readonly leases: readonly RemoteLease[];
  /** The external interface, with its IPv6 address in a cluster that enables IPv6. */
  readonly ext: { readonly name: string; readonly index: number; readonly address: string | undefined; readonly ipv6Address?: string | undefined };
  /** The addresses with prefix on the external interface ("198.18.0.1/24"): its connected networks. */
  readonly connected: readonly string[];
  readonly clusterNetwork: string | undefined;
  readonly clusterNetworkV6?: string | undefined;
}

export interface HostGwPlan {
  readonly routes: readonly RouteSpec[];
  readonly skipped: readonly SkippedLease[];
}

export const HOST_GW_TYPE = 'host-gw';

export function planRoutes(input: HostGwPlanInput): HostGwPlan {
  const onLink = onLinkMatcher(input.connected);
  const check = {
    type: HOST_GW_TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.ext.address,
    clusterNetworkV6: input.clusterNetworkV6, localPublicIpv6: input.ext.ipv6Address,
  };
  // An IPv6 subnet goes via the host's PublicIPv6, on the same segment (flannel's host-gw v6 routes).
  const { usable, skipped } = screenRemoteLeases(input.leases, check,
    (_lease, { publicIp }) => (onLink(publicIp) ? undefined : `${publicIp} is not on a directly connected network of ${input.ext.name}: host-gw needs every host on one L2 segment`));
  return { routes: usable.map(({ checked: { dst, publicIp } }) => ({ dst, gateway: publicIp, oif: input.ext.index })), skipped };
}
