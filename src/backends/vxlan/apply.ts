import { TwillError } from '../../core/errors.js';
import { isNetlinkError, type FdbSpec, type NeighbourSpec, type NetlinkHandle } from '../../netlink/index.js';
import { splitRouteFailures, syncRoutes } from '../route-sync.js';
import { fdbKey, neighbourKey, type WrittenState } from '../written-state.js';
import { clearOnlinkBlockers } from './onlink-blockers.js';
import type { PeerPlan, Skipped } from './plan.js';

/**
 * Makes the kernel hold exactly the planned entries: diffs each VXLAN device's permanent
 * neighbours (of its family), its FDB entries with a destination, and Twill's routes of both
 * families (route-sync.ts, one call for both, so neither family's sync drops the other's) against
 * the plan, then writes only the difference. The devices are Twill's, so every permanent neighbour
 * and every FDB entry with a destination on them is Twill's to remove. twill.N and twill-v6.N go
 * through the same steps at once: the plan's entries say which device they belong to.
 *
 * Order (as flannel per peer, but for all peers at once, each phase pipelined in one go):
 *   add:    neighbours, FDB entries, then routes (each through a nexthop object, route-sync.ts) -
 *           a route never exists without its neighbour, so the kernel never ARPs on the overlay
 *           (nothing would answer: learning is off);
 *   remove: routes and their nexthops, then FDB entries, then neighbours - the reverse.
 *
 * Unlike flannel, a peer whose MAC changed loses its old FDB entry (flannel leaks it: #1036,
 * k3s#9957), and entries of peers that vanished while the agent was down are removed.
 */
export interface ApplyResult {
  /** Kernel objects written or removed. */
  readonly changes: number;
  /**
   * Peers whose entries the kernel refused (the next sync or resync tries again), and peers whose
   * destination a route of another owner holds (code foreign_route).
   */
  readonly failed: readonly Skipped[];
}

/** Removing stale entries failed (other than "already gone"); everything else was applied. */
export class VxlanApplyError extends TwillError {
  readonly errors: readonly Error[];

  constructor(errors: Error[]) {
    const shown = errors.slice(0, 3).map((e) => e.message).join('; ');
    super('EVXLAN_APPLY', `cannot remove ${errors.length} stale VXLAN entr${errors.length === 1 ? 'y' : 'ies'}: ${shown}${errors.length > 3 ? '; ...' : ''}`);
    this.errors = errors;
  }
}

/** One of Twill's VXLAN devices: twill.N (4) or twill-v6.N (6). */
export interface VtepDevice {
  readonly index: number;
  readonly family: 4 | 6;
}


/** Errors that mean the entry is already gone (removed by hand, with its device, or by a replace). */
export function alreadyGone(err: unknown): boolean {
  return isNetlinkError(err, 'ENOENT') || isNetlinkError(err, 'ESRCH');
}

/**
 * `owned`: the cluster networks (route-sync.ts); `devices`: every VXLAN device of the network;
 * `written` keeps what was written, for the repair of single deleted entries (written-state.ts).
 */
