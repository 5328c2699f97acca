import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { alive, pidsInNamespaces, stopProcessesIn } from '../../src/ctl/demo/processes.js';
import { canUseNetns, useScratchNamespaces } from './scratch.js';

/** Starts `ip netns exec <ns> sh -c <script>` detached; resolves with its pid. */
function startIn(ns: string, script: string): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', script], { stdio: 'ignore', detached: true });
  child.unref();
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve(child.pid!));
  });
}

describe.skipIf(!canUseNetns)('twillctl demo: stopping what runs in its namespaces', () => {
  const scratch = useScratchNamespaces();

  it('stops every process, and counts a daemon once even while it runs a child (twilld running nft)', async () => {
    const s = await scratch('procs');
    // A "daemon" with a child of its own, and a lone one.
    const parent = await startIn(s.name, 'sleep 60 & wait');
    const lone = await startIn(s.name, 'exec sleep 60');
    let inside: number[] = [];
    for (let i = 0; i < 100 && inside.length < 3; i++) {
      inside = pidsInNamespaces([s.name]).get(s.name) ?? [];
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(inside).toHaveLength(3);
    expect(inside).toContain(parent);
    expect(inside).toContain(lone);

    expect(await stopProcessesIn([s.name], 2000)).toBe(2);
    // Gone, or a zombie its parent has not reaped yet.
    for (const pid of inside) expect(alive(pid), `pid ${pid}`).toBe(false);
    expect(pidsInNamespaces([s.name]).get(s.name)).toEqual([]);
  });
});
