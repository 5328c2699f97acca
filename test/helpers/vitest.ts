/**
 * Vitest glue for the cleanup registry (cleanup.ts). Kept apart from cleanup.ts so benchmarks
 * and scripts can use the other helpers without loading vitest.
 *
 *   import { describe, it } from 'vitest';
 *   import { isRoot, useCleanup } from '../helpers/vitest.js';
 *
 *   describe.skipIf(!isRoot)('vxlan backend', () => {
 *     useCleanup();
 *     let cluster: Cluster;
 *     beforeAll(async () => { cluster = await createCluster({ hosts: 3 }); });  // lives for the describe
 *     it('...', async () => {
 *       const pod = await cluster.addPod(0, { ip: '10.244.0.2/24' });          // destroyed after this test
 *     });
 *   });
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { cleanup, sweepStale, type CleanupRegistry } from './cleanup.js';

/** Running as root (namespaces, links and daemons need it). */
export const isRoot: boolean = process.getuid?.() === 0;

export interface UseCleanupOptions {
  /** The registry to unwind; default the global one that the helpers use. */
  readonly registry?: CleanupRegistry;
  /** Remove leftovers of dead test processes first (sweepStale); default true. */
  readonly sweep?: boolean;
}

/**
 * Registers hooks in the current scope (file or describe) so that whatever a test (or a
 * beforeEach) pushed onto the registry is unwound in afterEach, and whatever beforeAll pushed is
 * unwound in afterAll. They run whether the test passed, failed or timed out. Returns the registry.
 * Teardown failures fail the hook (and so the run), with every failure listed.
 */
export function useCleanup(opts: UseCleanupOptions = {}): CleanupRegistry {
  const registry = opts.registry ?? cleanup;
  const allMarks: number[] = [];
  const eachMarks: number[] = [];
  beforeAll(() => {
    if (opts.sweep ?? true) sweepStale();
    allMarks.push(registry.size);
  });
  afterAll(async () => {
    await registry.runTo(allMarks.pop() ?? 0);
  });
  beforeEach(() => {
    eachMarks.push(registry.size);
  });
  afterEach(async () => {
    await registry.runTo(eachMarks.pop() ?? 0);
  });
  return registry;
}