export async function applyPlan(
  nl: NetlinkHandle, owned: readonly string[], devices: readonly VtepDevice[], peers: readonly PeerPlan[], written?: WrittenState,
): Promise<ApplyResult> {
  const haveNeigh = new Map<string, { index: number; ip: string; mac: string | undefined }>();
  const haveFdb = new Map<string, FdbSpec>();
  await Promise.all(devices.map(async ({ index, family }) => {
    const [neighbours, fdb] = await Promise.all([nl.listNeighbours(index), nl.listFdb(index)]);
    for (const n of neighbours) {
      if (n.permanent && n.ip.includes(':') === (family === 6)) haveNeigh.set(neighbourKey({ index, ip: n.ip }), { index, ip: n.ip, mac: n.mac });
    }
    // Entries without a destination are not remote VTEPs (none exist with learning off); leave them.
    for (const e of fdb) if (e.dst !== undefined) haveFdb.set(fdbKey({ index, mac: e.mac, dst: e.dst }), { index, mac: e.mac, dst: e.dst });
  }));

  // Each wanted entry with the subnets of the peers that need it (two leases of one node, a
  // stale lease beside the current one, share one FDB entry): that list is the entry's token in
  // the batch, so a refused entry names its peers without a second map keyed by strings.
  const wantNeigh = new Map<string, Wanted<NeighbourSpec>>();
  const wantFdb = new Map<string, Wanted<FdbSpec>>();
  for (const p of peers) {
    if (p.neighbour) want(wantNeigh, neighbourKey(p.neighbour), p.neighbour, p.subnet);
    if (p.fdb) want(wantFdb, fdbKey(p.fdb), p.fdb, p.subnet);
  }

  let changes = 0;
  const refused = new Map<string, string>(); // subnet -> why
  const removalErrors: Error[] = [];

  // Phase 1: neighbours, then FDB entries, sent together in that order. `replace` points an
  // existing MAC at a new destination in place (a peer's new PublicIP).
  const add = nl.batch<string[]>();
  // forEach, not for-of: these loops run once per sync, unoptimised, where for-of makes an entry
  // and a result object per element (6 of the 185 MB a 5,000-host start allocated, from these loops).
  wantNeigh.forEach((n, key) => { if (haveNeigh.get(key)?.mac !== n.spec.mac) add.replaceNeighbour(n.spec, n.subnets); });
  wantFdb.forEach((f, key) => { if (!haveFdb.has(key)) add.replaceFdb(f.spec, f.subnets); });
  const addFailures = await add.commit();
  changes += add.size - addFailures.length;
  for (const { token, error } of addFailures) {
    for (const s of token) if (!refused.has(s)) refused.set(s, `the kernel refused an entry: ${error.message}`);
  }

  // Phase 2: routes (replacements, then removals). A peer whose neighbour or FDB entry is missing
  // gets no route: traffic to it must not be sent into an overlay that cannot deliver it.
  const routes = peers.filter((p) => !refused.has(p.subnet)).map((p) => p.route);
  let result = await syncRoutes(nl, owned, routes, written);
  changes += result.replaced + result.deleted;
  // An IPv6 route that moves from the external interface to twill-v6.N must go first (onlink-blockers.ts).
  if (await clearOnlinkBlockers(nl, result, routes) > 0) {
    result = await syncRoutes(nl, owned, routes, written);
    changes += result.replaced + result.deleted;
  }
  const { writeFailed, removeFailed } = splitRouteFailures(result);
  for (const f of removeFailed) if (!alreadyGone(f.error)) removalErrors.push(f.error);

  // Phase 3: stale FDB entries, then stale neighbours.
  const remove = nl.batch<undefined>();
  haveFdb.forEach((e, key) => { if (!wantFdb.has(key)) remove.deleteFdb(e, undefined); });
  haveNeigh.forEach((n, key) => { if (!wantNeigh.has(key)) remove.deleteNeighbour({ index: n.index, ip: n.ip }, undefined); });
  const removeFailures = await remove.commit();
  changes += remove.size - removeFailures.length;
  for (const { error } of removeFailures) if (!alreadyGone(error)) removalErrors.push(error);

  written?.recordOverlay(specsOf(wantNeigh), specsOf(wantFdb));
  if (removalErrors.length > 0) throw new VxlanApplyError(removalErrors);
  return { changes, failed: [...[...refused].map(([subnet, reason]) => ({ subnet, reason, code: 'write_failed' as const })), ...writeFailed, ...result.refused] };
}

/** A kernel entry the plan wants, and the subnets of the peers that need it. */
interface Wanted<T> {
  readonly spec: T;
  readonly subnets: string[];
}

function want<T>(wanted: Map<string, Wanted<T>>, key: string, spec: T, subnet: string): void {
  const entry = wanted.get(key);
  if (entry) entry.subnets.push(subnet);
  else wanted.set(key, { spec, subnets: [subnet] });
}

function* specsOf<T>(wanted: Map<string, Wanted<T>>): Iterable<T> {
  for (const w of wanted.values()) yield w.spec;
}
