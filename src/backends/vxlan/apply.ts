import { TwillError } from '../../core/errors.js';
import { isNetlinkError, type FdbSpec, type NeighbourSpec, type NetlinkHandle } from '../../netlink/index.js';
import { splitRouteFailures, syncRoutes } from '../route-sync.js';
import type { PeerPlan, Skipped } from './plan.js';

/**
 * Makes the kernel hold exactly the planned entries: diffs the VXLAN device's permanent
 * neighbours, its FDB entries with a destination, and Twill's routes (route-sync.ts) against the
 * plan, then writes only the difference. The device is Twill's, so every permanent neighbour and
 * every FDB entry with a destination on it is Twill's to remove.
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

const fdbKey = (e: { mac: string; dst?: string | undefined }): string => `${e.mac}>${e.dst ?? ''}`;

/** Errors that mean the entry is already gone (removed by hand, with its device, or by a replace). */
export function alreadyGone(err: unknown): boolean {
  return isNetlinkError(err, 'ENOENT') || isNetlinkError(err, 'ESRCH');
}

export async function applyPlan(nl: NetlinkHandle, clusterNetwork: string, vxlanIndex: number, peers: readonly PeerPlan[]): Promise<ApplyResult> {
  const haveNeigh = new Map<string, string | undefined>();
  for (const n of await nl.listNeighbours(vxlanIndex)) {
    if (n.permanent && !n.ip.includes(':')) haveNeigh.set(n.ip, n.mac);
  }
  // Entries without a destination are not remote VTEPs (none exist with learning off); leave them.
  const haveFdb = new Map((await nl.listFdb(vxlanIndex)).filter((e) => e.dst !== undefined).map((e) => [fdbKey(e), e]));

  const wantNeigh = new Map<string, NeighbourSpec>();
  const wantFdb = new Map<string, FdbSpec>();
  const subnetsOf = new Map<string, string[]>(); // entry key -> the peers that need it
  const need = (key: string, subnet: string): void => {
    const list = subnetsOf.get(key);
    if (list) list.push(subnet);
    else subnetsOf.set(key, [subnet]);
  };
  for (const p of peers) {
    if (p.neighbour) { wantNeigh.set(p.neighbour.ip, p.neighbour); need(`n ${p.neighbour.ip}`, p.subnet); }
    // Two leases of one node (a stale lease beside the current one) share one FDB entry.
    if (p.fdb) { wantFdb.set(fdbKey(p.fdb), p.fdb); need(`f ${fdbKey(p.fdb)}`, p.subnet); }
  }

  let changes = 0;
  const refused = new Map<string, string>(); // subnet -> why
  const removalErrors: Error[] = [];

  // Phase 1: neighbours, then FDB entries, sent together in that order. The token of each is the
  // key of the peers that need it. `replace` points an existing MAC at a new destination in place
  // (a peer's new PublicIP).
  const add = nl.batch<string>();
  for (const n of wantNeigh.values()) if (haveNeigh.get(n.ip) !== n.mac) add.replaceNeighbour(n, `n ${n.ip}`);
  for (const [key, f] of wantFdb) if (!haveFdb.has(key)) add.replaceFdb(f, `f ${key}`);
  const addFailures = await add.commit();
  changes += add.size - addFailures.length;
  for (const { token, error } of addFailures) {
    for (const s of subnetsOf.get(token) ?? []) if (!refused.has(s)) refused.set(s, `the kernel refused an entry: ${error.message}`);
  }

  // Phase 2: routes (replacements, then removals). A peer whose neighbour or FDB entry is missing
  // gets no route: traffic to it must not be sent into an overlay that cannot deliver it.
  const routes = peers.filter((p) => !refused.has(p.subnet)).map((p) => p.route);
  const result = await syncRoutes(nl, clusterNetwork, routes);
  changes += result.replaced + result.deleted;
  const { writeFailed, removeFailed } = splitRouteFailures(result);
  for (const f of removeFailed) if (!alreadyGone(f.error)) removalErrors.push(f.error);

  // Phase 3: stale FDB entries, then stale neighbours.
  const remove = nl.batch<undefined>();
  for (const [key, e] of haveFdb) if (!wantFdb.has(key)) remove.deleteFdb({ index: vxlanIndex, mac: e.mac, dst: e.dst! }, undefined);
  for (const ip of haveNeigh.keys()) if (!wantNeigh.has(ip)) remove.deleteNeighbour({ index: vxlanIndex, ip }, undefined);
  const removeFailures = await remove.commit();
  changes += remove.size - removeFailures.length;
  for (const { error } of removeFailures) if (!alreadyGone(error)) removalErrors.push(error);

  if (removalErrors.length > 0) throw new VxlanApplyError(removalErrors);
  return { changes, failed: [...[...refused].map(([subnet, reason]) => ({ subnet, reason, code: 'write_failed' as const })), ...writeFailed, ...result.refused] };
}
