/**
 * An in-memory NetlinkHandle: what backends, route-sync and the agent get instead of a kernel
 * socket in unit tests (no root). The kernel it talks to is `kernel` (netlink-kernel.ts: links,
 * addresses, routes, nexthops, neighbours, FDB, sysctls, with the semantics listed there); this
 * file is the handle: the same calls, batches and link watches as src/netlink's Netlink, plus
 * what a test needs around them:
 *
 *   - `writes` / `writeLog()`: every mutation this handle sent, in order, failed ones marked
 *     ("route.add 10.244.2.0/24", "nexthop.add id 1953955840 via 198.18.0.2 !ENETDOWN"), so a
 *     test can say "a converged sync writes nothing";
 *   - `fail(op, errno, { when, times })`: the kernel refuses chosen requests (reads too);
 *   - `before(op, fn)`: runs `fn` right before a request is answered, e.g. another owner's route
 *     appearing between route-sync's listing and its write (a real race, answered by the kernel);
 *   - `loseNotifications()`: open link watches report ENOBUFS, as after a burst;
 *   - `notify(entry)`: open watches report a deleted entry or a foreign route;
 *   - `new FakeNetlink({ nexthops: false })`: a kernel without nexthop objects.
 *
 * Requests are applied in call order, each when it is made; the promise settles afterwards, as
 * the kernel answers a pipelined request. Errors are NetlinkErrors with the kernel's errno (or
 * the real encoder's InvalidArgumentError for a spec it cannot encode).
 */
import type {
  Address, BridgeSpec, FdbEntry, FdbSpec, IpipSpec, KernelDeletion, Link, LinkChanges, LinkRef, LinkWatch, MutationBatch, Neighbour, NeighbourSpec,
  NetlinkHandle, Nexthop, NexthopSpec, Route, RouteFilter, RouteSpec, VethSpec, VxlanSpec,
} from '../../src/netlink/index.js';
import { FakeBatch, FakeLinkWatch } from './netlink-batch.js';
import { kernelError, type ErrnoName } from './netlink-errors.js';
import { FakeKernel } from './netlink-kernel.js';
import { READS, targetOf, type FakeOp, type FakeOps, type WriteRecord } from './netlink-ops.js';

export type { FakeOp, FakeOps, WriteRecord } from './netlink-ops.js';

interface Interception {
  readonly op: FakeOp;
  readonly when: (arg: never) => boolean;
  /** Left to apply; Infinity for always. */
  times: number;
  readonly act: (arg: never) => void;
}

export class FakeNetlink implements NetlinkHandle {
  readonly kernel: FakeKernel;
  readonly netnsPath: string | undefined;
  readonly writes: WriteRecord[] = [];
  closed = false;
  private readonly interceptions: Interception[] = [];
  private readonly watches = new Set<FakeLinkWatch>();

  /** A fresh kernel (lo only), or another handle's to share its namespace. */
  constructor(opts: { kernel?: FakeKernel; nexthops?: boolean; netnsPath?: string } = {}) {
    this.kernel = opts.kernel ?? new FakeKernel({ nexthops: opts.nexthops ?? true });
    this.netnsPath = opts.netnsPath;
  }

  // ---- what a test does ------------------------------------------------------------------------

  /** "route.add 10.244.2.0/24", one line per mutation sent, "!ERRNO" appended when refused. */
  writeLog(): string[] {
    return this.writes.map((w) => `${w.op} ${w.target}${w.failed ? ` !${w.failed}` : ''}`);
  }

  clearWrites(): void {
    this.writes.length = 0;
  }

  /**
   * The kernel refuses `op` with `errno` (every time, or `times` times) when `when` holds for
   * its argument. Returns a function that lifts the refusal.
   */
  fail<K extends FakeOp>(op: K, errno: ErrnoName, opts: { when?: (arg: FakeOps[K]) => boolean; times?: number } = {}): () => void {
    return this.intercept(op, opts, (arg) => { throw kernelError(op, errno, targetOf(op, arg)); });
  }

  /** Runs `fn` right before the kernel handles `op` (once, unless `times` says otherwise). */
  before<K extends FakeOp>(op: K, fn: (arg: FakeOps[K]) => void, opts: { when?: (arg: FakeOps[K]) => boolean; times?: number } = {}): () => void {
    return this.intercept(op, { times: 1, ...opts }, fn);
  }

  /** Every open link watch reports lost notifications (ENOBUFS), as the socket does after a burst. */
  loseNotifications(): void {
    for (const w of this.watches) w.lose();
  }

  /** Open watches report `entry` (the fake kernel sends no route notifications of its own). */
  notify(entry: KernelDeletion): void {
    for (const w of this.watches) w.report(entry);
  }

  /** Link watches opened and not yet closed. */
  get openWatches(): number {
    return this.watches.size;
  }

  // ---- NetlinkHandle: links --------------------------------------------------------------------

  close(): void {
    this.closed = true;
  }

