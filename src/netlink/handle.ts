import type { EventEmitter } from 'node:events';
import type { AddAddressOptions } from './addresses.js';
import type { RouteFilter } from './routes.js';
import type {
  Address, BridgeSpec, FdbEntry, FdbSpec, IpipSpec, Link, LinkChanges, Neighbour, NeighbourSpec, Nexthop, NexthopSpec, Route, RouteSpec,
  VethSpec, VxlanSpec,
} from './types.js';

/**
 * What code outside src/netlink may ask of a netlink handle: the operations of `Netlink`
 * (netlink.ts), which implements this. Backends, route-sync, the agent and the ensure helpers
 * take a `NetlinkHandle`, so unit tests can hand them an in-memory kernel (test/fakes/netlink.ts)
 * and need no root; the netns tier keeps proving what only the kernel can.
 */

/** A link by name ("cni0") or by index. */
export type LinkRef = string | number;

/** One mutation of a batch that failed: the caller's token for it, and why. */
export interface BatchFailure<T> {
  readonly token: T;
  readonly error: Error;
}

/**
 * Mutations collected to be sent together, with one promise for all (NetlinkBatch in batch.ts).
 * Each carries a token of the caller's, handed back with its error; each may fail on its own
 * while the others are applied.
 */
export interface MutationBatch<T> {
  /** Mutations added so far. */
  readonly size: number;
  replaceNeighbour(spec: NeighbourSpec, token: T): this;
  deleteNeighbour(spec: { index: number; ip: string }, token: T): this;
  appendFdb(spec: FdbSpec, token: T): this;
  replaceFdb(spec: FdbSpec, token: T): this;
  deleteFdb(spec: { index: number; mac: string; dst?: string | undefined }, token: T): this;
  replaceRoute(spec: RouteSpec, token: T): this;
  addRoute(spec: RouteSpec, token: T): this;
  deleteRoute(spec: RouteSpec, token: T): this;
  addNexthop(spec: NexthopSpec, token: T): this;
  replaceNexthop(spec: NexthopSpec, token: T): this;
  deleteNexthop(id: number, token: T): this;
  /** Sends everything added; resolves, once the kernel has answered all, with the failures. */
  commit(): Promise<BatchFailure<T>[]>;
}

export interface LinkEvent {
  /** 'new' covers creation and any change of an existing link (up/down, MTU, master...). */
  readonly type: 'new' | 'deleted';
  readonly link: Link;
}

/**
 * An entry the kernel reports deleted (RTM_DELROUTE, RTM_DELNEIGH, RTM_DELNEXTHOP), whoever
 * deleted it, or a route somebody else added (possibly over one of Twill's). Only a watch opened
 * with `deletions` reports them.
 */
export type KernelDeletion =
  | { readonly kind: 'route'; readonly route: Route }
  | { readonly kind: 'neighbour'; readonly neighbour: Neighbour }
  | { readonly kind: 'fdb'; readonly entry: FdbEntry }
  | { readonly kind: 'nexthop'; readonly id: number }
  /**
   * A route of another protocol added or put in place of one (RTM_NEWROUTE, main table): where
   * Twill had its own route, the destination is somebody else's now. The kernel sends no
   * RTM_DELROUTE for a route it replaced.
   */
  | { readonly kind: 'foreign-route'; readonly route: Route };

export interface WatchOptions {
  /**
   * Also report deleted routes (main table, both families), neighbours, FDB entries and nexthops:
   * what lets a backend repair an entry deleted by hand at once instead of at the next resync.
   */
  readonly deletions?: boolean;
}

export interface LinkWatchEvents {
  link: [event: LinkEvent];
  deleted: [entry: KernelDeletion];
  /** The socket failed (ENOBUFS after a burst: events were lost; resync from scratch). */
  error: [err: Error];
}

/** Link notifications of one namespace (LinkMonitor in link-monitor.ts); close it when done. */
export interface LinkWatch extends EventEmitter<LinkWatchEvents> {
  close(): void;
}

export interface NetlinkHandle {
  /** The namespace the handle works in; undefined for the caller's own. */
  readonly netnsPath: string | undefined;
  close(): void;

  // ---- links ----
  getLink(ref: LinkRef): Promise<Link | undefined>;
  /** Like getLink, but a missing link is an ENODEV NetlinkError naming it. */
  requireLink(ref: LinkRef): Promise<Link>;
  listLinks(): Promise<Link[]>;
  createBridge(spec: BridgeSpec): Promise<void>;
  createVeth(spec: VethSpec): Promise<void>;
  createVxlan(spec: VxlanSpec): Promise<void>;
  createIpip(spec: IpipSpec): Promise<void>;
  setLink(ref: LinkRef, changes: LinkChanges): Promise<void>;
  setUp(ref: LinkRef, up?: boolean): Promise<void>;
  setMtu(ref: LinkRef, mtu: number): Promise<void>;
  setMac(ref: LinkRef, mac: string): Promise<void>;
  setMaster(ref: LinkRef, master: LinkRef | null): Promise<void>;
  moveToNetns(ref: LinkRef, netnsPath: string): Promise<void>;
  /** Fails with ENODEV when there is no such link. */
  deleteLink(ref: LinkRef): Promise<void>;

  // ---- addresses ----
  /** `opts.noDad`: IFA_F_NODAD for an IPv6 address (ignored for IPv4). */
  addAddress(ref: LinkRef, cidr: string, opts?: AddAddressOptions): Promise<void>;
  replaceAddress(ref: LinkRef, cidr: string): Promise<void>;
  deleteAddress(ref: LinkRef, cidr: string): Promise<void>;
  listAddresses(ref?: LinkRef): Promise<Address[]>;

  // ---- routes (stamped with RTPROT_TWILL unless the spec says otherwise) ----
  replaceRoute(spec: RouteSpec): Promise<void>;
  /** Adds a route; EEXIST when one with the same destination, table and metric exists (`ip route add`). */
  addRoute(spec: RouteSpec): Promise<void>;
  deleteRoute(spec: RouteSpec): Promise<void>;
  listRoutes(filter?: RouteFilter): Promise<Route[]>;

  // ---- nexthop objects (stamped with RTPROT_TWILL unless the spec says otherwise) ----
  addNexthop(spec: NexthopSpec): Promise<void>;
  replaceNexthop(spec: NexthopSpec): Promise<void>;
  deleteNexthop(id: number): Promise<void>;
  listNexthops(): Promise<Nexthop[]>;

  // ---- neighbours and FDB ----
  replaceNeighbour(spec: NeighbourSpec): Promise<void>;
  deleteNeighbour(spec: { index: number; ip: string }): Promise<void>;
  listNeighbours(index?: number): Promise<Neighbour[]>;
  appendFdb(spec: FdbSpec): Promise<void>;
  replaceFdb(spec: FdbSpec): Promise<void>;
  deleteFdb(spec: { index: number; mac: string; dst?: string }): Promise<void>;
  listFdb(index?: number): Promise<FdbEntry[]>;

  /** Neighbour, FDB, route and nexthop changes to send at once, with one promise for all. */
  batch<T>(): MutationBatch<T>;
  /** Link notifications of this handle's namespace (creation, change, deletion), and with `deletions` deleted entries. */
  watchLinks(options?: WatchOptions): LinkWatch;

  // ---- sysctls of this handle's namespace ----
  readSysctl(key: string): string;
  writeSysctl(key: string, value: string | number): void;
}
