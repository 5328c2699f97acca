#!/usr/bin/env node
// Compiles the CNI shim (src/cni/shim/twill-cni.c) to dist/cni/twill: the executable runtimes run
// as the `twill` plugin. It forwards each call to twilld and, when the agent is not reachable,
// runs the Node plugin, whose paths are compiled in here: <root>/dist/cni/twill-plugin.cjs (which
// runs the bundle scripts/bundle-plugin.mjs makes of dist/src/cni/main.js), run by <root>/bin/node
// when that exists (a node host usually has no Node.js of its own; the installer,
// scripts/install-cni.sh, puts one there), else by the node building the shim, else by `node`
// on the PATH. So build it for where it will run: the Dockerfile builds it in /opt/twill/current,
// which the installer makes the same path on every node.
// `npm run build` runs this as part of postbuild. CC overrides the compiler (default cc).
//
//   node scripts/build-shim.mjs [--root DIR] [--output FILE]
//     --root    where the plugin's release lives at run time (default: this checkout)
//     --output  the executable to write (default: dist/cni/twill)
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { root: { type: 'string' }, output: { type: 'string' } } });
const cc = process.env.CC || 'cc';
const source = 'src/cni/shim/twill-cni.c';
const output = values.output ?? 'dist/cni/twill';
const root = path.resolve(values.root ?? '.');
const nodeMain = path.join(root, 'dist/cni/twill-plugin.cjs');
const bundledNode = path.join(root, 'bin/node');

mkdirSync(path.dirname(output), { recursive: true });
const args = [
  '-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11',
  // JSON.stringify makes a C string literal of a path (quotes, backslashes escaped).
  `-DTWILL_NODE_MAIN=${JSON.stringify(nodeMain)}`,
  `-DTWILL_BUNDLED_NODE=${JSON.stringify(bundledNode)}`,
  `-DTWILL_NODE_BIN=${JSON.stringify(process.execPath)}`,
  '-o', output, source,
];
const result = spawnSync(cc, args, { stdio: 'inherit' });
if (result.error) {
  const missing = result.error.code === 'ENOENT';
  console.error(
    missing
      ? `build-shim: C compiler "${cc}" not found; install it (Debian: apt-get install gcc libc6-dev) or set CC`
      : `build-shim: cannot run ${cc}: ${result.error.message}`,
  );
  process.exit(1);
}
if (result.status !== 0) {
  console.error(`build-shim: ${cc} failed (${result.signal ?? `exit code ${result.status}`}) compiling ${source}`);
  process.exit(1);
}
console.log(`build-shim: ${output} (fallback: ${bundledNode}, else ${process.execPath}, running ${nodeMain})`);
