import { listNexthopsIfSupported, RTPROT_TWILL, type NetlinkHandle, type RouteSpec } from '../../netlink/index.js';
import { anyCidrMatcher } from '../route-sync.js';

/**
 * The routes Twill left in the kernel (protocol 84, inside a cluster network: IPv4, IPv6 or both) in the form a
 * plan writes them, read once when the bgp backend starts. A restarted agent keeps them while its
 * sessions come back, instead of deleting and re-adding them (RFC 4724's point: forwarding goes
 * on while the control plane restarts).
 */
export async function kernelRoutesToKeep(nl: NetlinkHandle, owned: string | readonly string[]): Promise<Map<string, RouteSpec>> {
  const networks = typeof owned === 'string' ? [owned] : owned;
  const inCluster = anyCidrMatcher(networks);
  const families = [...new Set(networks.map((n) => (n.includes(':') ? 6 as const : 4 as const)))];
  const [listed, nexthops] = await Promise.all([Promise.all(families.map((family) => nl.listRoutes({ family }))), listNexthopsIfSupported(nl)]);
  const routes = listed.flat();
  const byId = new Map((nexthops ?? []).map((n) => [n.id, n]));
  const kept = new Map<string, RouteSpec>();
  for (const r of routes) {
    if (r.protocol !== RTPROT_TWILL || !inCluster(r.dst)) continue;
    if (r.nexthopId === undefined) {
      if (r.gateway !== undefined && r.oif !== undefined) kept.set(r.dst, { dst: r.dst, gateway: r.gateway, oif: r.oif });
      continue;
    }
    const nh = byId.get(r.nexthopId);
    if (nh?.gateway !== undefined && nh.oif !== undefined) {
      kept.set(r.dst, { dst: r.dst, gateway: nh.gateway, oif: nh.oif });
    } else if (nh?.members !== undefined) {
      const members = nh.members.map((m) => byId.get(m.id)).filter((m) => m?.gateway !== undefined && m.oif !== undefined);
      if (members.length > 0) kept.set(r.dst, { dst: r.dst, multipath: members.map((m) => ({ gateway: m!.gateway!, oif: m!.oif! })) });
    }
  }
  return kept;
}
