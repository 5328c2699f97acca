import { isNetlinkError, type NetlinkHandle, type RouteSpec } from '../netlink/index.js';
import type { SkippedLease } from './backend.js';
import { deletionSpec, sameHopSet } from './nexthop-form.js';
import type { RouteFailure } from './route-sync.js';
import type { WrittenState } from './written-state.js';

export interface RouteChangesResult {
  readonly replaced: number;
  readonly deleted: number;
  /** Writes and removals the kernel refused (write: true for a desired route). */
  readonly failed: readonly RouteFailure[];
  /** Desired routes not written: a route of another owner holds the destination (code foreign_route). */
  readonly refused: readonly SkippedLease[];
  /**
   * A removed route was the last to name one of Twill's nexthops: only a full sync, which lists
   * who else uses it, deletes a nexthop.
   */
  readonly nexthopsUnused: boolean;
}

/**
 * The routes of a few destinations brought in line without listing the kernel: each compared
 * with what the last sync wrote (WrittenState) instead of a dump of the whole table, so a burst
 * of changes costs what it changes, not what the table holds (BIRD's kernel protocol trusts its
 * own record between scans the same way). The record stays true between full syncs because the
 * kernel tells of every deletion and of every route another owner adds (drift-repair.md); a
 * destination another owner took is forgotten by the record and never written over.
 *
 * `changes` maps a destination to its desired route, or to undefined for none. A route Twill has
 * at the destination is replaced; elsewhere the route is added exclusively (NLM_F_EXCL), so a
 * foreign route that appeared in between fails the write (EEXIST) and is refused. Returns
 * undefined, having written nothing, when a route needs a nexthop the last sync did not make (a
 * new gateway, a new equal-cost set): a full sync (route-sync.ts) makes it.
 */
export async function applyRouteChanges(
  nl: NetlinkHandle, written: WrittenState, changes: ReadonlyMap<string, RouteSpec | undefined>,
): Promise<RouteChangesResult | undefined> {
  const writes: RouteSpec[] = [];
  /** Of `writes`, those over a route of Twill's (replaced; the others are added exclusively). */
  const over = new Set<RouteSpec>();
  const removals: RouteSpec[] = [];
  for (const [dst, want] of changes) {
    const had = written.route(dst);
    if (want === undefined) {
      if (had !== undefined) removals.push(had);
      continue;
    }
    const spec = written.expressed(want);
    if (spec === undefined) return undefined;
    if (had !== undefined && sameRoute(had, spec)) continue;
    writes.push(spec);
    if (had !== undefined) over.add(spec);
  }

  const failed: RouteFailure[] = [];
  const refused: SkippedLease[] = [];
  const write = nl.batch<string>();
  for (const r of writes) {
    if (over.has(r)) write.replaceRoute(r, r.dst);
    else write.addRoute(r, r.dst);
  }
  const failures = await write.commit();
  const writeFailures = failures.length === 0 ? undefined : new Map(failures.map((f) => [f.token, f.error]));
  for (const r of writes) {
    const error = writeFailures?.get(r.dst);
    const wasTwills = over.has(r);
    if (error === undefined) {
      written.setRoute(r);
    } else if (!wasTwills && isNetlinkError(error, 'EEXIST')) {
      refused.push({ subnet: r.dst, reason: 'a route of another owner holds this destination; Twill does not replace it', code: 'foreign_route' });
    } else {
      // What is there now is unknown: the record forgets it, and the caller's next full sync knows.
      written.forgetRoute(r.dst);
      failed.push({ dst: r.dst, error, write: true });
    }
  }

  const remove = nl.batch<string>();
  for (const r of removals) remove.deleteRoute(deletionSpec(r), r.dst);
  const removeFailures = new Map((await remove.commit()).map((f) => [f.token, f.error]));
  let deleted = 0;
  const dropped = new Set<number>();
  for (const r of removals) {
    const error = removeFailures.get(r.dst);
    // ESRCH: no such route (fib_table_delete()), gone already.
    if (error !== undefined && !isNetlinkError(error, 'ESRCH') && !isNetlinkError(error, 'ENOENT')) {
      failed.push({ dst: r.dst, error, write: false });
      continue;
    }
    if (error === undefined) deleted += 1;
    written.forgetRoute(r.dst);
    if (r.nexthopId !== undefined) dropped.add(r.nexthopId);
  }
  return {
    replaced: writes.length - failures.length, deleted, failed, refused,
    nexthopsUnused: [...dropped].some((id) => !written.namesNexthop(id)),
  };
}

/** The same route as recorded: destination, table, metric, and the same nexthop or hops. */
function sameRoute(a: RouteSpec, b: RouteSpec): boolean {
  if (a.table !== b.table || a.metric !== b.metric || a.protocol !== b.protocol || a.scope !== b.scope || a.prefsrc !== b.prefsrc) return false;
  if (a.nexthopId !== undefined || b.nexthopId !== undefined) return a.nexthopId === b.nexthopId;
  if (a.gateway !== b.gateway || a.oif !== b.oif || (a.onlink ?? false) !== (b.onlink ?? false)) return false;
  return a.multipath === undefined || b.multipath === undefined ? a.multipath === b.multipath : sameHopSet(a.multipath, b.multipath);
}
