import { RtnlChannel, type MutationRequest } from './channel.js';
import { NetlinkBatch } from './batch.js';
import { NetlinkError } from './errors.js';
import type { LinkRef, NetlinkHandle, WatchOptions } from './handle.js';
import * as addresses from './addresses.js';
import * as links from './links.js';
import { LinkMonitor } from './link-monitor.js';
import * as neighbours from './neighbours.js';
import * as nexthops from './nexthops.js';
import { runInNetns } from './netns.js';
import * as routes from './routes.js';
import { readSysctl, writeSysctl } from './sysctl.js';
import type {
  Address, BridgeSpec, FdbEntry, FdbSpec, IpipSpec, Link, LinkChanges, Neighbour, NeighbourSpec, Nexthop, NexthopSpec, Route, RouteSpec,
  VethSpec, VxlanSpec,
} from './types.js';

export type { LinkRef } from './handle.js';

/**
 * Twill's netlink handle: one rtnetlink socket bound to one network namespace, with typed,
 * promise-returning operations. Requests issued together are pipelined (see channel.ts), so
 * `Promise.all(routes.map((r) => nl.replaceRoute(r)))` programs thousands of routes quickly.
 */
export class Netlink implements NetlinkHandle {
  private constructor(private readonly ch: RtnlChannel, readonly netnsPath: string | undefined) {}

  /** Opens a socket in the namespace at `netnsPath`, or in the caller's own namespace. */
  static open(netnsPath?: string): Netlink {
    const ch = netnsPath === undefined ? new RtnlChannel() : runInNetns(netnsPath, () => new RtnlChannel());
    return new Netlink(ch, netnsPath);
  }

  close(): void {
    this.ch.close();
  }

  // ---- links ----

  async getLink(ref: LinkRef): Promise<Link | undefined> {
    return typeof ref === 'number' ? links.getLinkByIndex(this.ch, ref) : links.getLinkByName(this.ch, ref);
  }

  /** Like getLink, but a missing link is an ENODEV NetlinkError naming it. */
  async requireLink(ref: LinkRef): Promise<Link> {
    const link = await this.getLink(ref);
    if (!link) throw new NetlinkError({ op: 'link.get', errno: 19, target: String(ref) }, 'no such interface');
    return link;
  }

  private async indexOf(ref: LinkRef): Promise<number> {
    return typeof ref === 'number' ? ref : (await this.requireLink(ref)).index;
  }

  listLinks(): Promise<Link[]> { return links.listLinks(this.ch); }
  createBridge(spec: BridgeSpec): Promise<void> { return links.createBridge(this.ch, spec); }
  createVeth(spec: VethSpec): Promise<void> { return links.createVeth(this.ch, spec); }
  createVxlan(spec: VxlanSpec): Promise<void> { return links.createVxlan(this.ch, spec); }
  createIpip(spec: IpipSpec): Promise<void> { return links.createIpip(this.ch, spec); }

  async setLink(ref: LinkRef, changes: LinkChanges): Promise<void> {
    return links.setLink(this.ch, await this.indexOf(ref), changes);
  }

  setUp(ref: LinkRef, up = true): Promise<void> { return this.setLink(ref, { up }); }
  setMtu(ref: LinkRef, mtu: number): Promise<void> { return this.setLink(ref, { mtu }); }
  setMac(ref: LinkRef, mac: string): Promise<void> { return this.setLink(ref, { mac }); }
  async setMaster(ref: LinkRef, master: LinkRef | null): Promise<void> {
    return this.setLink(ref, { masterIndex: master === null ? 0 : await this.indexOf(master) });
  }
  moveToNetns(ref: LinkRef, netnsPath: string): Promise<void> { return this.setLink(ref, { netnsPath }); }

  /** Fails with ENODEV when there is no such link. */
  async deleteLink(ref: LinkRef): Promise<void> {
    return links.deleteLink(this.ch, ref);
  }

  // ---- addresses ----

