import { TwillError } from '../../core/errors.js';
import { isNetlinkError, type FdbSpec, type Netlink, type NeighbourSpec } from '../../netlink/index.js';
import { syncRoutes } from '../route-sync.js';
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
  /** Peers whose entries the kernel refused; the next sync or resync tries again. */
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
function alreadyGone(err: unknown): boolean {
  return isNetlinkError(err, 'ENOENT') || isNetlinkError(err, 'ESRCH');
}

export async function applyPlan(nl: Netlink, clusterNetwork: string, vxlanIndex: number, peers: readonly PeerPlan[]): Promise<ApplyResult> {
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
  // then() rather than an async wrapper: one promise less per entry, thousands in a big sync.
  const write = (op: Promise<void>, onError: (err: Error) => void): Promise<void> =>
    op.then(() => { changes++; }, (err: unknown) => onError(err as Error));
  const refuse = (key: string) => (err: Error): void => {
    for (const s of subnetsOf.get(key) ?? []) if (!refused.has(s)) refused.set(s, `the kernel refused an entry: ${err.message}`);
  };
  const remove = (err: Error): void => { if (!alreadyGone(err)) removalErrors.push(err); };

  // Phase 1: neighbours, then FDB entries, issued together (the channel keeps the order).
  // `replace` points an existing MAC at a new destination in place (a peer's new PublicIP).
  await Promise.all([
    ...[...wantNeigh.values()].filter((n) => haveNeigh.get(n.ip) !== n.mac)
      .map((n) => write(nl.replaceNeighbour(n), refuse(`n ${n.ip}`))),
    ...[...wantFdb.entries()].filter(([key]) => !haveFdb.has(key))
      .map(([key, f]) => write(nl.replaceFdb(f), refuse(`f ${key}`))),
  ]);

  // Phase 2: routes (replacements, then removals). A peer whose neighbour or FDB entry is missing
  // gets no route: traffic to it must not be sent into an overlay that cannot deliver it.
  const routes = peers.filter((p) => !refused.has(p.subnet)).map((p) => p.route);
  const wanted = new Set(routes.map((r) => r.dst));
  const result = await syncRoutes(nl, clusterNetwork, routes);
  changes += result.replaced + result.deleted;
  for (const f of result.failed) {
    if (wanted.has(f.dst)) refused.set(f.dst, `the kernel refused the route: ${f.error.message}`);
    else remove(f.error);
  }

  // Phase 3: stale FDB entries, then stale neighbours.
  await Promise.all([
    ...[...haveFdb.entries()].filter(([key]) => !wantFdb.has(key))
      .map(([, e]) => write(nl.deleteFdb({ index: vxlanIndex, mac: e.mac, dst: e.dst! }), remove)),
    ...[...haveNeigh.keys()].filter((ip) => !wantNeigh.has(ip))
      .map((ip) => write(nl.deleteNeighbour({ index: vxlanIndex, ip }), remove)),
  ]);

  if (removalErrors.length > 0) throw new VxlanApplyError(removalErrors);
  return { changes, failed: [...refused].map(([subnet, reason]) => ({ subnet, reason })) };
}
