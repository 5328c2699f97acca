import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { wrapForLoader } from '../../scripts/bundle-loaded.mjs';

// The fallback's loader (src/cni/shim/twill-plugin.cjs): it runs the bundle beside it and keeps
// V8's code cache of it, written by the calls that succeed with a command it does not cover yet.
// Made here from the source as it is now (scripts/bundle-plugin.mjs does the same with the real
// bundle's id), beside a stand-in bundle.

const SOURCE = new URL('../../src/cni/shim/twill-plugin.cjs', import.meta.url);
const HELPER = new URL('../../src/core/code-cache-file.cjs', import.meta.url);
const ID = '0123456789abcdef';

/**
 * Stands in for twill-plugin.bundle.cjs, wrapped by the build's own wrapForLoader
 * (scripts/bundle-loaded.mjs): reports how it was run, exits $FAKE_EXIT.
 */
const FAKE_BUNDLE = wrapForLoader(`#!/usr/bin/env node
const path = require('node:path');
process.stdout.write(JSON.stringify({ args: process.argv.slice(2), file: path.basename(__filename), dirOk: __dirname === path.dirname(__filename) }));
process.exit(Number(process.env.FAKE_EXIT ?? 0));
`)!;

let root: string;
/** As dist/cni/: the loader, the bundle, the cache; the helper is in ../src/core/. */
let dir: string;
let cacheFile: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'twill-loader-'));
  dir = join(root, 'cni');
  mkdirSync(dir);
  mkdirSync(join(root, 'src', 'core'), { recursive: true });
  cacheFile = join(dir, 'twill-plugin.bundle.v8cache');
  writeFileSync(join(dir, 'twill-plugin.cjs'), readFileSync(SOURCE, 'utf8').replace("'__TWILL_BUNDLE_ID__'", `'${ID}'`));
  writeFileSync(join(dir, 'twill-plugin.bundle.cjs'), FAKE_BUNDLE);
  writeFileSync(join(root, 'src', 'core', 'code-cache-file.cjs'), readFileSync(HELPER));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function runLoader(env: Record<string, string>, args: string[] = []): { code: number | null; out: { args: string[]; file: string; dirOk: boolean } } {
  const r = spawnSync(process.execPath, [join(dir, 'twill-plugin.cjs'), ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return { code: r.status, out: JSON.parse(r.stdout) as { args: string[]; file: string; dirOk: boolean } };
}

/** The cache's first line: the bundle's id and the commands it covers. */
function cacheHeader(): string {
  const data = readFileSync(cacheFile);
  return data.subarray(0, data.indexOf(10)).toString();
}

describe('the fallback\'s loader (twill-plugin.cjs)', () => {
  it('runs the bundle beside it with CommonJS arguments and the command line', () => {
    const { code, out } = runLoader({}, ['--version']);
    expect(code).toBe(0);
    expect(out).toEqual({ args: ['--version'], file: 'twill-plugin.bundle.cjs', dirOk: true });
    // Not a CNI call: it writes no cache.
    expect(() => statSync(cacheFile)).toThrow();
  });

  it('writes the cache after a call that succeeds, and again only for a command it does not cover', () => {
    expect(runLoader({ CNI_COMMAND: 'ADD', FAKE_EXIT: '1' }).code).toBe(1);
    expect(() => statSync(cacheFile)).toThrow();

    expect(runLoader({ CNI_COMMAND: 'ADD' }).code).toBe(0);
    expect(cacheHeader()).toBe(`${ID} ADD`);
    // Replaced by rename: a rewrite would be another inode.
    const written = statSync(cacheFile, { bigint: true });

    expect(runLoader({ CNI_COMMAND: 'ADD' }).code).toBe(0);
    const after = statSync(cacheFile, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([written.ino, written.mtimeNs]);

    expect(runLoader({ CNI_COMMAND: 'DEL' }).code).toBe(0);
    expect(cacheHeader()).toBe(`${ID} ADD,DEL`);
  });

  it.each([
    ['another bundle\'s cache', Buffer.from(`fedcba9876543210 ADD,DEL\nnot V8 data`)],
    ['a cache V8 refuses', Buffer.from(`${ID} ADD,DEL\nnot V8 data`)],
    ['a cache without its first line', Buffer.from('garbage')],
  ])('runs the call without %s and replaces it', (_what, cache) => {
    writeFileSync(cacheFile, cache);
    const { code, out } = runLoader({ CNI_COMMAND: 'DEL' });
    expect(code).toBe(0);
    expect(out.file).toBe('twill-plugin.bundle.cjs');
    expect(cacheHeader()).toBe(`${ID} DEL`);
  });
});
