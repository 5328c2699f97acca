import { parseCidr, prefixContains } from '../core/ip.js';
import type { SkippedLease } from './backend.js';
import { deletionSpec, groupKey, hopKey, nexthopKey, sameHopSet, viaNexthops } from './nexthop-form.js';
import { nexthopSpecOf, type WrittenState } from './written-state.js';
import {
  isNetlinkError, listNexthopsIfSupported, RTPROT_TWILL, type ListedRouteHop, type NetlinkHandle, type Nexthop, type NexthopSpec, type Route, type RouteHop,
  type RouteSpec,
} from '../netlink/index.js';

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
 * (see netlink/nexthops.ts: 10,000 of them took 1.77 s against 0.27 s). A route over several
 * equal-cost next hops (RouteSpec.multipath) goes through a group of Twill's (protocol
 * RTPROT_TWILL, one per set of member nexthops) of those same single nexthops: `nhid G` with `ip
 * nexthop add id G group A/B`. A changed set is a new group, and the route moves to it. Kernels
 * without nexthop objects (before 5.3) get plain routes (RTA_MULTIPATH for several next hops).
 * Twill's nexthops no route needs any more are deleted, groups before their members; one that
 * somebody else's route or group names is left alone.
 *
 * Twill never overwrites a route it does not own: a destination that already has a route of
 * another protocol (the kernel's connected route, a static route, another daemon's) is refused
 * and reported, and a destination where Twill has no route yet is written with NLM_F_EXCL, so a
 * foreign route added since the listing fails the write (EEXIST) instead of being replaced.
 * Only a destination that holds Twill's own route is rewritten in place.
 *
 * Writes are pipelined: all nexthops (members before groups), all writes, then all deletions
 * (routes, then groups, then single nexthops), each batch in one go.
 *
 * `written`, when given, keeps the routes as written and the nexthops they name, so that one
 * deleted by somebody else can be written again on its own (written-state.ts).
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
export function splitRouteFailures(result: Pick<RouteSyncResult, 'failed'>): { readonly writeFailed: SkippedLease[]; readonly removeFailed: RouteFailure[] } {
  return {
    writeFailed: result.failed.filter((f) => f.write).map((f) => ({ subnet: f.dst, reason: `the kernel refused the route: ${f.error.message}`, code: 'write_failed' })),
    removeFailed: result.failed.filter((f) => !f.write),
  };
}

/** Where Twill's nexthop ids start ("tw"): far from the small ids `ip nexthop add id N` users pick. */
export const NEXTHOP_ID_BASE = 0x74770000;

/**
 * `owned` is the cluster network, or both of a dual-stack cluster ("10.244.0.0/16" and
 * "fc00::/48"): Twill owns its routes inside them, and its nexthops of their families. Every
 * route a backend wants goes through one call, so one family's sync never drops the other's.
 */
