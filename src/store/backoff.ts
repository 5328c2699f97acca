/**
 * The store's retry schedules, on core's jittered exponential Backoff: 100 ms doubling to 5 s, as
 * flannel reconnects its watch (reference flannel.md §2). The jitter spreads the re-lists and
 * reconnects of a whole cluster after an etcd outage.
 */
import { Backoff, type BackoffOptions } from '../core/backoff.js';

/** Re-list after a failed watch, and reconnect a broken watch stream. */
export const WATCH_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000 };

/**
 * The same schedule in the immutable shape etcd3's watch manager wants for
 * `faultHandling.watchBackoff` (cockatiel's IBackoff: `duration`, and `next()` for the following
 * one; etcd3 calls `next()` on the first one again to reset after a success). etcd3's default
 * grows to 30 s, which would leave a watch down for up to 30 s after etcd comes back.
 */
export class WatchReconnectBackoff {
  readonly duration: number;

  /** `attempt` -1 is the factory etcd3 starts from; 0 the first real delay. */
  constructor(private readonly opts: BackoffOptions = WATCH_BACKOFF, private readonly attempt = -1) {
    let delay = 0;
    // core's Backoff is stateful; replaying it to this attempt gives fresh jitter each time.
    // Its ceiling stops growing long before 30 steps.
    const b = new Backoff(opts);
    for (let i = 0; i <= Math.min(attempt, 30); i++) delay = b.next();
    this.duration = delay;
  }

  next(_context?: unknown): WatchReconnectBackoff {
    return new WatchReconnectBackoff(this.opts, this.attempt + 1);
  }
}
