import type { RouteSpec } from '../../netlink/index.js';
import type { RoutingRoute } from '../backend.js';
import type { LearnedPath } from './driver.js';
import type { ImportDecision } from './import-filter.js';
import type { PathTable } from './path-table.js';

/**
 * Pure: the kernel routes the bgp backend wants, from what the peers gave (the path table), which
 * prefixes may be installed (the import filter over the lease set) and which next hops the host
 * can reach. One route per prefix: a single next hop, or the equal-cost set as one multipath
 * route (route-sync.ts writes it as a nexthop group). Plain routes via the next hop on the
 * external interface, no tunnel: the underlay routes pod traffic.
 */
export interface BgpPlanInput {
  readonly table: PathTable;
  readonly filter: (prefix: string) => ImportDecision;
  /** True for a next hop on a connected network of the external interface. */
  readonly onLink: (ip: string) => boolean;
  readonly extIndex: number;
  /** This host's addresses: a path back to ourselves is no route. */
  readonly ownAddresses: ReadonlySet<string>;
  /**
   * Routes found in the kernel at start, kept for leased prefixes the peers have not given back
   * yet (the agent restarted; its sessions are still coming up): a restart must not cut traffic.
   */
  readonly preserved: ReadonlyMap<string, RouteSpec>;
}

export interface BgpPlan {
  readonly routes: RouteSpec[];
  /** Every prefix a peer gave, installed or not, with why not. */
  readonly status: RoutingRoute[];
}

/**
 * `withStatus` false skips the per-prefix report (RoutingRoute objects for twillctl): a sync of a
 * full table runs on every burst of UPDATEs, the report only when an operator asks.
 */
export function planBgpRoutes(input: BgpPlanInput, withStatus = true): BgpPlan {
  const routes: RouteSpec[] = [];
  const status: RoutingRoute[] = [];
  // A table has thousands of prefixes and a handful of next hops: each is checked once.
  const usableNextHop = new Map<string, boolean>();
  const usable = (p: LearnedPath): boolean => {
    let ok = usableNextHop.get(p.nextHop);
    if (ok === undefined) usableNextHop.set(p.nextHop, (ok = input.onLink(p.nextHop) && !input.ownAddresses.has(p.nextHop)));
    return ok;
  };
  const planned = new Set<string>();
  for (const prefix of input.table.prefixes()) {
    const all = (): { peer: string; path: LearnedPath }[] => input.table.best(prefix);
    const report = (installed: boolean, reason: string | undefined, best = all()): void => {
      status.push({ prefix, nextHops: uniqueNextHops(best), peers: [...new Set(best.map((b) => b.peer))], installed, reason });
    };
    const decision = input.filter(prefix);
    if (!decision.ok) {
      if (withStatus) report(false, `${decision.reason}: ${decision.detail}`);
      continue;
    }
    const best = input.table.best(prefix, usable);
    if (best.length === 0) {
      if (withStatus) report(false, `no usable next hop: ${uniqueNextHops(all()).join(', ')} is not on a network connected to the external interface, or is this host`);
      continue;
    }
    const nextHops = best.length === 1 ? [best[0]!.path.nextHop] : uniqueNextHops(best);
    routes.push(nextHops.length === 1
      ? { dst: decision.prefix, gateway: nextHops[0]!, oif: input.extIndex }
      : { dst: decision.prefix, multipath: nextHops.map((gateway) => ({ gateway, oif: input.extIndex })) });
    planned.add(decision.prefix);
    if (withStatus) report(true, undefined, best);
  }
  for (const [dst, route] of input.preserved) {
    if (planned.has(dst) || !input.filter(dst).ok) continue;
    routes.push(route);
    if (withStatus) status.push({ prefix: dst, nextHops: route.gateway !== undefined ? [route.gateway] : (route.multipath ?? []).map((m) => m.gateway), peers: [], installed: true, reason: 'kept from before the restart until the peers send it again' });
  }
  return { routes, status };
}

function uniqueNextHops(paths: readonly { readonly path: LearnedPath }[]): string[] {
  return [...new Set(paths.map((p) => p.path.nextHop))].sort();
}