export async function syncRoutes(
  nl: NetlinkHandle, owned: string | readonly string[], wantedRoutes: readonly RouteSpec[], written?: WrittenState,
): Promise<RouteSyncResult> {
  const networks = typeof owned === 'string' ? [owned] : owned;
  const inCluster = anyCidrMatcher(networks);
  const families = new Set(networks.map((n) => (n.includes(':') ? 6 : 4)));
  const [listed, allNexthops] = await Promise.all([
    Promise.all([...families].map((family) => nl.listRoutes({ family }))), listNexthopsIfSupported(nl)]);
  const all = listed.flat();
  const nexthops = allNexthops && ownedFamilies(allNexthops, families);
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
  const nh = nexthops ? planNexthops(nexthops, desired, allNexthops) : undefined;
  let routes = nh ? nh.routes : desired;
  let nexthopChanges = 0;
  let created: NexthopSpec[] = [];
  if (nh && nh.create.length > 0) {
    // add, not replace: an id taken since the listing (by somebody else) fails with EEXIST
    // instead of being overwritten, and the next sync picks another. Members come before their
    // groups, and the kernel answers a batch in order and refuses a group with a missing member
    // (EINVAL, nh_check_attr_group() in net/ipv4/nexthop.c): a refused member refuses its groups.
    const create = nl.batch<number>();
    for (const spec of nh.create) create.addNexthop(spec, spec.id);
    const refusedIds = new Set((await create.commit()).map((f) => f.token));
    created = nh.create.filter((spec) => !refusedIds.has(spec.id));
    nexthopChanges += created.length;
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
  const remove = nl.batch<string>();
  for (const r of toDelete) remove.deleteRoute(deletionSpec(r), r.dst);
  const removeFailures = await remove.commit();
  const routeFailures = [...replaceFailures, ...removeFailures];
  for (const f of replaceFailures) failed.push({ dst: f.token, error: f.error, write: true });
  for (const f of removeFailures) failed.push({ dst: f.token, error: f.error, write: false });

  if (nexthops) {
    // Only now: deleting a nexthop deletes the routes through it, which must have moved first.
    const used = new Set([...foreignNexthopUse]);
    for (const r of routes) if (r.nexthopId !== undefined) used.add(r.nexthopId);
    // A kernel route that could not be moved or removed still needs its old nexthop.
    const stuck = new Set(routeFailures.map((f) => f.token));
    const moved = new Set([...toReplace, ...toDelete].map((r) => r.dst).filter((dst) => !stuck.has(dst)));
    for (const r of kernel) if (r.nexthopId !== undefined && !moved.has(r.dst)) used.add(r.nexthopId);
    nexthopChanges += await dropStaleNexthops(nl, nexthops, created, used, failed);
  }
  if (written) {
    // What is in the kernel now: a write that failed left either nothing or an older route there.
    const unwritten = new Set(writeFailures.map((f) => f.token));
    const inKernel = unwritten.size === 0 ? routes : routes.filter((r) => !unwritten.has(r.dst));
    written.recordRoutes(inKernel, namedNexthops(inKernel, created, nexthops ?? []), nexthops !== undefined);
  }
  return {
    replaced: toReplace.length - writeFailures.length, deleted: toDelete.length - removeFailures.length, nexthops: nexthopChanges, failed, refused,
  };
}

/** The nexthops `routes` name, as specs: groups and their members, new (`created`) or reused (`existing`). */
function namedNexthops(routes: readonly RouteSpec[], created: readonly NexthopSpec[], existing: readonly Nexthop[]): Map<number, NexthopSpec> {
  const known = new Map<number, NexthopSpec>();
  for (const n of existing) {
    const spec = nexthopSpecOf(n);
    if (spec !== undefined) known.set(n.id, spec);
  }
  for (const spec of created) known.set(spec.id, spec);
  const named = new Map<number, NexthopSpec>();
  const name = (id: number): void => {
    const spec = known.get(id);
    if (spec === undefined || named.has(id)) return;
    named.set(id, spec);
    for (const m of spec.group ?? []) name(m.id);
  };
  for (const r of routes) if (r.nexthopId !== undefined) name(r.nexthopId);
  return named;
}

/** Names the route in the way, for the log: its protocol (rtnetlink's numbers, rtnetlink.h) and next hop. */
function foreignRouteReason(r: Route): string {
  const gateways = r.multipath?.map((h) => h.gateway ?? `interface ${h.oif}`).join(', ') ?? r.gateway;
  const via = gateways !== undefined ? ` via ${gateways}` : r.oif !== undefined ? ` on interface ${r.oif}` : '';
  return `a route of another owner (protocol ${PROTOCOL_NAMES[r.protocol] ?? r.protocol}${via}) already holds ${r.dst}; Twill does not replace it`;
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 11: 'zebra', 12: 'bird', 16: 'dhcp', 186: 'bgp', 188: 'ospf' };

/**
 * Deletes Twill's nexthops that nothing in `used` names, groups first, and returns how many went.
 * Deleting a member would change every group holding it under the group's routes (the kernel
 * takes it out of them, remove_nexthop_from_groups() in net/ipv4/nexthop.c), so a member stays
 * while any group keeps it: one of Twill's still used or failing to go, or somebody else's.
 */
async function dropStaleNexthops(nl: NetlinkHandle, existing: readonly Nexthop[], created: readonly NexthopSpec[], used: Set<number>, failed: RouteFailure[]): Promise<number> {
  const groups = new Map<number, readonly number[]>();
  for (const n of existing) if (n.members !== undefined) groups.set(n.id, n.members.map((m) => m.id));
  for (const spec of created) if (spec.group !== undefined) groups.set(spec.id, spec.group.map((m) => m.id));
  const staleGroups = existing.filter((n) => isTwillGroup(n) && !used.has(n.id)).map((n) => n.id);
  const droppedGroups = await deleteNexthops(nl, staleGroups, failed);
  for (const [id, members] of groups) {
    if (!droppedGroups.gone.has(id)) for (const m of members) used.add(m);
  }
  const staleSingles = existing.filter((n) => isTwillNexthop(n) && !used.has(n.id)).map((n) => n.id);
  const droppedSingles = await deleteNexthops(nl, staleSingles, failed);
  return droppedGroups.deleted + droppedSingles.deleted;
}

/**
 * Deletes nexthops `ids` in one batch, each failure but ENOENT (gone already) in `failed`: how
 * many this deleted, and which are gone now.
 */
async function deleteNexthops(nl: NetlinkHandle, ids: readonly number[], failed: RouteFailure[]): Promise<{ deleted: number; gone: Set<number> }> {
  const gone = new Set(ids);
  if (ids.length === 0) return { deleted: 0, gone };
  const drop = nl.batch<number>();
  for (const id of ids) drop.deleteNexthop(id, id);
  const failures = await drop.commit();
  for (const f of failures) {
    if (isNetlinkError(f.error, 'ENOENT')) continue;
    gone.delete(f.token);
    failed.push({ dst: `nexthop ${f.token}`, error: f.error, write: false });
  }
  return { deleted: ids.length - failures.length, gone };
}

/** Twill's nexthop of one gateway, the kind planNexthops reuses by gateway, device and onlink flag. */
function isTwillNexthop(n: Nexthop): boolean {
  return n.protocol === RTPROT_TWILL && !n.group && !n.blackhole;
}

/**
 * The nexthops of the synced families only: a group has no family of its own (AF_UNSPEC), so it
 * takes its first member's. A sync of one family then neither reuses nor deletes the other's.
 */
function ownedFamilies(existing: readonly Nexthop[], families: ReadonlySet<number>): Nexthop[] {
  const familyById = new Map(existing.map((n) => [n.id, n.family]));
  return existing.filter((n) => {
    const family = n.members !== undefined && n.members.length > 0 ? familyById.get(n.members[0]!.id) : n.family;
    return family !== undefined && families.has(family);
  });
}

/** Twill's nexthop group. The kernel lists a group without a family (AF_UNSPEC, nh_fill_node()). */
function isTwillGroup(n: Nexthop): boolean {
  return n.protocol === RTPROT_TWILL && n.group;
}


export interface NexthopPlan {
  /** The desired routes, each that nexthops can express rewritten to name one (RTA_NH_ID). */
  readonly routes: RouteSpec[];
  /** The nexthops to create: single ones first, then the groups of them (a group needs its members). */
  readonly create: NexthopSpec[];
}

/**
 * The routes rewritten to name nexthops, reusing Twill's existing nexthop for the same gateway,
 * device and onlink flag, and Twill's existing group for the same member set (so a converged sync
 * writes nothing), and the nexthops to create, with ids no nexthop of the namespace uses yet. A
 * route over one next hop names that hop's nexthop; one over several (deduplicated), a group of
 * them. Routes that a nexthop cannot express (no device, a scope or a preferred source of their
 * own) stay plain.
 */
export function planNexthops(existing: readonly Nexthop[], desired: readonly RouteSpec[], taken: readonly Nexthop[] = existing): NexthopPlan {
  const ids = new NexthopIds(existing, taken);
  const routes = desired.map((d): RouteSpec => viaNexthops(d, (hop) => ids.single(hop), (members) => ids.group(members))!);
  return { routes, create: ids.created() };
}

/** planNexthops' ids: Twill's existing nexthops by what they are, and new ones on free ids. */
class NexthopIds {
  private readonly singles = new Map<string, number>();
  private readonly groups = new Map<string, number>();
  private readonly taken = new Set<number>();
  private readonly newSingles: NexthopSpec[] = [];
  private readonly newGroups: NexthopSpec[] = [];
  private next = NEXTHOP_ID_BASE;

  /** `existing`: the nexthops Twill may reuse; `taken`: every id in use (other families' too). */
  constructor(existing: readonly Nexthop[], taken: readonly Nexthop[]) {
    for (const n of taken) this.taken.add(n.id);
    for (const n of existing) {
      this.taken.add(n.id);
      if (isTwillNexthop(n) && n.gateway !== undefined && n.oif !== undefined) this.singles.set(nexthopKey(n.gateway, n.oif, n.onlink), n.id);
      // Only an equal-cost group is what Twill writes: one given weights (by hand) is not reused.
      else if (isTwillGroup(n) && n.members?.every((m) => m.weight === 1)) this.groups.set(groupKey(n.members.map((m) => m.id)), n.id);
    }
  }

  /** Twill's nexthop for `hop`, made if it has none. */
  single(hop: RouteHop): number {
    const key = hopKey(hop);
    let id = this.singles.get(key);
    if (id === undefined) {
      id = this.allocate();
      this.singles.set(key, id);
      this.newSingles.push({ id, gateway: hop.gateway, oif: hop.oif, onlink: hop.onlink ?? false });
    }
    return id;
  }

  /** Twill's group of exactly `members` (sorted; equal weights), made if it has none. */
  group(members: readonly number[]): number {
    const key = groupKey(members);
    let id = this.groups.get(key);
    if (id === undefined) {
      id = this.allocate();
      this.groups.set(key, id);
      this.newGroups.push({ id, group: members.map((m) => ({ id: m })) });
    }
    return id;
  }

  created(): NexthopSpec[] {
    return [...this.newSingles, ...this.newGroups];
  }

  private allocate(): number {
    while (this.taken.has(this.next)) this.next = this.next >= 0xffffffff ? 1 : this.next + 1;
    this.taken.add(this.next);
    return this.next;
  }
}

/**
 * True when the kernel route already is what `want` asks for (so no write is needed). A route
 * through a nexthop object matches by its id only: planNexthops names the group of the wanted
 * member set, so a route naming a group whose members drifted is rewritten.
 */
export function matches(have: Route | undefined, want: RouteSpec): boolean {
  if (have === undefined || (want.metric !== undefined && have.metric !== want.metric)) return false;
  if (want.nexthopId !== undefined || have.nexthopId !== undefined) return have.nexthopId === want.nexthopId;
  if ((want.multipath?.length ?? 0) > 1 || have.multipath !== undefined) return sameHops(have.multipath, want.multipath);
  const hop = want.multipath?.[0] ?? want;
  return have.gateway === hop.gateway
    && (hop.oif === undefined || have.oif === hop.oif)
    && have.onlink === (hop.onlink ?? false);
}

/** The same next hops, in any order (ECMP has none), each of weight 1 as Twill writes them. */
function sameHops(have: readonly ListedRouteHop[] | undefined, want: readonly RouteHop[] | undefined): boolean {
  if (have === undefined || want === undefined || have.some((h) => h.weight !== 1)) return false;
  return sameHopSet(have, want);
}

/** A predicate "is this prefix inside one of `networks`". */
export function anyCidrMatcher(networks: readonly string[]): (prefix: string) => boolean {
  const matchers = networks.map(cidrMatcher);
  return matchers.length === 1 ? matchers[0]! : (prefix) => matchers.some((m) => m(prefix));
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
