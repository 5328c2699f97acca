import { TwillError } from '../core/errors.js';
import type { NetlinkHandle, RouteSpec } from '../netlink/index.js';
import type { SkippedLease, SyncReport } from './backend.js';
import { splitRouteFailures, syncRoutes } from './route-sync.js';
import type { WrittenState } from './written-state.js';

/**
 * Removing some stale routes failed (everything else was applied). The agent logs it and retries
 * with backoff; `failed` says which destinations and why.
 */
export class StaleRouteRemovalError extends TwillError {
  constructor(
    readonly backend: string,
    readonly failed: readonly { readonly dst: string; readonly error: Error }[],
    /** Writes that did succeed in the same sync. */
    readonly changes: number,
  ) {
    const list = failed.map((f) => `${f.dst}: ${f.error.message}`).join('; ');
    super('EROUTE_REMOVE', `${backend}: removing ${failed.length} stale route(s) failed (${changes} changes applied): ${list}`, { cause: failed[0]?.error });
  }
}

/**
 * The apply step of a backend whose kernel state is routes only (host-gw, ipip): syncs the
 * planned routes and applies the failed-entry contract of backend.ts (a refused write skips its
 * lease, a failed removal throws). `extraChanges` are the backend's own (its device) to count in.
 */
export async function applyRoutes(
  nl: NetlinkHandle, backend: string, owned: string | readonly string[],
  plan: { readonly routes: readonly RouteSpec[]; readonly skipped: readonly SkippedLease[] }, extraChanges = 0, written?: WrittenState,
): Promise<SyncReport> {
  const result = await syncRoutes(nl, owned, plan.routes, written);
  const changes = extraChanges + result.replaced + result.deleted;
  const { writeFailed, removeFailed } = splitRouteFailures(result);
  if (removeFailed.length > 0) throw new StaleRouteRemovalError(backend, removeFailed, changes);
  return { changes, skipped: [...plan.skipped, ...writeFailed, ...result.refused] };
}
