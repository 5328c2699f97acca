#!/usr/bin/env node
// Bundles twilld's own code into one ES module, in place of tsc's dist/src/agent/main.js (so every
// way of starting it, the bin link, the image's entrypoint, the tests, stays the same path).
// `npm run build` runs this after tsc (postbuild).
//
// Why: loading twilld's ~215 modules one by one through the ES module loader (resolve, read,
// parse, link each) took about 40 ms of every start, and a start with 5,000 leases is a figure
// users compare (docs/benchmarks.md, vxlan cold start). npm packages stay outside (node_modules/
// ships with a release; etcd3 and the native parts find their files relative to themselves).
//
// A module's import.meta.url stays its own: Twill finds files relative to its modules (the CNI
// worker beside plugin-pool.js, package.json and proto/ above them), so each bundled module's
// import.meta.url is rewritten to its original file's URL, derived from the bundle's at run time.
// Those files stay in dist/src, which a release ships whole.
//
//   node scripts/bundle-agent.mjs
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ENTRY = 'dist/src/agent/main.js';
const TMP = 'dist/src/agent/main.bundle.tmp.mjs';

function fail(message) {
  console.error(`bundle-agent: ${message}`);
  process.exit(1);
}

/** @type {import('esbuild').Plugin} */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const relative = path.relative(path.dirname(path.resolve(ENTRY)), args.path).split(path.sep).join('/');
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(relative)}, import.meta.url).href`), loader: 'js' };
    });
  },
};

const source = readFileSync(ENTRY, 'utf8');
if (!source.startsWith('#!/usr/bin/env node\n')) fail(`${ENTRY} is not tsc's output (no hashbang): run tsc first (npm run build does)`);
if (source.includes('bundled by scripts/bundle-agent.mjs')) fail(`${ENTRY} is a bundle already: run tsc first (npm run build does)`);

let result;
try {
  result = await build({
    entryPoints: [ENTRY],
    outfile: TMP,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    plugins: [ownImportMetaUrl],
    banner: { js: '// twilld, bundled by scripts/bundle-agent.mjs from tsc\'s dist/src (see there for each module).' },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
  });
} catch (err) {
  rmSync(TMP, { force: true });
  fail(`esbuild failed on ${ENTRY}:\n${err.message}`);
}
if (result.warnings.length > 0) fail(`esbuild warnings:\n${result.warnings.map((w) => `  ${w.text} (${w.location?.file ?? '?'})`).join('\n')}`);
const bundled = Object.keys(result.metafile.inputs);
if (bundled.some((input) => input.includes('node_modules/'))) fail(`npm packages would be bundled: ${bundled.filter((i) => i.includes('node_modules/')).join(', ')}`);
// The bundle names its source map by the temporary name it was written under.
const out = readFileSync(TMP, 'utf8').replace(`sourceMappingURL=${path.basename(TMP)}.map`, `sourceMappingURL=${path.basename(ENTRY)}.map`);
if (!out.startsWith('#!/usr/bin/env node\n')) fail('the bundle lost the hashbang line');
writeFileSync(ENTRY, out, { mode: 0o755 });
rmSync(TMP);
renameSync(`${TMP}.map`, `${ENTRY}.map`);
console.log(`bundle-agent: ${ENTRY} (${Math.round(readFileSync(ENTRY).length / 1024)} KiB, ${bundled.length} modules)`);