  async addAddress(ref: LinkRef, cidr: string, opts?: addresses.AddAddressOptions): Promise<void> { return addresses.addAddress(this.ch, await this.indexOf(ref), cidr, opts); }
  async replaceAddress(ref: LinkRef, cidr: string): Promise<void> { return addresses.replaceAddress(this.ch, await this.indexOf(ref), cidr); }
  async deleteAddress(ref: LinkRef, cidr: string): Promise<void> { return addresses.deleteAddress(this.ch, await this.indexOf(ref), cidr); }
  async listAddresses(ref?: LinkRef): Promise<Address[]> {
    return addresses.listAddresses(this.ch, ref === undefined ? undefined : await this.indexOf(ref));
  }

  // ---- routes (stamped with RTPROT_TWILL unless the spec says otherwise) ----

  replaceRoute(spec: RouteSpec): Promise<void> { return this.send(() => routes.replaceRouteRequest(spec)); }
  /** Adds a route; EEXIST when one with the same destination, table and metric exists (`ip route add`). */
  addRoute(spec: RouteSpec): Promise<void> { return this.send(() => routes.addRouteRequest(spec)); }
  deleteRoute(spec: RouteSpec): Promise<void> { return this.send(() => routes.deleteRouteRequest(spec)); }
  listRoutes(filter?: routes.RouteFilter): Promise<Route[]> { return routes.listRoutes(this.ch, filter); }

  // ---- nexthop objects (stamped with RTPROT_TWILL unless the spec says otherwise) ----

  addNexthop(spec: NexthopSpec): Promise<void> { return this.send(() => nexthops.addNexthopRequest(spec)); }
  replaceNexthop(spec: NexthopSpec): Promise<void> { return this.send(() => nexthops.replaceNexthopRequest(spec)); }
  deleteNexthop(id: number): Promise<void> { return this.send(() => nexthops.deleteNexthopRequest(id)); }
  listNexthops(): Promise<Nexthop[]> { return nexthops.listNexthops(this.ch); }

  // ---- neighbours and FDB ----

  replaceNeighbour(spec: NeighbourSpec): Promise<void> { return this.send(() => neighbours.replaceNeighbourRequest(spec)); }
  deleteNeighbour(spec: { index: number; ip: string }): Promise<void> { return this.send(() => neighbours.deleteNeighbourRequest(spec)); }
  listNeighbours(index?: number): Promise<Neighbour[]> { return neighbours.listNeighbours(this.ch, index); }
  appendFdb(spec: FdbSpec): Promise<void> { return this.send(() => neighbours.appendFdbRequest(spec)); }
  replaceFdb(spec: FdbSpec): Promise<void> { return this.send(() => neighbours.replaceFdbRequest(spec)); }
  deleteFdb(spec: { index: number; mac: string; dst?: string }): Promise<void> { return this.send(() => neighbours.deleteFdbRequest(spec)); }
  listFdb(index?: number): Promise<FdbEntry[]> { return neighbours.listFdb(this.ch, index); }

  /**
   * Collects neighbour, FDB, route and nexthop changes to send at once with one promise for all
   * (see NetlinkBatch): for syncs of thousands of entries.
   */
  batch<T>(): NetlinkBatch<T> { return new NetlinkBatch<T>(this.ch); }

  /** Sends one mutation; a spec that cannot be encoded rejects rather than throws. */
  private async send(build: () => MutationRequest): Promise<void> {
    const r = build();
    return this.ch.mutate(r.type, r.flags, r.body, r.label);
  }

  /**
   * Link notifications of this handle's namespace (creation, change, deletion). Close the
   * returned monitor when done.
   */
  watchLinks(options: WatchOptions = {}): LinkMonitor {
    return this.netnsPath === undefined ? new LinkMonitor(options) : runInNetns(this.netnsPath, () => new LinkMonitor(options));
  }

  // ---- sysctls of this handle's namespace ----

  readSysctl(key: string): string { return readSysctl(key, this.netnsPath); }
  writeSysctl(key: string, value: string | number): void { writeSysctl(key, value, this.netnsPath); }
}

/**
 * Runs `fn` with a netlink handle bound to the namespace at `path` and closes it afterwards.
 * The thread enters the namespace only while the socket is created (runInNetns), so awaiting
 * inside `fn` is safe and never leaves the thread in the wrong namespace.
 */
export async function withNetns<T>(path: string, fn: (nl: Netlink) => Promise<T>): Promise<T> {
  const nl = Netlink.open(path);
  try {
    return await fn(nl);
  } finally {
    nl.close();
  }
}
