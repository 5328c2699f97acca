/**
 * How many times slower than the machines the tests' time limits were written for this run is:
 * the kernel VM (test/vm) runs on emulated CPUs and sets TWILL_TEST_TIME_SCALE for the tests it
 * runs. Limits grow by it (vitest's test and hook timeouts, waitFor's timeouts); delays and the
 * figures a test measures do not. 1 when unset.
 */
export const TIME_SCALE: number = parseTimeScale(process.env.TWILL_TEST_TIME_SCALE);

export function parseTimeScale(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale < 1) throw new Error(`TWILL_TEST_TIME_SCALE must be a number >= 1, not "${raw}"`);
  return scale;
}

/** A time limit in ms, written for the host, for this run. */
export function scaled(ms: number): number {
  return Math.round(ms * TIME_SCALE);
}
