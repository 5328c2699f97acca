import { formatCidr, parseCidr, parseIp, parsePrefix, prefixContains, sortPrefixes, type Cidr } from '../core/ip.js';
import type { RemoteLease, SkippedLease } from './backend.js';

/** What every route-based backend checks in a remote lease before it plans anything for it. */
export interface LeaseCheckContext {
  /** The backend's own type: a lease of another type is not its to route. */
  readonly type: string;
  /** The IPv4 cluster network; undefined in an IPv6-only cluster (every IPv4 entry is refused). */
  readonly clusterNetwork: string | undefined;
  /** This host's PublicIP: a lease that claims it is no peer. */
  readonly localPublicIp: string | undefined;
  /** The IPv6 cluster network; undefined unless the config enables IPv6 (every IPv6 entry is refused). */
  readonly clusterNetworkV6?: string | undefined;
  /** This host's PublicIPv6. */
  readonly localPublicIpv6?: string | undefined;
}

/** The parsed cluster networks of a LeaseCheckContext, parsed once per plan. */
export interface ClusterNetworks {
  readonly v4: Cidr | undefined;
  readonly v6: Cidr | undefined;
}

export function clusterNetworksOf(ctx: Pick<LeaseCheckContext, 'clusterNetwork' | 'clusterNetworkV6'>): ClusterNetworks {
  return {
    v4: ctx.clusterNetwork === undefined ? undefined : parseCidr(ctx.clusterNetwork, 'cluster network'),
    v6: ctx.clusterNetworkV6 === undefined ? undefined : parseCidr(ctx.clusterNetworkV6, 'IPv6 cluster network'),
  };
}

/** The networks whose routes a backend owns (route-sync.ts): the IPv4 one, the IPv6 one, or both. */
export function ownedNetworks(ctx: Pick<LeaseCheckContext, 'clusterNetwork' | 'clusterNetworkV6'>): string[] {
  return [ctx.clusterNetwork, ctx.clusterNetworkV6].filter((n): n is string => n !== undefined);
}

export type LeaseCheck =
  | { readonly ok: true; readonly subnet: Cidr; /** "10.244.9.0/24" */ readonly dst: string; readonly publicIp: string }
  | { readonly ok: false; readonly reason: string };

/**
 * The lease's subnet and PublicIP when a backend may route it, else why not. The agent has
 * screened the lease set already (lease-screen.ts); these are the checks a backend's routes
 * depend on, kept here so no backend can route what another would refuse.
 */
export function checkRemoteLease(lease: RemoteLease, ctx: LeaseCheckContext, clusters = clusterNetworksOf(ctx)): LeaseCheck {
  const no = (reason: string): LeaseCheck => ({ ok: false, reason });
  if (lease.backendType !== ctx.type) return no(`BackendType is ${JSON.stringify(lease.backendType)}, not "${ctx.type}"`);
  let subnet: Cidr;
  let publicIp: string;
  try {
    subnet = parsePrefix(lease.subnet, 'lease subnet');
    publicIp = parseIp(lease.publicIp, subnet.address.family === 4 ? 'PublicIP' : 'PublicIPv6').text;
  } catch (err) {
    return no((err as Error).message);
  }
  const v4 = subnet.address.family === 4;
  const cluster = v4 ? clusters.v4 : clusters.v6;
  if (cluster === undefined) return no(`the network config does not enable ${v4 ? 'IPv4' : 'IPv6'}`);
  // Twill owns only routes inside the cluster network (route-sync.ts): one outside would never be removed.
  if (!prefixContains(cluster, subnet)) return no(`the subnet is outside the cluster network ${formatCidr(cluster)}`);
  // An IPv4 subnet is carried over the IPv4 underlay, an IPv6 one over the IPv6 underlay (flannel does the same).
  if (publicIp.includes(':') === v4) return v4 ? no(`PublicIP ${publicIp} is not IPv4 (the underlay is IPv4)`) : no(`PublicIPv6 ${publicIp} is not IPv6`);
  if (publicIp === (v4 ? ctx.localPublicIp : ctx.localPublicIpv6)) return no(`${v4 ? 'PublicIP' : 'PublicIPv6'} ${publicIp} is this node's own`);
  return { ok: true, subnet, dst: `${subnet.address.text}/${subnet.prefixLength}`, publicIp };
}

export type UsableLease = Extract<LeaseCheck, { ok: true }>;

/** A lease a planner may route, with what the backend's own `refine` made of it. */
export interface ScreenedLease<T> {
  readonly lease: RemoteLease;
  readonly checked: UsableLease;
  readonly refined: T;
}

/**
 * The loop every planner starts with: the leases sorted by subnet (so two leases for one subnet
 * resolve the same way on every node and every run), each checked by checkRemoteLease, then by the
 * backend's own `refine` (its lease data, say: a string is the reason to skip), and the first
 * usable lease for a subnet wins. What is refused lands in `skipped` with the reason.
 */
export function screenRemoteLeases<T = undefined>(
  leases: readonly RemoteLease[], ctx: LeaseCheckContext,
  refine: (lease: RemoteLease, checked: UsableLease) => T | string = () => undefined as T,
): { usable: ScreenedLease<T>[]; skipped: SkippedLease[] } {
  const clusters = clusterNetworksOf(ctx);
  const usable: ScreenedLease<T>[] = [];
  const skipped: SkippedLease[] = [];
  const seen = new Set<string>();
  for (const lease of sortPrefixes(leases, (l) => l.subnet)) {
    const skip = (reason: string): void => { skipped.push({ subnet: lease.subnet, reason }); };
    const checked = checkRemoteLease(lease, ctx, clusters);
    if (!checked.ok) { skip(checked.reason); continue; }
    const refined = refine(lease, checked);
    if (typeof refined === 'string') { skip(refined); continue; }
    if (seen.has(checked.dst)) { skip('another lease for the same subnet came first'); continue; }
    seen.add(checked.dst);
    usable.push({ lease, checked, refined });
  }
  return { usable, skipped };
}
