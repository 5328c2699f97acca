/**
 * Polling for eventually-true conditions (a route appearing, a lease expiring, a process dying).
 *
 *   await waitFor(() => host.ping(podIp), { timeoutMs: 5000, what: 'pod reachable' });
 *   const routes = await waitFor(async () => { const r = await host.routes(); return r.length > 3 && r; });
 */

import { scaled } from './time-scale.js';

export interface WaitOptions {
  /** Give up after this long; default 10 s. Times TWILL_TEST_TIME_SCALE (time-scale.ts). */
  readonly timeoutMs?: number;
  /** Pause between attempts; default 50 ms. */
  readonly intervalMs?: number;
  /** Describes the condition in the timeout error. */
  readonly what?: string;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Calls `probe` until it returns a truthy value (which is returned) or the time is up. A probe
 * that throws counts as "not yet"; on timeout its last error is in the message and the cause.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  // A limit written for the host: the kernel VM's emulated CPUs get proportionally longer.
  const timeoutMs = scaled(opts.timeoutMs ?? 10_000);
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const v = await probe();
      if (v) return v as Exclude<T, false | 0 | '' | null | undefined>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${opts.what ?? 'condition'}${why}`,
        lastError === undefined ? undefined : { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
