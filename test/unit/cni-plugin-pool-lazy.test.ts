import { afterEach, describe, expect, it, vi } from 'vitest';
import { PluginPool } from '../../src/cni/plugin-pool.js';
import { waitFor } from '../helpers/wait.js';

// The agent's pool (PluginPool.lazy, src/agent/cni-service.ts) holds no thread until its first
// call, which starts the warm threads; from then on it is a started pool. Stand-in workers from
// test/helpers/fixtures: one that echoes calls with its thread id, one that cannot load.

const CRASH_WORKER = new URL('../helpers/fixtures/pool-worker-crash.mjs', import.meta.url);
const BROKEN_WORKER = new URL('../helpers/fixtures/pool-worker-broken.mjs', import.meta.url);

const pools: PluginPool[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function lazyPool(...args: Parameters<typeof PluginPool.lazy>): PluginPool {
  const pool = PluginPool.lazy(...args);
  pools.push(pool);
  return pool;
}

function threadOf(reply: { stdout: string }): number {
  return (JSON.parse(reply.stdout) as { threadId: number }).threadId;
}

describe('PluginPool.lazy', () => {
  it('starts no thread until the first call, then the warm ones, which stay when idle', async () => {
    // The pool's timers (idle stops, respawns) run on a fake clock: what they would do over a
    // stretch of time is run at once, with no waiting, while the threads answer for real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
    const pool = lazyPool({ maxThreads: 4, warmThreads: 2, idleMs: 100, workerUrl: CRASH_WORKER });
    await vi.advanceTimersByTimeAsync(300); // whatever a timer of the pool would start, it has started now
    expect(pool.size).toBe(0);
    expect(pool.warmSize).toBe(2);

    const first = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: 'first' });
    expect(first.exitCode).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ stdin: 'first' });
    expect(pool.size).toBe(2);

    // Well past idleMs: warm threads are never stopped for idling, and the first one still answers.
    await vi.advanceTimersByTimeAsync(400);
    expect(pool.size).toBe(2);
    expect(threadOf(await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' }))).toBe(threadOf(first));
  });

  it('starts extra threads beyond the warm ones when calls overlap, as a started pool does', async () => {
    const pool = lazyPool({ maxThreads: 3, warmThreads: 1, idleMs: 300, workerUrl: CRASH_WORKER });
    expect(pool.size).toBe(0);
    expect((await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' })).exitCode).toBe(0);
    expect(pool.size).toBe(1);
    // The warm thread is ready and busy: each call queued behind it starts one more thread.
    const burst = await Promise.all([1, 2, 3].map(() => pool.run({ env: { CNI_COMMAND: 'ADD', CNI_DELAY_MS: '300' }, stdin: '' })));
    expect(burst.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    expect(pool.size).toBe(3);
    // The extra threads stop once idle for idleMs; the warm one stays.
    await waitFor(() => pool.size === 1, { timeoutMs: 2000, intervalMs: 20, what: 'extra threads stopped after idling' });
    expect(pool.size).toBe(1);
  });

  it('answers the first call with an error, and reports it, when the worker cannot load', async () => {
    const exits: Error[] = [];
    const pool = lazyPool({ maxThreads: 2, warmThreads: 1, workerUrl: BROKEN_WORKER }, { onWorkerExit: (err) => exits.push(err) });
    const reply = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(reply.exitCode).toBe(1);
    expect(JSON.parse(reply.stdout)).toMatchObject({ cniVersion: '1.0.0', code: 100, msg: expect.stringMatching(/broken worker for tests/) as unknown });
    expect(exits.map((e) => e.message)).toContainEqual(expect.stringMatching(/broken worker for tests/));
  });

  it('closes without ever having started a thread, and then answers calls with an error', async () => {
    const pool = lazyPool({ maxThreads: 2, workerUrl: CRASH_WORKER });
    await pool.close();
    expect(pool.size).toBe(0);
    const reply = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' });
    expect(reply.exitCode).toBe(1);
    expect(reply.stdout).toMatch(/shutting down/);
    expect(pool.size).toBe(0);
  });

  it('refuses bad thread counts at once', () => {
    expect(() => PluginPool.lazy({ maxThreads: 0 })).toThrow(/CNI worker count/);
    expect(() => PluginPool.lazy({ maxThreads: 2, warmThreads: 3 })).toThrow(/must not exceed the maximum of 2/);
  });
});
