/**
 * FakeNetlink's batches and link watches (netlink.ts): NetlinkBatch's and LinkMonitor's
 * behaviour over the in-memory kernel.
 */
import { EventEmitter } from 'node:events';
import type { BatchFailure, FdbSpec, KernelDeletion, LinkWatch, LinkWatchEvents, MutationBatch, NeighbourSpec, NexthopSpec, RouteSpec } from '../../src/netlink/index.js';
import { kernelError } from './netlink-errors.js';
import type { FakeKernel } from './netlink-kernel.js';
import type { FakeOp, FakeOps } from './netlink-ops.js';

/** Sends one mutation as a single call would (FakeNetlink.mutate). */
export type Mutate = <K extends FakeOp>(op: K, arg: FakeOps[K]) => Promise<void>;

/** NetlinkBatch's behaviour: mutations in the order added, each failing on its own, one promise. */
export class FakeBatch<T> implements MutationBatch<T> {
  private readonly ops: { op: FakeOp; arg: unknown; token: T }[] = [];

  constructor(private readonly mutate: Mutate) {}

  get size(): number { return this.ops.length; }

  replaceNeighbour(spec: NeighbourSpec, token: T): this { return this.add('neighbour.replace', spec, token); }
  deleteNeighbour(spec: { index: number; ip: string }, token: T): this { return this.add('neighbour.delete', spec, token); }
  appendFdb(spec: FdbSpec, token: T): this { return this.add('fdb.append', spec, token); }
  replaceFdb(spec: FdbSpec, token: T): this { return this.add('fdb.replace', spec, token); }
  deleteFdb(spec: { index: number; mac: string; dst?: string | undefined }, token: T): this { return this.add('fdb.delete', spec, token); }
  replaceRoute(spec: RouteSpec, token: T): this { return this.add('route.replace', spec, token); }
  addRoute(spec: RouteSpec, token: T): this { return this.add('route.add', spec, token); }
  deleteRoute(spec: RouteSpec, token: T): this { return this.add('route.delete', spec, token); }
  addNexthop(spec: NexthopSpec, token: T): this { return this.add('nexthop.add', spec, token); }
  replaceNexthop(spec: NexthopSpec, token: T): this { return this.add('nexthop.replace', spec, token); }
  deleteNexthop(id: number, token: T): this { return this.add('nexthop.delete', { id }, token); }

  async commit(): Promise<BatchFailure<T>[]> {
    const results = await Promise.allSettled(this.ops.map((o) => this.mutate(o.op, o.arg as never)));
    const failures: BatchFailure<T>[] = [];
    results.forEach((r, i) => { if (r.status === 'rejected') failures.push({ token: this.ops[i]!.token, error: r.reason as Error }); });
    return failures;
  }

  private add(op: FakeOp, arg: unknown, token: T): this {
    this.ops.push({ op, arg, token });
    return this;
  }
}

/** A LinkMonitor over the fake kernel: its events arrive asynchronously, as from a socket. */
export class FakeLinkWatch extends EventEmitter<LinkWatchEvents> implements LinkWatch {
  private readonly unsubscribe: () => void;
  private open = true;

  constructor(kernel: FakeKernel, private readonly onClose: () => void) {
    super();
    this.unsubscribe = kernel.links.subscribe((event) => queueMicrotask(() => { if (this.open) this.emit('link', event); }));
  }

  report(entry: KernelDeletion): void {
    queueMicrotask(() => { if (this.open) this.emit('deleted', entry); });
  }

  lose(): void {
    queueMicrotask(() => { if (this.open) this.emit('error', kernelError('link.watch', 'ENOBUFS')); });
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.unsubscribe();
    this.onClose();
  }
}
