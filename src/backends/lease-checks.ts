import { parseCidr, parseIp, parsePrefix, prefixContains, sortPrefixes, type Cidr } from '../core/ip.js';
import type { RemoteLease, SkippedLease } from './backend.js';

/** What every route-based backend checks in a remote lease before it plans anything for it. */
export interface LeaseCheckContext {
  /** The backend's own type: a lease of another type is not its to route. */
  readonly type: string;
  readonly clusterNetwork: string;
  /** This host's PublicIP: a lease that claims it is no peer. */
  readonly localPublicIp: string;
}

export type LeaseCheck =
  | { readonly ok: true; readonly subnet: Cidr; /** "10.244.9.0/24" */ readonly dst: string; readonly publicIp: string }
  | { readonly ok: false; readonly reason: string };

/**
 * The lease's subnet and PublicIP when a backend may route it, else why not. The agent has
 * screened the lease set already (lease-screen.ts); these are the checks a backend's routes
 * depend on, kept here so no backend can route what another would refuse.
 */
export function checkRemoteLease(lease: RemoteLease, ctx: LeaseCheckContext, cluster = parseCidr(ctx.clusterNetwork, 'cluster network')): LeaseCheck {
  const no = (reason: string): LeaseCheck => ({ ok: false, reason });
  if (lease.backendType !== ctx.type) return no(`BackendType is ${JSON.stringify(lease.backendType)}, not "${ctx.type}"`);
  let subnet: Cidr;
  let publicIp: string;
  try {
    subnet = parsePrefix(lease.subnet, 'lease subnet');
    publicIp = parseIp(lease.publicIp, 'PublicIP').text;
  } catch (err) {
    return no((err as Error).message);
  }
  if (subnet.address.family !== 4) return no('the subnet is not IPv4');
  // Twill owns only routes inside the cluster network (route-sync.ts): one outside would never be removed.
  if (!prefixContains(cluster, subnet)) return no(`the subnet is outside the cluster network ${ctx.clusterNetwork}`);
  if (publicIp.includes(':')) return no(`PublicIP ${publicIp} is not IPv4 (the underlay is IPv4)`);
  if (publicIp === ctx.localPublicIp) return no(`PublicIP ${publicIp} is this node's own`);
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
  const cluster = parseCidr(ctx.clusterNetwork, 'cluster network');
  const usable: ScreenedLease<T>[] = [];
  const skipped: SkippedLease[] = [];
  const seen = new Set<string>();
  for (const lease of sortPrefixes(leases, (l) => l.subnet)) {
    const skip = (reason: string): void => { skipped.push({ subnet: lease.subnet, reason }); };
    const checked = checkRemoteLease(lease, ctx, cluster);
    if (!checked.ok) { skip(checked.reason); continue; }
    const refined = refine(lease, checked);
    if (typeof refined === 'string') { skip(refined); continue; }
    if (seen.has(checked.dst)) { skip('another lease for the same subnet came first'); continue; }
    seen.add(checked.dst);
    usable.push({ lease, checked, refined });
  }
  return { usable, skipped };
}
