import { RTPROT_TWILL, type NetlinkHandle, type RouteSpec } from '../../netlink/index.js';
import type { RouteSyncResult } from '../route-sync.js';

/**
 * The kernel refuses an IPv6 onlink route or nexthop whose gateway an existing route sends out of
 * another device (ip6_route_check_nh_onlink() in net/ipv6/route.c: "Nexthop has invalid gateway or
 * device mismatch"). The overlay gateway of an IPv6 peer lies inside the peer's own subnet, so
 * turning Twill's DirectRouting route `fc00:0:0:9::/64 via <PublicIPv6> dev eth0` into the
 * encapsulated `fc00:0:0:9::/64 via fc00:0:0:9:: dev twill-v6.N onlink` fails: the route being
 * replaced is the one in the way (IPv4 has no such check). That happens when a peer leaves the
 * L2 segment, or DirectRouting is turned off.
 *
 * Deletes Twill's routes that block a write so, and returns how many: the caller then writes the
 * routes again. The peer is unreachable only between the two writes.
 */
export async function clearOnlinkBlockers(nl: NetlinkHandle, result: RouteSyncResult, wanted: readonly RouteSpec[]): Promise<number> {
  const failed = new Set(result.failed.filter((f) => f.write).map((f) => f.dst));
  const blocked = new Map(wanted.filter((r) => failed.has(r.dst) && r.onlink === true && r.gateway?.includes(':')).map((r) => [r.dst, r]));
  if (blocked.size === 0) return 0;
  const remove = nl.batch<string>();
  for (const r of await nl.listRoutes({ family: 6, protocol: RTPROT_TWILL })) {
    const want = blocked.get(r.dst);
    if (want === undefined || r.oif === want.oif) continue;
    remove.deleteRoute(r.nexthopId !== undefined ? { dst: r.dst, nexthopId: r.nexthopId, table: r.table } : { dst: r.dst, oif: r.oif, table: r.table }, r.dst);
  }
  const failures = await remove.commit();
  return remove.size - failures.length;
}