  getLink(ref: LinkRef): Promise<Link | undefined> {
    return this.call('link.get', { ref }, () => this.kernel.links.getLink(ref));
  }

  requireLink(ref: LinkRef): Promise<Link> {
    return this.call('link.get', { ref }, () => this.kernel.links.requireLink(ref, 'link.get'));
  }

  listLinks(): Promise<Link[]> {
    return this.call('link.list', {}, () => this.kernel.links.listLinks());
  }

  createBridge(spec: BridgeSpec): Promise<void> {
    return this.call('link.create', { kind: 'bridge', name: spec.name }, () => this.kernel.links.createBridge(spec));
  }

  createVeth(spec: VethSpec): Promise<void> {
    return this.call('link.create', { kind: 'veth', name: spec.name }, () => this.kernel.links.createVeth(spec));
  }

  createVxlan(spec: VxlanSpec): Promise<void> {
    return this.call('link.create', { kind: 'vxlan', name: spec.name }, () => this.kernel.links.createVxlan(spec));
  }

  createIpip(spec: IpipSpec): Promise<void> {
    return this.call('link.create', { kind: 'ipip', name: spec.name }, () => this.kernel.links.createIpip(spec));
  }

  setLink(ref: LinkRef, changes: LinkChanges): Promise<void> {
    return this.call('link.set', { ref, changes }, () => this.kernel.links.setLink(ref, changes, 'link.set'));
  }

  setUp(ref: LinkRef, up = true): Promise<void> { return this.setLink(ref, { up }); }
  setMtu(ref: LinkRef, mtu: number): Promise<void> { return this.setLink(ref, { mtu }); }
  setMac(ref: LinkRef, mac: string): Promise<void> { return this.setLink(ref, { mac }); }
  moveToNetns(ref: LinkRef, netnsPath: string): Promise<void> { return this.setLink(ref, { netnsPath }); }

  async setMaster(ref: LinkRef, master: LinkRef | null): Promise<void> {
    return this.setLink(ref, { masterIndex: master === null ? 0 : (await this.requireLink(master)).index });
  }

  deleteLink(ref: LinkRef): Promise<void> {
    return this.call('link.delete', { ref }, () => this.kernel.links.deleteLink(ref, 'link.delete'));
  }

  // ---- addresses -------------------------------------------------------------------------------

  addAddress(ref: LinkRef, cidr: string): Promise<void> {
    return this.call('address.add', { ref, cidr }, () => this.kernel.links.addAddress(this.indexOf(ref, 'address.add'), cidr, 'address.add', false));
  }

  replaceAddress(ref: LinkRef, cidr: string): Promise<void> {
    return this.call('address.replace', { ref, cidr }, () => this.kernel.links.addAddress(this.indexOf(ref, 'address.replace'), cidr, 'address.replace', true));
  }

  deleteAddress(ref: LinkRef, cidr: string): Promise<void> {
    return this.call('address.delete', { ref, cidr }, () => this.kernel.links.deleteAddress(this.indexOf(ref, 'address.delete'), cidr, 'address.delete'));
  }

  listAddresses(ref?: LinkRef): Promise<Address[]> {
    return this.call('address.list', { ref }, () => this.kernel.links.listAddresses(ref === undefined ? undefined : this.indexOf(ref, 'link.get')));
  }

  // ---- routes and nexthops ---------------------------------------------------------------------

  replaceRoute(spec: RouteSpec): Promise<void> { return this.call('route.replace', spec, () => this.kernel.routes.replace(spec)); }
  addRoute(spec: RouteSpec): Promise<void> { return this.call('route.add', spec, () => this.kernel.routes.add(spec)); }
  deleteRoute(spec: RouteSpec): Promise<void> { return this.call('route.delete', spec, () => this.kernel.routes.delete(spec)); }
  listRoutes(filter: RouteFilter = {}): Promise<Route[]> { return this.call('route.list', filter, () => this.kernel.routes.list(filter)); }

  addNexthop(spec: NexthopSpec): Promise<void> { return this.call('nexthop.add', spec, () => this.kernel.routes.addNexthop(spec)); }
  replaceNexthop(spec: NexthopSpec): Promise<void> { return this.call('nexthop.replace', spec, () => this.kernel.routes.replaceNexthop(spec)); }
  deleteNexthop(id: number): Promise<void> { return this.call('nexthop.delete', { id }, () => this.kernel.routes.deleteNexthop(id)); }
  listNexthops(): Promise<Nexthop[]> { return this.call('nexthop.list', {}, () => this.kernel.routes.listNexthops()); }

  // ---- neighbours and FDB ----------------------------------------------------------------------

  replaceNeighbour(spec: NeighbourSpec): Promise<void> {
    return this.call('neighbour.replace', spec, () => this.kernel.links.neighbours.replaceNeighbour(spec, 'neighbour.replace'));
  }

  deleteNeighbour(spec: { index: number; ip: string }): Promise<void> {
    return this.call('neighbour.delete', spec, () => this.kernel.links.neighbours.deleteNeighbour(spec, 'neighbour.delete'));
  }

