#!/usr/bin/env node
// twilld's entry point, dist/src/agent/main.js (scripts/bundle-agent.mjs copies this file there,
// with BUNDLE_ID filled in): runs the bundled agent beside it, twilld.bundle.cjs, compiled with
// V8's code cache. Node 20 keeps no compile cache of its own (module.enableCompileCache() came in
// Node 22), so every start would parse the 2 MiB bundle and then compile, one by one as they are
// first called, the functions of the first sync; with the cache, V8 reads their bytecode instead
// (docs/benchmarks.md, vxlan cold start).
//
// The agent writes the cache itself, as twilld.bundle.v8cache, when it stops cleanly (exit code 0,
// after SIGTERM) having run for at least MIN_RUN_MS, and had no usable one: by then the cache
// holds the code of a start and of the steady state (not only of `--version`), and the running
// agent never pays for making it (the serializer's buffers would stay in its RSS). So at most once
// per release, Node version and set of V8 flags. V8 refuses a cache made by another Node version
// or with other V8 flags; the bundle's id guards against another bundle of the same length, which
// V8 would take. A refused or foreign cache is compiled around and replaced. The cache is written
// only where the release is writable (twilld runs as root), by rename, so a start never reads half
// of one.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
// V8's flags are part of what a cache must match, so the heap flags twilld sets at start are set
// before the bundle is compiled, the same way every time (the agent sets them again: same values).
import { tuneHeap } from './heap-tuning.js';
import { readCodeCache, writableDir, writeCodeCache } from '../core/code-cache-file.cjs';

/** A digest of the bundle's contents, filled in by scripts/bundle-agent.mjs. */
const BUNDLE_ID = '__TWILL_BUNDLE_ID__';
const DIR = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.join(DIR, 'twilld.bundle.cjs');
const CACHE = path.join(DIR, 'twilld.bundle.v8cache');
/** How long the agent must have run for its exit to write the cache; TWILL_CODE_CACHE_MIN_RUN_MS for tests. */
const MIN_RUN_MS = Number(process.env.TWILL_CODE_CACHE_MIN_RUN_MS ?? 3_000);

/** The cache's V8 data; undefined when there is none or it is another bundle's. */
function readCache() {
  const cache = readCodeCache(CACHE);
  return cache?.header === BUNDLE_ID ? cache.v8 : undefined;
}

/**
 * The bundle compiled, and whether the cache is to be written at exit. The bundle is one function
 * of CommonJS's module arguments (scripts/bundle-loaded.mjs wraps it), so its text is compiled as
 * read, and it is ASCII (the same file), so it is read as latin1, the cheaper decoding. A function,
 * so that the cache's bytes are not kept once compiled.
 */
function compile() {
  const cached = readCache();
  const script = new Script(fs.readFileSync(BUNDLE, 'latin1'), { filename: BUNDLE, cachedData: cached });
  return { script, writeCacheAtExit: cached === undefined || script.cachedDataRejected === true };
}

tuneHeap();
const { script, writeCacheAtExit } = compile();
if (writeCacheAtExit && writableDir(DIR)) {
  process.on('exit', (code) => {
    if (code === 0 && process.uptime() * 1000 >= MIN_RUN_MS) writeCodeCache(CACHE, BUNDLE_ID, script.createCachedData());
  });
}
const bundleModule = { exports: {} };
script.runInThisContext()(bundleModule.exports, createRequire(BUNDLE), bundleModule, BUNDLE, DIR);
