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

type Best = { peer: string; path: LearnedPath }[];

/** The route one learned prefix gets, with the paths it goes through; or why it gets none. */
type PrefixPlan =
  | { readonly route: RouteSpec; readonly best: Best }
  | { readonly route: undefined; readonly reason: string };

/**
 * Plans prefixes one at a time: a table has thousands of prefixes and a handful of next hops, so
 * each next hop is checked once.
 */
function prefixPlanner(input: BgpPlanInput): (prefix: string) => PrefixPlan | undefined {
  const usableNextHop = new Map<string, boolean>();
  const usable = (p: LearnedPath): boolean => {
    let ok = usableNextHop.get(p.nextHop);
    if (ok === undefined) usableNextHop.set(p.nextHop, (ok = input.onLink(p.nextHop) && !input.ownAddresses.has(p.nextHop)));
    return ok;
  };
  return (prefix) => {
    const decision = input.filter(prefix);
    if (!decision.ok) return { route: undefined, reason: `${decision.reason}: ${decision.detail}` };
    const best = input.table.best(prefix, usable);
    if (best.length === 0) {
      const all = input.table.best(prefix);
      if (all.length === 0) return undefined; // no path at all (withdrawn)
      return { route: undefined, reason: `no usable next hop: ${uniqueNextHops(all).join(', ')} is not on a network connected to the external interface, or is this host` };
    }
    const nextHops = best.length === 1 ? [best[0]!.path.nextHop] : uniqueNextHops(best);
    const route: RouteSpec = nextHops.length === 1
      ? { dst: decision.prefix, gateway: nextHops[0]!, oif: input.extIndex }
      : { dst: decision.prefix, multipath: nextHops.map((gateway) => ({ gateway, oif: input.extIndex })) };
    return { route, best };
  };
}

/**
 * `withStatus` false skips the per-prefix report (RoutingRoute objects for twillctl): a sync of a
 * full table runs at start and on every resync, the report only when an operator asks.
 */
export function planBgpRoutes(input: BgpPlanInput, withStatus = true): BgpPlan {
  const routes: RouteSpec[] = [];
  const status: RoutingRoute[] = [];
  const plan = prefixPlanner(input);
  const planned = new Set<string>();
  for (const prefix of input.table.prefixes()) {
    const p = plan(prefix);
    if (p === undefined) continue;
    if (p.route === undefined) {
      if (withStatus) {
        const all = input.table.best(prefix);
        status.push({ prefix, nextHops: uniqueNextHops(all), peers: [...new Set(all.map((b) => b.peer))], installed: false, reason: p.reason });
      }
      continue;
    }
    routes.push(p.route);
    planned.add(p.route.dst);
    if (withStatus) status.push({ prefix, nextHops: uniqueNextHops(p.best), peers: [...new Set(p.best.map((b) => b.peer))], installed: true, reason: undefined });
  }
  for (const [dst, route] of input.preserved) {
    if (planned.has(dst) || !input.filter(dst).ok) continue;
    routes.push(route);
    if (withStatus) status.push({ prefix: dst, nextHops: route.gateway !== undefined ? [route.gateway] : (route.multipath ?? []).map((m) => m.gateway), peers: [], installed: true, reason: 'kept from before the restart until the peers send it again' });
  }
  return { routes, status };
}

/**
 * The routes of `prefixes` alone (those whose paths changed), each as planBgpRoutes would plan
 * it, or undefined where it would plan none: what route-changes.ts writes after a burst of
 * UPDATEs, instead of planning the whole table again.
 */
export function planBgpChanges(input: BgpPlanInput, prefixes: Iterable<string>): Map<string, RouteSpec | undefined> {
  const plan = prefixPlanner(input);
  const changes = new Map<string, RouteSpec | undefined>();
  for (const prefix of prefixes) {
    const route = plan(prefix)?.route;
    // The filter's canonical form is the kernel's destination; a prefix it refuses is that text.
    const dst = route?.dst ?? prefix;
    const kept = input.preserved.get(dst);
    changes.set(dst, route ?? (kept !== undefined && input.filter(dst).ok ? kept : undefined));
  }
  return changes;
}

function uniqueNextHops(paths: readonly { readonly path: LearnedPath }[]): string[] {
  return [...new Set(paths.map((p) => p.path.nextHop))].sort();
}
