/**
 * Exponential backoff with jitter: 100 ms doubling to 5 s by default, as flannel reconnects its
 * watch (reference flannel.md §2). Jitter spreads the re-lists of a whole cluster after an etcd
 * outage, so N agents do not hit the recovering etcd in the same millisecond.
 */

export interface BackoffOptions {
  /** First delay; default 100 ms. */
  readonly initialMs?: number;
  /** Cap; default 5000 ms. */
  readonly maxMs?: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]; default 0.2. */
  readonly jitter?: number;
  /** Random source in [0, 1), for tests. */
  readonly random?: () => number;
}

/** The delay before attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const initial = opts.initialMs ?? 100;
  const max = opts.maxMs ?? 5000;
  const jitter = opts.jitter ?? 0.2;
  const random = opts.random ?? Math.random;
  // 2 ** attempt overflows to Infinity for huge attempts; Math.min keeps the cap.
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 64));
  const scaled = base * (1 + jitter * (random() * 2 - 1));
  return Math.round(Math.min(max, Math.max(0, scaled)));
}

/** A stateful backoff for a retry loop. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions = {}) {}

  /** The next delay; each call doubles the base. */
  next(): number {
    return backoffDelay(this.attempt++, this.opts);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * The same schedule in the immutable shape etcd3's watch manager wants for
 * `faultHandling.watchBackoff` (cockatiel's IBackoff: `duration`, and `next()` for the following
 * one). etcd3's default grows to 30 s, which would leave a watch down for up to 30 s after etcd
 * comes back.
 */
export class WatchReconnectBackoff {
  readonly duration: number;

  constructor(private readonly opts: BackoffOptions = {}, private readonly attempt = -1) {
    this.duration = attempt < 0 ? 0 : backoffDelay(attempt, opts);
  }

  next(_context?: unknown): WatchReconnectBackoff {
    return new WatchReconnectBackoff(this.opts, this.attempt + 1);
  }
}
