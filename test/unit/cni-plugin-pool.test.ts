import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PluginPool } from '../../src/cni/plugin-pool.js';

// The agent's CNI worker threads (src/cni/plugin-pool.ts): the real worker answers VERSION (no
// root needed); stand-in workers (test/helpers/fixtures) crash or fail to start on purpose.

const REAL_WORKER = new URL('../../dist/src/cni/plugin-worker.js', import.meta.url);
const CRASH_WORKER = new URL('../helpers/fixtures/pool-worker-crash.mjs', import.meta.url);
const BROKEN_WORKER = new URL('../helpers/fixtures/pool-worker-broken.mjs', import.meta.url);

const pools: PluginPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function startPool(...args: Parameters<typeof PluginPool.start>): Promise<PluginPool> {
  const pool = await PluginPool.start(...args);
  pools.push(pool);
  return pool;
}

async function waitForSize(pool: PluginPool, size: number): Promise<void> {
  for (let i = 0; i < 100 && pool.size !== size; i++) await new Promise((r) => setTimeout(r, 50));
  expect(pool.size).toBe(size);
}

describe('PluginPool', () => {
  it.skipIf(!existsSync(REAL_WORKER))('answers VERSION through the real worker on every thread', async () => {
    const pool = await startPool({ maxThreads: 2, warmThreads: 2, workerUrl: REAL_WORKER });
    const replies = await Promise.all(Array.from({ length: 20 }, () => pool.run({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' })));
    for (const r of replies) {
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', supportedVersions: expect.arrayContaining(['1.1.0', '0.3.1']) });
    }
  });

  it.skipIf(!existsSync(REAL_WORKER))('renders a bad call as the spec\'s error JSON (code 4 for a missing variable)', async () => {
    const pool = await startPool({ maxThreads: 1, workerUrl: REAL_WORKER });
    const r = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '{}' });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 4 });
    expect(r.error?.message).toMatch(/CNI_CONTAINERID/);
  });

  it('spreads concurrent calls over the threads', async () => {
    const pool = await startPool({ maxThreads: 3, warmThreads: 3, workerUrl: CRASH_WORKER });
    const replies = await Promise.all(Array.from({ length: 9 }, (_, i) => pool.run({ env: { CNI_COMMAND: 'ADD', CNI_DELAY_MS: '50' }, stdin: `call ${i}` })));
    const threads = new Set(replies.map((r) => (JSON.parse(r.stdout) as { threadId: number }).threadId));
    expect(threads.size).toBe(3);
    expect(replies.map((r) => (JSON.parse(r.stdout) as { stdin: string }).stdin)).toEqual(Array.from({ length: 9 }, (_, i) => `call ${i}`));
  });

  it('starts more threads while calls overlap, up to the maximum, and stops the extra ones once idle', async () => {
    const pool = await startPool({ maxThreads: 4, warmThreads: 1, idleMs: 300, workerUrl: CRASH_WORKER });
    expect(pool.size).toBe(1);
    const call = (delayMs: number): Promise<number> => pool.run({ env: { CNI_COMMAND: 'ADD', CNI_DELAY_MS: String(delayMs) }, stdin: '' })
      .then((r) => (JSON.parse(r.stdout) as { threadId: number }).threadId);
    // A burst of four: all queue on the one warm thread, and three more threads start meanwhile.
    const first = await Promise.all([call(300), call(300), call(300), call(300)]);
    expect(new Set(first).size).toBe(1);
    expect(pool.size).toBe(4);
    // The next burst finds four ready threads, one call each; the pool never exceeds its maximum.
    const second = await Promise.all([call(100), call(100), call(100), call(100)]);
    expect(new Set(second).size).toBe(4);
    expect(pool.size).toBe(4);
    // Idle for longer than idleMs: back to the warm thread, which still answers.
    await waitForSize(pool, 1);
    expect(await call(0)).toBe(first[0]);
  });

  it('does not replace an extra thread that dies', async () => {
    const exits: Error[] = [];
    const pool = await startPool({ maxThreads: 2, warmThreads: 1, workerUrl: CRASH_WORKER }, { onWorkerExit: (err) => exits.push(err) });
    const busy = pool.run({ env: { CNI_COMMAND: 'ADD', CNI_DELAY_MS: '1500' }, stdin: '' });
    const queued = pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' }); // starts the extra thread
    expect(pool.size).toBe(2);
    await new Promise((r) => setTimeout(r, 500)); // the extra thread is ready by now
    const crash = await pool.run({ env: { CNI_COMMAND: 'CRASH' }, stdin: '' }); // the least busy: the extra one
    expect(JSON.parse(crash.stdout)).toMatchObject({ code: 100, msg: expect.stringMatching(/exited with code 7/) });
    expect(exits).toHaveLength(1);
    expect(pool.size).toBe(1);
    expect((await Promise.all([busy, queued])).map((r) => r.exitCode)).toEqual([0, 0]);
  });

  it('answers the calls of a thread that dies with an error, replaces it, and keeps serving', async () => {
    const exits: Error[] = [];
    const pool = await startPool({ maxThreads: 1, workerUrl: CRASH_WORKER }, { onWorkerExit: (err) => exits.push(err) });
    const slow = pool.run({ env: { CNI_COMMAND: 'DEL', CNI_DELAY_MS: '500' }, stdin: '' });
    const crash = pool.run({ env: { CNI_COMMAND: 'CRASH' }, stdin: '' });
    for (const r of await Promise.all([slow, crash])) {
      expect(r.exitCode).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 100, msg: expect.stringMatching(/exited with code 7/) });
    }
    expect(exits).toHaveLength(1);
    const after = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: 'again' });
    expect(after.exitCode).toBe(0);
    expect(pool.size).toBe(1);
  });

  it('fails to start when a worker cannot load', async () => {
    await expect(PluginPool.start({ maxThreads: 2, workerUrl: BROKEN_WORKER })).rejects.toThrow(/broken worker for tests/);
  });

  it('refuses a bad thread count', async () => {
    await expect(PluginPool.start({ maxThreads: 0 })).rejects.toThrow(/CNI worker count/);
    await expect(PluginPool.start({ maxThreads: 1.5 })).rejects.toThrow(/CNI worker count/);
    await expect(PluginPool.start({ maxThreads: 2, warmThreads: 3 })).rejects.toThrow(/must not exceed the maximum of 2/);
  });

  it('answers calls made after close() with an error', async () => {
    const pool = await PluginPool.start({ maxThreads: 1, workerUrl: CRASH_WORKER });
    await pool.close();
    const r = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/shutting down/);
  });
});
