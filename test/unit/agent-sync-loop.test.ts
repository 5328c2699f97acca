import { describe, expect, it } from 'vitest';
import { SyncLoop } from '../../src/agent/sync-loop.js';

describe('SyncLoop', () => {
  it('runs one at a time and applies only the newest of the updates that queued meanwhile', async () => {
    const seen: number[] = [];
    let active = 0;
    let maxActive = 0;
    const loop = new SyncLoop<number>(async (v) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 10));
      seen.push(v);
      active--;
    });
    const done = [loop.update(1), loop.update(2), loop.update(3)];
    await Promise.all(done);
    await loop.update(4);
    await loop.idle();
    expect(maxActive).toBe(1);
    // 1 started at once; 2 was superseded by 3 before the first run ended.
    expect(seen).toEqual([1, 3, 4]);
  });
});
