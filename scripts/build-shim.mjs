#!/usr/bin/env node
// Compiles the CNI shim (src/cni/shim/twill-cni.c) to dist/cni/twill: the executable runtimes run
// as the `twill` plugin. It forwards each call to twilld and, when the agent is not reachable,
// runs the Node plugin, whose path (and the node binary building it) are compiled in here; so
// build it where it will run (the Dockerfile compiles it inside the image build).
// `npm run build` runs this as part of postbuild. CC overrides the compiler (default cc).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const cc = process.env.CC || 'cc';
const source = 'src/cni/shim/twill-cni.c';
const output = 'dist/cni/twill';
const nodeMain = path.resolve('dist/src/cni/main.js');

mkdirSync(path.dirname(output), { recursive: true });
const args = [
  '-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11',
  // JSON.stringify makes a C string literal of a path (quotes, backslashes escaped).
  `-DTWILL_NODE_MAIN=${JSON.stringify(nodeMain)}`,
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
console.log(`build-shim: ${output} (fallback: ${process.execPath} ${nodeMain})`);
