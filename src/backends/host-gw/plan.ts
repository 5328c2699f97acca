import { parseCidr } from '../../core/ip.js';
import type { RouteSpec } from '../../netlink/index.js';
import type { RemoteLease } from '../backend.js';
import { checkRemoteLease } from '../lease-checks.js';
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
  readonly skipped: readonly { readonly subnet: string; readonly reason: string }[];
}

export const HOST_GW_TYPE = 'host-gw';

export function planRoutes(input: HostGwPlanInput): HostGwPlan {
  const check = { type: HOST_GW_TYPE, clusterNetwork: input.clusterNetwork, localPublicIp: input.ext.address };
  const cluster = parseCidr(input.clusterNetwork, 'cluster network');
  const onLink = onLinkMatcher(input.connected);
  const routes: RouteSpec[] = [];
  const skipped: { subnet: string; reason: string }[] = [];
  for (const lease of input.leases) {
    const c = checkRemoteLease(lease, check, cluster);
    if (!c.ok) skipped.push({ subnet: lease.subnet, reason: c.reason });
    else if (!onLink(c.publicIp)) skipped.push({ subnet: lease.subnet, reason: `${c.publicIp} is not on a directly connected network of ${input.ext.name}: host-gw needs every host on one L2 segment` });
    else routes.push({ dst: c.dst, gateway: c.publicIp, oif: input.ext.index });
  }
  return { routes, skipped };
}
