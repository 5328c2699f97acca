import type { RouteSpec } from '../../netlink/index.js';
import type { RemoteLease, SkippedLease } from '../backend.js';
import { screenRemoteLeases } from '../lease-checks.js';
import { onLinkMatcher } from '../on-link.js';

/**
 * Pure: which routes the host-gw backend wants for a set of remote leases, and which leases it
 * must skip and why. A route `<subnet> via <PublicIP> dev <ext>` only works when the PublicIP is
 * a neighbour on the external interface's own L2 segment, so any other lease is skipped (reported,
 * never fatal: one misplaced host must not take routing down for the rest).
 */
export interface HostGwPlanInput {
  readonly leases: readonly RemoteLease[];
  /** The external interface. */
  readonly ext: { readonly name: string; readonly index: number; readonly address: string };
  /** The IPv4 addresses with prefix on the external interface ("198.18.0.1/24"): its connected networks. */
  readonly connected: readonly string[];
  readonly clusterNetwork: string;
}

export interface HostGwPlan {
  readonly routes: readonly RouteSpec[];
  readonly skipped: readonly SkippedLease[];
}

export const HOST_GW_TYPE = 'host-gw';

export function planRoutes(input: HostGwPlanInput): HostGwPlan {
  const onLink = onLinkMatcher(input.connected);
  const { usable, skipped } = screenRemoteLeases(input.leases, { type: HOST_GW_TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.ext.address },
    (_lease, { publicIp }) => (onLink(publicIp) ? undefined : `${publicIp} is not on a directly connected network of ${input.ext.name}: host-gw needs every host on one L2 segment`));
  return { routes: usable.map(({ checked: { dst, publicIp } }) => ({ dst, gateway: publicIp, oif: input.ext.index })), skipped };
}
