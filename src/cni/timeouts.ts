/**
 * Every CNI call has a deadline (deadline.ts). These are its bounds, apart so that the agent's
 * flags and the thread pool can use them without loading the plugin's code.
 */

/** A call's deadline unless configured (twilld --cni-timeout, TWILL_CNI_TIMEOUT). */
export const DEFAULT_TIMEOUT_MS = 60_000;
/**
 * The longest --cni-timeout. The shim waits for the agent's answer 180 s (src/cni/shim/twill-cni.c):
 * longer than a call, its undo, a rollback DEL and the pool's grace can take together.
 */
export const MAX_TIMEOUT_MS = 120_000;
/** The longest TWILL_CNI_TIMEOUT of the in-process plugin, in seconds; the shim allows the same (src/cni/shim/twill-cni.c). */
export const MAX_FALLBACK_TIMEOUT_S = 600;
/** How long a timed-out call may take to undo its steps, and then a rollback DEL. */
export const ROLLBACK_MS = 5_000;

/** The undo window of a call with this deadline: ROLLBACK_MS, or the deadline itself when shorter. */
export function undoMs(timeoutMs: number): number {
  return Math.min(ROLLBACK_MS, timeoutMs);
}
