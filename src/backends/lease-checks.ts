import { parseCidr, parseIp, parsePrefix, prefixContains, type Cidr } from '../core/ip.js';
import type { RemoteLease } from './backend.js';

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
