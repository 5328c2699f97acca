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

describe('PluginPool', () => {
  it.skipIf(!existsSync(REAL_WORKER))('answers VERSION through the real worker on every thread', async () => {
    const pool = await startPool({ size: 2, workerUrl: REAL_WORKER });
    const replies = await Promise.all(Array.from({ length: 20 }, () => pool.run({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' })));
    for (const r of replies) {
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', supportedVersions: expect.arrayContaining(['1.1.0', '0.3.1']) });
    }
  });

  it.skipIf(!existsSync(REAL_WORKER))('renders a bad call as the spec\'s error JSON (code 4 for a missing variable)', async () => {
    const pool = await startPool({ size: 1, workerUrl: REAL_WORKER });
    const r = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '{}' });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 4 });
    expect(r.error?.message).toMatch(/CNI_CONTAINERID/);
  });

  it('spreads concurrent calls over the threads', async () => {
    const pool = await startPool({ size: 3, workerUrl: CRASH_WORKER });
    const replies = await Promise.all(Array.from({ length: 9 }, (_, i) => pool.run({ env: { CNI_COMMAND: 'ADD', CNI_DELAY_MS: '50' }, stdin: `call ${i}` })));
    const threads = new Set(replies.map((r) => (JSON.parse(r.stdout) as { threadId: number }).threadId));
    expect(threads.size).toBe(3);
    expect(replies.map((r) => (JSON.parse(r.stdout) as { stdin: string }).stdin)).toEqual(Array.from({ length: 9 }, (_, i) => `call ${i}`));
  });

  it('answers the calls of a thread that dies with an error, replaces it, and keeps serving', async () => {
    const exits: Error[] = [];
    const pool = await startPool({ size: 1, workerUrl: CRASH_WORKER }, { onWorkerExit: (err) => exits.push(err) });
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
    await expect(PluginPool.start({ size: 2, workerUrl: BROKEN_WORKER })).rejects.toThrow(/broken worker for tests/);
  });

  it('refuses a bad thread count', async () => {
    await expect(PluginPool.start({ size: 0 })).rejects.toThrow(/CNI worker count/);
    await expect(PluginPool.start({ size: 1.5 })).rejects.toThrow(/CNI worker count/);
  });

  it('answers calls made after close() with an error', async () => {
    const pool = await PluginPool.start({ size: 1, workerUrl: CRASH_WORKER });
    await pool.close();
    const r = await pool.run({ env: { CNI_COMMAND: 'ADD' }, stdin: '' });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/shutting down/);
  });
});