  listNeighbours(index?: number): Promise<Neighbour[]> {
    return this.call('neighbour.list', { index }, () => this.kernel.links.neighbours.listNeighbours(index));
  }

  appendFdb(spec: FdbSpec): Promise<void> { return this.call('fdb.append', spec, () => this.kernel.links.neighbours.writeFdb(spec, 'fdb.append', 'append')); }
  replaceFdb(spec: FdbSpec): Promise<void> { return this.call('fdb.replace', spec, () => this.kernel.links.neighbours.writeFdb(spec, 'fdb.replace', 'replace')); }
  deleteFdb(spec: { index: number; mac: string; dst?: string }): Promise<void> { return this.call('fdb.delete', spec, () => this.kernel.links.neighbours.deleteFdb(spec, 'fdb.delete')); }
  listFdb(index?: number): Promise<FdbEntry[]> { return this.call('fdb.list', { index }, () => this.kernel.links.neighbours.listFdb(index)); }

  // ---- batches, watches, sysctls ---------------------------------------------------------------

  batch<T>(): MutationBatch<T> {
    return new FakeBatch<T>((op, arg) => this.mutate(op, arg));
  }

  watchLinks(): LinkWatch {
    this.gate('link.watch', {});
    const watch = new FakeLinkWatch(this.kernel, () => this.watches.delete(watch));
    this.watches.add(watch);
    return watch;
  }

  readSysctl(key: string): string {
    this.gate('sysctl.read', { key });
    return this.kernel.readSysctl(key);
  }

  writeSysctl(key: string, value: string | number): void {
    this.logged('sysctl.write', { key, value }, () => this.kernel.writeSysctl(key, value));
  }

  // ---- internals -------------------------------------------------------------------------------

  /** One request: interceptions, then the kernel, logged if it is a mutation; settles like a reply. */
  private call<K extends FakeOp, R>(op: K, arg: FakeOps[K], apply: () => R): Promise<R> {
    try {
      return Promise.resolve(this.logged(op, arg, apply));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private logged<K extends FakeOp, R>(op: K, arg: FakeOps[K], apply: () => R): R {
    if (READS.has(op)) {
      this.gate(op, arg);
      return apply();
    }
    try {
      this.gate(op, arg);
      const result = apply();
      this.writes.push({ op, target: targetOf(op, arg), failed: undefined });
      return result;
    } catch (err) {
      this.writes.push({ op, target: targetOf(op, arg), failed: (err as { code?: string }).code ?? 'Error' });
      throw err;
    }
  }

  private gate<K extends FakeOp>(op: K, arg: FakeOps[K]): void {
    for (const i of [...this.interceptions]) {
      if (i.op !== op || i.times <= 0 || !(i.when as (a: FakeOps[K]) => boolean)(arg)) continue;
      i.times--;
      (i.act as (a: FakeOps[K]) => void)(arg);
    }
  }

  private intercept<K extends FakeOp>(op: K, opts: { when?: (arg: FakeOps[K]) => boolean; times?: number }, act: (arg: FakeOps[K]) => void): () => void {
    const i: Interception = { op, when: (opts.when ?? (() => true)) as (arg: never) => boolean, times: opts.times ?? Infinity, act: act as (arg: never) => void };
    this.interceptions.push(i);
    return () => { i.times = 0; };
  }

  private indexOf(ref: LinkRef, op: string): number {
    return typeof ref === 'number' ? ref : this.kernel.links.requireLink(ref, op).index;
  }

  /** One mutation of a batch, through the same path as a single call. */
  private mutate<K extends FakeOp>(op: K, arg: FakeOps[K]): Promise<void> {
    return this.call(op, arg, () => this.apply(op, arg));
  }

  private apply(op: FakeOp, arg: unknown): void {
    const { routes } = this.kernel;
    const { neighbours } = this.kernel.links;
    switch (op) {
      case 'route.add': return routes.add(arg as RouteSpec);
      case 'route.replace': return routes.replace(arg as RouteSpec);
      case 'route.delete': return routes.delete(arg as RouteSpec);
      case 'nexthop.add': return routes.addNexthop(arg as NexthopSpec);
      case 'nexthop.delete': return routes.deleteNexthop((arg as { id: number }).id);
      case 'neighbour.replace': return neighbours.replaceNeighbour(arg as NeighbourSpec, op);
      case 'neighbour.delete': return neighbours.deleteNeighbour(arg as { index: number; ip: string }, op);
      case 'fdb.append': return neighbours.writeFdb(arg as FdbSpec, op, 'append');
      case 'fdb.replace': return neighbours.writeFdb(arg as FdbSpec, op, 'replace');
      case 'fdb.delete': return neighbours.deleteFdb(arg as { index: number; mac: string }, op);
      default: throw new Error(`FakeNetlink: ${op} is not a batch operation`);
    }
  }
}

