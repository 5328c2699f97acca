import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PluginPool } from '../../src/cni/plugin-pool.js';
import { transpiledSrc } from '../helpers/transpiled-src.js';
import { waitFor } from '../helpers/wait.js';

// The agent's CNI worker threads (src/cni/plugin-pool.ts): the real worker answers VERSION (no
// root needed); stand-in workers (test/helpers/fixtures) crash or fail to start on purpose.

// The real worker as src/ holds it now, transpiled (no build needed, never a stale one).
const REAL_WORKER = transpiledSrc('cni/plugin-worker');
const CRASH_WORKER = new URL('../helpers/fixtures/pool-worker-crash.mjs', import.meta.url);
const BROKEN_WORKER = new URL('../helpers/fixtures/pool-worker-broken.mjs', import.meta.url);
const WEDGE_WORKER = new URL('../helpers/fixtures/pool-worker-wedge.mjs', import.meta.url);

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
  it('answers VERSION through the real worker on every thread', async () => {
    const pool = await startPool({ maxThreads: 2, warmThreads: 2, workerUrl: REAL_WORKER });
    const replies = await Promise.all(Array.from({ length: 20 }, () => pool.run({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' })));
    for (const r of replies) {
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', supportedVersions: expect.arrayContaining(['1.1.0', '0.3.1']) });
    }
  });

  it('renders a bad call as the spec\'s error JSON (code 4 for a missing variable)', async () => {
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

  it('gives up on a thread stuck past a deadline: answers its call (an ADD undone by a DEL on another thread), replaces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twill-pool-'));
    const log = join(dir, 'calls.log');
    try {
      const stuck: Error[] = [];
      const pool = await startPool({ maxThreads: 2, warmThreads: 2, callTimeoutMs: 200, graceMs: 100, workerUrl: WEDGE_WORKER }, { onWorkerStuck: (err) => stuck.push(err) });
      const started = Date.now();
      // Blocked 3 s in "the kernel": it can neither answer nor notice its own deadline.
      const wedged = pool.run({ env: { CNI_COMMAND: 'ADD', CNI_WEDGE_MS: '3000', CNI_LOG: log }, stdin: '{"cniVersion":"0.4.0"}' });
      const other = await pool.run({ env: { CNI_COMMAND: 'CHECK', CNI_LOG: log }, stdin: '' });
      expect(other.exitCode).toBe(0);
      const reply = await wedged;
      // Deadline 200 ms + two undo windows (200 ms each) + the grace: long before the thread wakes.
      expect(Date.now() - started).toBeLessThan(2000);
      expect(reply.exitCode).toBe(1);
      expect(JSON.parse(reply.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 11, msg: expect.stringMatching(/ADD did not finish: its thread got stuck and was replaced; what it had done is undone/) as unknown });
      const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
      const addThread = calls.find(([c]) => c === 'ADD')![1];
      expect(calls.filter(([c]) => c === 'DEL').map(([, t]) => t)).toEqual([expect.not.stringMatching(`^${addThread}$`)]);
      expect(stuck).toHaveLength(1);
      expect(pool.stuckThreads).toBe(1);
      expect(pool.size).toBe(2);
      expect((await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' })).exitCode).toBe(0);
      // Once it wakes up it answers nothing more and ends.
      await waitFor(() => pool.stuckThreads === 0, { timeoutMs: 10_000, what: 'the stuck thread to end after it woke up' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() cuts calls in progress short after its grace period and still answers them', async () => {
    const pool = await PluginPool.start({ maxThreads: 1, callTimeoutMs: 1000, graceMs: 100, workerUrl: WEDGE_WORKER });
    const silent = pool.run({ env: { CNI_COMMAND: 'SILENT' }, stdin: '' });
    const started = Date.now();
    await pool.close();
    // The grace, then the call's undo windows (2 × 1 s) and the grace once more: not its full deadline first.
    expect(Date.now() - started).toBeLessThan(3000);
    const reply = await silent;
    expect(reply.exitCode).toBe(1);
    expect(JSON.parse(reply.stdout)).toMatchObject({ code: 11 });
  });

  it('answers calls made after close() with an error', async () => {
    const pool = await PluginPool.start({ maxThreads: 1, workerUrl: CRASH_WORKER });
    await pool.close();
    const r = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/shutting down/);
  });
});
