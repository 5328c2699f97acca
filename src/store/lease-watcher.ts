/**
 * LeaseWatcher keeps the full current lease set and reports every change to it, the way flannel
 * watches subnets (reference flannel.md §2): list at revision R, watch from R + 1, and when the
 * watch cannot continue (compaction, cancellation) re-list and report the difference, so no change
 * is ever lost, only coalesced.
 *
 * It knows nothing of etcd: a LeaseWatchSource lists and opens watch streams (the etcd one is in
 * etcd-watch.ts), so fakes can drive it too. Like every lower layer it never logs; it emits:
 *
 *   change        LeaseSetChange: the first snapshot, each watch batch that changed something, each resync
 *   malformed     a key/value that is not a lease (skipped; a known subnet keeps its last good value)
 *   disconnected  the watch stream broke; the stream reconnects by itself from the last revision
 *   reconnected   the stream is back (changes made meanwhile follow as ordinary events)
 *   restart       the stream cannot resume (e.g. compacted): a re-list with backoff follows,
 *                 then a change with cause 'resync'
 *   listFailed    one (re-)list attempt failed; the next comes after `retryInMs`
 */
import { EventEmitter } from 'node:events';
import { Backoff, sleep, type BackoffOptions } from '../core/backoff.js';
import { WATCH_BACKOFF } from './backoff.js';
import { StoreError } from './errors.js';
import type { KeyLayout } from './keys.js';
import { decodeKv, type RawKv } from './kv.js';
import { diffLeases, isEmptyDiff, type LeaseDiff } from './lease-set.js';
import type { LeaseListing, LeaseSetChange, MalformedLease, SubnetLease } from './types.js';

export type WatchEvent =
  | { readonly type: 'put'; readonly kv: RawKv }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: string };

export interface WatchStreamHandlers {
  /** One watch response: its events in revision order. */
  onEvents(events: readonly WatchEvent[]): void;
  onDisconnected(error: StoreError): void;
  onReconnected(): void;
  /** The stream ended for good (compaction, cancellation by the server): re-list. */
  onFailed(error: StoreError): void;
}

export interface WatchStream {
  close(): Promise<void>;
}

export interface LeaseWatchSource {
  readonly layout: KeyLayout;
  /** One consistent listing of subnets/ (expiry lookups are not needed here). */
  list(): Promise<LeaseListing>;
  /** Watches subnets/ from `fromRevision` (inclusive), resuming by itself after disconnects. */
  watch(fromRevision: string, handlers: WatchStreamHandlers): WatchStream;
}

export interface ListFailure {
  readonly error: StoreError;
  /** 1 for the first failed attempt of this (re-)list. */
  readonly attempt: number;
  readonly retryInMs: number;
}

export interface LeaseWatcherEvents {
  change: [change: LeaseSetChange];
  malformed: [malformed: MalformedLease];
  disconnected: [error: StoreError];
  reconnected: [];
  /** `reason` is the error's message ("... compacted ..." after a compaction); `error` has the code. */
  restart: [reason: string, error: StoreError];
  listFailed: [failure: ListFailure];
}

export interface LeaseWatcherOptions {
  /** Re-list schedule; default 100 ms doubling to 5 s, jittered (WATCH_BACKOFF). */
  readonly backoff?: BackoffOptions | undefined;
  /** Called once when close() is called (the store forgets the watcher). */
  readonly onClose?: (() => void) | undefined;
}

export class LeaseWatcher extends EventEmitter<LeaseWatcherEvents> {
  private leases = new Map<string, SubnetLease>();
  private stream: WatchStream | undefined;
  /** Bumped on every (re-)list and on close: callbacks of an older stream are ignored. */
  private generation = 0;
  private closed = false;
  /** Aborted by close(): cuts a re-list backoff short. */
  private readonly closing = new AbortController();
  private readonly firstSnapshot: Promise<ReadonlyMap<string, SubnetLease>>;
  private settleFirst!: { resolve: (m: ReadonlyMap<string, SubnetLease>) => void; reject: (e: Error) => void };
  private snapshotTaken = false;

  constructor(private readonly source: LeaseWatchSource, private readonly opts: LeaseWatcherOptions = {}) {
    super();
    this.firstSnapshot = new Promise((resolve, reject) => { this.settleFirst = { resolve, reject }; });
    // Nobody has to await ready(); without this, closing before the first snapshot would be an
    // unhandled rejection.
    this.firstSnapshot.catch(() => undefined);
    // list() is asynchronous, so listeners attached right after construction see the snapshot.
    void this.establish('snapshot');
  }

