import { groupKey, hopKey, viaNexthops } from './nexthop-form.js';
import {
  RT_TABLE_MAIN, RTPROT_TWILL, type FdbSpec, type KernelDeletion, type NeighbourSpec, type NetlinkHandle, type Nexthop, type NexthopSpec, type RouteSpec,
} from '../netlink/index.js';

/**
 * What a backend's last sync left in the kernel, by the key a deletion notification carries:
 * routes by destination (as written: through Twill's nexthop where it has one), the nexthops
 * those routes name, and vxlan's neighbours and FDB entries. The specs are the ones the sync
 * built anyway; keeping them is what lets a deleted entry be rewritten on its own, at once,
 * without a dump of the whole table (repairDeletions). The next sync replaces each part whole.
 */
export class WrittenState {
  #routes = new Map<string, RouteSpec>();
  #nexthops = new Map<number, NexthopSpec>();
  #neighbours = new Map<string, NeighbourSpec>();
  #fdb = new Map<string, FdbSpec>();
  /** Whether the last route sync had nexthop objects (false: a kernel before 5.3, plain routes). */
  #viaNexthops = true;
  /** The recorded single nexthops by what they are (hopKey), and the groups by member set. */
  #singleIds = new Map<string, number>();
  #groupIds = new Map<string, number>();

  /**
   * The routes of the last route sync that are in the kernel (written, or found as wanted) and
   * the nexthops they name (groups' members included); `viaNexthops` false when the kernel has
   * no nexthop objects.
   */
  recordRoutes(routes: readonly RouteSpec[], nexthops: ReadonlyMap<number, NexthopSpec>, viaNexthops = true): void {
    this.#routes = new Map(routes.map((r) => [r.dst, r]));
    this.#nexthops = new Map(nexthops);
    this.#viaNexthops = viaNexthops;
    this.#singleIds = new Map();
    this.#groupIds = new Map();
    for (const n of nexthops.values()) {
      if (n.group !== undefined) this.#groupIds.set(groupKey(n.group.map((m) => m.id)), n.id);
      else if (n.gateway !== undefined && n.oif !== undefined) this.#singleIds.set(hopKey({ gateway: n.gateway, oif: n.oif, onlink: n.onlink }), n.id);
    }
  }

