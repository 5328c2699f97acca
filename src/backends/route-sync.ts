import { parseCidr, prefixContains } from '../core/ip.js';
import type { SkippedLease } from './backend.js';
import { isNetlinkError, listNexthopsIfSupported, RTPROT_TWILL, type NetlinkHandle, type Nexthop, type NexthopSpec, type Route, type RouteSpec } from '../netlink/index.js';

/**
 * Declarative route reconciliation shared by the route-based backends (host-gw, vxlan, ipip):
 * afterwards the main table holds exactly `desired` among the routes Twill owns. Twill owns a
 * route when it carries Twill's protocol (RTPROT_TWILL) and its destination lies inside the
 * cluster network; nothing else is ever touched. This also removes routes left by hosts that
 * went away while the agent was down (flannel #2554), and routes of a previous backend.
 *
 * A route with a gateway and a device goes through a nexthop object of Twill's own (protocol
 * RTPROT_TWILL, one per gateway/device/onlink): `10.244.9.0/24 nhid N via 10.244.9.0 dev twill.1
 * onlink`. Plain routes that differ only by gateway cost the kernel time quadratic in their number
 * (see netlink/nexthops.ts: 10,000 of them took 1.77 s against 0.27 s). Kernels without nexthop
 * objects (before 5.3) get plain routes. Twill's nexthops no route needs any more are deleted;
 * one that somebody else's route names is left alone.
 *
 * Twill never overwrites a route it does not own: a destination that already has a route of
 * another protocol (the kernel's connected route, a static route, another daemon's) is refused
 * and reported, and a destination where Twill has no route yet is written with NLM_F_EXCL, so a
 * foreign route added since the listing fails the write (EEXIST) instead of being replaced.
 * Only a destination that holds Twill's own route is rewritten in place.
 *
 * Writes are pipelined: all nexthops, all writes, then all deletions, each batch in one go.
 */
export interface RouteSyncResult {
  readonly replaced: number;
  readonly deleted: number;
  /**
   * Nexthop objects created or deleted. The backends count routes, not these: a nexthop is how a
   * route is written, and each new one comes with its route.
   */
  readonly nexthops: number;
  /** Kernel writes that failed: `write` for a desired route, else the removal of a stale route or nexthop. */
  readonly failed: readonly RouteFailure[];
  /** Desired routes not written because a route of another owner holds the destination (code foreign_route). */
  readonly refused: readonly SkippedLease[];
}

export interface RouteFailure {
  readonly dst: string;
  readonly error: Error;
  readonly write: boolean;
}

/**
 * The failed-entry contract of backend.ts for routes: each desired route the kernel refused, as
 * its lease skipped (code write_failed); and the failed removals, which fail the sync.
 */
export function splitRouteFailures(result: RouteSyncResult): { readonly writeFailed: SkippedLease[]; readonly removeFailed: RouteFailure[] } {
  return {
    writeFailed: result.failed.filter((f) => f.write).map((f) => ({ subnet: f.dst, reason: `the kernel refused the route: ${f.error.message}`, code: 'write_failed' })),
    removeFailed: result.failed.filter((f) => !f.write),
  };
}

/** Where Twill's nexthop ids start ("tw"): far from the small ids `ip nexthop add id N` users pick. */
export const NEXTHOP_ID_BASE = 0x74770000;

