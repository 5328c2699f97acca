'use strict';
// The V8 code cache files of Twill's two entry points that compile a bundle themselves: twilld's
// (src/agent/twilld-entry.mjs) and the CNI fallback's (src/cni/shim/twill-plugin.cjs). A cache
// file is one line naming the bundle (and, for the CNI's, the commands it covers), then V8's
// data. Plain CommonJS with nothing but Node's modules, as both entry points load it before any
// bundle; `npm run build` copies it to dist/src/core/.
const fs = require('node:fs');
const process = require('node:process');

/** The cache at `file`: its first line and V8's data after it; undefined when there is none or it has no first line. */
function readCodeCache(file) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  const end = data.indexOf(10);
  if (end < 0) return undefined;
  return { header: data.subarray(0, end).toString('latin1'), v8: data.subarray(end + 1) };
}

/** Writes `header` and V8's data by rename, so a reader never sees half of it; a failure leaves nothing. */
function writeCodeCache(file, header, v8) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${header}\n`, 'latin1'), v8]), { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/** Whether this process may write in `dir` (the release is root's; a read-only install is not). */
function writableDir(dir) {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

module.exports = { readCodeCache, writeCodeCache, writableDir };
