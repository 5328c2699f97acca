import { TwillError } from '../../core/errors.js';

/**
 * Some route writes of a sync failed (the others were applied). The agent logs it and the next
 * change or periodic resync tries again; `failed` says which destinations and why.
 */
export class HostGwSyncError extends TwillError {
  constructor(
    readonly failed: readonly { readonly dst: string; readonly error: Error }[],
    /** Writes that did succeed in the same sync. */
    readonly changes: number,
  ) {
    const list = failed.map((f) => `${f.dst}: ${f.error.message}`).join('; ');
    super('EHOSTGW_SYNC', `host-gw: ${failed.length} route write(s) failed (${changes} applied): ${list}`, { cause: failed[0]?.error });
  }
}
