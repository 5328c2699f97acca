import { TwillError } from '../../core/errors.js';

/**
 * Removing some stale routes failed (everything else was applied). The agent logs it and retries
 * with backoff; `failed` says which destinations and why.
 */
export class HostGwSyncError extends TwillError {
  constructor(
    readonly failed: readonly { readonly dst: string; readonly error: Error }[],
    /** Writes that did succeed in the same sync. */
    readonly changes: number,
  ) {
    const list = failed.map((f) => `${f.dst}: ${f.error.message}`).join('; ');
    super('EHOSTGW_SYNC', `host-gw: removing ${failed.length} stale route(s) failed (${changes} changes applied): ${list}`, { cause: failed[0]?.error });
  }
}
