#!/usr/bin/env node
// Bundles the CNI plugin's in-process fallback into one file, dist/cni/twill-plugin.bundle.cjs,
// and puts its loader beside it as dist/cni/twill-plugin.cjs (from src/cni/shim/twill-plugin.cjs,
// which runs the bundle with V8's code cache): what the shim (dist/cni/twill,
// scripts/build-shim.mjs) runs with node when twilld does not answer. The bundle is tsc's
// dist/src/cni/main.js and everything it imports, so `npm run build` runs this after tsc
// (postbuild, before build-shim.mjs).
//
// Why: each fallback call is a new node process, and loading ~75 ES modules one by one cost it
// more than its work (docs/design/cni-shim-and-socket.md, "The fallback's start-up"). One
// CommonJS file skips the ES module loader's per-file resolving and linking. Left outside, in
// node_modules/ (which a release ships):
//   - the native binaries of koffi and netlink, loaded by the paths their loaders chose at build
//     time, with those loaders (koffi, node-gyp-build) as the fallback (prebuilt-natives.mjs);
//   - pino: loaded only when a call logs (src/cni/fallback-log.ts), most never do.
// From netlink only dist/raw.js (RawNetlinkSocket, all src/netlink uses) is bundled: the
// package's index also loads its generated rtnetlink, nl80211 and wireguard codecs, ~1.5 MB of
// JavaScript Twill never calls. Any other export still works: it loads the whole package.
//
// The build fails if the bundle would take in any other npm package, if it would import() anything
// (the loader runs it as a script, without an ES module loader), or if an external does not
// resolve from the bundle's directory the way it will at run time.
//
//   node scripts/bundle-plugin.mjs
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { finishLoadedBundle } from './bundle-loaded.mjs';
import { prebuiltNatives, withPrebuiltNetlinkBinding } from './prebuilt-natives.mjs';

const ENTRY = 'dist/src/cni/main.js';
const OUTPUT = 'dist/cni/twill-plugin.bundle.cjs';
const LOADER_SOURCE = 'src/cni/shim/twill-plugin.cjs';
/** build-shim.mjs compiles the same path (under --root) into the shim. */
const LOADER = 'dist/cni/twill-plugin.cjs';
/** Written by the plugin's calls (see the loader); a new bundle starts without. */
const CODE_CACHE = 'dist/cni/twill-plugin.bundle.v8cache';
/** Packages required at run time from node_modules, never bundled. */
const EXTERNAL = ['pino', 'node-gyp-build'];
const NETLINK_RAW = 'netlink/dist/raw.js';
/** Resolves as the bundle will at run time (node_modules above dist/cni). */
const requireFromBundle = createRequire(path.resolve(OUTPUT));
/** The one file of an npm package the bundle holds (its binding load rewritten, below). */
const NETLINK_RAW_FILE = requireFromBundle.resolve(NETLINK_RAW);

/** `netlink` becomes this module: RawNetlinkSocket from raw.js, anything else from the package. */
const NETLINK_SHIM = `
const raw = require(${JSON.stringify(NETLINK_RAW)});
module.exports = new Proxy(raw, { get: (target, key) => (key in target ? target[key] : require('netlink')[key]) });
`;

/** @type {import('esbuild').Plugin} */
const netlinkRawOnly = {
  name: 'netlink-raw-only',
  setup(b) {
    b.onResolve({ filter: /^netlink$/ }, (args) => (args.namespace === 'netlink-raw-only' ? { path: 'netlink', external: true } : { path: 'netlink', namespace: 'netlink-raw-only' }));
    b.onResolve({ filter: /^netlink\/dist\/raw\.js$/ }, () => ({ path: NETLINK_RAW_FILE }));
    b.onLoad({ filter: /.*/, namespace: 'netlink-raw-only' }, () => ({ contents: NETLINK_SHIM, loader: 'js' }));
    b.onLoad({ filter: /[\\/]netlink[\\/]dist[\\/]raw\.js$/ }, (args) => ({
      contents: withPrebuiltNetlinkBinding(readFileSync(args.path, 'utf8'), args.path, OUTPUT, fail),
      loader: 'js',
    }));
  },
};

function fail(message) {
  console.error(`bundle-plugin: ${message}`);
  process.exit(1);
}

let result;
try {
  result = await build({
    entryPoints: [ENTRY],
    outfile: OUTPUT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    // CommonJS rather than ESM: measured faster to start (no ES module loader), and the
    // externals are CommonJS packages anyway.
    format: 'cjs',
    external: EXTERNAL,
    plugins: [netlinkRawOnly, prebuiltNatives(OUTPUT, fail)],
    // CommonJS has no import.meta; src/core/version.ts finds package.json from import.meta.url.
    define: { 'import.meta.url': 'import_meta_url' },
    banner: { js: "const import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
  });
} catch (err) {
  fail(`esbuild failed on ${ENTRY} (run tsc first: npm run build does):\n${err.message}`);
}
if (result.warnings.length > 0) fail(`esbuild warnings:\n${result.warnings.map((w) => `  ${w.text} (${w.location?.file ?? '?'})`).join('\n')}`);

const bundled = Object.keys(result.metafile.inputs).filter((input) => input.includes('node_modules/') && path.resolve(input) !== NETLINK_RAW_FILE);
if (bundled.length > 0) fail(`npm packages would be bundled (mark them external, or keep them out of the fallback): ${bundled.join(', ')}`);
const dynamic = result.metafile.outputs[OUTPUT]?.imports.filter((i) => i.kind === 'dynamic-import') ?? [];
if (dynamic.length > 0) fail(`the bundle would import() ${dynamic.map((i) => i.path).join(', ')}: require it instead`);

// The externals as the bundle will resolve them.
for (const name of [...EXTERNAL, 'koffi', 'netlink']) {
  try {
    requireFromBundle.resolve(name);
  } catch (err) {
    fail(`${name} does not resolve from ${OUTPUT}: ${err.message}`);
  }
}
if (typeof requireFromBundle(NETLINK_RAW).RawNetlinkSocket !== 'function') {
  fail(`${NETLINK_RAW} does not export RawNetlinkSocket: the netlink package changed its layout; update NETLINK_RAW`);
}
const { id, bytes } = finishLoadedBundle({ output: OUTPUT, loaderSource: LOADER_SOURCE, loader: LOADER, codeCache: CODE_CACHE, fail });
console.log(`bundle-plugin: ${OUTPUT} (${Math.round(bytes / 1024)} KiB, ${Object.keys(result.metafile.inputs).length} modules, id ${id}), run by ${LOADER}`);
