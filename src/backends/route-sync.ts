import { parseCidr, prefixContains } from '../core/ip.js';
import { RTPROT_TWILL, type Netlink, type Route, type RouteSpec } from '../netlink/index.js';

/**
 * Declarative route reconciliation shared by the route-based backends (host-gw, vxlan, ipip):
 * afterwards the main table holds exactly `desired` among the routes Twill owns. Twill owns a
 * route when it carries Twill's protocol (RTPROT_TWILL) and its destination lies inside the
 * cluster network; nothing else is ever touched. This also removes routes left by hosts that
 * went away while the agent was down (flannel #2554), and routes of a previous backend.
 *
 * Writes are pipelined: all replacements, then all deletions, each batch in one go.
 */
export interface RouteSyncResult {
  readonly replaced: number;
  readonly deleted: number;
  readonly failed: readonly { readonly dst: string; readonly error: Error }[];
}

export async function syncRoutes(nl: Netlink, clusterNetwork: string, desired: readonly RouteSpec[]): Promise<RouteSyncResult> {
  const inCluster = cidrMatcher(clusterNetwork);
  const kernel = (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL })).filter((r) => inCluster(r.dst));
  const byDst = new Map(kernel.map((r) => [r.dst, r]));
  const wanted = new Set(desired.map((r) => r.dst));
  const toReplace = desired.filter((d) => !matches(byDst.get(d.dst), d));
  const toDelete = kernel.filter((r) => !wanted.has(r.dst));

  const failed: { dst: string; error: Error }[] = [];
  const settle = async (dst: string, op: Promise<void>): Promise<boolean> => {
    try {
      await op;
      return true;
    } catch (error) {
      failed.push({ dst, error: error as Error });
      return false;
    }
  };
  const replaced = await Promise.all(toReplace.map((r) => settle(r.dst, nl.replaceRoute(r))));
  const deleted = await Promise.all(toDelete.map((r) => settle(r.dst, nl.deleteRoute({ dst: r.dst, oif: r.oif, table: r.table }))));
  return { replaced: replaced.filter(Boolean).length, deleted: deleted.filter(Boolean).length, failed };
}

/** True when the kernel route already is what `want` asks for (so no write is needed). */
export function matches(have: Route | undefined, want: RouteSpec): boolean {
  return have !== undefined
    && have.gateway === want.gateway
    && (want.oif === undefined || have.oif === want.oif)
    && have.onlink === (want.onlink ?? false)
    && (want.metric === undefined || have.metric === want.metric);
}

/** A predicate "is this prefix inside `network`"; unparsable prefixes are outside. */
export function cidrMatcher(network: string): (prefix: string) => boolean {
  const outer = parseCidr(network);
  return (prefix) => {
    try {
      return prefixContains(outer, parseCidr(prefix));
    } catch {
      return false;
    }
  };
}
