import { parseCidr, parseIp, parsePrefix, prefixContains, type Cidr } from '../../core/ip.js';
import type { RouteSpec } from '../../netlink/index.js';
import type { RemoteLease } from '../backend.js';

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
  const cluster = parseCidr(input.clusterNetwork, 'cluster network');
  // A /32 makes nothing on-link but itself, and a PublicIP equal to our own address is no gateway.
  const networks = input.connected.map((c) => parseCidr(c)).filter((c) => c.address.family === 4 && c.prefixLength < 32);
  const routes: RouteSpec[] = [];
  const skipped: { subnet: string; reason: string }[] = [];
  for (const lease of input.leases) {
    const reason = whyNot(lease, cluster, networks, input.ext);
    if (reason !== undefined) skipped.push({ subnet: lease.subnet, reason });
    else routes.push({ dst: lease.subnet, gateway: lease.publicIp, oif: input.ext.index });
  }
  return { routes, skipped };
}

/** Why a lease cannot get a route, or undefined when it can. */
function whyNot(lease: RemoteLease, cluster: Cidr, networks: readonly Cidr[], ext: HostGwPlanInput['ext']): string | undefined {
  if (lease.backendType !== HOST_GW_TYPE) return `its backend type is ${lease.backendType}, not ${HOST_GW_TYPE}`;
  let subnet: Cidr;
  try {
    subnet = parsePrefix(lease.subnet, 'subnet');
  } catch (err) {
    return (err as Error).message;
  }
  // Routes outside the cluster network would never be cleaned up (Twill owns only those inside).
  if (subnet.address.family !== 4 || !prefixContains(cluster, subnet)) {
    return `${lease.subnet} is not inside the cluster network ${cluster.address.text}/${cluster.prefixLength}`;
  }
  let gateway: Cidr;
  try {
    gateway = { address: parseIp(lease.publicIp, 'PublicIP'), prefixLength: 32 };
  } catch (err) {
    return (err as Error).message;
  }
  if (gateway.address.text === ext.address) return `its PublicIP ${lease.publicIp} is this host's own address`;
  if (!networks.some((n) => prefixContains(n, gateway))) {
    return `${lease.publicIp} is not on a directly connected network of ${ext.name}: host-gw needs every host on one L2 segment`;
  }
  return undefined;
}
