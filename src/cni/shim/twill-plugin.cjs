'use strict';
// What the shim (twill-cni.c) runs with node when twilld does not answer: the bundled plugin,
// twill-plugin.bundle.cjs beside this file (scripts/bundle-plugin.mjs copies this file there as
// twill-plugin.cjs, with BUNDLE_ID filled in), compiled with V8's code cache. Each fallback call
// is a new process, which would otherwise compile the bundle, and every function the call runs,
// from source again; Node 20 keeps no compile cache of its own (module.enableCompileCache() came
// in Node 22). The cache saves a call about a tenth of its time (docs/design/cni-shim-and-socket.md,
// "The fallback's start-up").
//
// The calls write the cache themselves, as twill-plugin.bundle.v8cache: V8 caches only functions
// that were compiled, so a call that succeeds with a command the cache does not cover yet writes it
// anew (its first line names the bundle and the commands it covers: at most one write per
// command per release). V8 itself refuses a cache made by another node version or with other
// flags; the bundle's id guards against another bundle of the same length, which V8 would take.
// A refused or foreign cache is compiled around and replaced. The cache is written only where
// the release is writable (root's, as the plugin runs as root), by rename, so a concurrent call
// never reads half of one.
const fs = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const process = require('node:process');
const { Script } = require('node:vm');
// Where this file runs, dist/cni/, the helper is dist/src/core/code-cache-file.cjs.
const { readCodeCache, writableDir, writeCodeCache } = require(path.join(__dirname, '..', 'src', 'core', 'code-cache-file.cjs'));

/** A digest of the bundle's contents, filled in by scripts/bundle-plugin.mjs. */
const BUNDLE_ID = '__TWILL_BUNDLE_ID__';
const BUNDLE = path.join(__dirname, 'twill-plugin.bundle.cjs');
const CACHE = path.join(__dirname, 'twill-plugin.bundle.v8cache');
/** CNI commands are upper-case words: nothing that could break the cache's first line. */
const COMMAND = /^[A-Z]{1,16}$/;

/** The cache's commands and V8 data; undefined when there is none, or it is another bundle's. */
function readCache() {
  const cache = readCodeCache(CACHE);
  const [id, commands = ''] = cache?.header.split(' ') ?? [];
  if (cache === undefined || id !== BUNDLE_ID) return undefined;
  return { commands: commands.split(',').filter((c) => COMMAND.test(c)), v8: cache.v8 };
}

const cache = readCache();
// The bundle is one function of CommonJS's module arguments (scripts/bundle-loaded.mjs wraps it),
// so its text is compiled as read; it is ASCII (the same file), so it is read as latin1, the
// cheaper decoding.
const script = new Script(fs.readFileSync(BUNDLE, 'latin1'), { filename: BUNDLE, cachedData: cache?.v8 });
const covered = cache !== undefined && !script.cachedDataRejected ? cache.commands : [];
const command = process.env.CNI_COMMAND ?? '';
// Only a CNI call (the command line, --help or --version, runs little of the plugin) that succeeded.
if (process.argv.length === 2 && COMMAND.test(command) && !covered.includes(command) && writableDir(__dirname)) {
  process.on('exit', (code) => {
    if (code === 0) writeCodeCache(CACHE, `${BUNDLE_ID} ${[...covered, command].join(',')}`, script.createCachedData());
  });
}
const bundleModule = { exports: {} };
script.runInThisContext()(bundleModule.exports, createRequire(BUNDLE), bundleModule, BUNDLE, __dirname);
