import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, tuneHeap } from '../../src/agent/heap-tuning.js';

// twilld sets V8's heap growing factor at start (heap-tuning.ts), unless the operator set one.

describe('tuneHeap', () => {
  it('leaves an operator\'s own --heap-growing-percent alone', () => {
    expect(tuneHeap(['--heap-growing-percent=80'])).toBe(false);
    expect(tuneHeap(['--max-old-space-size=512', '--heap_growing_percent=80'])).toBe(false);
  });

  it('sets it otherwise, without disturbing the running heap', () => {
    const before = getHeapStatistics().heap_size_limit;
    expect(tuneHeap(['--max-old-space-size=512'])).toBe(true);
    expect(getHeapStatistics().heap_size_limit).toBe(before);
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
  });
});
