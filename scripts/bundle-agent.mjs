#!/usr/bin/env node
// Bundles twilld (tsc's dist/src/agent/main.js and everything it imports) into one CommonJS
// script, dist/src/agent/twilld.bundle.cjs, and puts the loader src/agent/twilld-entry.mjs in
// place of dist/src/agent/main.js: so every way of starting twilld, the bin link, the image's
// entrypoint, the tests, stays the same path. `npm run build` runs this after tsc (postbuild).
//
// Why: a start with 5,000 leases is a figure users compare (docs/benchmarks.md, vxlan cold start),
// and loading modules one by one was a large part of it: twilld's own ~215 modules through the ES
// module loader took about 40 ms, and the ~300 files of its npm packages (etcd3, gRPC, protobufjs,
// prom-client, pino) about 100 ms more on this machine's slow file reads (resolve each path, stat,
// read, and for each CommonJS package a pre-parse of its exports). So they are bundled too, except
// koffi's loader and the native binaries: koffi's and netlink's binaries are loaded by the paths
// their loaders chose at build time, with those loaders as the fallback (prebuilt-natives.mjs).
// netlink's JavaScript (its raw socket, all src/netlink imports) is bundled.
// A script rather than an ES module because only a script can be compiled with V8's code cache on
// Node 20 (the loader does that).
//
// A module's import.meta.url stays its own: Twill finds files relative to its modules (the CNI
// worker beside plugin-pool.js, package.json and proto/ above them), so each bundled module's
// import.meta.url is rewritten to its original file's URL, derived from the bundle's at run time.
// Those files stay in dist/src, which a release ships whole. The same for the npm packages'
// __dirname and __filename (etcd3 reads its rpc.proto beside itself when it loads), which stay in
// node_modules/, shipped with a release.
//
//   node scripts/bundle-agent.mjs
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { finishLoadedBundle } from './bundle-loaded.mjs';
import { prebuiltNatives, withPrebuiltNetlinkBinding } from './prebuilt-natives.mjs';

const ENTRY = 'dist/src/agent/main.js';
const OUTPUT = 'dist/src/agent/twilld.bundle.cjs';
const LOADER_SOURCE = 'src/agent/twilld-entry.mjs';
/** The loader's copy: twilld's entry point (package.json's bin). */
const LOADER = ENTRY;
/** Written by the agent (see the loader); a new bundle starts without. */
const CODE_CACHE = 'dist/src/agent/twilld.bundle.v8cache';
/** netlink's raw socket, whose binding load prebuilt-natives.mjs rewrites. */
const NETLINK_RAW = path.join('node_modules', 'netlink', 'dist', 'raw.js');

function fail(message) {
  console.error(`bundle-agent: ${message}`);
  process.exit(1);
}

/** `file`'s location relative to the bundle's folder, as a JS string literal. */
function fromBundle(file) {
  return JSON.stringify(path.relative(path.dirname(path.resolve(OUTPUT)), file).split(path.sep).join('/'));
}

/**
 * etcd3 parses its rpc.proto (and the two files it imports) with protobufjs when it loads: about
 * 30 ms of every start. The bundle gets the parsed definitions instead, as protobufjs's JSON
 * made here from the same files with the same options, which proto-loader's fromJSON turns into
 * the same package definition (its loadSync is that same parse, then fromJSON's steps). The call
 * is matched exactly: another etcd3 fails the build rather than keep the slow path unnoticed.
 * The definition's Range method then decodes its responses with src/store/range-response.ts
 * (the same objects; the start-up listing of every lease is one such response), and its Watch
 * method the stream's messages with src/store/watch-response.ts (a burst of leases is one).
 */
const ETCD3_POOL = path.join('node_modules', 'etcd3', 'lib', 'connection-pool.js');
/** tsc's output of src/store/range-response.ts and watch-response.ts. */
const RANGE_RESPONSE = path.resolve('dist', 'src', 'store', 'range-response.js');
const WATCH_RESPONSE = path.resolve('dist', 'src', 'store', 'watch-response.js');
const ETCD3_LOAD = /\(0, proto_loader_1\.loadSync\)\(`\$\{__dirname\}\/\.\.\/proto\/rpc\.proto`, (\{\s*keepCase: true,\s*longs: String,\s*enums: String,\s*defaults: true,\s*oneofs: true,\s*\})\)/;

