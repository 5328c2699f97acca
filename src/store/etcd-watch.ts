/**
 * An etcd3 watch on subnets/ as a WatchStream for LeaseWatcher.
 *
 * etcd3's Watcher reconnects by itself and resumes from `request.start_revision`, which it sets to
 * "header.revision + 1" of the last response it saw. That is not always the last revision
 * *delivered*: the create response of a resumed watch carries etcd's current revision, before
 * the catch-up events follow in later responses, and a catch-up batch is cut at 1000 revisions
 * while its header says "current". A second disconnect in that window would skip the events in
 * between. So this adapter tracks the highest revision actually delivered and pins
 * start_revision to it after each etcd3 update (our listeners run after etcd3's own).
 *
 * A watch that etcd cancels (the start revision was compacted) surfaces from etcd3 as an 'error'
 * and the watcher is detached: that is `onFailed`, and LeaseWatcher re-lists.
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { StoreError, toStoreError } from './errors.js';
import type { WatchEvent, WatchStream, WatchStreamHandlers } from './lease-watcher.js';

export interface EtcdWatchOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly fromRevision: string;
  readonly endpoints: readonly string[];
  /** How long close() waits for etcd to confirm the cancellation. */
  readonly cancelTimeoutMs: number;
}

function toEvents(res: IWatchResponse): WatchEvent[] {
  return res.events.map((ev): WatchEvent => ev.type === 'Delete'
    ? { type: 'delete', key: ev.kv.key.toString(), modRevision: ev.kv.mod_revision }
    : { type: 'put', kv: { key: ev.kv.key.toString(), value: ev.kv.value, lease: ev.kv.lease, modRevision: ev.kv.mod_revision, createRevision: ev.kv.create_revision } });
}

export function openEtcdWatch(opts: EtcdWatchOptions, handlers: WatchStreamHandlers): WatchStream {
  const ctx = { op: 'watchLeases', endpoints: opts.endpoints };
  // watcher(), not create(): create() only settles once etcd answers, so while etcd is down we
  // would have nothing to cancel on close().
  const watcher: Watcher = opts.client.watch().prefix(opts.prefix).startRevision(opts.fromRevision).watcher();
  let delivered = BigInt(opts.fromRevision) - 1n;
  let down = false;
  let detached = false;
  let closed = false;
  const pin = (): void => { watcher.request.start_revision = (delivered + 1n).toString(); };

  watcher.on('connected', () => {
    if (closed) return;
    pin();
    // After a reported disconnect, even if the watch had never been established before.
    const wasDown = down;
    down = false;
    if (wasDown) handlers.onReconnected();
  });
  watcher.on('data', (res) => {
    if (closed) return;
    let max = delivered;
    for (const ev of res.events) {
      const rev = BigInt(ev.kv.mod_revision);
      if (rev > max) max = rev;
    }
    // An empty response is a progress notification: etcd sends it only when this watcher has
    // everything up to header.revision.
    if (res.events.length === 0 && BigInt(res.header.revision) > max) max = BigInt(res.header.revision);
    delivered = max;
    pin();
    if (res.events.length > 0) handlers.onEvents(toEvents(res));
  });
  watcher.on('disconnected', (err) => {
    if (closed) return;
    pin();
    // etcd3 reports every failed reconnect attempt; one report per outage is enough.
    if (down) return;
    down = true;
    handlers.onDisconnected(toStoreError(err, ctx));
  });
  watcher.on('error', (err) => {
    // Always listened to: an 'error' without a listener would throw from etcd3's stream handler.
    if (closed) return;
    // etcd3 has already detached the watcher. etcd 3.4 gives no cancel reason for compaction
    // ("Watcher canceled: "); newer ones say "mvcc: required revision has been compacted".
    detached = true;
    const mapped = toStoreError(err, ctx);
    const compacted = /compact/i.test(err.message) || /canceled:\s*$/.test(err.message);
    handlers.onFailed(compacted
      ? new StoreError('ESTORE_COMPACTED', `watch from revision ${(delivered + 1n).toString()} canceled by etcd (compacted): ${err.message}`, { op: ctx.op, cause: err })
      : mapped);
  });

  return {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (detached) return;
      detached = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        watcher.cancel().catch(() => undefined),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, opts.cancelTimeoutMs); }),
      ]);
      clearTimeout(timer);
    },
  };
}
