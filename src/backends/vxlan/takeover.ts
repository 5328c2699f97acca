import { isNetlinkError, type NetlinkHandle } from '../../netlink/index.js';
import { OWN_NETNS_FILE, processesInNetns } from '../../core/local-processes.js';
import { onLinkMatcher } from '../on-link.js';
import { alreadyGone } from './apply.js';
import { decideTakeover, isFlannelDirectRoute, RTPROT_BOOT, type FlannelDevice, type TakeoverDecision } from './takeover-plan.js';

/**
 * Moving a host from flanneld (vxlan) to Twill in one step: stop flanneld, start twilld.
 *
 * flanneld leaves everything behind when it stops (0.20 panics on SIGTERM: flannel.md, "Observed
 * with the real flanneld"): flannel.<VNI> with a neighbour, an FDB entry and an onlink route per
 * peer, DirectRouting routes on the external interface, and its lease. The kernel allows one
 * VXLAN device per VNI and port, so twill.<VNI> cannot exist beside flannel.<VNI>. Nothing here
 * depends on how flanneld ended: only on the kernel state it left.
 *
 * The takeover, in two steps:
 *   1. register() (detectFlannel): the device is found, flanneld must not be running in this
 *      network namespace, and flannel's VTEP MAC is adopted (takeover-plan.ts) and published in
 *      the lease. The agent then takes over flannel's lease: it carries this host's PublicIP.
 *      flannel.<VNI> stays in place meanwhile and keeps carrying the pods' traffic.
 *   2. the first sync (removeFlannelState, then the usual device + entries), in one serialised
 *      step: flannel.<VNI> is deleted (the kernel drops its neighbours, FDB entries and routes
 *      with it), flannel's DirectRouting routes are deleted, and twill.<VNI> is created with the
 *      same MAC and the lease's /32, with every peer's entries at once.
 * Doing the swap at the first sync rather than in register() keeps the gap to one write of the
 * kernel state (milliseconds) instead of lease acquisition plus the watch's first snapshot, and
 * a twilld that stops before its first sync leaves flanneld's working state untouched.
 */

/** The pids of flanneld processes in the namespace of `nl` (/proc/<pid>/comm is "flanneld"). */
export function flanneldPids(nl: NetlinkHandle): number[] {
  return processesInNetns((p) => p.comm === 'flanneld', nl.netnsPath ?? OWN_NETNS_FILE).map((p) => p.pid);
}

export type FoundFlannel = Extract<TakeoverDecision, { action: 'take-over' }>;

/**
 * Step 1: flannel's device of this VNI and port, if there is one to take over. Throws
 * EFLANNELD_RUNNING (naming the pids) while flanneld runs in this namespace.
 */
export async function detectFlannel(
  nl: NetlinkHandle, want: { vni: number; port: number; localIp: string; family?: 4 | 6 }, findFlanneld: (nl: NetlinkHandle) => number[] = flanneldPids,
): Promise<FoundFlannel | undefined> {
  const links = await nl.listLinks();
  // The /proc scan only when there is a device to take over: every other start skips it.
  const flannelish = decideTakeover({ ...want, links, flanneldPids: [] });
  if (flannelish.action === 'none') return undefined;
  const decision = decideTakeover({ ...want, links, flanneldPids: findFlanneld(nl) });
  if (decision.action === 'refuse') throw decision.error;
  return decision.action === 'take-over' ? decision : undefined;
}

export interface FlannelRemoval {
  /** The device deleted now, with what went with it; undefined when it was already gone. */
  readonly device: { readonly name: string; readonly mac: string | undefined; readonly neighbours: number; readonly fdb: number; readonly routes: number } | undefined;
  /** flannel's DirectRouting routes deleted ("10.244.9.0/24 via 198.18.0.3"). */
  readonly directRoutes: readonly string[];
  /** Direct routes the kernel refused to delete; the next sync tries again. */
  readonly errors: readonly Error[];
}

export interface RemovalContext {
  readonly vni: number;
  readonly port: number;
  /** The cluster network of the device's family: flannel's DirectRouting routes of that family go. */
  readonly clusterNetwork: string;
  readonly extIndex: number;
}

/**
 * Step 2: deletes flannel's device (if it is still flannel's: VXLAN, same VNI and port) and its
 * DirectRouting routes. Idempotent, so a failed step is simply run again. Throws when the device
 * cannot be deleted: twill.<VNI> could not be created beside it.
 */
export async function removeFlannelState(nl: NetlinkHandle, found: FlannelDevice, ctx: RemovalContext): Promise<FlannelRemoval> {
  let device: FlannelRemoval['device'];
  const family = ctx.clusterNetwork.includes(':') ? 6 : 4;
  const link = await nl.getLink(found.name);
  if (link?.kind === 'vxlan' && link.vxlan?.vni === ctx.vni && link.vxlan.port === ctx.port) {
    const [neighbours, fdb, routes] = await Promise.all([
      nl.listNeighbours(link.index), nl.listFdb(link.index), nl.listRoutes({ family, oif: link.index }),
    ]);
    try {
      await nl.deleteLink(link.index);
      device = {
        name: link.name, mac: link.mac,
        neighbours: neighbours.filter((n) => n.permanent).length,
        fdb: fdb.filter((e) => e.dst !== undefined).length,
        routes: routes.length,
      };
    } catch (err) {
      if (!isNetlinkError(err, 'ENODEV')) throw err;
    }
  }

  const onLink = onLinkMatcher((await nl.listAddresses(ctx.extIndex)).map((a) => a.cidr));
  const direct = (await nl.listRoutes({ family, oif: ctx.extIndex })).filter((r) => isFlannelDirectRoute(r, { clusterNetwork: ctx.clusterNetwork, extIndex: ctx.extIndex, onLink }));
  const remove = nl.batch<string>();
  // The protocol stays in the request (it is part of how the kernel matches a route to delete),
  // so a route that turned into someone else's meanwhile is not deleted.
  for (const r of direct) remove.deleteRoute({ dst: r.dst, gateway: r.gateway!, oif: ctx.extIndex, protocol: RTPROT_BOOT }, `${r.dst} via ${r.gateway!}`);
  const failures = await remove.commit();
  const failed = new Set(failures.map((f) => f.token));
  const errors = failures.filter((f) => !alreadyGone(f.error)).map((f) => f.error);
  return { device, directRoutes: direct.map((r) => `${r.dst} via ${r.gateway!}`).filter((r) => !failed.has(r)), errors };
}
