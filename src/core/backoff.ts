/**
 * Exponential backoff with full jitter (the AWS architecture blog's "full jitter": a random delay
 * in [0, min(cap, base * 2^attempt)]), so many agents retrying after one etcd outage spread out
 * instead of arriving together.
 */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly random?: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next try; each call doubles the ceiling up to maxMs. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    // Never below a tenth of the initial delay: a zero delay would spin.
    return Math.max(this.opts.initialMs / 10, (this.opts.random ?? Math.random)() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