  /**
   * `want` as the last sync would have written it: through the recorded nexthop (or group) of its
   * next hops, or plain where the kernel has no nexthop objects or they cannot express it.
   * Undefined when it needs a nexthop that sync did not write: only a full sync, which lists the
   * ids in use, makes new ones.
   */
  expressed(want: RouteSpec): RouteSpec | undefined {
    if (!this.#viaNexthops) return want;
    return viaNexthops(want, (hop) => this.#singleIds.get(hopKey(hop)),
      (members) => this.#groupIds.get(groupKey(members)));
  }

  /** After a write of `route` alone (route-changes.ts). */
  setRoute(route: RouteSpec): void {
    this.#routes.set(route.dst, route);
  }

  /** After `dst`'s route was removed, or stopped being Twill's. */
  forgetRoute(dst: string): void {
    this.#routes.delete(dst);
  }

  /** vxlan's permanent neighbours and FDB entries of the last sync. */
  recordOverlay(neighbours: Iterable<NeighbourSpec>, fdb: Iterable<FdbSpec>): void {
    this.#neighbours = new Map([...neighbours].map((n) => [neighbourKey(n), n]));
    this.#fdb = new Map([...fdb].map((f) => [fdbKey(f), f]));
  }

  get size(): number {
    return this.#routes.size + this.#nexthops.size + this.#neighbours.size + this.#fdb.size;
  }

  route(dst: string): RouteSpec | undefined { return this.#routes.get(dst); }
  nexthop(id: number): NexthopSpec | undefined { return this.#nexthops.get(id); }
  neighbour(key: { index: number; ip: string }): NeighbourSpec | undefined { return this.#neighbours.get(neighbourKey(key)); }
  fdbEntry(key: { index: number; mac: string; dst?: string | undefined }): FdbSpec | undefined { return this.#fdb.get(fdbKey(key)); }

  /**
   * Whether `d` names an entry this state holds (as a sync of Twill's wrote it): the only
   * deletions worth a repair. Twill's own removals are not held any more once their sync is done.
   */
  holds(d: KernelDeletion): boolean {
    switch (d.kind) {
      case 'neighbour': return this.neighbour(d.neighbour) !== undefined;
      case 'fdb': return this.fdbEntry(d.entry) !== undefined;
      case 'nexthop': return this.nexthop(d.id) !== undefined;
      case 'route': return d.route.protocol === RTPROT_TWILL && d.route.table === RT_TABLE_MAIN && this.route(d.route.dst) !== undefined;
      case 'foreign-route': return d.route.table === RT_TABLE_MAIN && this.route(d.route.dst) !== undefined;
    }
  }

  /** Whether a recorded route names nexthop `id`, itself or through a group that holds it. */
  namesNexthop(id: number): boolean {
    const groups = new Set(this.groupsOf(id).map((g) => g.id));
    for (const r of this.#routes.values()) if (r.nexthopId !== undefined && (r.nexthopId === id || groups.has(r.nexthopId))) return true;
    return false;
  }

  /** The groups that hold nexthop `id`. */
  groupsOf(id: number): NexthopSpec[] {
    return [...this.#nexthops.values()].filter((n) => n.group?.some((m) => m.id === id));
  }

  /** The routes that name one of `ids`. */
  routesThrough(ids: ReadonlySet<number>): RouteSpec[] {
    return [...this.#routes.values()].filter((r) => r.nexthopId !== undefined && ids.has(r.nexthopId));
  }
}

export const neighbourKey = (e: { index: number; ip: string }): string => `${e.index} ${e.ip}`;
export const fdbKey = (e: { index: number; mac: string; dst?: string | undefined }): string => `${e.index} ${e.mac}>${e.dst ?? ''}`;

/** A listed nexthop as the spec that would write it again. */
export function nexthopSpecOf(n: Nexthop): NexthopSpec | undefined {
  if (n.members !== undefined) return { id: n.id, group: n.members.map((m) => ({ id: m.id, weight: m.weight })) };
  return n.gateway !== undefined && n.oif !== undefined ? { id: n.id, gateway: n.gateway, oif: n.oif, onlink: n.onlink } : undefined;
}

export interface DeletionRepair {
  /** Entries written again. */
  readonly written: number;
  /** Writes the kernel refused: the caller then resyncs in full, which knows why. */
  readonly failed: number;
  /** What was written, for the log ("route 10.244.3.0/24", "fdb 0a:..>198.18.0.3"). */
  readonly entries: readonly string[];
}

/**
 * Writes again, in one batch, what a sync of Twill's wrote and somebody else deleted: each
 * deleted route, neighbour, FDB entry and nexthop that `state` holds, and the routes and groups
 * that named a deleted nexthop (the kernel drops those with it, for IPv4 without telling:
 * fib_table_flush() sends no RTM_DELROUTE). Deletions of anything else (Twill's own removals, a
 * route of another protocol, another table) are none of its business. A deleted route comes back
 * with an exclusive add, so a route somebody put in its place is not overwritten: the write fails
 * and the full resync that follows refuses the destination with its reason.
 */
export async function repairDeletions(nl: NetlinkHandle, state: WrittenState, deletions: readonly KernelDeletion[]): Promise<DeletionRepair> {
  const neighbours = new Map<string, NeighbourSpec>();
  const fdb = new Map<string, FdbSpec>();
  const lostNexthops = new Set<number>();
  const routes = new Map<string, RouteSpec>();
  let taken = 0;
  for (const d of deletions) {
    if (!state.holds(d)) continue;
    if (d.kind === 'foreign-route') {
      // Somebody else's route now: never written over. The full sync that the failure brings
      // on refuses the destination with its reason.
      state.forgetRoute(d.route.dst);
      routes.delete(d.route.dst);
      taken += 1;
      continue;
    }
    if (d.kind === 'neighbour') neighbours.set(neighbourKey(d.neighbour), state.neighbour(d.neighbour)!);
    else if (d.kind === 'fdb') fdb.set(fdbKey(d.entry), state.fdbEntry(d.entry)!);
    else if (d.kind === 'nexthop') lostNexthops.add(d.id);
    else routes.set(d.route.dst, state.route(d.route.dst)!);
  }
  const singles = [...lostNexthops].map((id) => state.nexthop(id)!).filter((n) => n.group === undefined);
  const groups = new Map<number, NexthopSpec>();
  for (const id of lostNexthops) {
    const spec = state.nexthop(id)!;
    if (spec.group !== undefined) groups.set(id, spec);
    for (const g of state.groupsOf(id)) groups.set(g.id, g); // the kernel took the member out of them
  }
  for (const r of state.routesThrough(new Set([...lostNexthops, ...groups.keys()]))) routes.set(r.dst, r);

  // In the order a sync writes: neighbours and FDB entries before the routes that need them,
  // members before their groups, nexthops before their routes.
  const batch = nl.batch<string>();
  for (const n of neighbours.values()) batch.replaceNeighbour(n, `neighbour ${n.ip} on ${n.index}`);
  for (const f of fdb.values()) batch.replaceFdb(f, `fdb ${f.mac}>${f.dst ?? ''} on ${f.index}`);
  for (const n of singles) batch.addNexthop(n, `nexthop ${n.id}`);
  for (const g of groups.values()) batch.replaceNexthop(g, `nexthop group ${g.id}`);
  for (const r of routes.values()) batch.addRoute(r, `route ${r.dst}`);
  if (batch.size === 0) return { written: 0, failed: taken, entries: [] };
  const entries = [...neighbours.values()].map((n) => `neighbour ${n.ip} on ${n.index}`)
    .concat([...fdb.values()].map((f) => `fdb ${f.mac}>${f.dst ?? ''} on ${f.index}`), singles.map((n) => `nexthop ${n.id}`),
      [...groups.keys()].map((id) => `nexthop group ${id}`), [...routes.keys()].map((dst) => `route ${dst}`));
  const failures = await batch.commit();
  const failed = new Set(failures.map((f) => f.token));
  return { written: batch.size - failures.length, failed: failures.length + taken, entries: entries.filter((e) => !failed.has(e)) };
}
