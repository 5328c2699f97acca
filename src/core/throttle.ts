/**
 * Calls `run` at most once per `intervalMs`, on both edges: the first call of a quiet spell runs
 * at once, and calls within the interval after it are folded into one run when the interval ends.
 * So the last call is always followed by a run, and a lone event is reported without delay, where
 * a trailing-only timer would always add the whole interval (the bgp benchmark reads the time of
 * the speaker's progress line as the moment its RIB held the table).
 */
export function throttle(run: () => void, intervalMs: number, now: () => number = () => performance.now()): () => void {
  let timer: NodeJS.Timeout | undefined;
  let last = -Infinity;
  const fire = (): void => {
    timer = undefined;
    last = now();
    run();
  };
  return () => {
    if (timer !== undefined) return;
    const wait = last + intervalMs - now();
    if (wait <= 0) fire();
    else timer = setTimeout(fire, wait);
  };
}