  /**
   * The current set, by etcd key (live: it is replaced on a resync, so ask again rather than keep
   * it). By key, not by subnet: two keys can name one subnet (plain and dual-stack, or a hostile
   * writer's), and which of them is routed is decided above the store, the same way on every host.
   */
  current(): ReadonlyMap<string, SubnetLease> {
    return this.leases;
  }

  /** Resolves with the set once the first snapshot is in (rejects if closed first). */
  ready(): Promise<ReadonlyMap<string, SubnetLease>> {
    return this.firstSnapshot;
  }

  /**
   * Stops everything. No event is emitted once this is called; the promise settles when etcd has
   * confirmed the watch cancellation (or after the call timeout).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.closing.abort();
    if (!this.snapshotTaken) this.settleFirst.reject(new StoreError('ESTORE_CLOSED', 'lease watcher closed before its first snapshot', { op: 'watchLeases' }));
    this.opts.onClose?.();
    const stream = this.stream;
    this.stream = undefined;
    await stream?.close();
  }

  /** Lists (retrying with backoff until it works), reconciles, and watches from the listing. */
  private async establish(cause: 'snapshot' | 'resync'): Promise<void> {
    const gen = ++this.generation;
    const backoff = new Backoff(this.opts.backoff ?? WATCH_BACKOFF);
    let listing: LeaseListing | undefined;
    for (let attempt = 1; listing === undefined; attempt++) {
      if (gen !== this.generation) return;
      try {
        listing = await this.source.list();
      } catch (err) {
        if (gen !== this.generation) return;
        const error = err instanceof StoreError ? err : new StoreError('ESTORE_FAILED', `listing leases failed: ${String(err)}`, { op: 'watchLeases', cause: err });
        const retryInMs = backoff.next();
        this.emit('listFailed', { error, attempt, retryInMs });
        await sleep(retryInMs, this.closing.signal);
      }
    }
    if (gen !== this.generation) return;

    const next = new Map<string, SubnetLease>();
    for (const lease of listing.leases) next.set(lease.key, lease);
    const diff = diffLeases(this.leases, next);
    this.leases = next;
    // Watch, and settle ready(), before telling anyone: a listener that throws must not leave
    // the watcher without a stream or ready() pending forever.
    this.stream = this.source.watch((BigInt(listing.revision) + 1n).toString(), this.handlers(gen));
    if (!this.snapshotTaken) {
      this.snapshotTaken = true;
      this.settleFirst.resolve(new Map(this.leases));
    }
    for (const m of listing.malformed) this.emit('malformed', m);
    this.emitChange(cause, diff);
  }

  private handlers(gen: number): WatchStreamHandlers {
    const live = (): boolean => gen === this.generation;
    return {
      onEvents: (events) => { if (live()) this.apply(events); },
      onDisconnected: (error) => { if (live()) this.emit('disconnected', error); },
      onReconnected: () => { if (live()) this.emit('reconnected'); },
      onFailed: (error) => { if (live()) this.restart(error); },
    };
  }

  private restart(error: StoreError): void {
    const old = this.stream;
    this.stream = undefined;
    void old?.close().catch(() => undefined);
    this.emit('restart', error.message, error);
    void this.establish('resync');
  }

  /** Applies one watch batch and reports its net effect. */
  private apply(events: readonly WatchEvent[]): void {
    const layout: KeyLayout = this.source.layout;
    const before = new Map<string, SubnetLease | undefined>();
    const touch = (key: string): void => { if (!before.has(key)) before.set(key, this.leases.get(key)); };
    const malformed: MalformedLease[] = [];
    for (const ev of events) {
      if (ev.type === 'put') {
        const r = decodeKv(layout, ev.kv);
        // A malformed put of a known key keeps the last good value: routes stay as they were
        // rather than vanishing because someone wrote garbage.
        if (!r.ok) { malformed.push(r.malformed); continue; }
        touch(r.lease.key);
        this.leases.set(r.lease.key, r.lease);
      } else {
        if (!this.leases.has(ev.key)) continue; // never was a lease (or only ever malformed)
        touch(ev.key);
        this.leases.delete(ev.key);
      }
    }
    const prior = new Map<string, SubnetLease>();
    for (const [key, lease] of before) if (lease) prior.set(key, lease);
    const diff = diffLeases(prior, this.leases, before.keys());
    for (const m of malformed) this.emit('malformed', m);
    if (!isEmptyDiff(diff)) this.emitChange('event', diff);
  }

  private emitChange(cause: LeaseSetChange['cause'], diff: LeaseDiff): void {
    // The live map, read-only: copying it for every event made a burst of N joins cost O(N^2)
    // (5,000 leases: seconds of CPU). A listener that keeps it sees later changes too, which is
    // what a declarative consumer wants; one that needs a snapshot copies it itself.
    this.emit('change', { leases: this.leases, ...diff, cause });
  }
}
