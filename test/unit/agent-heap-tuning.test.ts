import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { HEAP_FLAGS, HEAP_GROWING_PERCENT, tuneHeap } from '../../src/agent/heap-tuning.js';

// twilld sets V8's heap growing factor and its memory reducer's number of collections at start
// (heap-tuning.ts), each unless the operator chose it on Node's command line.

describe('tuneHeap', () => {
  it('leaves an operator\'s own --heap-growing-percent alone and sets the rest', () => {
    expect(tuneHeap(['--heap-growing-percent=80'])).toEqual(['--memory-reducer-single-gc']);
    expect(tuneHeap(['--max-old-space-size=512', '--heap_growing_percent=80'])).toEqual(['--memory-reducer-single-gc']);
  });

  it('leaves an operator\'s choice about the memory reducer alone', () => {
    for (const chosen of ['--no-memory-reducer', '--memory-reducer-single-gc', '--no-memory_reducer_single_gc']) {
      expect(tuneHeap([chosen])).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    }
  });

  it('sets every flag otherwise, without disturbing the running heap', () => {
    const before = getHeapStatistics().heap_size_limit;
    expect(tuneHeap(['--max-old-space-size=512'])).toEqual(HEAP_FLAGS.map((f) => f.flag));
    expect(getHeapStatistics().heap_size_limit).toBe(before);
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
  });
});
