import { afterEach, describe, expect, it, vi } from 'vitest';
import { Speaker, warmUpSpeaker } from '../../src/bgp/index.js';

// The speaker's warm-up (src/bgp/warm-up.ts): a synthetic table between two throwaway speakers
// joined in memory, which must arrive whole and leave nothing running behind it.

/** Timers, sockets and other handles the process holds now, by kind. */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/** The kinds of which more are active now than `before` (the test runner's own may end meanwhile). */
function addedSince(before: Record<string, number>): Record<string, number> {
  const added: Record<string, number> = {};
  for (const [kind, n] of Object.entries(activeResources())) if (n > (before[kind] ?? 0)) added[kind] = n - (before[kind] ?? 0);
  return added;
}

/** What the closed speakers queued last (their final flushes) has run. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the speaker warm-up', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('runs the whole table from one throwaway speaker to the other, then leaves nothing running', async () => {
    const before = activeResources();
    const result = await warmUpSpeaker({ prefixes: 3_000 });
    expect(result).toMatchObject({ prefixes: 3_000, received: 3_000 });
    expect(result.ms).toBeGreaterThan(0);
    await settled();
    expect(addedSince(before)).toEqual({});
  });

  it('ends at its deadline with what arrived by then when the sessions never come up', async () => {
    const before = activeResources();
    vi.spyOn(Speaker.prototype, 'addPeer').mockImplementation(() => undefined);
    const result = await warmUpSpeaker({ prefixes: 1_000, timeoutMs: 50 });
    expect(result).toMatchObject({ prefixes: 1_000, received: 0 });
    expect(result.ms).toBeGreaterThanOrEqual(45);
    await settled();
    expect(addedSince(before)).toEqual({});
  });

  it('refuses a table it cannot build', async () => {
    await expect(warmUpSpeaker({ prefixes: 0 })).rejects.toThrow(/warm-up prefixes 0: between 1 and 4194304/);
    await expect(warmUpSpeaker({ prefixes: 2 ** 22 + 1 })).rejects.toThrow(RangeError);
  });
});
