// Between the codec's packed UPDATE and the RIB and the speaker's 'routes' event.
//
// The RIB takes the prefixes as numbers with one path per family (toReceivedBatch); the event
// gives them as Route objects, which cost a string and an object per prefix. They are made when
// a listener first reads them (routesEvent): twillctl bgp serve without --print-routes only
// counts, and then a table transfer makes none at all.

import type { PrefixList } from './prefix/prefix-list.js';
import type { BatchResult, ReceivedBatch, Rejection } from './rib/rib.js';
import type { Family, Prefix, Route } from './types.js';
import type { PackedUpdate } from './wire/index.js';

/** Routes one UPDATE (or a run of UPDATEs joined on receipt, wire/update-join.ts; or a session loss, or a stale sweep) changed in one peer's Adj-RIB-In. */
export interface PeerRoutesEvent {
  readonly peer: string;
  readonly announced: readonly Route[];
  readonly withdrawn: readonly { readonly family: Family; readonly prefix: Prefix }[];
  readonly rejected: readonly Rejection[];
}

/**
 * A decoded UPDATE as the RIB takes it: classic IPv4 NLRI and withdrawals plus the MP_REACH /
 * MP_UNREACH ones (RFC 4760), each family's prefixes sharing one path made from the message's
 * one attributes object.
 */
export function toReceivedBatch(update: PackedUpdate): ReceivedBatch {
  const withdrawn = [update.withdrawn];
  if (update.mpUnreach) withdrawn.push(update.mpUnreach.withdrawn);
  const announced = [];
  const attributes = update.attributes;
  if (attributes) {
    if (update.nlri.count > 0) announced.push({ prefixes: update.nlri, path: { family: 'ipv4-unicast' as const, nextHop: attributes.nextHop ?? '', attributes } });
    const mp = update.mpReach;
    // RFC 2545 §3: the first next hop is the global one; a link-local second one is not installable off-link.
    if (mp && mp.nlri.count > 0) announced.push({ prefixes: mp.nlri, path: { family: mp.family, nextHop: mp.nextHops[0] ?? '', attributes } });
  }
  return { withdrawn, announced };
}

/**
 * The 'routes' event of one applied UPDATE: the announcements import policy let through (a
 * refused one is in `rejected` instead), the withdrawals, then the accepted routes a refused
 * re-announcement withdrew. Each list is made on first read, by a getter of the object literal
 * (enumerable, so JSON.stringify, spreading and deep equality see it like a plain property), and
 * then kept. A table transfer can bring one event per prefix: getters written in the literal cost
 * a third of defining them on the object one by one (Object.defineProperty), which also turned
 * every event into a slow dictionary-mode object.
 */
export function routesEvent(peer: string, batch: ReceivedBatch, result: BatchResult): PeerRoutesEvent {
  let announced: Route[] | undefined;
  let withdrawn: { family: Family; prefix: Prefix }[] | undefined;
  let rejected: Rejection[] | undefined;
  return {
    peer,
    get announced() { return (announced ??= announcedRoutes(batch, result)); },
    get withdrawn() { return (withdrawn ??= [...withdrawals(batch.withdrawn), ...result.replacedByRejected]); },
    get rejected() { return (rejected ??= result.rejected.map((r) => ({ route: routeAt(batch, r.group, r.index), reason: r.reason }))); },
  };
}

/** The 'routes' event of prefixes withdrawn by our side (a session gone for good). */
export function withdrawnEvent(peer: string, withdrawnLists: readonly PrefixList[]): PeerRoutesEvent {
  let withdrawn: { family: Family; prefix: Prefix }[] | undefined;
  return {
    peer, announced: [], rejected: [],
    get withdrawn() { return (withdrawn ??= withdrawals(withdrawnLists)); },
  };
}

function withdrawals(lists: readonly PrefixList[]): { family: Family; prefix: Prefix }[] {
  const out: { family: Family; prefix: Prefix }[] = [];
  for (const list of lists) for (let i = 0; i < list.count; i++) out.push({ family: list.family, prefix: list.text(i) });
  return out;
}

function announcedRoutes(batch: ReceivedBatch, result: BatchResult): Route[] {
  const out: Route[] = [];
  // Rejections are in the order the prefixes were decided: group by group, index by index.
  const rejected = result.rejected;
  let r = 0;
  for (let g = 0; g < batch.announced.length; g++) {
    const count = batch.announced[g]!.prefixes.count;
    for (let i = 0; i < count; i++) {
      const next = rejected[r];
      if (next !== undefined && next.group === g && next.index === i) {
        r++;
        continue;
      }
      out.push(routeAt(batch, g, i));
    }
  }
  return out;
}

function routeAt(batch: ReceivedBatch, group: number, index: number): Route {
  const { prefixes, path } = batch.announced[group]!;
  return { family: path.family, prefix: prefixes.text(index), nextHop: path.nextHop, attributes: path.attributes };
}
