#!/usr/bin/env node
// twilld's entry point, dist/src/agent/main.js (scripts/bundle-agent.mjs copies this file there,
// with BUNDLE_ID filled in): runs the bundled agent beside it, twilld.bundle.cjs, compiled with
// V8's code cache. Node 20 keeps no compile cache of its own (module.enableCompileCache() came in
// Node 22), so every start would parse the 2 MiB bundle and then compile, one by one as they are
// first called, the functions of the first sync; with the cache, V8 reads their bytecode instead
// (docs/benchmarks.md, vxlan cold start).
//
// The agent writes the cache itself, as twilld.bundle.v8cache, once it has run for a while
// (CACHE_AFTER_MS: its first sync is done, so the cache holds the code of a start), and only when
// there is no usable one: at most once per release, Node version and set of V8 flags. V8 refuses a
// cache made by another Node version or with other V8 flags; the bundle's id guards against
// another bundle of the same length, which V8 would take. A refused or foreign cache is compiled
// around and replaced. The cache is written only where the release is writable (twilld runs as
// root), by rename, so a start never reads half of one.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
// V8's flags are part of what a cache must match, so the heap flag twilld sets at start is set
// before the bundle is compiled, the same way every time (the agent sets it again: same value).
import { tuneHeap } from './heap-tuning.js';

/** A digest of the bundle's contents, filled in by scripts/bundle-agent.mjs. */
const BUNDLE_ID = '__TWILL_BUNDLE_ID__';
const DIR = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.join(DIR, 'twilld.bundle.cjs');
const CACHE = path.join(DIR, 'twilld.bundle.v8cache');
/** How long after start the cache is made; TWILL_CODE_CACHE_AFTER_MS for tests. */
const CACHE_AFTER_MS = Number(process.env.TWILL_CODE_CACHE_AFTER_MS ?? 20_000);

/** The cache's V8 data; undefined when there is none or it is another bundle's. */
function readCache() {
  let data;
  try {
    data = fs.readFileSync(CACHE);
  } catch {
    return undefined;
  }
  const end = data.indexOf(10);
  if (end < 0 || data.subarray(0, end).toString('latin1') !== BUNDLE_ID) return undefined;
  return data.subarray(end + 1);
}

function writeCache(v8) {
  const tmp = `${CACHE}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${BUNDLE_ID}\n`, 'latin1'), v8]), { mode: 0o644 });
    fs.renameSync(tmp, CACHE);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

function writable(dir) {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

tuneHeap();
const cached = readCache();
// The bundle runs as a CommonJS module would; its hashbang line would be a syntax error inside
// the wrapper, so it becomes a comment (line numbers stay).
const source = fs.readFileSync(BUNDLE, 'utf8').replace(/^#!/, '//');
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: BUNDLE,
  cachedData: cached,
});
if ((cached === undefined || script.cachedDataRejected === true) && writable(DIR)) {
  setTimeout(() => writeCache(script.createCachedData()), CACHE_AFTER_MS).unref();
}
const bundleModule = { exports: {} };
script.runInThisContext()(bundleModule.exports, createRequire(BUNDLE), bundleModule, BUNDLE, DIR);