function withPrebuiltEtcdProto(source, file) {
  const match = ETCD3_LOAD.exec(source);
  if (match === null) fail(`${file} no longer loads rpc.proto as this script expects: update withPrebuiltEtcdProto`);
  // proto-loader's own parse (its loadSync's first step), so the options mean the same.
  const { loadProtosWithOptionsSync } = createRequire(import.meta.url)('@grpc/proto-loader/build/src/util.js');
  const root = loadProtosWithOptionsSync(path.join(path.dirname(file), '..', 'proto', 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const from = (module) => JSON.stringify(path.relative(path.dirname(file), module).split(path.sep).join('/'));
  const definition = `(0, proto_loader_1.fromJSON)(${JSON.stringify(root.toJSON())}, ${match[1]})`;
  return source.replace(match[0], `require(${from(RANGE_RESPONSE)}).withRangeResponseDecoder(require(${from(WATCH_RESPONSE)}).withWatchResponseDecoder(${definition}))`);
}

/** @type {import('esbuild').Plugin} */
const ownLocation = {
  name: 'own-location',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (args.path.endsWith(ETCD3_POOL)) return { contents: withPrebuiltEtcdProto(source, args.path), loader: 'js' };
      // Its rewritten text no longer uses __dirname (below).
      if (args.path.endsWith(NETLINK_RAW)) return { contents: withPrebuiltNetlinkBinding(source, args.path, OUTPUT, fail), loader: 'js' };
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) {
        if (!/\b__(dirname|filename)\b/.test(source)) return undefined;
        // Declared inside the module's own wrapper function, so each module sees its own.
        const prologue = `var __dirname = __twillFrom(${fromBundle(path.dirname(args.path))}), __filename = __twillFrom(${fromBundle(args.path)});\n`;
        return { contents: prologue + source, loader: 'js' };
      }
      if (!source.includes('import.meta.url')) return undefined;
      // `import.meta.url` itself is the bundle's URL (define, below).
      return { contents: source.replaceAll('import.meta.url', `new URL(${fromBundle(args.path)}, import.meta.url).href`), loader: 'js' };
    });
  },
};

/** What the bundled modules expect of the script's scope (require, __dirname: the wrapper's arguments, bundle-loaded.mjs). */
const BANNER = [
  "// twilld, bundled by scripts/bundle-agent.mjs from tsc's dist/src and its npm packages (see there for each module); run by main.js.",
  "const __twillBundleUrl = require('node:url').pathToFileURL(__filename).href;",
  "const __twillFrom = (relative) => require('node:path').resolve(__dirname, relative);",
].join('\n');

const source = readFileSync(ENTRY, 'utf8');
if (!source.startsWith('#!/usr/bin/env node\n')) fail(`${ENTRY} is not tsc's output (no hashbang): run tsc first (npm run build does)`);
if (source.includes('twilld.bundle.cjs')) fail(`${ENTRY} is the loader already: run tsc first (npm run build does)`);

let result;
try {
  result = await build({
    entryPoints: [ENTRY],
    outfile: OUTPUT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    plugins: [ownLocation, prebuiltNatives(OUTPUT, fail)],
    define: { 'import.meta.url': '__twillBundleUrl' },
    banner: { js: BANNER },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
  });
} catch (err) {
  fail(`esbuild failed on ${ENTRY}:\n${err.message}`);
}
if (result.warnings.length > 0) fail(`esbuild warnings:\n${result.warnings.map((w) => `  ${w.text} (${w.location?.file ?? '?'})`).join('\n')}`);
const bundled = Object.keys(result.metafile.inputs);
const native = bundled.filter((input) => /node_modules\/(koffi|@koromix)\//.test(input) || input.endsWith('.node'));
if (native.length > 0) fail(`packages with native code would be bundled: ${native.join(', ')}`);

rmSync(`${ENTRY}.map`, { force: true }); // tsc's map of the module the bundle replaced
const { id, bytes } = finishLoadedBundle({ output: OUTPUT, loaderSource: LOADER_SOURCE, loader: LOADER, codeCache: CODE_CACHE, fail });
console.log(`bundle-agent: ${OUTPUT} (${Math.round(bytes / 1024)} KiB, ${bundled.length} modules, id ${id}), run by ${LOADER}`);
