import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { wrapForLoader } from '../../scripts/bundle-loaded.mjs';

// twilld's entry point (src/agent/twilld-entry.mjs, dist/src/agent/main.js once built): it runs the
// bundle beside it and keeps V8's code cache of it, written when the agent exits cleanly after
// running for a while, and only when there is no usable cache. Made here from the source as it is now
// (scripts/bundle-agent.mjs does the same with the real bundle's id), beside a stand-in bundle
// and a stand-in heap-tuning.js that sets a V8 flag as the real one does.

const SOURCE = new URL('../../src/agent/twilld-entry.mjs', import.meta.url);
const HELPER = new URL('../../src/core/code-cache-file.cjs', import.meta.url);
const ID = '0123456789abcdef';

/**
 * Stands in for twilld.bundle.cjs, wrapped by the build's own wrapForLoader
 * (scripts/bundle-loaded.mjs): reports how it was run, exits $FAKE_EXIT.
 */
const FAKE_BUNDLE = wrapForLoader(`#!/usr/bin/env node
const path = require('node:path');
process.stdout.write(JSON.stringify({ args: process.argv.slice(2), file: path.basename(__filename), dirOk: __dirname === path.dirname(__filename), tuned: globalThis.fakeTuned === true }));
process.exit(Number(process.env.FAKE_EXIT ?? 0));
`)!;

/** Stands in for heap-tuning.js: a V8 flag is part of what a cache must match. */
const FAKE_TUNING = `import { setFlagsFromString } from 'node:v8';
export function tuneHeap() { setFlagsFromString('--heap-growing-percent=50'); globalThis.fakeTuned = true; return true; }
`;

let root: string;
/** As dist/src/agent/: the loader, the bundle, the cache; the helper is in ../core/. */
let dir: string;
let cacheFile: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'twilld-loader-'));
  dir = join(root, 'agent');
  mkdirSync(dir);
  mkdirSync(join(root, 'core'));
  cacheFile = join(dir, 'twilld.bundle.v8cache');
  writeFileSync(join(dir, 'main.js'), readFileSync(SOURCE, 'utf8').replace("'__TWILL_BUNDLE_ID__'", `'${ID}'`));
  writeFileSync(join(dir, 'twilld.bundle.cjs'), FAKE_BUNDLE);
  writeFileSync(join(dir, 'heap-tuning.js'), FAKE_TUNING);
  writeFileSync(join(root, 'core', 'code-cache-file.cjs'), readFileSync(HELPER));
  // As in dist/: the loader is an ES module.
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/**
 * Runs the loader; the bundle exits with `exit` at once. A run writes a cache only when it lasted
 * `minRunMs` (0 by default: the cache tests do not depend on the machine's speed).
 */
function runLoader(args: string[] = [], exit = 0, minRunMs = 0): { code: number | null; out: { args: string[]; file: string; dirOk: boolean; tuned: boolean } } {
  const env = { PATH: process.env.PATH, TWILL_CODE_CACHE_MIN_RUN_MS: String(minRunMs), FAKE_EXIT: String(exit) };
  const r = spawnSync(process.execPath, [join(dir, 'main.js'), ...args], { env, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return { code: r.status, out: JSON.parse(r.stdout) as { args: string[]; file: string; dirOk: boolean; tuned: boolean } };
}

function cacheHeader(): string {
  const data = readFileSync(cacheFile);
  return data.subarray(0, data.indexOf(10)).toString();
}

describe("twilld's loader (main.js)", () => {
  it('runs the bundle beside it with CommonJS arguments and the command line, after tuning the heap', () => {
    // A run shorter than the minimum (twilld --version) writes no cache: it would cover too little of the agent.
    const { code, out } = runLoader(['--version'], 0, 60_000);
    expect(code).toBe(0);
    expect(out).toEqual({ args: ['--version'], file: 'twilld.bundle.cjs', dirOk: true, tuned: true });
    expect(() => statSync(cacheFile)).toThrow();
  });

  it('writes no cache when the agent fails', () => {
    expect(runLoader([], 1).code).toBe(1);
    expect(() => statSync(cacheFile)).toThrow();
  });

  it('writes the cache when the agent stops cleanly after running long enough, and then uses it without writing it again', () => {
    expect(runLoader().code).toBe(0);
    expect(cacheHeader()).toBe(ID);
    const written = statSync(cacheFile, { bigint: true });

    // V8 took the cache (same flags, the heap's included): nothing rewritten.
    expect(runLoader().code).toBe(0);
    const after = statSync(cacheFile, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([written.ino, written.mtimeNs]);
  });

  it.each([
    ["another bundle's cache", Buffer.from('fedcba9876543210\nnot V8 data')],
    ['a cache V8 refuses', Buffer.from(`${ID}\nnot V8 data`)],
    ['a cache without its first line', Buffer.from('garbage')],
  ])('runs without %s and replaces it', (_what, cache) => {
    writeFileSync(cacheFile, cache);
    const { code, out } = runLoader();
    expect(code).toBe(0);
    expect(out.file).toBe('twilld.bundle.cjs');
    expect(cacheHeader()).toBe(ID);
    expect(readFileSync(cacheFile).length).toBeGreaterThan(cache.length);
  });

  it("passes the agent's exit code through", () => {
    expect(runLoader([], 2).code).toBe(2);
  });
});