export async function syncRoutes(nl: NetlinkHandle, clusterNetwork: string, wantedRoutes: readonly RouteSpec[]): Promise<RouteSyncResult> {
  const inCluster = cidrMatcher(clusterNetwork);
  const [all, nexthops] = await Promise.all([nl.listRoutes({ family: 4 }), listNexthopsIfSupported(nl)]);
  const kernel: Route[] = [];
  const foreignNexthopUse = new Set<number>();
  const foreignByDst = new Map<string, Route>();
  for (const r of all) {
    if (r.protocol === RTPROT_TWILL && inCluster(r.dst)) {
      kernel.push(r);
      continue;
    }
    if (r.nexthopId !== undefined) foreignNexthopUse.add(r.nexthopId);
    foreignByDst.set(r.dst, r);
  }

  const failed: RouteFailure[] = [];
  const refused: SkippedLease[] = [];
  const refuse = (dst: string, reason: string): void => { refused.push({ subnet: dst, reason, code: 'foreign_route' }); };
  const byDst = new Map(kernel.map((r) => [r.dst, r]));
  // A destination another owner holds is not Twill's to take, even if Twill routed it before
  // (its own route there, if any, is then removed below).
  const desired = wantedRoutes.filter((d) => {
    const other = foreignByDst.get(d.dst);
    if (other === undefined) return true;
    refuse(d.dst, foreignRouteReason(other));
    return false;
  });
  const nh = nexthops ? planNexthops(nexthops, desired) : undefined;
  let routes = nh ? nh.routes : desired;
  let nexthopChanges = 0;
  if (nh && nh.create.length > 0) {
    // add, not replace: an id taken since the listing (by somebody else) fails with EEXIST
    // instead of being overwritten, and the next sync picks another.
    const create = nl.batch<number>();
    for (const spec of nh.create) create.addNexthop(spec, spec.id);
    const refusedIds = new Set((await create.commit()).map((f) => f.token));
    nexthopChanges += nh.create.length - refusedIds.size;
    // The kernel is stricter with nexthops than with routes (it refuses a device without carrier,
    // where a route is only flagged linkdown): a refused nexthop's routes are written plain, and
    // fail, if at all, with the route's own error.
    if (refusedIds.size > 0) routes = nh.routes.map((r, i) => (r.nexthopId !== undefined && refusedIds.has(r.nexthopId) ? desired[i]! : r));
  }

  const wanted = new Set(desired.map((r) => r.dst));
  const toReplace = routes.filter((d) => !matches(byDst.get(d.dst), d));
  const toDelete = kernel.filter((r) => !wanted.has(r.dst));
  // Writes, then deletions; the token is the destination. Over Twill's own route a replace,
  // elsewhere an exclusive add.
  const replace = nl.batch<string>();
  for (const r of toReplace) {
    if (byDst.has(r.dst)) replace.replaceRoute(r, r.dst);
    else replace.addRoute(r, r.dst);
  }
  const writeFailures = await replace.commit();
  const replaceFailures: typeof writeFailures = [];
  for (const f of writeFailures) {
    if (!byDst.has(f.token) && isNetlinkError(f.error, 'EEXIST')) refuse(f.token, 'a route of another owner appeared at this destination; Twill does not replace it');
    else replaceFailures.push(f);
  }
  // A route through a nexthop object is named by it: with a device or gateway the kernel finds none (fib_nh_match()).
  const remove = nl.batch<string>();
  for (const r of toDelete) {
    remove.deleteRoute(r.nexthopId !== undefined ? { dst: r.dst, nexthopId: r.nexthopId, table: r.table } : { dst: r.dst, oif: r.oif, table: r.table }, r.dst);
  }
  const removeFailures = await remove.commit();
  const routeFailures = [...replaceFailures, ...removeFailures];
  for (const f of replaceFailures) failed.push({ dst: f.token, error: f.error, write: true });
  for (const f of removeFailures) failed.push({ dst: f.token, error: f.error, write: false });

  if (nh && nexthops) {
    // Only now: deleting a nexthop deletes the routes through it, which must have moved first.
    const used = new Set([...routes.map((r) => r.nexthopId), ...foreignNexthopUse]);
    // A kernel route that could not be moved or removed still needs its old nexthop.
    const stuck = new Set(routeFailures.map((f) => f.token));
    const moved = new Set([...toReplace, ...toDelete].map((r) => r.dst).filter((dst) => !stuck.has(dst)));
    for (const r of kernel) if (r.nexthopId !== undefined && !moved.has(r.dst)) used.add(r.nexthopId);
    const stale = nexthops.filter((n) => isTwillNexthop(n) && !used.has(n.id));
    const drop = nl.batch<number>();
    for (const n of stale) drop.deleteNexthop(n.id, n.id);
    const dropFailures = await drop.commit();
    nexthopChanges += stale.length - dropFailures.length;
    for (const f of dropFailures) if (!isNetlinkError(f.error, 'ENOENT')) failed.push({ dst: `nexthop ${f.token}`, error: f.error, write: false });
  }
  return {
    replaced: toReplace.length - writeFailures.length, deleted: toDelete.length - removeFailures.length, nexthops: nexthopChanges, failed, refused,
  };
}

