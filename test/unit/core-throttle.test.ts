import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { throttle } from '../../src/core/throttle.js';

describe('throttle', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the first call at once, folds the calls of one interval into one run at its end, and runs after the last call', () => {
    const runs: number[] = [];
    const call = throttle(() => runs.push(Date.now()), 20, () => Date.now());
    const start = Date.now();
    call();
    expect(runs).toEqual([start]);
    vi.advanceTimersByTime(5);
    call();
    call();
    expect(runs).toHaveLength(1);
    vi.advanceTimersByTime(14);
    expect(runs).toHaveLength(1);
    vi.advanceTimersByTime(1);
    // The two calls of the interval: one run, 20 ms after the first.
    expect(runs).toEqual([start, start + 20]);
    vi.advanceTimersByTime(100);
    expect(runs).toHaveLength(2);
    // After a quiet spell the next call runs at once again.
    call();
    expect(runs).toEqual([start, start + 20, start + 120]);
  });
});
