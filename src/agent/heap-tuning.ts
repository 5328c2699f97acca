import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the heap grow past what is live before its next full collection, as a percentage
 * (V8's --heap-growing-percent). V8 picks a factor between 1.1 and 4 from how fast its last
 * collections ran, tuned for browsers and servers that trade memory for throughput. twilld's live
 * heap is small (38 MiB with 10,000 leases and 10,000 learned routes) but a burst (a BGP table, a
 * lease snapshot) makes a lot of short-lived garbage, so the default left the agent anywhere
 * between 150 and 230 MiB of RSS after the same install; at 50 % it stays at about 150 MiB with
 * no measurable cost in install time (docs/benchmarks.md, bgp-backend). V8 reads the flag each
 * time it sets the next limit, so setting it at start works.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Sets it unless the operator chose a value of their own (`node --heap-growing-percent=N`; Node
 * does not accept this flag in NODE_OPTIONS).
 */
export function tuneHeap(execArgv: readonly string[] = process.execArgv): boolean {
  const chosen = execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
  if (chosen) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