/** Names the route in the way, for the log: its protocol (rtnetlink's numbers, rtnetlink.h) and next hop. */
function foreignRouteReason(r: Route): string {
  const via = r.gateway !== undefined ? ` via ${r.gateway}` : r.oif !== undefined ? ` on interface ${r.oif}` : '';
  return `a route of another owner (protocol ${PROTOCOL_NAMES[r.protocol] ?? r.protocol}${via}) already holds ${r.dst}; Twill does not replace it`;
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 11: 'zebra', 12: 'bird', 16: 'dhcp', 186: 'bgp', 188: 'ospf' };

function isTwillNexthop(n: Nexthop): boolean {
  return n.protocol === RTPROT_TWILL && n.family === 4 && !n.group && !n.blackhole;
}

const nexthopKey = (gateway: string, oif: number, onlink: boolean): string => `${gateway}|${oif}|${onlink ? 1 : 0}`;

/**
 * The routes rewritten to name nexthops, reusing Twill's existing nexthop for the same gateway,
 * device and onlink flag (so a converged sync writes nothing), and the nexthops to create, with
 * ids no nexthop of the namespace uses yet. Routes that a nexthop cannot express (no device, a
 * scope or a preferred source of their own) stay plain.
 */
export function planNexthops(existing: readonly Nexthop[], desired: readonly RouteSpec[]): { routes: RouteSpec[]; create: NexthopSpec[] } {
  const byKey = new Map<string, number>();
  const taken = new Set<number>();
  for (const n of existing) {
    taken.add(n.id);
    if (isTwillNexthop(n) && n.gateway !== undefined && n.oif !== undefined) byKey.set(nexthopKey(n.gateway, n.oif, n.onlink), n.id);
  }
  const create: NexthopSpec[] = [];
  let next = NEXTHOP_ID_BASE;
  const routes = desired.map((d): RouteSpec => {
    if (d.gateway === undefined || d.oif === undefined || d.scope !== undefined || d.prefsrc !== undefined || d.nexthopId !== undefined) return d;
    const onlink = d.onlink ?? false;
    const key = nexthopKey(d.gateway, d.oif, onlink);
    let id = byKey.get(key);
    if (id === undefined) {
      while (taken.has(next)) next = next >= 0xffffffff ? 1 : next + 1;
      id = next;
      taken.add(id);
      byKey.set(key, id);
      create.push({ id, gateway: d.gateway, oif: d.oif, onlink });
    }
    return {
      dst: d.dst, nexthopId: id,
      ...(d.table !== undefined && { table: d.table }), ...(d.metric !== undefined && { metric: d.metric }), ...(d.protocol !== undefined && { protocol: d.protocol }),
    };
  });
  return { routes, create };
}

/** True when the kernel route already is what `want` asks for (so no write is needed). */
export function matches(have: Route | undefined, want: RouteSpec): boolean {
  if (have === undefined) return false;
  if (want.nexthopId !== undefined || have.nexthopId !== undefined) {
    return have.nexthopId === want.nexthopId && (want.metric === undefined || have.metric === want.metric);
  }
  return have.gateway === want.gateway
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
